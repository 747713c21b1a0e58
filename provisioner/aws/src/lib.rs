//! The stack on ECS Fargate with Cloud Map: `plan`, `apply`, `status`,
//! `destroy`, `deploy`, `rollback` and `pipeline`. The flags are always
//! there; the SDK behind them only with the `aws` cargo feature, so the
//! local run never builds it.
//!
//! # Layout
//! - `verbs/`: one file per command, its flags and its body (plan, apply,
//!   status, destroy, deploy, rollback, pipeline, and call's `--ingress`
//!   lookup), composing the engine over the table of kinds.
//! - `engine/`: what every verb shares: the resource trait (`engine::resource::Kind`), the
//!   graph of kinds and its layers, the plan (pure), live and desired
//!   state, the account read, names and tags, limits (each at its line of
//!   the stack file), apply, the app's lock (one change at a time), image
//!   pinning, one polling helper, the rollout wait and its watch, the
//!   journal of changes made (for `-o json`) and what status found
//!   (`status`: data, printed as text or JSON).
//! - `kinds/`: one module per resource kind (spec, read-back, diff,
//!   create/update/delete, status, limits; the roles and their permissions
//!   boundaries among them) and the table of kinds (`kinds::KINDS`). Kinds
//!   use the engine and the clients, never a verb.
//! - `clients/`: the client registry (`Clients`), the shared error type,
//!   one module per AWS service wrapping its SDK client in the shapes the
//!   kinds compare, and EC2's client of our own (its SDK crate alone is most
//!   of a build) over a SigV4-signed Query transport with the SDK's
//!   retry behaviour (`retry`), and the `--verbose` retry lines (`verbose`).
//! - `images/`: what goes into a service's image and the builders that
//!   make and push it (our own OCI builder, pushing with ECR's calls or
//!   to any registry, and Docker's).

pub mod verbs;

#[cfg(feature = "aws")]
mod clients;
#[cfg(feature = "aws")]
mod engine;
#[cfg(feature = "aws")]
mod images;
#[cfg(feature = "aws")]
mod kinds;

pub use verbs::{
    AwsArgs, AwsCommand, Output,
    call::{IngressEndpoint, ingress_endpoint},
    run,
};

/// What the `provision` binary calls: the command (or the `--ingress`
/// lookup) run to its end on a runtime of its own. Plain functions, so
/// that the runtime and the SDK's futures are compiled here, at this
/// crate's opt-level, and not in the binary, which links last
/// (docs/building.md).
pub mod blocking {
    use super::*;

    /// An AWS subcommand; its exit code.
    pub fn run(command: AwsCommand) -> anyhow::Result<u8> {
        runtime()?.block_on(verbs::run(command))
    }

    /// The load balancer of `service` for `provision call --ingress`.
    pub fn ingress_endpoint(args: &AwsArgs, service: &str) -> anyhow::Result<IngressEndpoint> {
        runtime()?.block_on(verbs::call::ingress_endpoint(args, service))
    }

    fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"))
    }
}

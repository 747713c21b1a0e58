//! `provision`'s commands that need no cloud: `local` runs the stack on
//! this machine the way ECS with Cloud Map runs it, `call` makes one call
//! through discovery, `bench` load-tests a service through it.
//!
//! A crate apart from the `provision` binary (`provisioner/src/main.rs`,
//! which joins these commands with provision-aws's): with the `aws`
//! feature, this crate's optimised build then runs beside the AWS SDK's
//! instead of waiting for it, and a library compiles as soon as its
//! dependencies' metadata is there, while the services' crates still build.
//!
//! # Layout
//! - `local/`: `provision local`: the runner (a supervisor per service and
//!   one per store), health checks, the DNS server's registry, the local
//!   autoscaler, the control service (`control/`: gRPC on a Unix socket),
//!   process usage, the one-run-per-app lock (`instance`), each stack's
//!   address block (`block`), who holds a taken address (`port_holder`)
//!   and the store's log folded (`redis_log`).
//! - `call.rs`, `reflect.rs`: `provision call` through discovery (or TLS to
//!   an ingress), with the method's types from the server's reflection.
//! - `bench/`: `provision bench`: the load loop, faults (`chaos`), the raw
//!   codec, what a run measured, and its report; `rate.rs` its schedules.
//! - The stack file is the `stack-spec` crate (`provisioner/spec`), the AWS
//!   commands the `provision-aws` crate (`provisioner/aws`); what every
//!   command line shares (`-o`, durations, colour) the `provision-cli`
//!   crate (`provisioner/cli`).

pub mod bench;
pub mod call;
pub mod local;
mod rate;
mod reflect;

use stack_spec as spec;

pub use bench::BenchArgs;
pub use call::{CallArgs, TlsEndpoint};
pub use local::LocalArgs;

use std::{future::Future, path::Path};

/// What the `provision` binary calls: each command run to its end on a
/// runtime of its own. Plain functions, so that the runtime and the
/// commands' futures are compiled here, beside the SDK crates, and not in
/// the binary, which links last (docs/building.md).
pub mod run {
    use super::*;

    /// `provision local`.
    pub fn local(args: LocalArgs) -> anyhow::Result<()> {
        block_on(local::main(args))
    }

    /// `provision call`, through discovery, or over TLS to `ingress` (what
    /// `--ingress` found).
    pub fn call(args: CallArgs, stack: &Path, ingress: Option<TlsEndpoint>) -> anyhow::Result<()> {
        block_on(call::main(args, stack, ingress))
    }

    /// `provision bench`.
    pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
        block_on(bench::main(args))
    }
}

fn block_on(future: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"))?;
    runtime.block_on(future)
}

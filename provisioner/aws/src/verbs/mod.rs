//! The AWS commands, one file each holding its flags and its body; the
//! bodies compose the engine (read, plan, apply, watch) over the table of
//! kinds and exist only with the `aws` cargo feature, the flags always (so
//! `provision --help` is the same in every build).

pub mod apply;
pub mod call;
pub mod deploy;
pub mod destroy;
pub mod image;
pub mod pipeline;
pub mod plan;
pub mod rollback;
pub mod status;

use std::path::PathBuf;

use clap::Args;

/// Where the stack file is and which AWS endpoint and region to use.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The stack file.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
    /// Send every AWS call here instead of AWS's own endpoints (an
    /// emulator such as moto, or a proxy).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The region; else the stack's `[aws] region`, else the usual AWS
    /// configuration chain (AWS_REGION, the profile).
    #[arg(long)]
    pub region: Option<String>,
    /// Print a line for each AWS call that failed and is tried again
    /// (throttling, a 5xx, a broken connection).
    #[arg(short, long)]
    pub verbose: bool,
}

/// The lock `apply`, `deploy` and `destroy` hold while they run (see
/// `engine::lock`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LockArgs {
    /// Break the app's lock with this id before taking it: for a lock whose
    /// holder was killed before it could release it (the refusal names the
    /// id). A lock expires by itself after 3 hours.
    #[arg(long, value_name = "ID")]
    pub force_unlock: Option<String>,
}

pub use provision_cli::Output;

/// The AWS subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AwsCommand {
    /// Show what `apply` would change on AWS, resource by resource; makes no
    /// change.
    Plan(plan::PlanArgs),
    /// Create or update the stack on ECS Fargate with Cloud Map, then wait
    /// for the deployments.
    Apply(apply::ApplyArgs),
    /// Show the services' deployments and tasks beside their Cloud Map
    /// instances; exits 1 when the two disagree.
    Status(status::StatusArgs),
    /// Delete the stack's AWS resources (only those tagged as this app's).
    Destroy(destroy::DestroyArgs),
    /// Build and push the services' images (or take a prebuilt one), pin
    /// them by digest in new task definitions and roll the services out.
    Deploy(deploy::DeployArgs),
    /// Move a service back to its previous task definition revision.
    Rollback(rollback::RollbackArgs),
    /// The delivery pipeline of `[pipeline]`: run it, or see its runs.
    Pipeline(pipeline::PipelineArgs),
    /// Build one service's image without Docker (its binary on the stack's
    /// base image) and push it to any OCI registry; prints it by digest.
    Image(image::ImageArgs),
}

/// Runs an AWS subcommand; the exit code on success (plan's
/// `--detailed-exitcode`, status's disagreement).
pub async fn run(command: AwsCommand) -> anyhow::Result<u8> {
    #[cfg(feature = "aws")]
    return match command {
        AwsCommand::Plan(args) => plan::run(args).await,
        AwsCommand::Apply(args) => apply::run(args).await,
        AwsCommand::Status(args) => status::run(args).await,
        AwsCommand::Destroy(args) => destroy::run(args).await,
        AwsCommand::Deploy(args) => deploy::run(args).await,
        AwsCommand::Rollback(args) => rollback::run(args).await,
        AwsCommand::Pipeline(args) => pipeline::run(args).await,
        AwsCommand::Image(args) => image::run(args).await,
    };
    #[cfg(not(feature = "aws"))]
    {
        let _ = command;
        anyhow::bail!(
            "this provision was built without AWS support: build it with `cargo build --release -p provisioner \
             --features aws` (or `cargo install --path provisioner --features aws`)"
        )
    }
}

#[cfg(feature = "aws")]
pub(crate) use session::{applied_json, apply_stack, confirm, connect, lock, plan_stack, wait_options};

/// What several verbs do alike: load and check the stack file, connect,
/// confirm on a terminal, plan and apply the whole stack.
#[cfg(feature = "aws")]
mod session {
    use std::{
        io::{BufRead, IsTerminal},
        time::Duration,
    };

    use anyhow::bail;
    use stack_spec::{self as spec, Stack};

    use super::AwsArgs;
    use crate::{
        clients::{Clients, Target},
        engine::{self, Planned, account, limits, pin, plan::Plan, rollout::WaitOptions, watch},
        kinds::{GRAPH, repository::Repository},
    };

    /// Loads and checks the stack file (before any call), then connects.
    pub async fn connect(args: &AwsArgs) -> anyhow::Result<(Stack, Clients)> {
        let stack = spec::load(&args.stack)?;
        limits::check(GRAPH, &stack, &args.stack)?;
        if args.verbose {
            crate::clients::verbose::enable();
        }
        let target = Target {
            endpoint_url: args.endpoint_url.clone().filter(|url| !url.is_empty()),
            region: args.region.clone().or_else(|| stack.aws.region.clone()),
        };
        let clients = Clients::connect(&target).await?;
        Ok((stack, clients))
    }

    /// Takes the app's lock for `command` (breaking the one `args` names
    /// first): the caller runs its changes in [`engine::lock::Lock::hold`].
    pub async fn lock(
        clients: &Clients,
        stack: &Stack,
        command: &str,
        args: &super::LockArgs,
    ) -> anyhow::Result<engine::lock::Lock> {
        let (account, caller) = clients.identity().await?;
        engine::lock::Lock::take(clients, (&account, &caller), &stack.app, command, args.force_unlock.as_deref()).await
    }

    /// Reads the account for `stack`, pins its images by digest and plans.
    pub async fn plan_stack(clients: &Clients, stack: &Stack) -> anyhow::Result<Planned> {
        let live = account::read(GRAPH, clients, stack).await?;
        let stack =
            pin::pin_stack_images(clients, stack, &live, |repository| live.get::<Repository>(repository).is_some())
                .await?;
        engine::plan_read(GRAPH, stack, live)
    }

    /// The deployment wait of `--wait-timeout`.
    pub fn wait_options(timeout: Duration) -> WaitOptions {
        WaitOptions { timeout, ..WaitOptions::default() }
    }

    /// Plan, confirm (unless `yes`), apply, and wait (with `wait`); the
    /// plan it carried out. A store the plan replaces needs its own consent
    /// in `replace_stores` (its name or id), `yes` or not.
    pub async fn apply_stack(
        stack: &Stack,
        clients: &Clients,
        yes: bool,
        replace_stores: &[String],
        wait: Option<WaitOptions>,
    ) -> anyhow::Result<Plan> {
        let planned = plan_stack(clients, stack).await?;
        provision_cli::output::show(&planned.plan.render());
        if !planned.plan.has_changes() {
            provision_cli::say!("The stack is up to date.");
            return Ok(planned.plan);
        }
        check_store_consent(&planned, replace_stores)?;
        if !yes {
            confirm("Apply these changes?")?;
        }
        provision_cli::say!("\nApplying:");
        let made = engine::apply_plan(GRAPH, clients, &planned, |_| true).await?;
        provision_cli::say!("Applied.");
        if let Some(options) = wait {
            watch::wait_for(clients, &stack.aws.cluster, &made.rollouts(), options).await?;
        }
        Ok(planned.plan)
    }

    /// What apply (or deploy) did, for `-o json`: the plan it carried
    /// out, each change made and each deployment waited for.
    pub fn applied_json(plan: &Plan) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({
            "plan": super::plan::plan_json(plan)?,
            "changes": engine::journal::changes(),
            "deployments": engine::journal::deployments(),
        }))
    }

    /// Refuses a plan that replaces a store the caller did not name: a
    /// replacement deletes the store's boards (a snapshot of them is kept,
    /// but the services start over empty).
    fn check_store_consent(planned: &Planned, replace_stores: &[String]) -> anyhow::Result<()> {
        let unconsented = crate::kinds::store::replication_group::unconsented_replacements(
            &planned.plan,
            &planned.desired,
            replace_stores,
        );
        if unconsented.is_empty() {
            return Ok(());
        }
        let stores: Vec<String> = unconsented.iter().map(|(id, _)| format!("elasticache store {id}")).collect();
        let flags: Vec<String> = unconsented.iter().map(|(_, store)| format!("--replace-store {store}")).collect();
        bail!(
            "this plan replaces {}, which deletes every board in it (a snapshot is kept; the services start over \
             empty): nothing was changed. Apply again with {} to go ahead (needed with --yes too; \
             PROVISION_REPLACE_STORE in a pipeline)",
            stores.join(" and "),
            flags.join(" ")
        )
    }

    /// Asks on the terminal; refuses to guess when there is none.
    pub fn confirm(question: &str) -> anyhow::Result<()> {
        if !std::io::stdin().is_terminal() {
            bail!("not on a terminal, so nothing to confirm with: pass --yes to go ahead without the prompt");
        }
        provision_cli::output::show(&format!("\n{question} Only 'yes' goes ahead: "));
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("cancelled: nothing was changed");
        }
        Ok(())
    }
}

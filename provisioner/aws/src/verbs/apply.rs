//! `provision apply`: plan, confirm, make the changes layer by layer, then
//! wait for the deployments they started.

use clap::Args;

use super::{AwsArgs, LockArgs};

/// `provision apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Apply without asking (needed when not on a terminal, e.g. in CI).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Consent to replacing this store (by its name in the stack file),
    /// which deletes its boards; repeat for several. A plan that replaces
    /// a store is refused without it, even with --yes.
    #[arg(long, value_name = "STORE", env = "PROVISION_REPLACE_STORE", value_delimiter = ',')]
    pub replace_store: Vec<String>,
    /// Return once the changes are made, without waiting for deployments.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for deployments before failing, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout: u64,
}

/// Applies the stack file.
#[cfg(feature = "aws")]
pub async fn run(args: ApplyArgs) -> anyhow::Result<u8> {
    let (stack, clients) = super::connect(&args.aws).await?;
    let wait = (!args.no_wait).then(|| super::wait_options(args.wait_timeout));
    let lock = super::lock(&clients, &stack, "apply", &args.lock).await?;
    lock.hold(super::apply_stack(&stack, &clients, args.yes, &args.replace_store, wait)).await?;
    Ok(0)
}

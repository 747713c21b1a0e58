//! `provision apply`: plan, confirm, make the changes layer by layer, then
//! wait for the deployments they started.

use clap::Args;

use super::{AwsArgs, LockArgs, Output};

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
    /// How long to wait for deployments before failing (`15m`, `900s`;
    /// a bare number is seconds).
    #[arg(long, default_value = "15m", value_parser = provision_cli::duration::parse_positive)]
    pub wait_timeout: std::time::Duration,
    /// `text`: progress for people; `json`: progress on stderr, then one
    /// document on stdout: the plan, each change made, each deployment's
    /// result (docs/json-output.md).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Applies the stack file.
#[cfg(feature = "aws")]
pub async fn run(args: ApplyArgs) -> anyhow::Result<u8> {
    args.output.claim_stdout();
    let (stack, clients) = super::connect(&args.aws).await?;
    let wait = (!args.no_wait).then(|| super::wait_options(args.wait_timeout));
    let lock = super::lock(&clients, &stack, "apply", &args.lock).await?;
    let plan = lock.hold(super::apply_stack(&stack, &clients, args.yes, &args.replace_store, wait)).await?;
    if args.output.is_json() {
        println!("{}", serde_json::to_string_pretty(&super::applied_json(&plan)?)?);
    }
    Ok(0)
}

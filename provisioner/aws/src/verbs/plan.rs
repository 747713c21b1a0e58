//! `provision plan`: what apply would change, resource by resource, as
//! text or one JSON document; makes no change.

use clap::Args;

use super::{AwsArgs, Output};

/// `provision plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Exit 2 when apply would change something (0: nothing to do).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// Plans and prints; 2 with `--detailed-exitcode` when there are changes.
#[cfg(feature = "aws")]
pub async fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let (stack, clients) = super::connect(&args.aws).await?;
    let planned = super::plan_stack(&clients, &stack).await?;
    let plan = &planned.plan;
    match args.output {
        Output::Text => provision_cli::colour::print(&plan.render()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&plan_json(plan)?)?),
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}

/// The plan as JSON, with a summary of the counts (also apply's and
/// deploy's `plan`).
#[cfg(feature = "aws")]
pub fn plan_json(plan: &crate::engine::plan::Plan) -> anyhow::Result<serde_json::Value> {
    let [create, update, replace, delete, unchanged] = plan.counts();
    let mut value = serde_json::to_value(plan)?;
    value["summary"] = serde_json::json!({
        "create": create, "update": update, "replace": replace, "delete": delete, "unchanged": unchanged,
        "changes": plan.has_changes(),
    });
    Ok(value)
}

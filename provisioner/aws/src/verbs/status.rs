//! `provision status`: each kind's part, in the graph's order (the ECS
//! services with their tasks beside the Cloud Map instances that answer
//! their DNS names, the stores, the load balancers, the pipeline's runs),
//! with a warning wherever two of them disagree; as text or as one JSON
//! document (`engine::status::StatusReport`).

use clap::Args;

use super::{AwsArgs, Output};

/// `provision status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `text`: for people; `json`: one document for programs
    /// (docs/json-output.md).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Prints the state of the stack; 1 when something disagrees.
#[cfg(feature = "aws")]
pub async fn run(args: StatusArgs) -> anyhow::Result<u8> {
    use crate::{
        engine::{account, names::Names, resource::Cx, status::StatusReport},
        kinds::GRAPH,
    };

    let (stack, clients) = super::connect(&args.aws).await?;
    let live = account::read(GRAPH, &clients, &stack).await?;
    let names = Names::of(&stack);
    let cx = Cx { clients: &clients, names: &names, stack: &stack };
    let mut report = StatusReport {
        cluster: stack.aws.cluster.clone(),
        account: live.account.clone(),
        region: live.region.clone(),
        ..StatusReport::default()
    };
    for node in GRAPH.nodes() {
        node.kind.status(cx, &live, &mut report).await?;
    }
    report.finish();
    match args.output {
        Output::Text => provision_cli::colour::print(&report.render()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.consistent { 0 } else { 1 })
}

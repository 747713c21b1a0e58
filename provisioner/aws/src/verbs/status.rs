//! `provision status`: each kind's part, in the graph's order (the ECS
//! services with their tasks beside the Cloud Map instances that answer
//! their DNS names, the stores, the load balancers, the pipeline's runs),
//! with a warning wherever two of them disagree.

use clap::Args;

use super::AwsArgs;

/// `provision status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Prints the state of the stack; 1 when something disagrees.
#[cfg(feature = "aws")]
pub async fn run(args: StatusArgs) -> anyhow::Result<u8> {
    use std::fmt::Write as _;

    use crate::{
        engine::{account, names::Names, resource::Cx},
        kinds::GRAPH,
    };

    let (stack, clients) = super::connect(&args.aws).await?;
    let live = account::read(GRAPH, &clients, &stack).await?;
    let names = Names::of(&stack);
    let cx = Cx { clients: &clients, names: &names, stack: &stack };
    let mut out = String::new();
    let _ = writeln!(out, "Cluster {} in account {}, region {}", stack.aws.cluster, live.account, live.region);
    let mut consistent = true;
    for node in GRAPH.nodes() {
        consistent &= node.kind.status(cx, &live, &mut out).await?;
    }
    print!("{out}");
    Ok(if consistent { 0 } else { 1 })
}

//! `provision status`: each kind's part, in the graph's order (today the
//! ECS services with their tasks beside the Cloud Map instances that answer
//! their DNS names), with a warning wherever the two disagree.

use std::fmt::Write as _;

use super::{graph::KINDS, resource::Cx, state::Live};

/// Prints the state of the stack; false when something disagrees.
pub async fn show(cx: Cx<'_>, live: &Live) -> anyhow::Result<bool> {
    let mut out = String::new();
    let _ = writeln!(out, "Cluster {} in account {}, region {}", cx.stack.aws.cluster, live.account, live.region);
    let mut consistent = true;
    for node in KINDS {
        consistent &= node.kind.status(cx, live, &mut out).await?;
    }
    print!("{out}");
    Ok(consistent)
}

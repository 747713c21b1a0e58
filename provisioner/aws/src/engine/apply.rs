//! Carries out a plan, layer by layer of the stack's graph, every resource
//! of a layer at once. Every create first looked the resource up by name
//! (the plan did), and a create that finds it made meanwhile carries on, so
//! an apply killed half way is finished by the next one. Resources the
//! stack no longer asks for go last, in destroy's order (a service lets go
//! of its target group before the group and its load balancer go).

use futures_util::future::try_join_all;

use crate::engine::{
    graph::Graph,
    plan::Plan,
    resource::{ApplyCx, Cx},
    state::{Desired, Live, Made},
};

/// Applies `plan` to the resources of the kinds `only` accepts (a resource
/// without a step in the plan is left as it is, or made where the kinds
/// after it cannot go on without it); returns what was made: each
/// resource's id, and the deployments started, for the caller to wait on.
pub async fn apply(
    graph: Graph,
    cx: Cx<'_>,
    desired: &Desired,
    live: &Live,
    plan: &Plan,
    only: impl Fn(&str) -> bool,
) -> anyhow::Result<Made> {
    let mut made = Made::default();
    for layer in graph.layers(|node| node.needs) {
        let layer: Vec<_> = layer.into_iter().filter(|node| only(node.kind.key())).collect();
        let outputs = {
            let apply_cx = ApplyCx { cx, desired, live, made: &made };
            try_join_all(layer.iter().map(|node| node.kind.apply(apply_cx, plan))).await?
        };
        for (node, outputs) in layer.iter().zip(outputs) {
            for (name, output) in outputs {
                made.insert(node.kind.key(), name, output);
            }
        }
    }
    for node in graph.teardown_order().into_iter().filter(|node| only(node.kind.key())) {
        node.kind.retire(cx, live, plan).await?;
    }
    Ok(made)
}

//! The engine every verb shares: the resource trait and the graph of kinds
//! it orders, the plan (desired against live, pure), state, names and
//! limits, apply layer by layer, images pinned by digest, one polling helper,
//! the rollout watch and what status found. It is handed the table of kinds
//! ([`graph::Graph`]) and names no kind itself.

pub mod account;
pub mod apply;
pub mod graph;
pub mod journal;
pub mod limits;
pub mod lock;
pub mod names;
pub mod pin;
pub mod plan;
pub mod poll;
pub mod progress;
pub mod resource;
pub mod rollout;
pub mod state;
pub mod status;
pub mod watch;

use stack_spec::Stack;

use crate::clients::Clients;
use graph::Graph;
use names::Names;
use plan::Plan;
use resource::Cx;
use state::{Desired, Live, Made};

/// A stack read from the account and planned: what apply takes.
pub struct Planned {
    /// The stack file with its images pinned by digest.
    pub stack: Stack,
    /// What the account holds.
    pub live: Live,
    /// What the stack asks for.
    pub desired: Desired,
    /// Every step from one to the other.
    pub plan: Plan,
}

/// Plans `stack` against what was already read of the account.
pub fn plan_read(graph: Graph, stack: Stack, live: Live) -> anyhow::Result<Planned> {
    let desired = graph.desired(&stack, &live);
    let plan = plan::plan(graph, &stack.app, &desired, &live)?;
    Ok(Planned { stack, live, desired, plan })
}

/// Applies `planned.plan` to the kinds `only` accepts (see [`apply::apply`]).
pub async fn apply_plan(
    graph: Graph,
    clients: &Clients,
    planned: &Planned,
    only: impl Fn(&str) -> bool,
) -> anyhow::Result<Made> {
    let names = Names::of(&planned.stack);
    let cx = Cx { clients, names: &names, stack: &planned.stack };
    apply::apply(graph, cx, &planned.desired, &planned.live, &planned.plan, only).await
}

//! What AWS accepts that the local run does not need (each kind says what
//! it refuses, see [`crate::engine::resource::Kind::check`]): checked before any
//! AWS call, every problem in one message.

use std::path::Path;

use anyhow::bail;

use crate::engine::graph::Graph;
use stack_spec::Stack;

/// Fails with every setting of `stack` that AWS would refuse.
pub fn check(graph: Graph, stack: &Stack, file: &Path) -> anyhow::Result<()> {
    let problems = graph.check(stack);
    if !problems.is_empty() {
        bail!("{}: for AWS: {}", file.display(), problems.join("; "));
    }
    Ok(())
}

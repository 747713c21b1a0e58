//! What AWS accepts that the local run does not need (each kind says what
//! it refuses, see [`crate::engine::resource::Kind::check`]): checked before any
//! AWS call, every problem in one message, each at its line of the stack
//! file.

use std::path::Path;

use anyhow::bail;

use crate::engine::graph::Graph;
use stack_spec::Stack;

/// One setting AWS would refuse, at the line of the stack file that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the stack file.
    pub line: usize,
    /// What is wrong and how to put it right, naming the field and value.
    pub message: String,
}

/// Fails with every setting of `stack` that AWS would refuse, a line each:
/// `stack.toml:12: service "x": ...`.
pub fn check(graph: Graph, stack: &Stack, file: &Path) -> anyhow::Result<()> {
    let mut problems = graph.check(stack);
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by_key(|problem| problem.line);
    let lines: Vec<String> =
        problems.iter().map(|problem| format!("{}:{}: {}", file.display(), problem.line, problem.message)).collect();
    bail!("the stack file asks for what AWS refuses:\n{}", lines.join("\n"))
}

//! What AWS accepts that the local run does not need (each kind says what
//! it refuses, see [`super::resource::Kind::check`]): checked before any
//! AWS call, every problem in one message.

use std::path::Path;

use anyhow::bail;

use stack_spec::Stack;

/// Fails with every setting of `stack` that AWS would refuse.
pub fn check(stack: &Stack, file: &Path) -> anyhow::Result<()> {
    let problems = super::graph::check(stack);
    if !problems.is_empty() {
        bail!("{}: for AWS: {}", file.display(), problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_intervals_are_refused_for_ecs_with_the_field_and_value() {
        let text = "[[service]]\nname = \"svc\"\n[service.health_check]\ninterval_secs = 0.5\ntimeout_secs = 0.2\n";
        let stack = stack_spec::parse(text, "stack.toml").unwrap();
        let error = check(&stack, Path::new("stack.toml")).unwrap_err().to_string();
        assert_eq!(
            error,
            "stack.toml: for AWS: service \"svc\": health_check.interval_secs 0.5 is not what ECS accepts (whole \
             seconds, 5 to 300); service \"svc\": health_check.timeout_secs 0.2 is not what ECS accepts (whole \
             seconds, 2 to 60)"
        );
        let committed = stack_spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack.toml")).unwrap();
        assert!(check(&committed, Path::new("stack.toml")).is_ok());
    }
}

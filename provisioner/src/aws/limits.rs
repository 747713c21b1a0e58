//! What ECS accepts that the local run does not need: the stack file may
//! health-check every 100 ms locally, but a task definition cannot. Checked
//! before any AWS call.

use std::{path::Path, time::Duration};

use anyhow::bail;

use crate::spec::Stack;

/// Fails with every setting of `stack` that ECS would refuse.
pub fn check(stack: &Stack, file: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for service in &stack.services {
        let check = &service.health_check;
        let mut within = |field: &str, value: Duration, min: u64, max: u64| {
            let whole = value.subsec_nanos() == 0;
            if !whole || value.as_secs() < min || value.as_secs() > max {
                problems.push(format!(
                    "service {:?}: health_check.{field} {} is not what ECS accepts (whole seconds, {min} to {max})",
                    service.name,
                    value.as_secs_f64()
                ));
            }
        };
        within("interval_secs", check.interval, 5, 300);
        within("timeout_secs", check.timeout, 2, 60);
        within("start_period_secs", check.start_period, 0, 300);
    }
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
        let stack = crate::spec::parse(text, "stack.toml").unwrap();
        let error = check(&stack, Path::new("stack.toml")).unwrap_err().to_string();
        assert_eq!(
            error,
            "stack.toml: for AWS: service \"svc\": health_check.interval_secs 0.5 is not what ECS accepts (whole \
             seconds, 5 to 300); service \"svc\": health_check.timeout_secs 0.2 is not what ECS accepts (whole \
             seconds, 2 to 60)"
        );
        let committed = crate::spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.toml")).unwrap();
        assert!(check(&committed, Path::new("stack.toml")).is_ok());
    }
}

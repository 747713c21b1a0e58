//! Autoscaling of the ECS services with Application Auto Scaling: for each
//! service with `[service.autoscaling]`, a scalable target (its desired
//! count between min and max) and a target-tracking policy per target
//! (average CPU, average memory). Once registered, autoscaling owns the
//! service's desired count: apply and deploy stop sending one. When the
//! table goes away, the target is deregistered and the service pinned at
//! its `count` again.

pub mod policy;
pub mod target;

use stack_spec::{Service, Stack};

use crate::{engine::state::Live, kinds::task_definition};

/// Application Auto Scaling's id of an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// The services autoscaling should own now: those with a table and an
/// image. A service held at 0 tasks for want of an image gets its target
/// with the deploy that brings one (registering earlier would start tasks
/// with nothing to run, as Application Auto Scaling raises a service to
/// its minimum).
pub fn scaled<'a>(stack: &'a Stack, live: &'a Live) -> impl Iterator<Item = &'a Service> + 'a {
    stack
        .services
        .iter()
        .filter(|service| service.autoscaling.is_some())
        .filter(|service| task_definition::image(stack, live, &service.name).is_some())
}

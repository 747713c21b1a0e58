//! A service's public way in (`[service.ingress]`): an Application Load
//! Balancer in its own security group (443 from the allowed CIDRs only), an
//! HTTPS listener with the stack's certificate, and a target group of
//! protocol version GRPC that the ECS service registers its tasks in beside
//! Cloud Map. The tasks' security group admits the load balancer's group on
//! the service port. Removing the table deletes all of it (after the ECS
//! service has let go of the target group).

pub mod listener;
pub mod load_balancer;
pub mod security_group;
pub mod target_group;

use std::time::Duration;

use stack_spec::{Service, Stack, ingress::Ingress};

/// The only port the load balancer listens on.
pub const HTTPS_PORT: u16 = 443;
/// The listener's TLS policy: TLS 1.3, and 1.2 with forward secrecy only.
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// What the load balancer asks each task, as a gRPC client would.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// How long ECS ignores failed target health checks of a new task: a task
/// registers as soon as it runs, before its server listens.
pub const HEALTH_CHECK_GRACE: Duration = Duration::from_secs(60);

/// The services with an ingress table, with it.
pub fn services(stack: &Stack) -> impl Iterator<Item = (&Service, &Ingress)> {
    stack.services.iter().filter_map(|service| Some((service, service.ingress.as_ref()?)))
}

/// How the tasks' security group names the rule admitting a service's load
/// balancer.
pub fn source(service: &str) -> String {
    format!("load balancer {service}")
}

/// How long a deregistered target keeps its calls: as long as a replica
/// leaving DNS does (its records' TTL, and a second), so that a rolling
/// deploy through the load balancer fails no call either.
pub fn deregistration_delay(service: &Service) -> Duration {
    service.dns_ttl + Duration::from_secs(1)
}

//! A service's target group: protocol version GRPC (HTTP/2 end to end, per
//! request balancing), target type `ip` (Fargate tasks), the gRPC health
//! check `/grpc.health.v1.Health/Check` with status code 0 (AWS's default
//! matcher is 12, which no server answers when healthy), and a
//! deregistration delay that matches the service's DNS drain.

use std::collections::BTreeMap;

use anyhow::bail;
use stack_spec::Stack;

use super::HEALTH_CHECK_PATH;
use crate::{
    clients::{elbv2::TargetGroup as Group, error::unless_unused},
    engine::{
        names::{Names, Tags},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};

/// The attribute holding the deregistration delay.
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// A service's target group.
pub struct TargetGroup;

/// A target group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupSpec {
    pub service: String,
    /// Name, protocol, VPC, type and health check.
    pub group: Group,
    pub deregistration_delay_secs: u64,
}

impl Kind for TargetGroup {
    const LABEL: &'static str = "target group";
    const KEY: &'static str = "target-group";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = TargetGroupSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<TargetGroupSpec> {
        let names = Names::of(stack);
        super::services(stack)
            .map(|(service, _)| {
                let interval = service.health_check.interval.as_secs().clamp(5, 300);
                let timeout = service.health_check.timeout.as_secs().clamp(2, 120).min(interval - 1);
                TargetGroupSpec {
                    service: service.name.clone(),
                    group: Group {
                        name: names.load_balancer(&service.name),
                        protocol: "HTTP".into(),
                        protocol_version: "GRPC".into(),
                        port: service.port,
                        vpc_id: live.vpc_id.clone(),
                        target_type: "ip".into(),
                        health_check_path: HEALTH_CHECK_PATH.into(),
                        grpc_codes: "0".into(),
                        interval_secs: u32::try_from(interval).unwrap_or(300),
                        timeout_secs: u32::try_from(timeout).unwrap_or(120),
                        healthy_threshold: 2,
                        unhealthy_threshold: service.health_check.retries.clamp(2, 10),
                        ..Group::default()
                    },
                    deregistration_delay_secs: super::deregistration_delay(service).as_secs(),
                }
            })
            .collect()
    }

    fn name(spec: &TargetGroupSpec) -> &str {
        &spec.group.name
    }

    fn fields(spec: &TargetGroupSpec) -> Fields {
        let group = &spec.group;
        Fields::from([
            ("protocol", format!("{} {} to {} targets", group.protocol, group.protocol_version, group.target_type)),
            (
                "health_check",
                format!(
                    "{} gRPC code {}, every {} s (timeout {} s), healthy after {}, unhealthy after {}",
                    group.health_check_path,
                    group.grpc_codes,
                    group.interval_secs,
                    group.timeout_secs,
                    group.healthy_threshold,
                    group.unhealthy_threshold
                ),
            ),
            ("deregistration_delay", format!("{} s", spec.deregistration_delay_secs)),
        ])
    }

    /// Every service's target group, whether or not it has an ingress
    /// table now (one left over is deleted).
    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<TargetGroupSpec>>> {
        let elb = &cx.clients.elb;
        let used = cx.stack.services.iter().any(|service| service.ingress.is_some());
        let mut found = BTreeMap::new();
        for service in &cx.stack.services {
            let name = cx.names.load_balancer(&service.name);
            let Some(group) = unless_unused(elb.target_group(&name).await, used)? else { continue };
            let resource = format!("target group {name}");
            let tags = elb.tags(&group.arn, &resource).await?;
            let attributes = elb.attributes("TargetGroup", &group.arn, &resource).await?;
            let spec = TargetGroupSpec {
                service: service.name.clone(),
                deregistration_delay_secs: attributes
                    .get(DEREGISTRATION_DELAY)
                    .and_then(|secs| secs.parse().ok())
                    .unwrap_or(300),
                group: group.clone(),
            };
            let owned = cx.names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
            let tags = Some(tags);
            found.insert(name, Found { id: group.arn.clone(), arn: group.arn, owned, tags, spec });
        }
        Ok(found)
    }

    /// What a target group is made with cannot change.
    fn precondition(want: &TargetGroupSpec, have: Option<&Found<TargetGroupSpec>>, _live: &Live) -> anyhow::Result<()> {
        let Some(found) = have.filter(|found| found.owned) else { return Ok(()) };
        let (want, have) = (&want.group, &found.spec.group);
        let fixed = |group: &Group| {
            format!(
                "{} {} to {} targets in {}",
                group.protocol, group.protocol_version, group.target_type, group.vpc_id
            )
        };
        if fixed(want) != fixed(have) {
            bail!(
                "target group {} is {}, the stack now wants {}: ELB cannot change these in place; remove the \
                 [service.ingress] table, apply (which deletes it), then add the table back and apply",
                want.name,
                fixed(have),
                fixed(want)
            );
        }
        Ok(())
    }

    /// Creates the group or brings its health check and deregistration
    /// delay to the stack's; passes on its ARN.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &TargetGroupSpec,
        have: Option<&Found<TargetGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let elb = &cx.cx.clients.elb;
        let resource = format!("target group {}", spec.group.name);
        let arn = match have {
            Some(found) if *action == Action::Unchanged => return Ok(Output::id(&found.id)),
            Some(found) => {
                if Self::fields(spec).get("health_check") != Self::fields(&found.spec).get("health_check") {
                    elb.modify_health_check(&found.id, &spec.group).await?;
                }
                found.id.clone()
            }
            None => elb.create_target_group(&spec.group, &cx.cx.names.tags()).await?.arn,
        };
        if have.is_none_or(|found| found.spec.deregistration_delay_secs != spec.deregistration_delay_secs) {
            let delay = [(DEREGISTRATION_DELAY, spec.deregistration_delay_secs.to_string())];
            elb.set_attributes("TargetGroup", &arn, &delay, &resource).await?;
        }
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.group.name);
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<TargetGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("target group {}", found.spec.group.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<TargetGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        Ok(cx.clients.elb.retag(&found.arn, set, remove, &format!("target group {}", found.arn)).await?)
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<TargetGroupSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let resource = format!("target group {}", found.spec.group.name);
            cx.clients.elb.delete_target_group(&found.id, &resource).await?;
            crate::engine::journal::done("deleted", "target group", &found.spec.group.name);
        }
        Ok(())
    }
}

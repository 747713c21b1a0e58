//! The target-tracking policies of each autoscaled service, one per target:
//! `ECSServiceAverageCPUUtilization` for `cpu_percent`,
//! `ECSServiceAverageMemoryUtilization` for `memory_percent`, with the
//! stack's cooldowns. Named `<app>-<service>-cpu` / `-memory`; policies of
//! other names on the same target are someone else's and left alone.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;

use super::{resource_id, scaled, target::ScalableTarget};
use crate::{
    clients::{app_autoscaling::TargetTracking, error::unless_gone},
    engine::{
        names::Names,
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};
use stack_spec::{Stack, autoscaling::Metric};

/// A target-tracking scaling policy.
pub struct ScalingPolicy;

/// A policy as plan sees it; named `service/metric` in plans.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// `game-server/cpu`.
    pub key: String,
    /// The service it scales.
    pub service: String,
    /// `<app>-<service>-cpu`.
    pub policy_name: String,
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    /// The predefined metric it tracks.
    pub metric: String,
    /// The utilization to hold; `None` to delete the policy (its target
    /// left the stack).
    pub target: Option<f64>,
    pub scale_out_cooldown_secs: u64,
    pub scale_in_cooldown_secs: u64,
}

impl Kind for ScalingPolicy {
    const LABEL: &'static str = "scaling policy";
    const KEY: &'static str = "scaling-policy";
    type Spec = PolicySpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<PolicySpec> {
        let names = Names::of(stack);
        let mut specs: Vec<PolicySpec> = Vec::new();
        for service in scaled(stack, live) {
            let scaling = service.autoscaling.as_ref().expect("scaled services have a table");
            for (metric, target) in scaling.targets() {
                specs.push(PolicySpec {
                    key: key(&service.name, metric),
                    service: service.name.clone(),
                    policy_name: policy_name(&names, &service.name, metric),
                    resource_id: resource_id(&stack.aws.cluster, &service.name),
                    metric: predefined(metric).to_owned(),
                    target: Some(target),
                    scale_out_cooldown_secs: scaling.scale_out_cooldown.as_secs(),
                    scale_in_cooldown_secs: scaling.scale_in_cooldown.as_secs(),
                });
            }
        }
        // A live policy the stack no longer asks for is deleted.
        let gone: Vec<PolicySpec> = live
            .all::<ScalingPolicy>()
            .filter(|(name, _)| !specs.iter().any(|spec| &spec.key == *name))
            .map(|(_, found)| PolicySpec { target: None, ..found.spec.clone() })
            .collect();
        specs.extend(gone);
        specs
    }

    fn name(spec: &PolicySpec) -> &str {
        &spec.key
    }

    fn fields(spec: &PolicySpec) -> Fields {
        match spec.target {
            Some(target) => Fields::from([
                ("target", format!("{target}% {}", spec.metric)),
                ("cooldowns", format!("out {} s, in {} s", spec.scale_out_cooldown_secs, spec.scale_in_cooldown_secs)),
            ]),
            None => Fields::from([("target", "none (deleted)".to_owned())]),
        }
    }

    /// The app's policies on each service's target, if it has one.
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<PolicySpec>>> {
        let cluster = &cx.stack.aws.cluster;
        let services: Vec<&str> = cx
            .stack
            .services
            .iter()
            .filter(|service| live.get::<ScalableTarget>(&service.name).is_some())
            .map(|service| service.name.as_str())
            .collect();
        let ids: Vec<String> = services.iter().map(|service| resource_id(cluster, service)).collect();
        let answers = try_join_all(ids.iter().map(|id| cx.clients.scaling.describe_scaling_policies(id))).await?;
        let mut found = BTreeMap::new();
        for (service, policies) in services.iter().zip(answers) {
            for metric in [Metric::Cpu, Metric::Memory] {
                let name = policy_name(cx.names, service, metric);
                let Some(policy) = policies.iter().find(|policy| policy.name == name) else { continue };
                found.insert(
                    key(service, metric),
                    Found {
                        id: policy.name.clone(),
                        arn: policy.arn.clone(),
                        // Named after this app and its own service.
                        owned: true,
                        tags: None,
                        spec: PolicySpec {
                            key: key(service, metric),
                            service: (*service).to_owned(),
                            policy_name: policy.name.clone(),
                            resource_id: policy.resource_id.clone(),
                            metric: policy.metric.clone(),
                            target: Some(policy.target),
                            scale_out_cooldown_secs: policy.scale_out_cooldown_secs,
                            scale_in_cooldown_secs: policy.scale_in_cooldown_secs,
                        },
                    },
                );
            }
        }
        Ok(found)
    }

    async fn apply(
        cx: ApplyCx<'_>,
        spec: &PolicySpec,
        _have: Option<&Found<PolicySpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        if *action == Action::Unchanged {
            return Ok(Output::id(&spec.policy_name));
        }
        match spec.target {
            Some(target) => {
                cx.cx
                    .clients
                    .scaling
                    .put_target_tracking(&TargetTracking {
                        name: spec.policy_name.clone(),
                        resource_id: spec.resource_id.clone(),
                        metric: spec.metric.clone(),
                        target,
                        scale_out_cooldown_secs: spec.scale_out_cooldown_secs,
                        scale_in_cooldown_secs: spec.scale_in_cooldown_secs,
                        arn: String::new(),
                    })
                    .await?;
                Self::done(if *action == Action::Create { "created" } else { "updated" }, &spec.key);
            }
            None => {
                delete(cx.cx, spec).await?;
                Self::done("deleted", &spec.key);
            }
        }
        Ok(Output::id(&spec.policy_name))
    }

    fn teardown_line(found: &Found<PolicySpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("scaling policy {}", found.spec.policy_name))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<PolicySpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            delete(cx, &found.spec).await?;
            crate::engine::journal::done("deleted", "scaling policy", &found.spec.policy_name);
        }
        Ok(())
    }
}

/// `game-server/cpu`.
fn key(service: &str, metric: Metric) -> String {
    format!("{service}/{metric}")
}

fn policy_name(names: &Names, service: &str, metric: Metric) -> String {
    format!("{}-{service}-{metric}", names.app())
}

fn predefined(metric: Metric) -> &'static str {
    match metric {
        Metric::Cpu => "ECSServiceAverageCPUUtilization",
        Metric::Memory => "ECSServiceAverageMemoryUtilization",
    }
}

/// Deletes a policy; one already gone (with its deregistered target) is
/// fine.
async fn delete(cx: Cx<'_>, spec: &PolicySpec) -> anyhow::Result<()> {
    unless_gone(cx.clients.scaling.delete_scaling_policy(&spec.policy_name, &spec.resource_id).await)?;
    Ok(())
}

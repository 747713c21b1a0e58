//! Each autoscaled ECS service's scalable target: `ecs`,
//! `service/CLUSTER/SERVICE`, `ecs:service:DesiredCount`, between the
//! stack's `min` and `max`. Its part of `provision status` shows the bounds,
//! the live desired count and the latest scaling activities with their
//! causes.

use std::collections::BTreeMap;

use super::{resource_id, scaled};
use crate::{
    clients::{app_autoscaling::ScalableTarget as LiveTarget, error::unless_gone},
    engine::{
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
        status::{ScalingStatus, StatusReport},
    },
    kinds::ecs_service::EcsService,
};
use stack_spec::Stack;

/// How many scaling activities status shows per service.
const ACTIVITIES_SHOWN: u32 = 5;

/// A service's scalable target.
pub struct ScalableTarget;

/// A scalable target as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The ECS service.
    pub service: String,
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    /// `(min, max)`; `None` to deregister it (the table is gone).
    pub bounds: Option<(u32, u32)>,
    /// The count the service is pinned at once deregistered.
    pub count: u32,
}

impl Kind for ScalableTarget {
    const LABEL: &'static str = "scalable target";
    const KEY: &'static str = "scalable-target";
    type Spec = TargetSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<TargetSpec> {
        let cluster = &stack.aws.cluster;
        let mut specs: Vec<TargetSpec> = scaled(stack, live)
            .map(|service| {
                let scaling = service.autoscaling.as_ref().expect("scaled services have a table");
                TargetSpec {
                    service: service.name.clone(),
                    resource_id: resource_id(cluster, &service.name),
                    bounds: Some((scaling.min, scaling.max)),
                    count: service.count,
                }
            })
            .collect();
        // A live target whose table is gone is deregistered.
        for service in &stack.services {
            if service.autoscaling.is_none() && live.get::<ScalableTarget>(&service.name).is_some() {
                specs.push(TargetSpec {
                    service: service.name.clone(),
                    resource_id: resource_id(cluster, &service.name),
                    bounds: None,
                    count: service.count,
                });
            }
        }
        specs
    }

    fn name(spec: &TargetSpec) -> &str {
        &spec.service
    }

    fn fields(spec: &TargetSpec) -> Fields {
        Fields::from([("capacity", render::capacity(spec.bounds))])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<TargetSpec>>> {
        let cluster = &cx.stack.aws.cluster;
        let ids: Vec<String> = cx.stack.services.iter().map(|service| resource_id(cluster, &service.name)).collect();
        let targets = cx.clients.scaling.describe_scalable_targets(&ids).await?;
        Ok(cx
            .stack
            .services
            .iter()
            .filter_map(|service| {
                let id = resource_id(cluster, &service.name);
                let target = targets.iter().find(|target| target.resource_id == id)?;
                Some((service.name.clone(), found(&service.name, service.count, target)))
            })
            .collect())
    }

    fn note(want: &TargetSpec) -> Option<String> {
        match want.bounds {
            Some(_) => None,
            None => Some(format!(
                "{}: autoscaling is off once its scalable target is deregistered: the service is pinned at its \
                 count, {}",
                want.service, want.count
            )),
        }
    }

    async fn apply(
        cx: ApplyCx<'_>,
        spec: &TargetSpec,
        have: Option<&Found<TargetSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        if *action == Action::Unchanged {
            return Ok(Output::id(&spec.resource_id));
        }
        let scaling = &cx.cx.clients.scaling;
        match spec.bounds {
            Some((min, max)) => {
                let tags = if have.is_none() { cx.cx.names.tags() } else { Vec::new() };
                scaling.register_scalable_target(&spec.resource_id, min, max, &tags).await?;
                Self::done(if *action == Action::Create { "registered" } else { "updated" }, &spec.service);
            }
            None => {
                deregister(cx.cx, &spec.resource_id).await?;
                Self::done("deregistered", &spec.service);
            }
        }
        Ok(Output::id(&spec.resource_id))
    }

    fn teardown_line(found: &Found<TargetSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("scalable target {} (with its policies)", found.id))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<TargetSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            deregister(cx, &found.id).await?;
            crate::engine::journal::done("deregistered", "scalable target", &found.id);
        }
        Ok(())
    }

    /// Each scaled service's bounds beside its live desired count, and the
    /// latest scaling activities with their causes.
    async fn status(cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        for (_, found) in live.all::<ScalableTarget>() {
            let desired = live
                .get::<EcsService>(&found.spec.service)
                .and_then(|service| service.spec.described.as_ref().map(|described| described.desired_count()));
            let mut scaling = ScalingStatus {
                service: found.spec.service.clone(),
                min: found.spec.bounds.map(|(min, _)| min),
                max: found.spec.bounds.map(|(_, max)| max),
                desired,
                ..ScalingStatus::default()
            };
            match cx.clients.scaling.describe_scaling_activities(&found.id, ACTIVITIES_SHOWN).await {
                Ok(activities) => scaling.activities = activities,
                // Status shows what it can; the bounds above are read.
                Err(error) => scaling.error = Some(error.to_string()),
            }
            report.autoscaling.push(scaling);
        }
        Ok(())
    }
}

fn found(service: &str, count: u32, target: &LiveTarget) -> Found<TargetSpec> {
    Found {
        id: target.resource_id.clone(),
        arn: target.arn.clone(),
        // Named after this app's own ECS service in its cluster, which plan
        // has checked is the app's; Application Auto Scaling tags are not
        // readable everywhere (moto keeps none).
        owned: true,
        tags: None,
        spec: TargetSpec {
            service: service.to_owned(),
            resource_id: target.resource_id.clone(),
            bounds: Some((target.min, target.max)),
            count,
        },
    }
}

/// Deregisters a target; one already gone is fine (a rerun after an
/// interrupted apply or destroy).
async fn deregister(cx: Cx<'_>, resource_id: &str) -> anyhow::Result<()> {
    unless_gone(cx.clients.scaling.deregister_scalable_target(resource_id).await)?;
    Ok(())
}

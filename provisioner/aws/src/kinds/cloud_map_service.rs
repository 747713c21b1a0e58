//! Each service's Cloud Map service: the DNS name (`game-server.local`)
//! with MULTIVALUE A and SRV records, whose instances ECS registers and
//! whose health ECS reports. Record types, routing policy and health check
//! type cannot change in place: plan replaces the service for them.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::Context as _;

use super::{
    ecs_service::EcsService,
    namespace::{Namespace, cloud_map_tags, retag_cloud_map, wait_operation},
};
use crate::{
    clients::error::{classify, explain},
    engine::{
        names::{Tags, tag_map},
        plan::Action,
        poll::wait_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
    },
};
use stack_spec::Stack;

/// A service's DNS name in Cloud Map.
pub struct CloudMapService;

/// A Cloud Map service as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySpec {
    pub name: String,
    /// TTL of the A and SRV records.
    pub ttl_secs: i64,
    /// A and SRV.
    pub record_types: BTreeSet<String>,
    /// MULTIVALUE: up to 8 healthy records per answer.
    pub routing_policy: String,
    /// Whether ECS reports task health (HealthCheckCustomConfig).
    pub custom_health_check: bool,
}

impl Kind for CloudMapService {
    const LABEL: &'static str = "cloud map service";
    const KEY: &'static str = "discovery-service";
    type Spec = DiscoverySpec;

    fn desired(stack: &Stack, _live: &Live) -> Vec<DiscoverySpec> {
        stack
            .services
            .iter()
            .map(|service| DiscoverySpec {
                name: service.name.clone(),
                ttl_secs: i64::try_from(service.dns_ttl.as_secs()).unwrap_or(i64::MAX),
                record_types: BTreeSet::from(["A".to_owned(), "SRV".to_owned()]),
                routing_policy: "MULTIVALUE".into(),
                custom_health_check: true,
            })
            .collect()
    }

    fn name(spec: &DiscoverySpec) -> &str {
        &spec.name
    }

    fn fields(spec: &DiscoverySpec) -> Fields {
        Fields::from([
            ("dns_ttl_secs", spec.ttl_secs.to_string()),
            ("records", render::join(&spec.record_types)),
            ("routing_policy", spec.routing_policy.clone()),
            ("health_check", if spec.custom_health_check { "reported by ECS" } else { "none" }.to_owned()),
        ])
    }

    fn replacement_reason(want: &DiscoverySpec, have: &DiscoverySpec) -> Option<String> {
        if want.record_types != have.record_types {
            return Some("DNS record types can only change by recreating the Cloud Map service".into());
        }
        if want.routing_policy != have.routing_policy {
            return Some("the routing policy can only change by recreating the Cloud Map service".into());
        }
        if want.custom_health_check != have.custom_health_check {
            return Some("the health check type can only change by recreating the Cloud Map service".into());
        }
        None
    }

    /// Every Cloud Map service in the stack's namespace (destroy removes the
    /// app's, whatever their names).
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<DiscoverySpec>>> {
        use aws_sdk_servicediscovery::types::{FilterCondition, ServiceFilter, ServiceFilterName};
        let Some(namespace) = live.get::<Namespace>(&cx.stack.namespace) else { return Ok(BTreeMap::new()) };
        let cloud_map = &cx.clients.cloud_map;
        let filter = ServiceFilter::builder()
            .name(ServiceFilterName::NamespaceId)
            .values(&namespace.id)
            .condition(FilterCondition::Eq)
            .build()
            .context("building a Cloud Map service filter")?;
        let mut found = BTreeMap::new();
        let mut pages = cloud_map.list_services().filters(filter).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| explain(error, "servicediscovery:ListServices", &namespace.id))?;
            for summary in page.services() {
                let (Some(id), Some(name)) = (summary.id(), summary.name()) else { continue };
                let service = cloud_map.get_service().id(id).send().await.map_err(|error| {
                    explain(error, "servicediscovery:GetService", &format!("Cloud Map service {name}"))
                })?;
                let Some(service) = service.service() else { continue };
                let dns = service.dns_config();
                let arn = service.arn().unwrap_or_default().to_owned();
                let tags = cloud_map_tags(cx.clients, &arn).await?;
                let owned = cx.names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
                let spec = DiscoverySpec {
                    name: name.to_owned(),
                    ttl_secs: dns.and_then(|dns| dns.dns_records().first()).map_or(0, |record| record.ttl()),
                    record_types: dns
                        .map(|dns| dns.dns_records().iter().map(|record| record.r#type().as_str().to_owned()).collect())
                        .unwrap_or_default(),
                    routing_policy: dns
                        .and_then(|dns| dns.routing_policy())
                        .map_or_else(|| "WEIGHTED".to_owned(), |policy| policy.as_str().to_owned()),
                    custom_health_check: service.health_check_custom_config().is_some(),
                };
                found.insert(name.to_owned(), Found { id: id.to_owned(), arn, owned, tags: Some(tag_map(tags)), spec });
            }
        }
        Ok(found)
    }

    /// Creates, updates or replaces the Cloud Map service; passes on its ARN.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &DiscoverySpec,
        live: Option<&Found<DiscoverySpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_servicediscovery::types::{
            DnsConfig, DnsConfigChange, DnsRecord, HealthCheckCustomConfig, RecordType, RoutingPolicy, ServiceChange,
            Tag,
        };
        let (clients, names) = (cx.cx.clients, cx.cx.names);
        let cloud_map = &clients.cloud_map;
        let resource = format!("Cloud Map service {}", spec.name);
        let records = |ttl: i64| -> anyhow::Result<Vec<DnsRecord>> {
            spec.record_types
                .iter()
                .map(|kind| Ok(DnsRecord::builder().r#type(RecordType::from(kind.as_str())).ttl(ttl).build()?))
                .collect()
        };
        match (action, live) {
            (Action::Unchanged, Some(found)) => Ok(Output::id(&found.arn)),
            (Action::Update { .. }, Some(found)) => {
                let change = ServiceChange::builder()
                    .dns_config(DnsConfigChange::builder().set_dns_records(Some(records(spec.ttl_secs)?)).build()?)
                    .build();
                let answer = cloud_map
                    .update_service()
                    .id(&found.id)
                    .service(change)
                    .send()
                    .await
                    .map_err(|e| explain(e, "servicediscovery:UpdateService", &resource))?;
                if let Some(operation) = answer.operation_id() {
                    wait_operation(clients, operation, &resource).await?;
                }
                Self::done("updated", &spec.name);
                Ok(Output::id(&found.arn))
            }
            (action, live) => {
                if let (Action::Replace { .. }, Some(found)) = (action, live) {
                    detach_registry(cx, &spec.name).await?;
                    cloud_map
                        .delete_service()
                        .id(&found.id)
                        .send()
                        .await
                        .map_err(|e| explain(e, "servicediscovery:DeleteService", &resource))?;
                }
                let config = DnsConfig::builder()
                    .routing_policy(RoutingPolicy::from(spec.routing_policy.as_str()))
                    .set_dns_records(Some(records(spec.ttl_secs)?))
                    .build()?;
                let mut request = cloud_map
                    .create_service()
                    .name(&spec.name)
                    .namespace_id(cx.made.id::<Namespace>(&cx.cx.stack.namespace))
                    .dns_config(config)
                    .description(format!("{} of {}", spec.name, names.app()));
                if spec.custom_health_check {
                    request = request.health_check_custom_config(HealthCheckCustomConfig::builder().build());
                }
                for (key, value) in names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                let answer =
                    request.send().await.map_err(|e| explain(e, "servicediscovery:CreateService", &resource))?;
                Self::done("created", &spec.name);
                Ok(Output::id(answer.service().and_then(|service| service.arn()).unwrap_or_default()))
            }
        }
    }

    fn teardown_line(found: &Found<DiscoverySpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("cloud map service {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<DiscoverySpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_cloud_map(cx.clients, &found.arn, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<DiscoverySpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let name = &found.spec.name;
            // ECS deregisters the stopped tasks' instances; until it has,
            // Cloud Map refuses the delete with ResourceInUse.
            wait_until(&format!("Cloud Map service {name} to have no instance"), Duration::from_secs(300), || async {
                match cx.clients.cloud_map.delete_service().id(&found.id).send().await {
                    Ok(_) => Ok(true),
                    Err(error) => {
                        let error =
                            classify(error, "servicediscovery:DeleteService", &format!("Cloud Map service {name}"));
                        match error.code.as_deref() {
                            Some("ResourceInUse") => Ok(false),
                            _ if error.is_not_found() => Ok(true),
                            _ => Err(error.into()),
                        }
                    }
                }
            })
            .await?;
            crate::engine::journal::done("deleted", "cloud map service", name);
        }
        Ok(())
    }
}

/// Takes the ECS service off a Cloud Map service about to be replaced.
async fn detach_registry(cx: ApplyCx<'_>, service: &str) -> anyhow::Result<()> {
    if cx.live.get::<EcsService>(service).is_none() {
        return Ok(());
    }
    cx.cx
        .clients
        .ecs
        .update_service()
        .cluster(&cx.cx.stack.aws.cluster)
        .service(service)
        .set_service_registries(Some(Vec::new()))
        .send()
        .await
        .map_err(|e| explain(e, "ecs:UpdateService", &format!("ECS service {service}")))?;
    Ok(())
}

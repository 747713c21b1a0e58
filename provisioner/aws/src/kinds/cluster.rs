//! The ECS cluster every service runs in: Container Insights on, Fargate and
//! Fargate Spot as its capacity providers.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::ClusterField;

use crate::{
    clients::error::explain,
    engine::{
        names::{Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
        status::StatusReport,
    },
};
use stack_spec::Stack;

/// The ECS cluster.
pub struct Cluster;

/// The cluster's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    /// Whether Container Insights collects metrics.
    pub container_insights: bool,
    /// FARGATE and FARGATE_SPOT.
    pub capacity_providers: BTreeSet<String>,
}

impl Kind for Cluster {
    const LABEL: &'static str = "ecs cluster";
    const KEY: &'static str = "cluster";
    type Spec = ClusterSpec;

    fn desired(stack: &Stack, _live: &Live) -> Vec<ClusterSpec> {
        vec![ClusterSpec {
            name: stack.aws.cluster.clone(),
            container_insights: true,
            capacity_providers: BTreeSet::from(["FARGATE".to_owned(), "FARGATE_SPOT".to_owned()]),
        }]
    }

    fn name(spec: &ClusterSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &ClusterSpec) -> Fields {
        Fields::from([
            ("container_insights", render::on_off(spec.container_insights)),
            ("capacity_providers", render::join(&spec.capacity_providers)),
        ])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<ClusterSpec>>> {
        let name = &cx.stack.aws.cluster;
        let answer = cx
            .clients
            .ecs
            .describe_clusters()
            .clusters(name)
            .include(ClusterField::Settings)
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(|error| explain(error, "ecs:DescribeClusters", &format!("cluster {name}")))?;
        let Some(cluster) = answer.clusters().iter().find(|cluster| cluster.status() == Some("ACTIVE")) else {
            return Ok(BTreeMap::new());
        };
        let insights = cluster.settings().iter().any(|setting| {
            setting.name().map(|name| name.as_str()) == Some("containerInsights")
                && matches!(setting.value(), Some("enabled" | "enhanced"))
        });
        let found = Found {
            id: name.to_owned(),
            arn: cluster.cluster_arn().unwrap_or_default().to_owned(),
            owned: cx.names.owns(cluster.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
            tags: Some(tag_map(cluster.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))))),
            spec: ClusterSpec {
                name: name.to_owned(),
                container_insights: insights,
                capacity_providers: cluster.capacity_providers().iter().cloned().collect(),
            },
        };
        Ok(BTreeMap::from([(name.to_owned(), found)]))
    }

    async fn apply(
        cx: ApplyCx<'_>,
        spec: &ClusterSpec,
        _have: Option<&Found<ClusterSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName, Tag};
        let setting = ClusterSetting::builder()
            .name(ClusterSettingName::ContainerInsights)
            .value(if spec.container_insights { "enabled" } else { "disabled" })
            .build();
        let strategy = CapacityProviderStrategyItem::builder().capacity_provider("FARGATE").weight(1).build()?;
        let ecs = &cx.cx.clients.ecs;
        match action {
            Action::Unchanged | Action::Delete => {}
            Action::Create => {
                let mut request = ecs
                    .create_cluster()
                    .cluster_name(&spec.name)
                    .settings(setting)
                    .set_capacity_providers(Some(spec.capacity_providers.iter().cloned().collect()))
                    .default_capacity_provider_strategy(strategy);
                for (key, value) in cx.cx.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build());
                }
                request.send().await.map_err(|e| explain(e, "ecs:CreateCluster", &format!("cluster {}", spec.name)))?;
                Self::done("created", &spec.name);
            }
            Action::Update { .. } | Action::Replace { .. } => {
                ecs.update_cluster_settings()
                    .cluster(&spec.name)
                    .settings(setting)
                    .send()
                    .await
                    .map_err(|e| explain(e, "ecs:UpdateClusterSettings", &format!("cluster {}", spec.name)))?;
                ecs.put_cluster_capacity_providers()
                    .cluster(&spec.name)
                    .set_capacity_providers(Some(spec.capacity_providers.iter().cloned().collect()))
                    .default_capacity_provider_strategy(strategy)
                    .send()
                    .await
                    .map_err(|e| explain(e, "ecs:PutClusterCapacityProviders", &format!("cluster {}", spec.name)))?;
                Self::done("updated", &spec.name);
            }
        }
        Ok(Output::id(&spec.name))
    }

    fn teardown_line(found: &Found<ClusterSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("ecs cluster {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<ClusterSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        crate::clients::ecs::retag(cx.clients, &found.arn, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<ClusterSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let cluster = &found.spec.name;
            cx.clients
                .ecs
                .delete_cluster()
                .cluster(cluster)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:DeleteCluster", &format!("cluster {cluster}")))?;
            crate::engine::journal::done("deleted", "ecs cluster", cluster);
        }
        Ok(())
    }

    /// Whether there is a cluster to show services of.
    async fn status(cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        report.cluster_exists = live.get::<Cluster>(&cx.stack.aws.cluster).is_some();
        Ok(())
    }
}

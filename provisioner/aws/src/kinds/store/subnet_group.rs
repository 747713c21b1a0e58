//! Each store's cache subnet group: the stack's subnets, where ElastiCache
//! places the store's nodes (one per zone with a replica).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::{
    clients::error::{classify, explain, unless_gone},
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        poll::wait_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
    },
};
use stack_spec::Stack;

/// A store's cache subnet group.
pub struct CacheSubnetGroup;

/// A subnet group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetGroupSpec {
    pub name: String,
    pub subnets: BTreeSet<String>,
}

impl Kind for CacheSubnetGroup {
    const LABEL: &'static str = "cache subnet group";
    const KEY: &'static str = "cache-subnet-group";
    type Spec = SubnetGroupSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<SubnetGroupSpec> {
        let names = Names::of(stack);
        stack
            .stores
            .iter()
            .map(|store| SubnetGroupSpec { name: names.store(&store.name), subnets: live.subnets.clone() })
            .collect()
    }

    fn name(spec: &SubnetGroupSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &SubnetGroupSpec) -> Fields {
        Fields::from([("subnets", render::join(&spec.subnets))])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<SubnetGroupSpec>>> {
        let elasticache = &cx.clients.elasticache;
        let mut found = BTreeMap::new();
        for store in &cx.stack.stores {
            let name = cx.names.store(&store.name);
            let resource = format!("cache subnet group {name}");
            let answer = elasticache.describe_cache_subnet_groups().cache_subnet_group_name(&name).send().await;
            let answer = answer.map_err(|error| classify(error, "elasticache:DescribeCacheSubnetGroups", &resource));
            let Some(answer) = unless_gone(answer)? else { continue };
            let Some(group) = answer.cache_subnet_groups().first() else { continue };
            let arn = group.arn().unwrap_or_default().to_owned();
            let (owned, tags) = elasticache_tags(cx, &arn).await?;
            let subnets = group.subnets().iter().filter_map(|subnet| subnet.subnet_identifier()).map(str::to_owned);
            let spec = SubnetGroupSpec { name: name.clone(), subnets: subnets.collect() };
            found.insert(name.clone(), Found { id: name, arn, owned, tags: Some(tags), spec });
        }
        Ok(found)
    }

    async fn apply(
        cx: ApplyCx<'_>,
        spec: &SubnetGroupSpec,
        _have: Option<&Found<SubnetGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_elasticache::types::Tag;
        let elasticache = &cx.cx.clients.elasticache;
        let resource = format!("cache subnet group {}", spec.name);
        let subnets = Some(spec.subnets.iter().cloned().collect());
        match action {
            Action::Unchanged | Action::Delete => {}
            Action::Create => {
                let mut request = elasticache
                    .create_cache_subnet_group()
                    .cache_subnet_group_name(&spec.name)
                    .cache_subnet_group_description(format!("stores of {}", cx.cx.names.app()))
                    .set_subnet_ids(subnets);
                for (key, value) in cx.cx.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build());
                }
                if let Err(error) = request.send().await {
                    let error = classify(error, "elasticache:CreateCacheSubnetGroup", &resource);
                    if error.code.as_deref() != Some("CacheSubnetGroupAlreadyExists") {
                        return Err(error.into());
                    }
                    let described =
                        elasticache.describe_cache_subnet_groups().cache_subnet_group_name(&spec.name).send();
                    let described =
                        described.await.map_err(|e| explain(e, "elasticache:DescribeCacheSubnetGroups", &resource))?;
                    let arn = described.cache_subnet_groups().first().and_then(|group| group.arn()).unwrap_or_default();
                    let tags = elasticache_tags(cx.cx, arn).await?.1;
                    cx.cx.names.check_appeared(&resource, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
                }
                Self::done("created", &spec.name);
            }
            Action::Update { .. } | Action::Replace { .. } => {
                elasticache
                    .modify_cache_subnet_group()
                    .cache_subnet_group_name(&spec.name)
                    .set_subnet_ids(subnets)
                    .send()
                    .await
                    .map_err(|e| explain(e, "elasticache:ModifyCacheSubnetGroup", &resource))?;
                Self::done("updated", &spec.name);
            }
        }
        Ok(Output::id(&spec.name))
    }

    fn teardown_line(found: &Found<SubnetGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("cache subnet group {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<SubnetGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_elasticache(cx, &found.arn, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<SubnetGroupSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let name = &found.spec.name;
            // In use until the store's nodes are gone.
            wait_until(&format!("cache subnet group {name} to be free"), Duration::from_secs(1800), || async {
                match cx.clients.elasticache.delete_cache_subnet_group().cache_subnet_group_name(name).send().await {
                    Ok(_) => Ok(true),
                    Err(error) => {
                        let error = classify(error, "elasticache:DeleteCacheSubnetGroup", name);
                        match error.code.as_deref() {
                            Some("CacheSubnetGroupInUse" | "InvalidCacheSubnetGroupState") => Ok(false),
                            Some("CacheSubnetGroupNotFoundFault") => Ok(true),
                            _ => Err(error.into()),
                        }
                    }
                }
            })
            .await?;
            crate::engine::journal::done("deleted", "cache subnet group", name);
        }
        Ok(())
    }
}

/// An ElastiCache resource's tags, and whether they mark it as this app's.
pub async fn elasticache_tags(cx: Cx<'_>, arn: &str) -> anyhow::Result<(bool, Tags)> {
    let tags = cx
        .clients
        .elasticache
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|error| explain(error, "elasticache:ListTagsForResource", arn))?;
    let tags = tag_map(tags.tag_list().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))));
    Ok((cx.names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))), tags))
}

/// Puts an ElastiCache resource's tags back to the stack's
/// (`AddTagsToResource`, `RemoveTagsFromResource`).
pub async fn retag_elasticache(cx: Cx<'_>, arn: &str, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
    use aws_sdk_elasticache::types::Tag;
    let elasticache = &cx.clients.elasticache;
    if !set.is_empty() {
        let tags = set.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
        let answer = elasticache.add_tags_to_resource().resource_name(arn).set_tags(Some(tags)).send().await;
        answer.map_err(|error| explain(error, "elasticache:AddTagsToResource", arn))?;
    }
    if !remove.is_empty() {
        let answer =
            elasticache.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(remove.to_vec())).send().await;
        answer.map_err(|error| explain(error, "elasticache:RemoveTagsFromResource", arn))?;
    }
    Ok(())
}

//! Reads the live state of the stack's resources, by name, with read-only
//! calls, into the same specs the desired state uses.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{ClusterField, ServiceField, TaskDefinitionField};
use futures_util::future::try_join_all;

use super::{
    error::{classify, explain},
    model::{
        ClusterSpec, DiscoverySpec, FROM_SELF, HealthCheckSpec, LogGroupSpec, NO_IMAGE_TAG, NamespaceSpec,
        RepositorySpec, RoleSpec, SecurityGroupSpec, ServiceSpec, TaskDefinitionSpec, VPC_TAG,
    },
    names::{CONTAINER, INLINE_POLICY, Names},
    sdk::Clients,
};
use crate::spec::{Stack, Subnets};

/// A resource that exists, with what identifies it and whether it is ours.
#[derive(Debug, Clone)]
pub struct Found<T> {
    /// Its id or ARN, whichever later calls need.
    pub id: String,
    /// Its ARN, for tag calls.
    pub arn: String,
    /// Whether it carries this app's tags.
    pub owned: bool,
    /// What it looks like now.
    pub spec: T,
}

/// The live state of everything the stack describes.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The account the credentials belong to.
    pub account: String,
    /// The region the clients call.
    pub region: String,
    /// The stack's VPC, resolved (`default` becomes an id).
    pub vpc_id: String,
    /// The stack's subnets, resolved.
    pub subnets: BTreeSet<String>,
    /// The ECS cluster, if it is active.
    pub cluster: Option<Found<ClusterSpec>>,
    /// The private DNS namespace; `id` is its Cloud Map id.
    pub namespace: Option<Found<NamespaceSpec>>,
    /// The tasks' security group; `id` is its `sg-` id.
    pub security_group: Option<Found<SecurityGroupSpec>>,
    /// IAM roles by name.
    pub roles: BTreeMap<String, Found<RoleSpec>>,
    /// Log groups by name.
    pub log_groups: BTreeMap<String, Found<LogGroupSpec>>,
    /// ECR repositories by name; `id` is the repository URI.
    pub repositories: BTreeMap<String, Found<RepositorySpec>>,
    /// The newest image of each repository, by repository name, pinned by
    /// digest.
    pub newest_images: BTreeMap<String, String>,
    /// Cloud Map services by name.
    pub discovery: BTreeMap<String, Found<DiscoverySpec>>,
    /// The latest active revision of each family, by family; `id` is the
    /// revision's ARN.
    pub task_definitions: BTreeMap<String, Found<TaskDefinitionSpec>>,
    /// ECS services by name; `id` is the task definition ARN they run.
    pub services: BTreeMap<String, Found<ServiceSpec>>,
    /// The same services as DescribeServices answered (counts,
    /// deployments), for status to show without asking again.
    pub described_services: BTreeMap<String, aws_sdk_ecs::types::Service>,
}

/// Reads the account for `stack`.
pub async fn read(clients: &Clients, stack: &Stack) -> anyhow::Result<Live> {
    let names = Names::new(&stack.app);
    let account = clients.account().await?;
    let vpc_id = find_vpc(clients, &stack.aws.vpc).await?;
    let subnets = find_subnets(clients, &vpc_id, &stack.aws.subnets).await?;
    let mut live = Live { account, region: clients.region.clone(), vpc_id, subnets, ..Live::default() };

    // Everything below is independent: read it all at once.
    let mut role_names = vec![names.execution_role()];
    role_names.extend(stack.services.iter().map(|service| names.task_role(&service.name)));
    let per_service = |service: &crate::spec::Service| {
        let (log_group, repository, family) =
            (names.log_group(&service.name), names.repository(&service.name), names.family(&service.name));
        let names = &names;
        async move {
            let (log, repo, definition) = tokio::try_join!(
                read_log_group(clients, names, &log_group),
                read_repository(clients, names, &repository),
                read_task_definition(clients, names, &family),
            )?;
            anyhow::Ok((log_group, log, repository, repo, family, definition))
        }
    };
    let namespace_and_services = async {
        let Some(namespace) = read_namespace(clients, &names, &stack.namespace, &live.vpc_id).await? else {
            return anyhow::Ok((None, BTreeMap::new()));
        };
        let discovery = read_discovery_services(clients, &names, &namespace.id).await?;
        Ok((Some(namespace), discovery))
    };
    let (cluster, (namespace, discovery), security_group, roles, services) = tokio::try_join!(
        read_cluster(clients, &names, &stack.aws.cluster),
        namespace_and_services,
        read_security_group(clients, &names, &live.vpc_id),
        try_join_all(role_names.iter().map(|role| read_role(clients, &names, role))),
        try_join_all(stack.services.iter().map(per_service)),
    )?;
    live.cluster = cluster;
    live.namespace = namespace;
    live.discovery = discovery;
    live.security_group = security_group;
    live.roles = role_names.into_iter().zip(roles).filter_map(|(name, found)| Some((name, found?))).collect();
    for (log_group, log, repository, repo, family, definition) in services {
        if let Some(found) = log {
            live.log_groups.insert(log_group, found);
        }
        if let Some((found, newest)) = repo {
            if let Some(newest) = newest {
                live.newest_images.insert(repository.clone(), newest);
            }
            live.repositories.insert(repository, found);
        }
        if let Some(found) = definition {
            live.task_definitions.insert(family, found);
        }
    }
    if live.cluster.is_some() {
        let wanted: Vec<String> = stack.services.iter().map(|service| service.name.clone()).collect();
        live.described_services = read_services(clients, &stack.aws.cluster, &wanted).await?;
        live.services = live
            .described_services
            .iter()
            .map(|(name, service)| (name.clone(), service_found(&names, service)))
            .collect();
    }
    // What a service runs is what apply compares with: after a rollback
    // that is not the family's latest revision.
    for service in &stack.services {
        let family = names.family(&service.name);
        let Some(running) = live.services.get(&service.name).map(|found| found.id.clone()) else { continue };
        if live.task_definitions.get(&family).is_some_and(|latest| latest.arn != running)
            && let Some(found) = read_revision(clients, &names, &family, &running).await?
        {
            live.task_definitions.insert(family, found);
        }
    }
    Ok(live)
}

/// The VPC's id: `default` is the account's default VPC in the region.
pub async fn find_vpc(clients: &Clients, vpc: &str) -> anyhow::Result<String> {
    let request = clients.ec2.describe_vpcs();
    let request = if vpc == "default" {
        request.filters(Filter::builder().name("is-default").values("true").build())
    } else {
        request.vpc_ids(vpc)
    };
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ec2:DescribeVpcs", &format!("VPC {vpc}"));
            if error.is_not_found() {
                bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region);
            }
            return Err(error.into());
        }
    };
    match answer.vpcs().first().and_then(|found| found.vpc_id()) {
        Some(id) => Ok(id.to_owned()),
        None if vpc == "default" => {
            bail!("region {} has no default VPC: set [aws] vpc to a vpc-... id in the stack file", clients.region)
        }
        None => bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region),
    }
}

/// The subnets tasks run in.
pub async fn find_subnets(clients: &Clients, vpc_id: &str, subnets: &Subnets) -> anyhow::Result<BTreeSet<String>> {
    let answer = clients
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|error| explain(error, "ec2:DescribeSubnets", &format!("subnets of {vpc_id}")))?;
    let all = answer.subnets();
    let chosen: BTreeSet<String> = match subnets {
        Subnets::Ids(ids) => {
            for id in ids {
                if !all.iter().any(|subnet| subnet.subnet_id() == Some(id)) {
                    bail!("subnet {id} is not in VPC {vpc_id}: check [aws] subnets in the stack file");
                }
            }
            ids.iter().cloned().collect()
        }
        Subnets::Default => all
            .iter()
            .filter(|subnet| subnet.default_for_az() == Some(true))
            .filter_map(|subnet| subnet.subnet_id().map(str::to_owned))
            .collect(),
        Subnets::Private => {
            let tables = clients
                .ec2
                .describe_route_tables()
                .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
                .send()
                .await
                .map_err(|error| explain(error, "ec2:DescribeRouteTables", &format!("route tables of {vpc_id}")))?;
            let public = |table: &aws_sdk_ec2::types::RouteTable| {
                table.routes().iter().any(|route| route.gateway_id().is_some_and(|gateway| gateway.starts_with("igw-")))
            };
            let main_is_public = tables
                .route_tables()
                .iter()
                .any(|table| table.associations().iter().any(|a| a.main() == Some(true)) && public(table));
            all.iter()
                .filter_map(|subnet| subnet.subnet_id())
                .filter(|id| {
                    let explicit = tables.route_tables().iter().find(|table| {
                        table.associations().iter().any(|association| association.subnet_id() == Some(id))
                    });
                    match explicit {
                        Some(table) => !public(table),
                        None => !main_is_public,
                    }
                })
                .map(str::to_owned)
                .collect()
        }
    };
    if chosen.is_empty() {
        let which = match subnets {
            Subnets::Private => "private subnets (without a route to an internet gateway)",
            Subnets::Default => "default subnets",
            Subnets::Ids(_) => "subnets",
        };
        bail!(
            "VPC {vpc_id} has no {which}: set [aws] subnets to \"default\", \"private\" or a list of subnet ids \
             in the stack file"
        );
    }
    Ok(chosen)
}

async fn read_cluster(clients: &Clients, names: &Names, name: &str) -> anyhow::Result<Option<Found<ClusterSpec>>> {
    let answer = clients
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Settings)
        .include(ClusterField::Tags)
        .send()
        .await
        .map_err(|error| explain(error, "ecs:DescribeClusters", &format!("cluster {name}")))?;
    let Some(cluster) = answer.clusters().iter().find(|cluster| cluster.status() == Some("ACTIVE")) else {
        return Ok(None);
    };
    let insights = cluster.settings().iter().any(|setting| {
        setting.name().map(|name| name.as_str()) == Some("containerInsights")
            && matches!(setting.value(), Some("enabled" | "enhanced"))
    });
    Ok(Some(Found {
        id: name.to_owned(),
        arn: cluster.cluster_arn().unwrap_or_default().to_owned(),
        owned: names.owns(cluster.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
        spec: ClusterSpec {
            name: name.to_owned(),
            container_insights: insights,
            capacity_providers: cluster.capacity_providers().iter().cloned().collect(),
        },
    }))
}

/// Finds the private DNS namespace by name (Cloud Map refuses a second one
/// with the same name in a VPC, so a name is an identity).
pub async fn read_namespace(
    clients: &Clients,
    names: &Names,
    name: &str,
    vpc_id: &str,
) -> anyhow::Result<Option<Found<NamespaceSpec>>> {
    // The same name may exist once per VPC: prefer ours in this VPC.
    let mut candidates = Vec::new();
    let mut pages = clients.cloud_map.list_namespaces().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "servicediscovery:ListNamespaces", "namespaces"))?;
        for namespace in page.namespaces() {
            let private = namespace.r#type().map(|kind| kind.as_str()) == Some("DNS_PRIVATE");
            if namespace.name() == Some(name) && private {
                let arn = namespace.arn().unwrap_or_default().to_owned();
                let tags = cloud_map_tags(clients, &arn).await?;
                let owned = names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
                let vpc = tags.iter().find(|(key, _)| key == VPC_TAG).map(|(_, value)| value.clone());
                candidates.push(Found {
                    id: namespace.id().unwrap_or_default().to_owned(),
                    arn,
                    owned,
                    spec: NamespaceSpec { name: name.to_owned(), vpc },
                });
            }
        }
    }
    let rank = |found: &Found<NamespaceSpec>| (found.owned, found.spec.vpc.as_deref() == Some(vpc_id));
    Ok(candidates.into_iter().max_by_key(rank))
}

async fn cloud_map_tags(clients: &Clients, arn: &str) -> anyhow::Result<Vec<(String, String)>> {
    let tags = clients
        .cloud_map
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|error| explain(error, "servicediscovery:ListTagsForResource", arn))?;
    Ok(tags.tags().iter().map(|tag| (tag.key().to_owned(), tag.value().to_owned())).collect())
}

async fn cloud_map_owned(clients: &Clients, names: &Names, arn: &str) -> anyhow::Result<bool> {
    let tags = cloud_map_tags(clients, arn).await?;
    Ok(names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))))
}

async fn read_discovery_services(
    clients: &Clients,
    names: &Names,
    namespace_id: &str,
) -> anyhow::Result<BTreeMap<String, Found<DiscoverySpec>>> {
    use aws_sdk_servicediscovery::types::{FilterCondition, ServiceFilter, ServiceFilterName};
    let filter = ServiceFilter::builder()
        .name(ServiceFilterName::NamespaceId)
        .values(namespace_id)
        .condition(FilterCondition::Eq)
        .build()
        .context("building a Cloud Map service filter")?;
    let mut found = BTreeMap::new();
    let mut pages = clients.cloud_map.list_services().filters(filter).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "servicediscovery:ListServices", namespace_id))?;
        for summary in page.services() {
            let (Some(id), Some(name)) = (summary.id(), summary.name()) else { continue };
            let service =
                clients.cloud_map.get_service().id(id).send().await.map_err(|error| {
                    explain(error, "servicediscovery:GetService", &format!("Cloud Map service {name}"))
                })?;
            let Some(service) = service.service() else { continue };
            let dns = service.dns_config();
            let arn = service.arn().unwrap_or_default().to_owned();
            let owned = cloud_map_owned(clients, names, &arn).await?;
            found.insert(
                name.to_owned(),
                Found {
                    id: id.to_owned(),
                    arn,
                    owned,
                    spec: DiscoverySpec {
                        name: name.to_owned(),
                        ttl_secs: dns.and_then(|dns| dns.dns_records().first()).map_or(0, |record| record.ttl()),
                        record_types: dns
                            .map(|dns| {
                                dns.dns_records().iter().map(|record| record.r#type().as_str().to_owned()).collect()
                            })
                            .unwrap_or_default(),
                        routing_policy: dns
                            .and_then(|dns| dns.routing_policy())
                            .map_or_else(|| "WEIGHTED".to_owned(), |policy| policy.as_str().to_owned()),
                        custom_health_check: service.health_check_custom_config().is_some(),
                    },
                },
            );
        }
    }
    Ok(found)
}

async fn read_security_group(
    clients: &Clients,
    names: &Names,
    vpc_id: &str,
) -> anyhow::Result<Option<Found<SecurityGroupSpec>>> {
    let name = names.security_group();
    let answer = clients
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(&name).build())
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|error| explain(error, "ec2:DescribeSecurityGroups", &format!("security group {name}")))?;
    let Some(group) = answer.security_groups().first() else { return Ok(None) };
    let id = group.group_id().unwrap_or_default().to_owned();
    let mut ingress = BTreeSet::new();
    for permission in group.ip_permissions() {
        let (Some("tcp"), Some(from), Some(to)) =
            (permission.ip_protocol(), permission.from_port(), permission.to_port())
        else {
            continue;
        };
        for pair in permission.user_id_group_pairs() {
            let Some(source) = pair.group_id() else { continue };
            let source = if source == id { FROM_SELF.to_owned() } else { source.to_owned() };
            ingress.extend((from..=to).filter_map(|port| u16::try_from(port).ok()).map(|port| (port, source.clone())));
        }
        // A CIDR rule is not ours: show it so plan revokes it.
        for range in permission.ip_ranges() {
            let source = range.cidr_ip().unwrap_or("?").to_owned();
            ingress.extend((from..=to).filter_map(|port| u16::try_from(port).ok()).map(|port| (port, source.clone())));
        }
    }
    Ok(Some(Found {
        arn: id.clone(),
        owned: names.owns(group.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
        spec: SecurityGroupSpec { name, vpc_id: vpc_id.to_owned(), ingress },
        id,
    }))
}

async fn read_role(clients: &Clients, names: &Names, name: &str) -> anyhow::Result<Option<Found<RoleSpec>>> {
    let role = match clients.iam.get_role().role_name(name).send().await {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "iam:GetRole", &format!("IAM role {name}"));
            if error.is_not_found() {
                return Ok(None);
            }
            return Err(error.into());
        }
    };
    let Some(role) = role.role() else { return Ok(None) };
    let policy = match clients.iam.get_role_policy().role_name(name).policy_name(INLINE_POLICY).send().await {
        Ok(answer) => {
            let decoded = percent_encoding::percent_decode_str(answer.policy_document()).decode_utf8_lossy();
            Some(
                serde_json::from_str(&decoded)
                    .with_context(|| format!("IAM role {name}: inline policy is not JSON"))?,
            )
        }
        Err(error) => {
            let error = classify(error, "iam:GetRolePolicy", &format!("IAM role {name}"));
            if !error.is_not_found() {
                return Err(error.into());
            }
            None
        }
    };
    let attached = clients
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|error| explain(error, "iam:ListAttachedRolePolicies", &format!("IAM role {name}")))?;
    Ok(Some(Found {
        id: name.to_owned(),
        arn: role.arn().to_owned(),
        owned: names.owns(role.tags().iter().map(|tag| (tag.key(), tag.value()))),
        spec: RoleSpec {
            name: name.to_owned(),
            policy,
            managed_policies: attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_owned)
                .collect(),
        },
    }))
}

async fn read_log_group(clients: &Clients, names: &Names, name: &str) -> anyhow::Result<Option<Found<LogGroupSpec>>> {
    let answer = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|error| explain(error, "logs:DescribeLogGroups", &format!("log group {name}")))?;
    let Some(group) = answer.log_groups().iter().find(|group| group.log_group_name() == Some(name)) else {
        return Ok(None);
    };
    let arn = group.arn().unwrap_or_default().trim_end_matches(":*").to_owned();
    let tags = clients
        .logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|error| explain(error, "logs:ListTagsForResource", &format!("log group {name}")))?;
    Ok(Some(Found {
        id: name.to_owned(),
        owned: names.owns(tags.tags().into_iter().flatten().map(|(key, value)| (key.as_str(), value.as_str()))),
        arn,
        spec: LogGroupSpec {
            name: name.to_owned(),
            retention_days: group.retention_in_days().and_then(|days| u32::try_from(days).ok()).unwrap_or(0),
        },
    }))
}

/// The repository and its newest image (`uri@digest`).
async fn read_repository(
    clients: &Clients,
    names: &Names,
    name: &str,
) -> anyhow::Result<Option<(Found<RepositorySpec>, Option<String>)>> {
    let answer = match clients.ecr.describe_repositories().repository_names(name).send().await {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ecr:DescribeRepositories", &format!("ECR repository {name}"));
            if error.is_not_found() {
                return Ok(None);
            }
            return Err(error.into());
        }
    };
    let Some(repository) = answer.repositories().first() else { return Ok(None) };
    let arn = repository.repository_arn().unwrap_or_default().to_owned();
    let uri = repository.repository_uri().unwrap_or_default().to_owned();
    let tags = clients
        .ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|error| explain(error, "ecr:ListTagsForResource", &format!("ECR repository {name}")))?;
    let keep_images = match clients.ecr.get_lifecycle_policy().repository_name(name).send().await {
        Ok(policy) => policy
            .lifecycle_policy_text()
            .and_then(|text| serde_json::from_str(text).ok())
            .and_then(|policy| RepositorySpec::keep_images_of(&policy))
            .unwrap_or(0),
        Err(error) => {
            let error = classify(error, "ecr:GetLifecyclePolicy", &format!("ECR repository {name}"));
            if !error.is_not_found() {
                return Err(error.into());
            }
            0
        }
    };
    let images = clients
        .ecr
        .describe_images()
        .repository_name(name)
        .send()
        .await
        .map_err(|error| explain(error, "ecr:DescribeImages", &format!("ECR repository {name}")))?;
    let newest = images
        .image_details()
        .iter()
        .filter(|image| image.image_digest().is_some())
        .max_by_key(|image| image.image_pushed_at().map(|at| (at.secs(), at.subsec_nanos())))
        .and_then(|image| image.image_digest())
        .map(|digest| format!("{uri}@{digest}"));
    let spec = RepositorySpec {
        name: name.to_owned(),
        scan_on_push: repository.image_scanning_configuration().is_some_and(|scan| scan.scan_on_push()),
        immutable_tags: repository.image_tag_mutability().map(|m| m.as_str()) == Some("IMMUTABLE"),
        keep_images,
    };
    let owned = names.owns(tags.tags().iter().map(|tag| (tag.key(), tag.value())));
    Ok(Some((Found { id: uri, arn, owned, spec }, newest)))
}

/// The family's latest active revision.
pub async fn read_task_definition(
    clients: &Clients,
    names: &Names,
    family: &str,
) -> anyhow::Result<Option<Found<TaskDefinitionSpec>>> {
    read_revision(clients, names, family, family).await
}

/// One revision of `family`: `reference` is the family (its latest active
/// revision), `family:N` or an ARN.
async fn read_revision(
    clients: &Clients,
    names: &Names,
    family: &str,
    reference: &str,
) -> anyhow::Result<Option<Found<TaskDefinitionSpec>>> {
    let answer = match clients
        .ecs
        .describe_task_definition()
        .task_definition(reference)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ecs:DescribeTaskDefinition", &format!("task definition {family}"));
            // ECS answers ClientException for a family with no active revision.
            if error.is_not_found() || error.code.as_deref() == Some("ClientException") {
                return Ok(None);
            }
            return Err(error.into());
        }
    };
    let Some(definition) = answer.task_definition() else { return Ok(None) };
    // A family whose revisions are all deregistered is gone.
    if definition.status().is_some_and(|status| status.as_str() != "ACTIVE") {
        return Ok(None);
    }
    let owned = names.owns(answer.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))));
    let arn = definition.task_definition_arn().unwrap_or_default().to_owned();
    Ok(Some(Found { id: arn.clone(), arn, owned, spec: task_definition_spec(family, definition) }))
}

/// A registered task definition as a spec (fields it lacks read as empty).
pub fn task_definition_spec(family: &str, definition: &aws_sdk_ecs::types::TaskDefinition) -> TaskDefinitionSpec {
    let container = definition.container_definitions().iter().find(|container| container.name() == Some(CONTAINER));
    let role_name = |arn: Option<&str>| arn.and_then(|arn| arn.rsplit('/').next()).unwrap_or_default().to_owned();
    let health = container.and_then(|container| container.health_check());
    let mut command: Vec<String> = health.map(|health| health.command().to_vec()).unwrap_or_default();
    if command.first().map(String::as_str) == Some("CMD") {
        command.remove(0);
    }
    TaskDefinitionSpec {
        family: family.to_owned(),
        cpu: definition.cpu().and_then(|cpu| cpu.parse().ok()).unwrap_or(0),
        memory: definition.memory().and_then(|memory| memory.parse().ok()).unwrap_or(0),
        architecture: definition
            .runtime_platform()
            .and_then(|platform| platform.cpu_architecture())
            .map_or_else(|| "X86_64".to_owned(), |arch| arch.as_str().to_owned()),
        image: container
            .and_then(|container| container.image())
            .filter(|image| !image.is_empty() && !image.ends_with(&format!(":{NO_IMAGE_TAG}")))
            .map(str::to_owned),
        port: container
            .and_then(|container| container.port_mappings().first())
            .and_then(|mapping| mapping.container_port())
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or(0),
        environment: container
            .map(|container| {
                container
                    .environment()
                    .iter()
                    .map(|pair| {
                        (pair.name().unwrap_or_default().to_owned(), pair.value().unwrap_or_default().to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default(),
        secrets: container
            .map(|container| {
                container
                    .secrets()
                    .iter()
                    .map(|secret| (secret.name().to_owned(), secret.value_from().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        health_check: HealthCheckSpec {
            command,
            interval_secs: health.and_then(|health| health.interval()).unwrap_or(30),
            timeout_secs: health.and_then(|health| health.timeout()).unwrap_or(5),
            retries: health.and_then(|health| health.retries()).unwrap_or(3),
            start_period_secs: health.and_then(|health| health.start_period()).unwrap_or(0),
        },
        stop_timeout_secs: container.and_then(|container| container.stop_timeout()).unwrap_or(30),
        log_group: container
            .and_then(|container| container.log_configuration())
            .and_then(|logs| logs.options())
            .and_then(|options| options.get("awslogs-group"))
            .cloned()
            .unwrap_or_default(),
        execution_role: role_name(definition.execution_role_arn()),
        task_role: role_name(definition.task_role_arn()),
    }
}

async fn read_services(
    clients: &Clients,
    cluster: &str,
    wanted: &[String],
) -> anyhow::Result<BTreeMap<String, aws_sdk_ecs::types::Service>> {
    let mut found = BTreeMap::new();
    // DescribeServices takes at most ten names per call.
    for chunk in wanted.chunks(10) {
        let answer = clients
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|error| explain(error, "ecs:DescribeServices", &format!("services of cluster {cluster}")))?;
        for service in answer.services() {
            if service.status() == Some("INACTIVE") {
                continue;
            }
            let Some(name) = service.service_name() else { continue };
            found.insert(name.to_owned(), service.clone());
        }
    }
    Ok(found)
}

/// An ECS service as a spec; `id` is the task definition it runs.
pub fn service_found(names: &Names, service: &aws_sdk_ecs::types::Service) -> Found<ServiceSpec> {
    let deployment = service.deployment_configuration();
    let breaker = deployment.and_then(|deployment| deployment.deployment_circuit_breaker());
    let network = service.network_configuration().and_then(|network| network.awsvpc_configuration());
    Found {
        id: service.task_definition().unwrap_or_default().to_owned(),
        arn: service.service_arn().unwrap_or_default().to_owned(),
        owned: names.owns(service.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
        spec: ServiceSpec {
            name: service.service_name().unwrap_or_default().to_owned(),
            desired_count: service.desired_count(),
            minimum_healthy_percent: deployment.and_then(|d| d.minimum_healthy_percent()).unwrap_or(100),
            maximum_percent: deployment.and_then(|d| d.maximum_percent()).unwrap_or(200),
            circuit_breaker: breaker.is_some_and(|breaker| breaker.enable()),
            rollback: breaker.is_some_and(|breaker| breaker.rollback()),
            subnets: network.map(|network| network.subnets().iter().cloned().collect()).unwrap_or_default(),
            assign_public_ip: network
                .and_then(|network| network.assign_public_ip())
                .is_some_and(|assign| assign.as_str() == "ENABLED"),
            registry: service
                .service_registries()
                .first()
                .and_then(|registry| registry.registry_arn())
                .and_then(|arn| arn.rsplit('/').next())
                .map(str::to_owned),
            deployment_reported: deployment.is_some(),
        },
    }
}

/// Every active revision ARN of exactly `family` (the API's prefix match
/// would also take longer family names).
pub async fn active_revisions(clients: &Clients, family: &str) -> anyhow::Result<Vec<String>> {
    let mut pages = clients
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .send();
    let mut revisions = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain(e, "ecs:ListTaskDefinitions", &format!("task definition {family}")))?;
        revisions.extend(
            page.task_definition_arns()
                .iter()
                .filter(|arn| super::plan::revision_of(arn).rsplit_once(':').map(|(f, _)| f) == Some(family))
                .cloned(),
        );
    }
    Ok(revisions)
}

/// The tasks of an ECS service with `status` (RUNNING, or STOPPED for the
/// latest failures), at most `limit` of them (ECS's page: up to 100).
pub async fn service_tasks(
    clients: &Clients,
    cluster: &str,
    service: &str,
    status: aws_sdk_ecs::types::DesiredStatus,
    limit: i32,
) -> anyhow::Result<Vec<aws_sdk_ecs::types::Task>> {
    let resource = format!("ECS service {service}");
    let listed = clients
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(status)
        .max_results(limit)
        .send()
        .await
        .map_err(|error| explain(error, "ecs:ListTasks", &resource))?;
    if listed.task_arns().is_empty() {
        return Ok(Vec::new());
    }
    let described = clients
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .send()
        .await
        .map_err(|error| explain(error, "ecs:DescribeTasks", &resource))?;
    Ok(described.tasks().to_vec())
}

/// A task's id: the last part of its ARN (what Cloud Map names its
/// instance after).
pub fn task_id(task: &aws_sdk_ecs::types::Task) -> &str {
    task.task_arn().and_then(|arn| arn.rsplit('/').next()).unwrap_or_default()
}

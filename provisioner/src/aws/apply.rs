//! Carries out a plan, in dependency order, creating independent resources
//! concurrently. Every create first looked the resource up by name (the
//! plan did), and a create that finds it made meanwhile carries on, so an
//! apply killed half way is finished by the next one.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, bail};
use futures_util::future::try_join_all;

use super::{
    backoff::poll_until,
    desired::{Desired, ServiceDesired},
    error::{classify, explain},
    live::{Live, read_namespace},
    model::{FROM_SELF, Kind, NO_IMAGE_TAG, RoleSpec, VPC_TAG},
    names::{CONTAINER, INLINE_POLICY, Names},
    plan::{Action, Plan},
    sdk::Clients,
    wait::Rollout,
};

/// What apply needs beyond the plan.
pub struct Apply<'a> {
    /// The clients every call goes through.
    pub clients: &'a Clients,
    /// Names and tags of the app's resources.
    pub names: Names,
    /// What the resources should look like.
    pub desired: &'a Desired,
    /// What they looked like when the plan was made (ids come from here).
    pub live: &'a Live,
    /// What to do; a resource without a step is left alone.
    pub plan: &'a Plan,
}

/// Ids that later steps need, from the live state or from creates.
#[derive(Debug, Default)]
struct Made {
    namespace_id: String,
    security_group_id: String,
    role_arns: BTreeMap<String, String>,
    repository_uris: BTreeMap<String, String>,
}

impl Apply<'_> {
    /// Applies the plan; returns the rollouts started (services whose task
    /// definition or count changed), for the caller to wait on.
    pub async fn run(&self) -> anyhow::Result<Vec<Rollout>> {
        let desired = self.desired;
        let (_, namespace_id, security_group_id, role_arns, _, repository_uris) = tokio::try_join!(
            self.cluster(),
            self.namespace(),
            self.security_group(),
            try_join_all(
                std::iter::once(&desired.execution_role)
                    .chain(desired.services.iter().map(|service| &service.task_role))
                    .map(|role| self.role(role))
            ),
            try_join_all(desired.services.iter().map(|service| self.log_group(service))),
            try_join_all(desired.services.iter().map(|service| self.repository(service))),
        )?;
        let made = Made {
            namespace_id,
            security_group_id,
            role_arns: role_arns.into_iter().collect(),
            repository_uris: repository_uris.into_iter().collect(),
        };
        let registries =
            try_join_all(desired.services.iter().map(|service| self.discovery_service(service, &made))).await?;
        let definitions =
            try_join_all(desired.services.iter().map(|service| self.task_definition(service, &made))).await?;
        let rollouts = try_join_all(
            desired
                .services
                .iter()
                .zip(registries.iter().zip(&definitions))
                .map(|(service, (registry, definition))| self.service(service, &made, registry, definition)),
        )
        .await?;
        Ok(rollouts.into_iter().flatten().collect())
    }

    /// Only the ECR repositories (deploy needs them before it can push);
    /// returns each service's repository URI.
    pub async fn repositories(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let uris = try_join_all(self.desired.services.iter().map(|service| self.repository(service))).await?;
        Ok(uris.into_iter().collect())
    }

    fn action(&self, kind: Kind, name: &str) -> &Action {
        self.plan.step(kind, name).map_or(&Action::Unchanged, |step| &step.action)
    }

    fn done(&self, kind: Kind, name: &str, what: &str) {
        println!("  {what} {} {name}", kind.label());
    }

    async fn cluster(&self) -> anyhow::Result<()> {
        use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName, Tag};
        let spec = &self.desired.cluster;
        let setting = ClusterSetting::builder()
            .name(ClusterSettingName::ContainerInsights)
            .value(if spec.container_insights { "enabled" } else { "disabled" })
            .build();
        let strategy = CapacityProviderStrategyItem::builder().capacity_provider("FARGATE").weight(1).build()?;
        let ecs = &self.clients.ecs;
        match self.action(Kind::Cluster, &spec.name) {
            Action::Unchanged => {}
            Action::Create => {
                let mut request = ecs
                    .create_cluster()
                    .cluster_name(&spec.name)
                    .settings(setting)
                    .set_capacity_providers(Some(spec.capacity_providers.iter().cloned().collect()))
                    .default_capacity_provider_strategy(strategy);
                for (key, value) in self.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build());
                }
                request.send().await.map_err(|e| explain(e, "ecs:CreateCluster", &format!("cluster {}", spec.name)))?;
                self.done(Kind::Cluster, &spec.name, "created");
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
                self.done(Kind::Cluster, &spec.name, "updated");
            }
        }
        Ok(())
    }

    /// Creates the namespace and waits for Cloud Map's operation; returns
    /// its id.
    async fn namespace(&self) -> anyhow::Result<String> {
        use aws_sdk_servicediscovery::types::Tag;
        let name = &self.desired.namespace.name;
        if let Some(found) = &self.live.namespace {
            return Ok(found.id.clone());
        }
        let cloud_map = &self.clients.cloud_map;
        let mut request = cloud_map
            .create_private_dns_namespace()
            .name(name)
            .vpc(&self.live.vpc_id)
            .description(format!("service discovery for {}", self.names.app()))
            // The SDK's retries of this request share the id, so a retry is
            // the same create; a later apply (after a destroy) gets a new one,
            // as Cloud Map refuses an id it has seen.
            .creator_request_id(request_id(self.names.app()));
        for (key, value) in self.names.tags() {
            request = request.tags(Tag::builder().key(key).value(value).build()?);
        }
        request = request.tags(Tag::builder().key(VPC_TAG).value(&self.live.vpc_id).build()?);
        match request.send().await {
            Ok(answer) => {
                let operation = answer.operation_id().context("CreatePrivateDnsNamespace returned no operation")?;
                wait_operation(self.clients, operation, &format!("namespace {name}")).await?;
            }
            Err(error) => {
                let error = classify(error, "servicediscovery:CreatePrivateDnsNamespace", &format!("namespace {name}"));
                // An earlier, interrupted apply already asked for it.
                let retried = matches!(
                    error.code.as_deref(),
                    Some("DuplicateRequest" | "ConflictingDomainExists" | "NamespaceAlreadyExists")
                );
                if !retried {
                    return Err(error.into());
                }
            }
        }
        let appeared = poll_until(Duration::from_secs(300), Duration::from_secs(10), || async {
            Ok(read_namespace(self.clients, &self.names, name, &self.live.vpc_id).await?.map(|found| found.id))
        })
        .await?;
        let Some(id) = appeared else {
            bail!("namespace {name}: Cloud Map accepted the create but it did not appear within 5 minutes");
        };
        self.done(Kind::Namespace, name, "created");
        Ok(id)
    }

    async fn security_group(&self) -> anyhow::Result<String> {
        use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, Tag, TagSpecification, UserIdGroupPair};
        let spec = &self.desired.security_group;
        let ec2 = &self.clients.ec2;
        let (id, live_ingress) = match &self.live.security_group {
            Some(found) if *self.action(Kind::SecurityGroup, &spec.name) == Action::Unchanged => {
                return Ok(found.id.clone());
            }
            Some(found) => (found.id.clone(), found.spec.ingress.clone()),
            None => {
                let mut tags = TagSpecification::builder().resource_type(ResourceType::SecurityGroup);
                for (key, value) in self.names.tags() {
                    tags = tags.tags(Tag::builder().key(key).value(value).build());
                }
                tags = tags.tags(Tag::builder().key("Name").value(&spec.name).build());
                let answer = ec2
                    .create_security_group()
                    .group_name(&spec.name)
                    .description(format!("tasks of {}: service ports from the group only", self.names.app()))
                    .vpc_id(&spec.vpc_id)
                    .tag_specifications(tags.build())
                    .send()
                    .await
                    .map_err(|e| explain(e, "ec2:CreateSecurityGroup", &format!("security group {}", spec.name)))?;
                self.done(Kind::SecurityGroup, &spec.name, "created");
                (answer.group_id().context("CreateSecurityGroup returned no id")?.to_owned(), Default::default())
            }
        };
        let permission = |(port, source): &(u16, String)| {
            let builder =
                IpPermission::builder().ip_protocol("tcp").from_port(i32::from(*port)).to_port(i32::from(*port));
            match source.as_str() {
                FROM_SELF => builder.user_id_group_pairs(
                    UserIdGroupPair::builder().group_id(&id).description("tasks of the same app").build(),
                ),
                group if group.starts_with("sg-") => builder.user_id_group_pairs(
                    UserIdGroupPair::builder().group_id(group).description("named in the stack's allow_from").build(),
                ),
                cidr => builder.ip_ranges(IpRange::builder().cidr_ip(cidr).build()),
            }
            .build()
        };
        let missing: Vec<_> = spec.ingress.difference(&live_ingress).map(permission).collect();
        if !missing.is_empty() {
            ec2.authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(missing))
                .send()
                .await
                .map_err(|e| {
                    explain(e, "ec2:AuthorizeSecurityGroupIngress", &format!("security group {}", spec.name))
                })?;
        }
        let extra: Vec<_> = live_ingress.difference(&spec.ingress).map(permission).collect();
        if !extra.is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(extra))
                .send()
                .await
                .map_err(|e| explain(e, "ec2:RevokeSecurityGroupIngress", &format!("security group {}", spec.name)))?;
        }
        if self.live.security_group.is_some()
            && matches!(self.action(Kind::SecurityGroup, &spec.name), Action::Update { .. })
        {
            self.done(Kind::SecurityGroup, &spec.name, "updated");
        }
        Ok(id)
    }

    /// Returns (name, arn).
    async fn role(&self, spec: &RoleSpec) -> anyhow::Result<(String, String)> {
        use aws_sdk_iam::types::Tag;
        let iam = &self.clients.iam;
        let resource = format!("IAM role {}", spec.name);
        let live = self.live.roles.get(&spec.name);
        let action = self.action(Kind::Role, &spec.name);
        let arn = match live {
            Some(found) => found.arn.clone(),
            None => {
                let mut request = iam
                    .create_role()
                    .role_name(&spec.name)
                    .assume_role_policy_document(RoleSpec::trust_policy().to_string())
                    .description(format!("made by provision for {}", self.names.app()));
                for (key, value) in self.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                match request.send().await {
                    Ok(answer) => answer.role().map(|role| role.arn().to_owned()).unwrap_or_default(),
                    Err(error) => {
                        let error = classify(error, "iam:CreateRole", &resource);
                        if error.code.as_deref() != Some("EntityAlreadyExists") {
                            return Err(error.into());
                        }
                        let role = iam.get_role().role_name(&spec.name).send().await;
                        let role = role.map_err(|e| explain(e, "iam:GetRole", &resource))?;
                        role.role().map(|role| role.arn().to_owned()).unwrap_or_default()
                    }
                }
            }
        };
        if *action == Action::Unchanged {
            return Ok((spec.name.clone(), arn));
        }
        let live_policy = live.and_then(|found| found.spec.policy.as_ref());
        match &spec.policy {
            Some(policy) if Some(policy) != live_policy => {
                iam.put_role_policy()
                    .role_name(&spec.name)
                    .policy_name(INLINE_POLICY)
                    .policy_document(policy.to_string())
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:PutRolePolicy", &resource))?;
            }
            None if live_policy.is_some() => {
                iam.delete_role_policy()
                    .role_name(&spec.name)
                    .policy_name(INLINE_POLICY)
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DeleteRolePolicy", &resource))?;
            }
            _ => {}
        }
        let attached = live.map(|found| found.spec.managed_policies.clone()).unwrap_or_default();
        for policy in spec.managed_policies.difference(&attached) {
            iam.attach_role_policy()
                .role_name(&spec.name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| explain(e, "iam:AttachRolePolicy", &resource))?;
        }
        for policy in attached.difference(&spec.managed_policies) {
            iam.detach_role_policy()
                .role_name(&spec.name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DetachRolePolicy", &resource))?;
        }
        self.done(Kind::Role, &spec.name, if live.is_some() { "updated" } else { "created" });
        Ok((spec.name.clone(), arn))
    }

    async fn log_group(&self, service: &ServiceDesired) -> anyhow::Result<()> {
        let spec = &service.log_group;
        let logs = &self.clients.logs;
        let resource = format!("log group {}", spec.name);
        let action = self.action(Kind::LogGroup, &spec.name);
        if *action == Action::Unchanged {
            return Ok(());
        }
        if *action == Action::Create {
            let tags = self.names.tags().into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
            if let Err(error) = logs.create_log_group().log_group_name(&spec.name).set_tags(Some(tags)).send().await {
                let error = classify(error, "logs:CreateLogGroup", &resource);
                if error.code.as_deref() != Some("ResourceAlreadyExistsException") {
                    return Err(error.into());
                }
            }
        }
        logs.put_retention_policy()
            .log_group_name(&spec.name)
            .retention_in_days(i32::try_from(spec.retention_days).unwrap_or(3653))
            .send()
            .await
            .map_err(|e| explain(e, "logs:PutRetentionPolicy", &resource))?;
        self.done(Kind::LogGroup, &spec.name, if *action == Action::Create { "created" } else { "updated" });
        Ok(())
    }

    /// Returns (repository name, uri).
    async fn repository(&self, service: &ServiceDesired) -> anyhow::Result<(String, String)> {
        use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
        let spec = &service.repository;
        let ecr = &self.clients.ecr;
        let resource = format!("ECR repository {}", spec.name);
        let action = self.action(Kind::Repository, &spec.name);
        let scanning = ImageScanningConfiguration::builder().scan_on_push(spec.scan_on_push).build();
        let mutability = if spec.immutable_tags { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable };
        let uri = match self.live.repositories.get(&spec.name) {
            Some(found) => {
                if matches!(action, Action::Update { .. }) {
                    ecr.put_image_scanning_configuration()
                        .repository_name(&spec.name)
                        .image_scanning_configuration(scanning)
                        .send()
                        .await
                        .map_err(|e| explain(e, "ecr:PutImageScanningConfiguration", &resource))?;
                    ecr.put_image_tag_mutability()
                        .repository_name(&spec.name)
                        .image_tag_mutability(mutability)
                        .send()
                        .await
                        .map_err(|e| explain(e, "ecr:PutImageTagMutability", &resource))?;
                }
                found.id.clone()
            }
            None => {
                let mut request = ecr
                    .create_repository()
                    .repository_name(&spec.name)
                    .image_scanning_configuration(scanning)
                    .image_tag_mutability(mutability);
                for (key, value) in self.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                match request.send().await {
                    Ok(answer) => answer
                        .repository()
                        .and_then(|repository| repository.repository_uri())
                        .unwrap_or_default()
                        .to_owned(),
                    Err(error) => {
                        let error = classify(error, "ecr:CreateRepository", &resource);
                        if error.code.as_deref() != Some("RepositoryAlreadyExistsException") {
                            return Err(error.into());
                        }
                        let answer = ecr.describe_repositories().repository_names(&spec.name).send().await;
                        let answer = answer.map_err(|e| explain(e, "ecr:DescribeRepositories", &resource))?;
                        answer.repositories().first().and_then(|r| r.repository_uri()).unwrap_or_default().to_owned()
                    }
                }
            }
        };
        if *action != Action::Unchanged {
            ecr.put_lifecycle_policy()
                .repository_name(&spec.name)
                .lifecycle_policy_text(spec.lifecycle_policy().to_string())
                .send()
                .await
                .map_err(|e| explain(e, "ecr:PutLifecyclePolicy", &resource))?;
            self.done(Kind::Repository, &spec.name, if *action == Action::Create { "created" } else { "updated" });
        }
        Ok((service.name.clone(), uri))
    }

    /// Returns the Cloud Map service's ARN.
    async fn discovery_service(&self, service: &ServiceDesired, made: &Made) -> anyhow::Result<String> {
        use aws_sdk_servicediscovery::types::{
            DnsConfig, DnsConfigChange, DnsRecord, HealthCheckCustomConfig, RecordType, RoutingPolicy, ServiceChange,
            Tag,
        };
        let spec = &service.discovery;
        let cloud_map = &self.clients.cloud_map;
        let resource = format!("Cloud Map service {}", spec.name);
        let records = |ttl: i64| -> anyhow::Result<Vec<DnsRecord>> {
            spec.record_types
                .iter()
                .map(|kind| Ok(DnsRecord::builder().r#type(RecordType::from(kind.as_str())).ttl(ttl).build()?))
                .collect()
        };
        let live = self.live.discovery.get(&spec.name);
        match (self.action(Kind::DiscoveryService, &spec.name), live) {
            (Action::Unchanged, Some(found)) => Ok(found.arn.clone()),
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
                    wait_operation(self.clients, operation, &resource).await?;
                }
                self.done(Kind::DiscoveryService, &spec.name, "updated");
                Ok(found.arn.clone())
            }
            (action, live) => {
                if let (Action::Replace { .. }, Some(found)) = (action, live) {
                    self.detach_registry(service).await?;
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
                    .namespace_id(&made.namespace_id)
                    .dns_config(config)
                    .description(format!("{} of {}", spec.name, self.names.app()));
                if spec.custom_health_check {
                    request = request.health_check_custom_config(HealthCheckCustomConfig::builder().build());
                }
                for (key, value) in self.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                let answer =
                    request.send().await.map_err(|e| explain(e, "servicediscovery:CreateService", &resource))?;
                self.done(Kind::DiscoveryService, &spec.name, "created");
                Ok(answer.service().and_then(|service| service.arn()).unwrap_or_default().to_owned())
            }
        }
    }

    /// Takes the ECS service off a Cloud Map service about to be replaced.
    async fn detach_registry(&self, service: &ServiceDesired) -> anyhow::Result<()> {
        if !self.live.services.contains_key(&service.name) {
            return Ok(());
        }
        self.clients
            .ecs
            .update_service()
            .cluster(&self.desired.cluster.name)
            .service(&service.name)
            .set_service_registries(Some(Vec::new()))
            .send()
            .await
            .map_err(|e| explain(e, "ecs:UpdateService", &format!("ECS service {}", service.name)))?;
        Ok(())
    }

    /// Registers a revision if the content changed; returns the ARN the
    /// service should run.
    async fn task_definition(&self, service: &ServiceDesired, made: &Made) -> anyhow::Result<String> {
        use aws_sdk_ecs::types::{
            ApplicationProtocol, Compatibility, ContainerDefinition, CpuArchitecture, HealthCheck, KeyValuePair,
            LogConfiguration, LogDriver, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret, Tag,
            TransportProtocol,
        };
        let spec = &service.task_definition;
        let resource = format!("task definition {}", spec.family);
        if let (Action::Unchanged, Some(found)) =
            (self.action(Kind::TaskDefinition, &spec.family), self.live.task_definitions.get(&spec.family))
        {
            return Ok(found.arn.clone());
        }
        let image = match &spec.image {
            Some(image) => image.clone(),
            None => format!("{}:{NO_IMAGE_TAG}", made.repository_uris.get(&service.name).cloned().unwrap_or_default()),
        };
        let health = &spec.health_check;
        let mut command = vec!["CMD".to_owned()];
        command.extend(health.command.iter().cloned());
        let container = ContainerDefinition::builder()
            .name(CONTAINER)
            .image(image)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(i32::from(spec.port))
                    .protocol(TransportProtocol::Tcp)
                    .app_protocol(ApplicationProtocol::Grpc)
                    .name(format!("grpc-{}", spec.port))
                    .build(),
            )
            .set_environment(Some(
                spec.environment
                    .iter()
                    .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
                    .collect(),
            ))
            .set_secrets(Some(
                spec.secrets
                    .iter()
                    .map(|(name, arn)| Secret::builder().name(name).value_from(arn).build())
                    .collect::<Result<Vec<_>, _>>()?,
            ))
            .health_check(
                HealthCheck::builder()
                    .set_command(Some(command))
                    .interval(health.interval_secs)
                    .timeout(health.timeout_secs)
                    .retries(health.retries)
                    .start_period(health.start_period_secs)
                    .build()?,
            )
            .stop_timeout(spec.stop_timeout_secs)
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &spec.log_group)
                    .options("awslogs-region", &self.clients.region)
                    .options("awslogs-stream-prefix", &service.name)
                    .build()?,
            )
            .build();
        let role_arn = |name: &str| made.role_arns.get(name).cloned().unwrap_or_default();
        let mut request = self
            .clients
            .ecs
            .register_task_definition()
            .family(&spec.family)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu(spec.cpu.to_string())
            .memory(spec.memory.to_string())
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::from(spec.architecture.as_str()))
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .execution_role_arn(role_arn(&spec.execution_role))
            .task_role_arn(role_arn(&spec.task_role))
            .container_definitions(container);
        for (key, value) in self.names.tags() {
            request = request.tags(Tag::builder().key(key).value(value).build());
        }
        let answer = request.send().await.map_err(|e| explain(e, "ecs:RegisterTaskDefinition", &resource))?;
        let arn = answer
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .context("RegisterTaskDefinition returned no ARN")?
            .to_owned();
        println!("  registered task definition {}", super::plan::revision_of(&arn));
        Ok(arn)
    }

    /// Creates or updates the ECS service; returns the rollout to wait for,
    /// if a deployment started.
    async fn service(
        &self,
        service: &ServiceDesired,
        made: &Made,
        registry: &str,
        definition: &str,
    ) -> anyhow::Result<Option<Rollout>> {
        use aws_sdk_ecs::types::{
            AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType,
            NetworkConfiguration, PropagateTags, ServiceRegistry, Tag,
        };
        let spec = &service.service;
        let cluster = &self.desired.cluster.name;
        let resource = format!("ECS service {}", spec.name);
        let action = self.action(Kind::Service, &spec.name);
        if *action == Action::Unchanged {
            return Ok(None);
        }
        let deployment = DeploymentConfiguration::builder()
            .minimum_healthy_percent(spec.minimum_healthy_percent)
            .maximum_percent(spec.maximum_percent)
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder().enable(spec.circuit_breaker).rollback(spec.rollback).build(),
            )
            .build();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(spec.subnets.iter().cloned().collect()))
                    .security_groups(&made.security_group_id)
                    .assign_public_ip(if spec.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()?,
            )
            .build();
        let registry = ServiceRegistry::builder().registry_arn(registry).port(i32::from(service.port)).build();
        let ecs = &self.clients.ecs;
        let answer = if *action == Action::Create {
            let mut request = ecs
                .create_service()
                .cluster(cluster)
                .service_name(&spec.name)
                .task_definition(definition)
                .desired_count(spec.desired_count)
                .launch_type(LaunchType::Fargate)
                .deployment_configuration(deployment)
                .network_configuration(network)
                .service_registries(registry)
                .enable_ecs_managed_tags(true)
                .propagate_tags(PropagateTags::Service);
            for (key, value) in self.names.tags() {
                request = request.tags(Tag::builder().key(key).value(value).build());
            }
            let answer = request.send().await.map_err(|e| explain(e, "ecs:CreateService", &resource))?;
            self.done(Kind::Service, &spec.name, "created");
            answer.service
        } else {
            let answer = ecs
                .update_service()
                .cluster(cluster)
                .service(&spec.name)
                .task_definition(definition)
                .desired_count(spec.desired_count)
                .deployment_configuration(deployment)
                .network_configuration(network)
                .service_registries(registry)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:UpdateService", &resource))?;
            self.done(Kind::Service, &spec.name, "updated");
            answer.service
        };
        let deployment_id = answer
            .as_ref()
            .and_then(|service| service.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
            .and_then(|deployment| deployment.id())
            .map(str::to_owned);
        Ok(Some(Rollout {
            service: spec.name.clone(),
            deployment_id,
            task_definition: definition.to_owned(),
            desired_count: spec.desired_count,
        }))
    }
}

/// An id for one create request: unique per attempt of this process.
fn request_id(app: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut id = format!("{app}-{}-{nanos}", std::process::id());
    id.truncate(64);
    id
}

/// Polls a Cloud Map operation until it succeeds; a failure is reported
/// with Cloud Map's reason.
pub async fn wait_operation(clients: &Clients, operation: &str, what: &str) -> anyhow::Result<()> {
    let finished = poll_until(Duration::from_secs(300), Duration::from_secs(10), || async {
        let answer = clients
            .cloud_map
            .get_operation()
            .operation_id(operation)
            .send()
            .await
            .map_err(|e| explain(e, "servicediscovery:GetOperation", what))?;
        let state = answer.operation().context("GetOperation returned no operation")?;
        match state.status().map(|status| status.as_str()) {
            Some("SUCCESS") => Ok(Some(())),
            Some("FAIL") => bail!(
                "{what}: Cloud Map operation failed: {} ({})",
                state.error_message().unwrap_or("no reason given"),
                state.error_code().unwrap_or("no code")
            ),
            _ => Ok(None),
        }
    })
    .await?;
    if finished.is_none() {
        bail!("{what}: Cloud Map operation {operation} did not finish within 5 minutes");
    }
    Ok(())
}

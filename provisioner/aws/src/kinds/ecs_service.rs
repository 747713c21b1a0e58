//! Each ECS service: Fargate tasks of its task definition in the stack's
//! subnets and security group, registered in its Cloud Map service (the
//! port for SRV) and, with an ingress, in its load balancer's target group
//! too, replaced with the deployment circuit breaker and rollback. With no
//! image yet it runs no task, and plan says why.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use aws_sdk_ecs::types::{DesiredStatus, ServiceField};

use super::{
    cloud_map_service::CloudMapService, cluster::Cluster, ingress::target_group::TargetGroup,
    security_group::SecurityGroup, task_definition::TaskDefinition,
};
use crate::{
    clients::{
        Clients,
        ecs::{primary_deployment, service_tasks, task_id},
        error::explain,
    },
    engine::{
        names::{Names, Tags, tag_map},
        plan::{Action, Steps},
        poll::wait_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        rollout::Rollout,
        state::Live,
        status::{DeploymentStatus, InstanceStatus, ServiceStatus, StatusReport, TaskStatus},
    },
};
use stack_spec::Stack;

/// An ECS service.
pub struct EcsService;

/// An ECS service's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    /// What it is created with (and raised to from 0 once it has an
    /// image); kept in step with the stack unless `autoscaled`.
    pub desired_count: i32,
    /// Whether Application Auto Scaling owns the desired count: apply and
    /// deploy then never send one, except to raise a service held at 0.
    pub autoscaled: bool,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub subnets: BTreeSet<String>,
    pub assign_public_ip: bool,
    /// The Cloud Map service id (`srv-...`) it registers tasks in; known
    /// only for a live service (plan compares it).
    pub registry: Option<String>,
    /// Whether the API reported the deployment configuration (AWS always
    /// does; an emulator may not, and what was not reported is not compared).
    pub deployment_reported: bool,
    /// The gRPC port its tasks register in Cloud Map (SRV); not compared.
    pub port: u16,
    /// Its task definition family; not compared.
    pub family: String,
    /// Why it runs fewer tasks than the stack asks, if it does.
    pub held_back: Option<String>,
    /// The target group its tasks register in, by name, with the ECS
    /// health check grace that goes with it; `None` without an ingress.
    pub target_group: Option<String>,
    pub grace_period_secs: i32,
    /// The service as DescribeServices answered (counts, deployments), for
    /// status to show without asking again; live only.
    pub described: Option<Box<aws_sdk_ecs::types::Service>>,
}

impl Kind for EcsService {
    const LABEL: &'static str = "ecs service";
    const KEY: &'static str = "service";
    type Spec = ServiceSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<ServiceSpec> {
        let names = Names::of(stack);
        stack
            .services
            .iter()
            .map(|service| {
                let held_back = super::task_definition::image(stack, live, &service.name).is_none().then(|| {
                    format!(
                        "no image in ECR repository {} yet: runs 0 tasks until `provision deploy` pushes one",
                        names.repository(&service.name)
                    )
                });
                let deployment = &service.aws.deployment;
                ServiceSpec {
                    name: service.name.clone(),
                    desired_count: if held_back.is_some() {
                        0
                    } else {
                        i32::try_from(service.count).unwrap_or(i32::MAX)
                    },
                    autoscaled: service.autoscaling.is_some(),
                    minimum_healthy_percent: to_i32(deployment.minimum_healthy_percent),
                    maximum_percent: to_i32(deployment.maximum_percent),
                    circuit_breaker: deployment.circuit_breaker,
                    rollback: deployment.rollback,
                    subnets: live.subnets.clone(),
                    assign_public_ip: stack.aws.assign_public_ip,
                    registry: None,
                    deployment_reported: true,
                    port: service.port,
                    family: names.family(&service.name),
                    held_back,
                    target_group: service.ingress.as_ref().map(|_| names.load_balancer(&service.name)),
                    grace_period_secs: to_i32(
                        u32::try_from(
                            service.health_check.start_period.max(super::ingress::HEALTH_CHECK_GRACE).as_secs(),
                        )
                        .unwrap_or(u32::MAX),
                    ),
                    described: None,
                }
            })
            .collect()
    }

    fn name(spec: &ServiceSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &ServiceSpec) -> Fields {
        let mut fields = Fields::from([
            ("desired_count", spec.desired_count.to_string()),
            (
                "deployment",
                format!(
                    "min {}% max {}%, circuit breaker {}, rollback {}",
                    spec.minimum_healthy_percent,
                    spec.maximum_percent,
                    render::on_off(spec.circuit_breaker),
                    render::on_off(spec.rollback)
                ),
            ),
            ("subnets", render::join(&spec.subnets)),
            ("public_ip", render::on_off(spec.assign_public_ip)),
            (
                "target_group",
                spec.target_group.as_ref().map_or_else(|| "none".to_owned(), |group| format!("{group}:{}", spec.port)),
            ),
        ]);
        if !spec.deployment_reported {
            fields.remove("deployment");
        }
        fields
    }

    /// The stack's services, if the cluster exists.
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<ServiceSpec>>> {
        let cluster = &cx.stack.aws.cluster;
        if live.get::<Cluster>(cluster).is_none() {
            return Ok(BTreeMap::new());
        }
        let wanted: Vec<String> = cx.stack.services.iter().map(|service| service.name.clone()).collect();
        let mut found = BTreeMap::new();
        // DescribeServices takes at most ten names per call.
        for chunk in wanted.chunks(10) {
            let answer = cx
                .clients
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
                found.insert(name.to_owned(), service_found(cx.names, service));
            }
        }
        Ok(found)
    }

    /// Beside its own fields, the revision the service runs and the Cloud
    /// Map service it registers in, as they will be after the steps before.
    fn compared(
        want: &ServiceSpec,
        have: Option<&Found<ServiceSpec>>,
        steps: &Steps,
        live: &Live,
    ) -> (Fields, Option<Fields>) {
        let mut wanted = Self::fields(want);
        let revision = if steps.changes(TaskDefinition::KEY, &want.family) {
            format!("{}:(new revision)", want.family)
        } else {
            live.get::<TaskDefinition>(&want.family).map(|found| render::revision_of(&found.arn)).unwrap_or_default()
        };
        wanted.insert("task_definition", revision);
        let registry = if steps.changes(CloudMapService::KEY, &want.name) {
            format!("{} (new)", want.name)
        } else {
            live.get::<CloudMapService>(&want.name).map(|found| found.id.clone()).unwrap_or_default()
        };
        wanted.insert("cloud_map_service", registry);
        let mut current = have.map(|found| {
            let mut fields = Self::fields(&found.spec);
            fields.insert("task_definition", render::revision_of(&found.id));
            fields.insert("cloud_map_service", found.spec.registry.clone().unwrap_or_else(|| "none".to_owned()));
            fields
        });
        if owned_by_autoscaling(want, have) {
            wanted.remove("desired_count");
            if let Some(current) = &mut current {
                current.remove("desired_count");
            }
        }
        // What ECS does about it: a new revision, network, Cloud Map
        // service or load balancer replaces every task; a count does not.
        if let (Some(current), Some(found)) = (&mut current, have) {
            let differs = |field: &str| wanted.get(field) != current.get(field);
            let redeploys = ["task_definition", "cloud_map_service", "subnets", "public_ip", "target_group"]
                .into_iter()
                .any(differs)
                || found.spec.port != want.port;
            if redeploys {
                wanted.insert("rollout", "replaces every task".to_owned());
                current.insert("rollout", "none".to_owned());
            }
        }
        (wanted, current)
    }

    fn note(want: &ServiceSpec) -> Option<String> {
        want.held_back.as_ref().map(|why| format!("{}: {why}", want.name))
    }

    /// Creates or updates the ECS service; passes on the rollout to wait
    /// for, if a deployment started.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &ServiceSpec,
        have: Option<&Found<ServiceSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_ecs::types::{
            AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType,
            LoadBalancer, NetworkConfiguration, PropagateTags, ServiceRegistry, Tag,
        };
        let (made, names) = (cx.made, cx.cx.names);
        let cluster = &cx.cx.stack.aws.cluster;
        let resource = format!("ECS service {}", spec.name);
        if *action == Action::Unchanged {
            return Ok(Output::id(&spec.name));
        }
        let definition = made.id::<TaskDefinition>(&spec.family);
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
                    .security_groups(made.id::<SecurityGroup>(&names.security_group()))
                    .assign_public_ip(if spec.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()?,
            )
            .build();
        let registry_arn = made.id::<CloudMapService>(&spec.name);
        let registry = ServiceRegistry::builder().registry_arn(&registry_arn).port(i32::from(spec.port)).build();
        let group = made.id::<SecurityGroup>(&names.security_group());
        let target_group = spec.target_group.as_ref().map(|group| made.id::<TargetGroup>(group));
        let load_balancers: Vec<LoadBalancer> = target_group
            .iter()
            .map(|arn| {
                LoadBalancer::builder()
                    .target_group_arn(arn)
                    .container_name(crate::engine::names::CONTAINER)
                    .container_port(i32::from(spec.port))
                    .build()
            })
            .collect();
        let grace = target_group.as_ref().map(|_| spec.grace_period_secs);
        let ecs = &cx.cx.clients.ecs;
        let answer = if *action == Action::Create {
            let mut request = ecs
                .create_service()
                .cluster(cluster)
                .service_name(&spec.name)
                .task_definition(&definition)
                .desired_count(spec.desired_count)
                .launch_type(LaunchType::Fargate)
                .deployment_configuration(deployment)
                .network_configuration(network)
                .service_registries(registry)
                .set_load_balancers(Some(load_balancers))
                .set_health_check_grace_period_seconds(grace)
                .enable_ecs_managed_tags(true)
                .propagate_tags(PropagateTags::Service);
            for (key, value) in names.tags() {
                request = request.tags(Tag::builder().key(key).value(value).build());
            }
            let answer = request.send().await.map_err(|e| explain(e, "ecs:CreateService", &resource))?;
            Self::done("created", &spec.name);
            answer.service
        } else {
            // A scale-out must survive a deploy: no count while autoscaling
            // owns it.
            let count = (!owned_by_autoscaling(spec, have)).then_some(spec.desired_count);
            // Only what changed: the task definition, the network, the
            // registries and the load balancers each start a deployment that
            // replaces every task (ECS's UpdateService reference), so a
            // count or a setting alone must not carry them. An empty list of
            // load balancers lets go of a target group before it is deleted.
            let changed = Changed::between(spec, have, &definition, &registry_arn, target_group.as_deref(), &group);
            let answer = ecs
                .update_service()
                .cluster(cluster)
                .service(&spec.name)
                .set_task_definition(changed.task_definition.then_some(definition.clone()))
                .set_desired_count(count)
                .set_deployment_configuration(changed.deployment.then_some(deployment))
                .set_network_configuration(changed.network.then_some(network))
                .set_service_registries(changed.registry.then(|| vec![registry]))
                .set_load_balancers(changed.load_balancers.then_some(load_balancers))
                .set_health_check_grace_period_seconds(grace.filter(|_| changed.grace_period))
                .send()
                .await
                .map_err(|e| explain(e, "ecs:UpdateService", &resource))?;
            Self::done("updated", &spec.name);
            answer.service
        };
        let deployment_id = primary_deployment(answer.as_ref());
        Ok(Output {
            id: spec.name.clone(),
            rollout: Some(Rollout {
                service: spec.name.clone(),
                deployment_id,
                task_definition: definition,
                desired_count: (!spec.autoscaled).then_some(spec.desired_count),
                target_group,
            }),
        })
    }

    fn teardown_line(found: &Found<ServiceSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("ecs service {} (scaled to 0 first)", found.spec.name))
    }

    /// Scales every service to 0, waits for their tasks to stop, then
    /// deletes them: Cloud Map then has no instance left.
    async fn retag(cx: Cx<'_>, found: &Found<ServiceSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        crate::clients::ecs::retag(cx.clients, &found.arn, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<ServiceSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        let cluster = &cx.stack.aws.cluster;
        let ecs = &cx.clients.ecs;
        for found in &owned {
            let name = &found.spec.name;
            ecs.update_service()
                .cluster(cluster)
                .service(name)
                .desired_count(0)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:UpdateService", &format!("ECS service {name}")))?;
            provision_cli::say!("  scaled ecs service {name} to 0");
        }
        for found in &owned {
            let name = &found.spec.name;
            wait_until(&format!("ECS service {name} to stop its tasks"), Duration::from_secs(600), || async {
                let answer = ecs
                    .describe_services()
                    .cluster(cluster)
                    .services(name)
                    .send()
                    .await
                    .map_err(|e| explain(e, "ecs:DescribeServices", &format!("ECS service {name}")))?;
                Ok(answer.services().iter().all(|service| service.running_count() == 0 && service.pending_count() == 0))
            })
            .await?;
            ecs.delete_service()
                .cluster(cluster)
                .service(name)
                .force(true)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:DeleteService", &format!("ECS service {name}")))?;
            crate::engine::journal::done("deleted", "ecs service", name);
        }
        Ok(())
    }

    /// Each service's deployments and tasks beside the Cloud Map instances
    /// that answer its DNS name (and, behind a load balancer, their health
    /// as its targets), with a warning wherever the two disagree (a running
    /// task missing from DNS, or DNS naming a task that is gone).
    async fn status(cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        let (stack, clients) = (cx.stack, cx.clients);
        let cluster = &stack.aws.cluster;
        if live.get::<Cluster>(cluster).is_none() {
            return Ok(());
        }
        for service in &stack.services {
            let mut status = ServiceStatus {
                name: service.name.clone(),
                dns_name: format!("{}.{}", service.name, stack.namespace),
                ..ServiceStatus::default()
            };
            if let Some(found) = live.get::<EcsService>(&service.name)
                && let Some(ecs_service) = found.spec.described.as_deref()
            {
                status.created = true;
                service_status(clients, cluster, live, found, ecs_service, &mut status).await?;
            }
            report.services.push(status);
        }
        Ok(())
    }
}

/// Whether autoscaling owns the live service's desired count: the stack
/// scales it and it runs (a service held at 0 for want of an image is
/// raised to its count once, by the deploy that brings the image).
fn owned_by_autoscaling(want: &ServiceSpec, have: Option<&Found<ServiceSpec>>) -> bool {
    want.autoscaled && have.is_some_and(|found| found.spec.desired_count > 0)
}

/// An ECS service as a spec; `id` is the task definition it runs.
fn service_found(names: &Names, service: &aws_sdk_ecs::types::Service) -> Found<ServiceSpec> {
    let deployment = service.deployment_configuration();
    let breaker = deployment.and_then(|deployment| deployment.deployment_circuit_breaker());
    let network = service.network_configuration().and_then(|network| network.awsvpc_configuration());
    let name = service.service_name().unwrap_or_default().to_owned();
    Found {
        id: service.task_definition().unwrap_or_default().to_owned(),
        arn: service.service_arn().unwrap_or_default().to_owned(),
        owned: names.owns(service.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
        tags: Some(tag_map(service.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))))),
        spec: ServiceSpec {
            desired_count: service.desired_count(),
            autoscaled: false,
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
            port: service
                .service_registries()
                .first()
                .and_then(|registry| registry.port())
                .map_or(0, |port| u16::try_from(port).unwrap_or(0)),
            family: String::new(),
            held_back: None,
            // arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
            target_group: service
                .load_balancers()
                .first()
                .and_then(|attached| attached.target_group_arn())
                .map(|arn| arn.split('/').nth(1).unwrap_or(arn).to_owned()),
            grace_period_secs: service.health_check_grace_period_seconds().unwrap_or(0),
            described: Some(Box::new(service.clone())),
            name,
        },
    }
}

/// What an update changes of a live service, member by member of
/// UpdateService: what is sent.
struct Changed {
    task_definition: bool,
    deployment: bool,
    network: bool,
    registry: bool,
    load_balancers: bool,
    grace_period: bool,
}

impl Changed {
    /// `want` against the live service `have` (everything, without one),
    /// given the ARNs apply made: the revision, the Cloud Map service, the
    /// target group and the tasks' security group.
    fn between(
        want: &ServiceSpec,
        have: Option<&Found<ServiceSpec>>,
        definition: &str,
        registry_arn: &str,
        target_group: Option<&str>,
        security_group: &str,
    ) -> Self {
        let Some(found) = have else {
            return Self {
                task_definition: true,
                deployment: true,
                network: true,
                registry: true,
                load_balancers: true,
                grace_period: true,
            };
        };
        let live = &found.spec;
        let described = live.described.as_deref();
        let groups: Vec<&str> = described
            .and_then(|service| service.network_configuration())
            .and_then(|network| network.awsvpc_configuration())
            .map(|network| network.security_groups().iter().map(String::as_str).collect())
            .unwrap_or_default();
        let attached = described
            .and_then(|service| service.load_balancers().first())
            .and_then(|balancer| balancer.target_group_arn());
        let load_balancers = attached != target_group;
        Self {
            task_definition: found.id != definition,
            deployment: (live.minimum_healthy_percent, live.maximum_percent, live.circuit_breaker, live.rollback)
                != (want.minimum_healthy_percent, want.maximum_percent, want.circuit_breaker, want.rollback),
            network: live.subnets != want.subnets
                || live.assign_public_ip != want.assign_public_ip
                || groups != [security_group],
            registry: live.registry.as_deref() != registry_arn.rsplit('/').next() || live.port != want.port,
            load_balancers,
            grace_period: target_group.is_some()
                && (load_balancers || live.grace_period_secs != want.grace_period_secs),
        }
    }
}

/// Fills `status` with what ECS, Cloud Map and the load balancer say of one
/// created service.
async fn service_status(
    clients: &Clients,
    cluster: &str,
    live: &Live,
    found: &Found<ServiceSpec>,
    ecs_service: &aws_sdk_ecs::types::Service,
    status: &mut ServiceStatus,
) -> anyhow::Result<()> {
    status.desired = Some(ecs_service.desired_count());
    status.running = Some(ecs_service.running_count());
    status.pending = Some(ecs_service.pending_count());
    status.task_definition = Some(render::revision_of(&found.id));
    status.deployments = ecs_service
        .deployments()
        .iter()
        .map(|deployment| DeploymentStatus {
            status: deployment.status().unwrap_or_default().to_owned(),
            rollout_state: deployment.rollout_state().map(|state| state.as_str()).unwrap_or_default().to_owned(),
            task_definition: render::revision_of(deployment.task_definition().unwrap_or_default()),
            desired: deployment.desired_count(),
            running: deployment.running_count(),
            pending: deployment.pending_count(),
            failed: deployment.failed_tasks(),
            reason: deployment.rollout_state_reason().map(str::to_owned),
        })
        .collect();
    let mut tasks = running_tasks(clients, cluster, &status.name).await?;
    let instances = match live.get::<CloudMapService>(&status.name) {
        Some(registry) => {
            status.cloud_map_service = true;
            instances(clients, &registry.id).await?
        }
        None => BTreeMap::new(),
    };
    let targets = match found.spec.target_group.as_ref().and_then(|name| live.get::<TargetGroup>(name)) {
        Some(group) => {
            Some(clients.elb.target_health(&group.id, &format!("target group {}", group.spec.group.name)).await?)
        }
        None => None,
    };
    status.load_balanced = targets.is_some();
    for task in &mut tasks {
        task.target = targets.as_ref().map(|targets| {
            let found = targets.iter().find(|target| target.id == task.ip);
            found.map_or("-".to_owned(), |target| match &target.reason {
                Some(reason) => format!("{} ({reason})", target.state),
                None => target.state.clone(),
            })
        });
        task.cloud_map = instances.get(&task.id).map(|(_, health)| health.clone());
        if task.status == "RUNNING" && task.cloud_map.is_none() {
            status.warnings.push(format!("running task {} ({}) is not registered in Cloud Map", task.id, task.ip));
        }
    }
    status.tasks = tasks;
    for (id, (ip, health)) in instances {
        if !status.tasks.iter().any(|task| task.id == id) {
            status.warnings.push(format!("Cloud Map instance {id} ({ip}, {health}) has no running task"));
            status.orphan_instances.push(InstanceStatus { id, ip, health });
        }
    }
    Ok(())
}

/// The service's running tasks as status shows them, before Cloud Map's and
/// the load balancer's view of each is added.
async fn running_tasks(clients: &Clients, cluster: &str, service: &str) -> anyhow::Result<Vec<TaskStatus>> {
    // A service has at most its desired count running: one page of 100.
    let tasks = service_tasks(clients, cluster, service, DesiredStatus::Running, 100).await?;
    Ok(tasks
        .iter()
        .map(|task| TaskStatus {
            id: task_id(task).to_owned(),
            ip: task
                .attachments()
                .iter()
                .flat_map(|attachment| attachment.details())
                .find(|detail| detail.name() == Some("privateIPv4Address"))
                .and_then(|detail| detail.value())
                .unwrap_or("-")
                .to_owned(),
            status: task.last_status().unwrap_or("-").to_owned(),
            health: task.health_status().map_or_else(|| "-".to_owned(), |health| health.as_str().to_owned()),
            task_definition: render::revision_of(task.task_definition_arn().unwrap_or_default()),
            cloud_map: None,
            target: None,
        })
        .collect())
}

/// Instance id -> (IP, health) of a Cloud Map service.
async fn instances(clients: &Clients, service_id: &str) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut instances = BTreeMap::new();
    let mut pages = clients.cloud_map.list_instances().service_id(service_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "servicediscovery:ListInstances", service_id))?;
        for instance in page.instances() {
            let Some(id) = instance.id() else { continue };
            let ip =
                instance.attributes().and_then(|a| a.get("AWS_INSTANCE_IPV4")).cloned().unwrap_or_else(|| "-".into());
            instances.insert(id.to_owned(), (ip, "UNKNOWN".to_owned()));
        }
    }
    if !instances.is_empty() {
        let mut pages = clients.cloud_map.get_instances_health_status().service_id(service_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| explain(error, "servicediscovery:GetInstancesHealthStatus", service_id))?;
            for (id, status) in page.status().into_iter().flatten() {
                if let Some(entry) = instances.get_mut(id) {
                    entry.1 = status.as_str().to_owned();
                }
            }
        }
    }
    Ok(instances)
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

//! Each service's ECS task definition family: what one task runs (the
//! image pinned by digest, Fargate size, the gRPC port, environment and
//! secrets, the `health` probe as ECS's health check, the stop timeout,
//! logs), locked down: a read-only root file system and every Linux
//! capability dropped (the services write nothing and need none). A new
//! revision is registered only when the content differs from the revision
//! the service runs.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_ecs::types::TaskDefinitionField;

use super::{ecs_service::EcsService, repository::Repository, role::Role, store::secret::StoreSecret};
use crate::{
    clients::{
        Clients,
        error::{classify, explain},
    },
    engine::{
        limits::Problem,
        names::{CONTAINER, IMAGE_BINARY, Names},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
    },
};
use stack_spec::Stack;

/// A service's task definition family.
pub struct TaskDefinition;

/// The image a task definition names while there is none to run.
pub const NO_IMAGE: &str = "none (not deployed yet)";

/// The tag a task definition's image carries while there is no image: the
/// service runs no task, and reading it back means "no image".
pub const NO_IMAGE_TAG: &str = "not-deployed-yet";

/// A container health check as ECS runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    pub command: Vec<String>,
    pub interval_secs: i32,
    pub timeout_secs: i32,
    pub retries: i32,
    pub start_period_secs: i32,
}

/// A task definition's content (what decides whether a new revision is
/// needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionSpec {
    pub family: String,
    /// The service it is for (its log stream prefix); not compared.
    pub service: String,
    /// The service's ECR repository, for the placeholder image; not compared.
    pub repository: String,
    pub cpu: u32,
    pub memory: u32,
    pub architecture: String,
    /// The image; `None` while the repository has none (the service then
    /// runs no task).
    pub image: Option<String>,
    pub port: u16,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub health_check: HealthCheckSpec,
    pub stop_timeout_secs: i32,
    pub log_group: String,
    pub execution_role: String,
    pub task_role: String,
    /// A read-only root file system and no Linux capability.
    pub locked_down: bool,
}

impl Kind for TaskDefinition {
    const LABEL: &'static str = "task definition";
    const KEY: &'static str = "task-definition";
    type Spec = TaskDefinitionSpec;

    /// What ECS refuses that the local run takes: the stack file may
    /// health-check every 100 ms locally, but a task definition cannot.
    fn check(stack: &Stack) -> Vec<Problem> {
        let mut problems = Vec::new();
        for service in &stack.services {
            let check = &service.health_check;
            let mut within = |field: &'static str, value: std::time::Duration, min: u64, max: u64| {
                let whole = value.subsec_nanos() == 0;
                if !whole || value.as_secs() < min || value.as_secs() > max {
                    problems.push(Problem {
                        // A default out of range is the table's to fix.
                        line: check.lines.get(field).copied().unwrap_or(service.line),
                        message: format!(
                            "service {:?}: health_check.{field} {} is not what ECS accepts (whole seconds, {min} to \
                             {max}): set it to {}",
                            service.name,
                            value.as_secs_f64(),
                            value.as_secs_f64().round().clamp(min as f64, max as f64)
                        ),
                    });
                }
            };
            within("interval_secs", check.interval, 5, 300);
            within("timeout_secs", check.timeout, 2, 60);
            within("start_period_secs", check.start_period, 0, 300);
        }
        problems
    }

    fn desired(stack: &Stack, live: &Live) -> Vec<TaskDefinitionSpec> {
        let names = Names::of(stack);
        stack
            .services
            .iter()
            .map(|service| {
                let mut environment = service.runtime_env(service.aws.stop_timeout);
                environment.insert("GRPC_ADDR".into(), format!("0.0.0.0:{}", service.port));
                environment.entry("LOG_FORMAT".into()).or_insert_with(|| "json".into());
                for dependency in &service.depends_on {
                    if let Some(target) = stack.services.iter().find(|candidate| &candidate.name == dependency) {
                        environment.insert(
                            target.addr_variable(),
                            format!("dns:///{}:{}", target.dns_name(&stack.namespace), target.port),
                        );
                    }
                }
                for name in service.aws.secrets.keys() {
                    environment.remove(name);
                }
                let check = &service.health_check;
                let mut command = check.command.clone();
                if command.first() == Some(&service.binary) {
                    command[0] = IMAGE_BINARY.to_owned();
                }
                TaskDefinitionSpec {
                    family: names.family(&service.name),
                    service: service.name.clone(),
                    repository: names.repository(&service.name),
                    cpu: service.aws.cpu,
                    memory: service.aws.memory,
                    architecture: service.aws.architecture.as_ecs().to_owned(),
                    image: image(stack, live, &service.name),
                    port: service.port,
                    environment,
                    secrets: secrets(stack, live, service),
                    health_check: HealthCheckSpec {
                        command,
                        interval_secs: whole_secs(check.interval),
                        timeout_secs: whole_secs(check.timeout),
                        retries: i32::try_from(check.retries).unwrap_or(10),
                        start_period_secs: whole_secs(check.start_period),
                    },
                    stop_timeout_secs: whole_secs(service.aws.stop_timeout),
                    log_group: names.log_group(&service.name),
                    execution_role: names.execution_role(),
                    task_role: names.task_role(&service.name),
                    locked_down: true,
                }
            })
            .collect()
    }

    fn name(spec: &TaskDefinitionSpec) -> &str {
        &spec.family
    }

    fn fields(spec: &TaskDefinitionSpec) -> Fields {
        let health = &spec.health_check;
        Fields::from([
            ("cpu", spec.cpu.to_string()),
            ("memory", spec.memory.to_string()),
            ("architecture", spec.architecture.clone()),
            ("image", spec.image.clone().unwrap_or_else(|| NO_IMAGE.to_owned())),
            ("port", format!("{}/grpc", spec.port)),
            ("environment", render::pairs(&spec.environment)),
            ("secrets", render::pairs(&spec.secrets)),
            (
                "health_check",
                format!(
                    "{} every {}s, timeout {}s, {} retries, start period {}s",
                    health.command.join(" "),
                    health.interval_secs,
                    health.timeout_secs,
                    health.retries,
                    health.start_period_secs
                ),
            ),
            ("stop_timeout_secs", spec.stop_timeout_secs.to_string()),
            ("log_group", spec.log_group.clone()),
            ("execution_role", spec.execution_role.clone()),
            ("task_role", spec.task_role.clone()),
            (
                "root_filesystem_and_capabilities",
                if spec.locked_down { "read-only, all dropped" } else { "writable or some kept" }.to_owned(),
            ),
        ])
    }

    /// How a task of the service stops, in numbers, since they come from
    /// the TTL and the connection age rather than from the stack file.
    fn note(want: &TaskDefinitionSpec) -> Option<String> {
        let variable = |name: &str| want.environment.get(name).map_or("?", String::as_str);
        Some(format!(
            "{}: a stopping task answers for up to {} s (DNS TTL {} s, then every connection aged out: max age {} s \
             +{}%), exits within {} s, stopTimeout {} s",
            want.service,
            variable("DRAIN_SECS"),
            variable("DNS_TTL_SECS"),
            variable("MAX_CONNECTION_AGE_SECS"),
            service_runtime::age::JITTER_PERCENT,
            variable("SHUTDOWN_TIMEOUT_SECS"),
            want.stop_timeout_secs
        ))
    }

    /// The revision each service runs (after a rollback that is not the
    /// family's latest: apply compares with what runs), else the family's
    /// latest active revision.
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<TaskDefinitionSpec>>> {
        let read_one = |service: &stack_spec::Service| {
            let family = cx.names.family(&service.name);
            let running = live.get::<EcsService>(&service.name).map(|found| found.id.clone());
            async move {
                let mut found = read_revision(cx, &family, &family).await?;
                if let Some(running) = running
                    && found.as_ref().is_some_and(|latest| latest.arn != running)
                    && let Some(revision) = read_revision(cx, &family, &running).await?
                {
                    found = Some(revision);
                }
                anyhow::Ok((family, found))
            }
        };
        let found = futures_util::future::try_join_all(cx.stack.services.iter().map(read_one)).await?;
        Ok(found.into_iter().filter_map(|(family, found)| Some((family, found?))).collect())
    }

    /// Registers a revision if the content changed; passes on the ARN the
    /// service should run.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &TaskDefinitionSpec,
        have: Option<&Found<TaskDefinitionSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_ecs::types::{
            ApplicationProtocol, Compatibility, ContainerDefinition, CpuArchitecture, HealthCheck, KernelCapabilities,
            KeyValuePair, LinuxParameters, LogConfiguration, LogDriver, NetworkMode, OsFamily, PortMapping,
            RuntimePlatform, Secret, Tag, TransportProtocol,
        };
        let (clients, made) = (cx.cx.clients, cx.made);
        let resource = format!("task definition {}", spec.family);
        if let (Action::Unchanged, Some(found)) = (action, have) {
            return Ok(Output::id(&found.arn));
        }
        // A store's secret made by this apply.
        let secret_arn = |value: &str| match value.strip_prefix(NEW_SECRET) {
            Some(name) => made.id::<StoreSecret>(name.trim_end_matches(')')),
            None => value.to_owned(),
        };
        let image = match &spec.image {
            Some(image) => image.clone(),
            None => format!("{}:{NO_IMAGE_TAG}", made.id::<Repository>(&spec.repository)),
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
                    .map(|(name, arn)| Secret::builder().name(name).value_from(secret_arn(arn)).build())
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
            .readonly_root_filesystem(spec.locked_down)
            .set_linux_parameters(spec.locked_down.then(|| {
                LinuxParameters::builder()
                    .capabilities(KernelCapabilities::builder().drop(ALL_CAPABILITIES).build())
                    .build()
            }))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &spec.log_group)
                    .options("awslogs-region", &clients.region)
                    .options("awslogs-stream-prefix", &spec.service)
                    .build()?,
            )
            .build();
        let mut request = clients
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
            .execution_role_arn(made.id::<Role>(&spec.execution_role))
            .task_role_arn(made.id::<Role>(&spec.task_role))
            .container_definitions(container);
        for (key, value) in cx.cx.names.tags() {
            request = request.tags(Tag::builder().key(key).value(value).build());
        }
        let answer = request.send().await.map_err(|e| explain(e, "ecs:RegisterTaskDefinition", &resource))?;
        let arn = answer
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .context("RegisterTaskDefinition returned no ARN")?
            .to_owned();
        crate::engine::journal::done("registered", "task definition", &render::revision_of(&arn));
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<TaskDefinitionSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("task definition {} (every active revision)", found.spec.family))
    }

    async fn destroy(
        cx: Cx<'_>,
        owned: Vec<&Found<TaskDefinitionSpec>>,
        _options: DestroyOptions,
    ) -> anyhow::Result<()> {
        for found in owned {
            let family = &found.spec.family;
            let revisions = active_revisions(cx.clients, family).await?;
            for arn in &revisions {
                cx.clients
                    .ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(|e| explain(e, "ecs:DeregisterTaskDefinition", arn))?;
            }
            crate::engine::journal::done(
                "deregistered",
                "task definition",
                &format!("{family} ({} revisions)", revisions.len()),
            );
        }
        Ok(())
    }
}

/// How a task definition's plan names a store's secret apply has yet to make.
const NEW_SECRET: &str = "(new secret ";

/// The service's ECS `secrets`: the stack's, and the URL of each store it
/// uses, from the store's secret.
fn secrets(stack: &Stack, live: &Live, service: &stack_spec::Service) -> BTreeMap<String, String> {
    let names = Names::of(stack);
    let mut secrets = service.aws.secrets.clone();
    for (variable, store) in &service.stores {
        let name = names.store_secret(store);
        let arn =
            live.get::<StoreSecret>(&name).map_or_else(|| format!("{NEW_SECRET}{name})"), |found| found.arn.clone());
        secrets.insert(variable.clone(), arn);
    }
    secrets
}

/// The image `service` should run: the stack's, else the one its live task
/// definition runs, else the newest in its repository, else none.
pub fn image(stack: &Stack, live: &Live, service: &str) -> Option<String> {
    let names = Names::of(stack);
    stack
        .services
        .iter()
        .find(|candidate| candidate.name == service)
        .and_then(|service| service.aws.image.clone())
        .or_else(|| live.get::<TaskDefinition>(&names.family(service)).and_then(|found| found.spec.image.clone()))
        .or_else(|| {
            live.get::<Repository>(&names.repository(service)).and_then(|found| found.spec.newest_image.clone())
        })
}

/// One revision of `family`: `reference` is the family (its latest active
/// revision), `family:N` or an ARN.
async fn read_revision(cx: Cx<'_>, family: &str, reference: &str) -> anyhow::Result<Option<Found<TaskDefinitionSpec>>> {
    let answer = match cx
        .clients
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
    let owned = cx.names.owns(answer.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))));
    let arn = definition.task_definition_arn().unwrap_or_default().to_owned();
    // Not compared: a revision is never changed, and the next one is
    // registered with the stack's tags.
    Ok(Some(Found { id: arn.clone(), arn, owned, tags: None, spec: spec_of(family, definition) }))
}

/// A registered task definition as a spec (fields it lacks read as empty).
fn spec_of(family: &str, definition: &aws_sdk_ecs::types::TaskDefinition) -> TaskDefinitionSpec {
    let container = definition.container_definitions().iter().find(|container| container.name() == Some(CONTAINER));
    let role_name = |arn: Option<&str>| arn.and_then(|arn| arn.rsplit('/').next()).unwrap_or_default().to_owned();
    let health = container.and_then(|container| container.health_check());
    let mut command: Vec<String> = health.map(|health| health.command().to_vec()).unwrap_or_default();
    if command.first().map(String::as_str) == Some("CMD") {
        command.remove(0);
    }
    let log_options = container.and_then(|container| container.log_configuration()).and_then(|logs| logs.options());
    let log_option = |name: &str| log_options.and_then(|options| options.get(name)).cloned().unwrap_or_default();
    TaskDefinitionSpec {
        family: family.to_owned(),
        service: log_option("awslogs-stream-prefix"),
        repository: String::new(),
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
        log_group: log_option("awslogs-group"),
        execution_role: role_name(definition.execution_role_arn()),
        task_role: role_name(definition.task_role_arn()),
        locked_down: container.is_some_and(|container| {
            container.readonly_root_filesystem() == Some(true)
                && container
                    .linux_parameters()
                    .and_then(|parameters| parameters.capabilities())
                    .is_some_and(|capabilities| capabilities.drop().iter().any(|dropped| dropped == ALL_CAPABILITIES))
                && container
                    .linux_parameters()
                    .and_then(|parameters| parameters.capabilities())
                    .is_none_or(|capabilities| capabilities.add().is_empty())
        }),
    }
}

/// What ECS takes for "every Linux capability" in `drop`.
const ALL_CAPABILITIES: &str = "ALL";

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
                .filter(|arn| render::revision_of(arn).rsplit_once(':').map(|(f, _)| f) == Some(family))
                .cloned(),
        );
    }
    Ok(revisions)
}

fn whole_secs(duration: std::time::Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

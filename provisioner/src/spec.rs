//! `stack.toml`: one description of the stack for the local run and for
//! AWS. Everything is checked before anything starts, and every problem is
//! reported as `file:line: what`, naming the field.

use std::{collections::BTreeMap, ops::Range, path::Path, time::Duration};

use serde::Deserialize;
use toml::Spanned;

/// Seconds a stopping task keeps serving beyond its DNS TTL: clients that
/// cached the record re-resolve within the TTL.
pub const DRAIN_MARGIN_SECS: u64 = 1;

/// A problem with the stack file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SpecError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong, naming the field and the value.
    pub message: String,
}

/// The validated stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The application's name: tags and resource names on AWS.
    pub app: String,
    /// The private DNS namespace: services are `<name>.<namespace>`.
    pub namespace: String,
    /// Where and how the stack runs on AWS.
    pub aws: AwsStack,
    /// Services in file order.
    pub services: Vec<Service>,
}

/// The stack-wide AWS settings (`[aws]`); the local run ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsStack {
    /// The region; `None` takes it from the usual AWS configuration chain.
    pub region: Option<String>,
    /// The VPC: `default` (look up the account's default VPC) or an id.
    pub vpc: String,
    /// Where tasks run.
    pub subnets: Subnets,
    /// The ECS cluster's name.
    pub cluster: String,
    /// Whether tasks get a public IP (needed only in public subnets without
    /// a NAT gateway, to pull images).
    pub assign_public_ip: bool,
    /// Days CloudWatch keeps each service's logs.
    pub log_retention_days: u32,
    /// Security groups (besides the tasks' own) allowed to reach the
    /// service ports, e.g. a bastion's or a client service's.
    pub allow_from: Vec<String>,
}

/// The subnets tasks run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subnets {
    /// Every private subnet of the VPC (no route to an internet gateway).
    Private,
    /// The VPC's default subnets (the default VPC's are public).
    Default,
    /// These subnet ids.
    Ids(Vec<String>),
}

/// A service's AWS settings (`[service.aws]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsService {
    /// Fargate CPU units (256 = a quarter vCPU).
    pub cpu: u32,
    /// Fargate memory in MiB; must suit `cpu`.
    pub memory: u32,
    /// `X86_64` or `ARM64`.
    pub architecture: Architecture,
    /// Seconds ECS waits after SIGTERM before SIGKILL (at most 120).
    pub stop_timeout: Duration,
    /// Secrets Manager or SSM Parameter Store ARNs by variable name, passed
    /// as ECS `secrets`, never as plain environment.
    pub secrets: BTreeMap<String, String>,
    /// How deployments replace tasks.
    pub deployment: Deployment,
    /// The image, pinned by digest; set by `provision deploy`.
    pub image: Option<String>,
    /// Managed IAM policy ARNs for the service's task role (the role its
    /// code runs as); none by default.
    pub task_role_policies: Vec<String>,
}

/// The CPU architecture of a service's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Intel/AMD.
    X86_64,
    /// Graviton.
    Arm64,
}

/// An ECS deployment configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Healthy tasks kept during a deployment, in percent of the count.
    pub minimum_healthy_percent: u32,
    /// Tasks allowed during a deployment, in percent of the count.
    pub maximum_percent: u32,
    /// Whether the circuit breaker stops a failing deployment.
    pub circuit_breaker: bool,
    /// Whether the circuit breaker rolls a failed deployment back.
    pub rollback: bool,
}

/// One service: a binary run as `count` replicas behind one DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// DNS label and log prefix, e.g. `game-server`.
    pub name: String,
    /// The workspace binary to run.
    pub binary: String,
    /// The cargo package that builds it.
    pub package: String,
    /// The gRPC port every replica listens on (each on its own address).
    pub port: u16,
    /// How many replicas to keep healthy.
    pub count: u32,
    /// Extra environment, as a task definition would set it.
    pub env: BTreeMap<String, String>,
    /// Services whose discovery target this one gets as `<NAME>_ADDR`.
    pub depends_on: Vec<String>,
    /// How the runner (and ECS) checks a replica.
    pub health_check: HealthCheck,
    /// TTL of the service's DNS records.
    pub dns_ttl: Duration,
    /// How it runs on Fargate.
    pub aws: AwsService,
}

/// A container health check, as ECS defines one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The command; its first word may name a workspace binary.
    pub command: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive failures that make a replica unhealthy.
    pub retries: u32,
    /// Grace after start during which failures do not count.
    pub start_period: Duration,
}

impl Service {
    /// `<name>.<namespace>`.
    pub fn dns_name(&self, namespace: &str) -> String {
        format!("{}.{namespace}", self.name)
    }

    /// The environment variable a dependant gets this service's target in:
    /// `ranking` -> `RANKING_ADDR`.
    pub fn addr_variable(&self) -> String {
        format!("{}_ADDR", self.name.to_ascii_uppercase().replace('-', "_"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    app: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    aws: Option<Spanned<RawAws>>,
    #[serde(default, rename = "service")]
    services: Vec<Spanned<RawService>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAws {
    region: Option<Spanned<String>>,
    vpc: Option<Spanned<String>>,
    subnets: Option<Spanned<RawSubnets>>,
    cluster: Option<Spanned<String>>,
    assign_public_ip: Option<bool>,
    log_retention_days: Option<Spanned<i64>>,
    #[serde(default)]
    allow_from: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSubnets {
    Named(String),
    Ids(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAwsService {
    cpu: Option<Spanned<i64>>,
    memory: Option<Spanned<i64>>,
    architecture: Option<Spanned<String>>,
    stop_timeout_secs: Option<Spanned<i64>>,
    #[serde(default)]
    secrets: BTreeMap<String, Spanned<String>>,
    deployment: Option<RawDeployment>,
    image: Option<Spanned<String>>,
    #[serde(default)]
    task_role_policies: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    minimum_healthy_percent: Option<Spanned<i64>>,
    maximum_percent: Option<Spanned<i64>>,
    circuit_breaker: Option<bool>,
    rollback: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    binary: Option<Spanned<String>>,
    package: Option<String>,
    port: Option<Spanned<i64>>,
    count: Option<Spanned<i64>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    health_check: Option<RawHealthCheck>,
    dns_ttl_secs: Option<Spanned<i64>>,
    aws: Option<RawAwsService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    command: Option<Vec<String>>,
    interval_secs: Option<Spanned<f64>>,
    timeout_secs: Option<Spanned<f64>>,
    retries: Option<Spanned<i64>>,
    start_period_secs: Option<Spanned<f64>>,
}

/// Reads and validates the stack file at `path`.
pub fn load(path: &Path) -> Result<Stack, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|error| SpecError {
        file: path.display().to_string(),
        line: 1,
        message: format!("cannot read the stack file: {error}"),
    })?;
    parse(&text, &path.display().to_string())
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Parses and validates `text`; `file` is what errors call it.
pub fn parse(text: &str, file: &str) -> Result<Stack, SpecError> {
    let error = |span: Option<Range<usize>>, message: String| SpecError {
        file: file.to_owned(),
        line: span.map_or(1, |span| text[..span.start.min(text.len())].matches('\n').count() + 1),
        message,
    };
    let raw: RawStack = toml::from_str(text).map_err(|e| error(e.span(), e.message().trim().to_owned()))?;

    let app = match raw.app {
        Some(app) if is_dns_label(app.get_ref()) => app.into_inner(),
        Some(app) => {
            return Err(error(
                Some(app.span()),
                format!("app: {:?} must be lowercase letters, digits and '-'", app.get_ref()),
            ));
        }
        None => "grpc-fargate".to_owned(),
    };
    let namespace = match raw.namespace {
        Some(namespace) if namespace.get_ref().split('.').all(is_dns_label) => namespace.into_inner(),
        Some(namespace) => {
            return Err(error(
                Some(namespace.span()),
                format!("namespace: {:?} is not a DNS name", namespace.get_ref()),
            ));
        }
        None => "local".to_owned(),
    };
    let aws = parse_aws(raw.aws.as_ref(), &app, &error)?;
    if raw.services.is_empty() {
        return Err(error(None, "no [[service]]: the stack needs at least one".into()));
    }

    let mut services: Vec<(Service, Range<usize>)> = Vec::new();
    for spanned in &raw.services {
        let raw = spanned.get_ref();
        let name = raw.name.get_ref().clone();
        let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
        if !is_dns_label(&name) {
            return Err(error(
                Some(raw.name.span()),
                format!("service name {name:?} must be a DNS label (a-z, 0-9, '-')"),
            ));
        }
        if services.iter().any(|(service, _)| service.name == name) {
            return Err(error(Some(raw.name.span()), format!("service name {name:?} is used twice")));
        }
        let port = match &raw.port {
            None => 5000,
            Some(port) => match u16::try_from(*port.get_ref()) {
                Ok(port) if port > 0 => port,
                _ => return Err(at(port.span(), format!("port {} is outside 1..=65535", port.get_ref()))),
            },
        };
        let count = match &raw.count {
            None => 1,
            Some(count) => match u32::try_from(*count.get_ref()) {
                Ok(count) if count <= 250 => count,
                _ => return Err(at(count.span(), format!("count {} is outside 0..=250", count.get_ref()))),
            },
        };
        let binary = raw.binary.as_ref().map_or_else(|| name.clone(), |binary| binary.get_ref().clone());
        let seconds =
            |value: Option<&Spanned<f64>>, field: &str, default: f64, min: f64| -> Result<Duration, SpecError> {
                match value {
                    None => Ok(Duration::from_secs_f64(default)),
                    Some(value) if *value.get_ref() >= min && value.get_ref().is_finite() => {
                        Ok(Duration::from_secs_f64(*value.get_ref()))
                    }
                    Some(value) => Err(at(
                        value.span(),
                        format!("health_check.{field} {} must be at least {min}", value.get_ref()),
                    )),
                }
            };
        let health = raw.health_check.as_ref();
        let health_check = HealthCheck {
            command: health
                .and_then(|health| health.command.clone())
                .unwrap_or_else(|| vec![binary.clone(), "health".to_owned()]),
            interval: seconds(health.and_then(|h| h.interval_secs.as_ref()), "interval_secs", 5.0, 0.1)?,
            timeout: seconds(health.and_then(|h| h.timeout_secs.as_ref()), "timeout_secs", 2.0, 0.1)?,
            retries: match health.and_then(|h| h.retries.as_ref()) {
                None => 3,
                Some(retries) => match u32::try_from(*retries.get_ref()) {
                    Ok(retries) if (1..=10).contains(&retries) => retries,
                    _ => {
                        return Err(at(
                            retries.span(),
                            format!("health_check.retries {} is outside 1..=10", retries.get_ref()),
                        ));
                    }
                },
            },
            start_period: seconds(health.and_then(|h| h.start_period_secs.as_ref()), "start_period_secs", 10.0, 0.0)?,
        };
        if health_check.command.is_empty() {
            return Err(error(Some(spanned.span()), format!("service {name:?}: health_check.command is empty")));
        }
        if health_check.timeout > health_check.interval {
            return Err(error(
                Some(spanned.span()),
                format!("service {name:?}: health_check.timeout_secs must not exceed interval_secs"),
            ));
        }
        let dns_ttl = match &raw.dns_ttl_secs {
            None => Duration::from_secs(10),
            Some(ttl) => match u64::try_from(*ttl.get_ref()) {
                Ok(ttl) if ttl <= 86_400 => Duration::from_secs(ttl),
                _ => return Err(at(ttl.span(), format!("dns_ttl_secs {} is outside 0..=86400", ttl.get_ref()))),
            },
        };
        for key in raw.env.keys() {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(error(
                    Some(spanned.span()),
                    format!("service {name:?}: env name {key:?} is not a variable name"),
                ));
            }
        }
        let service_aws = parse_aws_service(raw.aws.as_ref(), &name, &raw.env, spanned.span(), &error)?;
        // On ECS a stopping task drains for a TTL (clients re-resolve) and
        // must be gone before stopTimeout ends in SIGKILL.
        if service_aws.stop_timeout.as_secs() < dns_ttl.as_secs() + DRAIN_MARGIN_SECS + 2 {
            return Err(error(
                Some(spanned.span()),
                format!(
                    "service {name:?}: aws.stop_timeout_secs ({}) must exceed dns_ttl_secs ({}) by at least {}: a \
                     stopping task drains for one TTL and needs time to finish its calls",
                    service_aws.stop_timeout.as_secs(),
                    dns_ttl.as_secs(),
                    DRAIN_MARGIN_SECS + 2
                ),
            ));
        }
        services.push((
            Service {
                name: name.clone(),
                package: raw.package.clone().unwrap_or_else(|| binary.clone()),
                binary,
                port,
                count,
                env: raw.env.clone(),
                depends_on: raw.depends_on.iter().map(|dependency| dependency.get_ref().clone()).collect(),
                health_check,
                dns_ttl,
                aws: service_aws,
            },
            spanned.span(),
        ));
    }

    // Dependencies must exist, and have replicas to answer.
    for spanned in &raw.services {
        let raw = spanned.get_ref();
        for dependency in &raw.depends_on {
            let target = services.iter().find(|(service, _)| &service.name == dependency.get_ref());
            match target {
                None => {
                    return Err(error(
                        Some(dependency.span()),
                        format!(
                            "service {:?}: depends_on names {:?}, which is not in the stack",
                            raw.name.get_ref(),
                            dependency.get_ref()
                        ),
                    ));
                }
                Some((target, span)) if target.count == 0 => {
                    return Err(error(
                        Some(span.clone()),
                        format!("service {:?}: count is 0 but {:?} depends on it", target.name, raw.name.get_ref()),
                    ));
                }
                Some((target, _)) if &target.name == raw.name.get_ref() => {
                    return Err(error(Some(dependency.span()), format!("service {:?} depends on itself", target.name)));
                }
                Some(_) => {}
            }
        }
    }

    Ok(Stack { app, namespace, aws, services: services.into_iter().map(|(service, _)| service).collect() })
}

/// What `error` in [`parse`] is: a located error from a span and a message.
type Locate<'a> = dyn Fn(Option<Range<usize>>, String) -> SpecError + 'a;

fn parse_aws(raw: Option<&Spanned<RawAws>>, app: &str, error: &Locate<'_>) -> Result<AwsStack, SpecError> {
    let default = RawAws::default();
    let aws = raw.map_or(&default, Spanned::get_ref);
    let region = match &aws.region {
        None => None,
        Some(region) => {
            let text = region.get_ref();
            let parts: Vec<&str> = text.split('-').collect();
            let valid = parts.len() >= 3
                && parts
                    .iter()
                    .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
                && parts.last().is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()));
            if !valid {
                return Err(error(
                    Some(region.span()),
                    format!("aws.region: {text:?} is not a region name like us-east-1"),
                ));
            }
            Some(text.clone())
        }
    };
    let vpc = match &aws.vpc {
        None => "default".to_owned(),
        Some(vpc) if vpc.get_ref() == "default" || is_aws_id(vpc.get_ref(), "vpc-") => vpc.get_ref().clone(),
        Some(vpc) => {
            return Err(error(
                Some(vpc.span()),
                format!("aws.vpc: {:?} is neither \"default\" nor a vpc-... id", vpc.get_ref()),
            ));
        }
    };
    let subnets = match &aws.subnets {
        None => Subnets::Private,
        Some(subnets) => match subnets.get_ref() {
            RawSubnets::Named(name) if name == "private" => Subnets::Private,
            RawSubnets::Named(name) if name == "default" => Subnets::Default,
            RawSubnets::Ids(ids) if !ids.is_empty() && ids.iter().all(|id| is_aws_id(id, "subnet-")) => {
                Subnets::Ids(ids.clone())
            }
            _ => {
                return Err(error(
                    Some(subnets.span()),
                    "aws.subnets: use \"private\", \"default\" or a list of subnet-... ids".into(),
                ));
            }
        },
    };
    let cluster = match &aws.cluster {
        None => app.to_owned(),
        Some(cluster)
            if !cluster.get_ref().is_empty()
                && cluster.get_ref().len() <= 255
                && cluster.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            cluster.get_ref().clone()
        }
        Some(cluster) => {
            return Err(error(
                Some(cluster.span()),
                format!("aws.cluster: {:?} is not a cluster name", cluster.get_ref()),
            ));
        }
    };
    const RETENTIONS: [i64; 22] =
        [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
    let log_retention_days = match &aws.log_retention_days {
        None => 30,
        Some(days) if RETENTIONS.contains(days.get_ref()) => *days.get_ref() as u32,
        Some(days) => {
            return Err(error(
                Some(days.span()),
                format!(
                    "aws.log_retention_days: {} is not one CloudWatch allows (1, 3, 5, 7, 14, 30, 60, 90, ...)",
                    days.get_ref()
                ),
            ));
        }
    };
    let mut allow_from = Vec::new();
    for group in &aws.allow_from {
        if !is_aws_id(group.get_ref(), "sg-") {
            return Err(error(
                Some(group.span()),
                format!("aws.allow_from: {:?} is not a security group id (sg-...)", group.get_ref()),
            ));
        }
        allow_from.push(group.get_ref().clone());
    }
    Ok(AwsStack {
        region,
        vpc,
        subnets,
        cluster,
        assign_public_ip: aws.assign_public_ip.unwrap_or(false),
        log_retention_days,
        allow_from,
    })
}

fn is_aws_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether Fargate offers `memory` MiB with `cpu` units.
fn fargate_size_ok(cpu: u32, memory: u32) -> bool {
    let gib = |n: u32| n * 1024;
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (gib(1)..=gib(4)).contains(&memory) && memory.is_multiple_of(1024),
        1024 => (gib(2)..=gib(8)).contains(&memory) && memory.is_multiple_of(1024),
        2048 => (gib(4)..=gib(16)).contains(&memory) && memory.is_multiple_of(1024),
        4096 => (gib(8)..=gib(30)).contains(&memory) && memory.is_multiple_of(1024),
        8192 => (gib(16)..=gib(60)).contains(&memory) && memory.is_multiple_of(gib(4)),
        16384 => (gib(32)..=gib(120)).contains(&memory) && memory.is_multiple_of(gib(8)),
        _ => false,
    }
}

fn parse_aws_service(
    raw: Option<&RawAwsService>,
    name: &str,
    env: &BTreeMap<String, String>,
    service_span: Range<usize>,
    error: &Locate<'_>,
) -> Result<AwsService, SpecError> {
    let default = RawAwsService::default();
    let aws = raw.unwrap_or(&default);
    let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
    let cpu = match &aws.cpu {
        None => 256,
        Some(cpu) => u32::try_from(*cpu.get_ref())
            .ok()
            .filter(|cpu| [256, 512, 1024, 2048, 4096, 8192, 16384].contains(cpu))
            .ok_or_else(|| {
                at(
                    cpu.span(),
                    format!(
                        "aws.cpu {} is not a Fargate size (256, 512, 1024, 2048, 4096, 8192, 16384)",
                        cpu.get_ref()
                    ),
                )
            })?,
    };
    let memory = match &aws.memory {
        None => 512.max(cpu * 2),
        Some(memory) => {
            let value = u32::try_from(*memory.get_ref()).unwrap_or(0);
            if !fargate_size_ok(cpu, value) {
                return Err(at(
                    memory.span(),
                    format!("aws.memory {} MiB is not offered with aws.cpu {cpu}", memory.get_ref()),
                ));
            }
            value
        }
    };
    let architecture = match aws.architecture.as_ref().map(|arch| (arch, arch.get_ref().to_ascii_lowercase())) {
        None => Architecture::X86_64,
        Some((_, text)) if text == "x86_64" || text == "amd64" => Architecture::X86_64,
        Some((_, text)) if text == "arm64" || text == "aarch64" => Architecture::Arm64,
        Some((arch, _)) => {
            return Err(at(arch.span(), format!("aws.architecture {:?}: use x86_64 or arm64", arch.get_ref())));
        }
    };
    let stop_timeout = match &aws.stop_timeout_secs {
        None => Duration::from_secs(30),
        Some(secs) if (2..=120).contains(secs.get_ref()) => Duration::from_secs(*secs.get_ref() as u64),
        Some(secs) => {
            return Err(at(secs.span(), format!("aws.stop_timeout_secs {} is outside 2..=120", secs.get_ref())));
        }
    };
    let mut secrets = BTreeMap::new();
    for (variable, arn) in &aws.secrets {
        let valid = arn.get_ref().starts_with("arn:aws:secretsmanager:") || arn.get_ref().starts_with("arn:aws:ssm:");
        if !valid {
            return Err(at(
                arn.span(),
                format!("aws.secrets.{variable}: {:?} is not a Secrets Manager or SSM parameter ARN", arn.get_ref()),
            ));
        }
        if env.contains_key(variable) {
            return Err(at(
                arn.span(),
                format!("aws.secrets.{variable}: also set in env; a variable is one or the other"),
            ));
        }
        secrets.insert(variable.clone(), arn.get_ref().clone());
    }
    let deployment = aws.deployment.as_ref();
    let percent =
        |value: Option<&Spanned<i64>>, field: &str, default: u32, range: std::ops::RangeInclusive<i64>| match value {
            None => Ok(default),
            Some(value) if range.contains(value.get_ref()) => Ok(*value.get_ref() as u32),
            Some(value) => {
                Err(at(value.span(), format!("aws.deployment.{field} {} is outside {range:?}", value.get_ref())))
            }
        };
    let minimum_healthy_percent =
        percent(deployment.and_then(|d| d.minimum_healthy_percent.as_ref()), "minimum_healthy_percent", 100, 0..=100)?;
    let maximum_percent =
        percent(deployment.and_then(|d| d.maximum_percent.as_ref()), "maximum_percent", 200, 100..=200)?;
    if minimum_healthy_percent == 100 && maximum_percent == 100 {
        return Err(error(
            Some(service_span),
            format!(
                "service {name:?}: aws.deployment cannot keep 100% healthy with at most 100%: a deployment could never start a task"
            ),
        ));
    }
    let image = match &aws.image {
        None => None,
        Some(image) if image.get_ref().contains("@sha256:") || image.get_ref().contains(':') => {
            Some(image.get_ref().clone())
        }
        Some(image) => return Err(at(image.span(), format!("aws.image {:?} has no tag or digest", image.get_ref()))),
    };
    let mut task_role_policies = Vec::new();
    for policy in &aws.task_role_policies {
        if !(policy.get_ref().starts_with("arn:aws:iam::") && policy.get_ref().contains(":policy/")) {
            return Err(at(
                policy.span(),
                format!(
                    "aws.task_role_policies: {:?} is not an IAM policy ARN (arn:aws:iam::...:policy/...)",
                    policy.get_ref()
                ),
            ));
        }
        task_role_policies.push(policy.get_ref().clone());
    }
    Ok(AwsService {
        cpu,
        memory,
        architecture,
        stop_timeout,
        secrets,
        deployment: Deployment {
            minimum_healthy_percent,
            maximum_percent,
            circuit_breaker: deployment.and_then(|d| d.circuit_breaker).unwrap_or(true),
            rollback: deployment.and_then(|d| d.rollback).unwrap_or(true),
        },
        image,
        task_role_policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse(text, "stack.toml").expect_err("rejected").to_string()
    }

    #[test]
    fn the_committed_stack_file_is_valid() {
        let stack = load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.toml"))).unwrap();
        let counts: Vec<_> = stack.services.iter().map(|service| (service.name.as_str(), service.count)).collect();
        assert_eq!(counts, [("game-server", 3), ("ranking", 2)]);
        assert_eq!(stack.namespace, "local");
        assert_eq!(stack.services[0].depends_on, ["ranking"]);
        assert_eq!(stack.services[1].addr_variable(), "RANKING_ADDR");
        assert_eq!(stack.services[0].dns_name(&stack.namespace), "game-server.local");
    }

    #[test]
    fn the_aws_side_defaults_to_a_default_vpc_and_small_fargate_tasks() {
        let stack = parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap();
        assert_eq!(stack.aws.vpc, "default");
        assert_eq!(stack.aws.subnets, Subnets::Private);
        assert_eq!(stack.aws.cluster, "grpc-fargate");
        assert!(!stack.aws.assign_public_ip);
        let aws = &stack.services[0].aws;
        assert_eq!((aws.cpu, aws.memory, aws.architecture), (256, 512, Architecture::X86_64));
        assert_eq!(aws.stop_timeout, Duration::from_secs(30));
        assert_eq!(
            aws.deployment,
            Deployment { minimum_healthy_percent: 100, maximum_percent: 200, circuit_breaker: true, rollback: true }
        );
    }

    #[test]
    fn aws_settings_are_checked_against_what_aws_accepts() {
        let service = |aws: &str| format!("[[service]]\nname = \"svc\"\n[service.aws]\n{aws}\n");
        assert!(
            error_of(&service("cpu = 300"))
                .starts_with("stack.toml:4: service \"svc\": aws.cpu 300 is not a Fargate size")
        );
        assert!(
            error_of(&service("cpu = 256\nmemory = 4096"))
                .contains("aws.memory 4096 MiB is not offered with aws.cpu 256")
        );
        assert!(parse(&service("cpu = 1024\nmemory = 3072\narchitecture = \"arm64\""), "stack.toml").is_ok());
        assert!(error_of(&service("stop_timeout_secs = 300")).contains("outside 2..=120"));
        let short = "[[service]]\nname = \"svc\"\ndns_ttl_secs = 60\n[service.aws]\nstop_timeout_secs = 30\n";
        assert_eq!(
            error_of(short),
            "stack.toml:1: service \"svc\": aws.stop_timeout_secs (30) must exceed dns_ttl_secs (60) by at least 3: \
             a stopping task drains for one TTL and needs time to finish its calls"
        );
        assert!(
            error_of(&service("secrets = { DB = \"hunter2\" }"))
                .contains("is not a Secrets Manager or SSM parameter ARN")
        );
        let clash = "[[service]]\nname = \"svc\"\n[service.env]\nDB = \"x\"\n[service.aws]\nsecrets = { DB = \"arn:aws:ssm:us-east-1:1:parameter/db\" }\n";
        assert!(error_of(clash).contains("also set in env"));
        assert!(
            error_of(&service("[service.aws.deployment]\nmaximum_percent = 100")).contains("could never start a task")
        );
        assert!(
            error_of("[aws]\nvpc = \"my-vpc\"\n[[service]]\nname = \"svc\"\n").starts_with("stack.toml:2: aws.vpc")
        );
        assert!(error_of("[aws]\nregion = \"mars\"\n[[service]]\nname = \"svc\"\n").contains("not a region name"));
        assert!(
            error_of("[aws]\nlog_retention_days = 10\n[[service]]\nname = \"svc\"\n")
                .contains("is not one CloudWatch allows")
        );
        let ids = "[aws]\nvpc = \"vpc-0a1b\"\nsubnets = [\"subnet-01\", \"subnet-02\"]\n[[service]]\nname = \"svc\"\n";
        assert_eq!(
            parse(ids, "stack.toml").unwrap().aws.subnets,
            Subnets::Ids(vec!["subnet-01".into(), "subnet-02".into()])
        );
        assert!(
            error_of("[aws]\nallow_from = [\"0.0.0.0/0\"]\n[[service]]\nname = \"svc\"\n")
                .starts_with("stack.toml:2: aws.allow_from: \"0.0.0.0/0\" is not a security group id")
        );
        assert!(
            error_of(&service("task_role_policies = [\"AmazonS3ReadOnlyAccess\"]"))
                .starts_with("stack.toml:4: service \"svc\": aws.task_role_policies: \"AmazonS3ReadOnlyAccess\"")
        );
        let granted = service("task_role_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]");
        assert_eq!(
            parse(&granted, "stack.toml").unwrap().services[0].aws.task_role_policies,
            ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
        );
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let stack = parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap();
        let service = &stack.services[0];
        assert_eq!((service.binary.as_str(), service.port, service.count), ("svc", 5000, 1));
        assert_eq!(service.health_check.command, ["svc", "health"]);
        assert_eq!(service.dns_ttl, Duration::from_secs(10));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_line() {
        assert!(
            error_of("[[service]]\nname = \"svc\"\ncolour = 1\n").starts_with("stack.toml:3: unknown field `colour`")
        );
        assert!(error_of("[[service]]\nname = \"svc\"\nport = \"http\"\n").starts_with("stack.toml:3:"));
    }

    #[test]
    fn impossible_values_are_rejected_with_the_field() {
        assert_eq!(
            error_of("[[service]]\nname = \"svc\"\nport = 70000\n"),
            "stack.toml:3: service \"svc\": port 70000 is outside 1..=65535"
        );
        assert_eq!(
            error_of("[[service]]\nname = \"svc\"\n[[service]]\nname = \"svc\"\n"),
            "stack.toml:4: service name \"svc\" is used twice"
        );
        let text = "[[service]]\nname = \"game\"\ndepends_on = [\"rank\"]\n[[service]]\nname = \"rank\"\ncount = 0\n";
        assert_eq!(error_of(text), "stack.toml:4: service \"rank\": count is 0 but \"game\" depends on it");
        assert!(error_of("[[service]]\nname = \"game\"\ndepends_on = [\"nope\"]\n").contains("not in the stack"));
        assert!(error_of("[[service]]\nname = \"Game_Server\"\n").contains("must be a DNS label"));
        assert!(error_of("").contains("no [[service]]"));
    }
}

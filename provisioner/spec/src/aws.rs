//! The AWS side of the stack file: `[aws]` and each service's
//! `[service.aws]`, checked against what AWS accepts (Fargate sizes, ARNs,
//! ids, percentages) before any call.

use std::{collections::BTreeMap, ops::Range, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError, Stopping};

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
    /// The image the services' images are built on (`base_image`): their
    /// binary is added to it as one layer. Pinned by digest by default, so
    /// that a build today and one next month give the same image.
    pub base_image: String,
    /// Tags every resource gets besides the two that mark it as this app's
    /// (`[aws.tags]`), e.g. for cost allocation. Plan compares them like any
    /// field: a tag added or removed by hand shows as drift and apply puts
    /// the stack's set back.
    pub tags: BTreeMap<String, String>,
}

/// Most tags an AWS resource takes (IAM's and most services' limit), of
/// which the two ownership tags are always two.
pub const MAX_TAGS: usize = 50;

/// The base of the services' images when `[aws] base_image` is not set:
/// distroless's C runtime (glibc, libgcc, CA certificates, a `nonroot`
/// user), the same one the Dockerfile's runtime stage uses, pinned by the
/// digest of its multi-platform index.
pub const DEFAULT_BASE_IMAGE: &str =
    "gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f";

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
    /// Seconds ECS waits after SIGTERM before SIGKILL (at most 120); by
    /// default what the service's drain needs ([`super::Stopping`]).
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

impl Architecture {
    /// As ECS's `runtimePlatform.cpuArchitecture` spells it.
    pub fn as_ecs(self) -> &'static str {
        match self {
            Architecture::X86_64 => "X86_64",
            Architecture::Arm64 => "ARM64",
        }
    }
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAws {
    region: Option<Spanned<String>>,
    vpc: Option<Spanned<String>>,
    subnets: Option<Spanned<RawSubnets>>,
    cluster: Option<Spanned<String>>,
    assign_public_ip: Option<bool>,
    log_retention_days: Option<Spanned<i64>>,
    #[serde(default)]
    allow_from: Vec<Spanned<String>>,
    base_image: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawSubnets {
    Named(String),
    Ids(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAwsService {
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

impl RawAwsService {
    /// The variables `secrets` sets.
    pub(super) fn secret_names(&self) -> std::collections::BTreeSet<String> {
        self.secrets.keys().cloned().collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    minimum_healthy_percent: Option<Spanned<i64>>,
    maximum_percent: Option<Spanned<i64>>,
    circuit_breaker: Option<bool>,
    rollback: Option<bool>,
}

pub(super) fn parse_aws(raw: Option<&Spanned<RawAws>>, app: &str, error: &Locate<'_>) -> Result<AwsStack, SpecError> {
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
    let base_image = match &aws.base_image {
        None => DEFAULT_BASE_IMAGE.to_owned(),
        Some(image) if is_image_reference(image.get_ref()) => image.get_ref().clone(),
        Some(image) => {
            return Err(error(
                Some(image.span()),
                format!(
                    "aws.base_image: {:?} is not an image reference (REGISTRY/REPOSITORY:TAG or @sha256:DIGEST)",
                    image.get_ref()
                ),
            ));
        }
    };
    let tags = parse_tags(&aws.tags, error)?;
    Ok(AwsStack {
        region,
        vpc,
        subnets,
        cluster,
        assign_public_ip: aws.assign_public_ip.unwrap_or(false),
        log_retention_days,
        allow_from,
        base_image,
        tags,
    })
}

/// `[aws.tags]`, checked against the rules every service the stack uses
/// shares: keys of 1-128 and values of 0-256 characters from AWS's tag
/// alphabet, no `aws:` prefix, not the two ownership tags, at most
/// [`MAX_TAGS`] in all.
fn parse_tags(
    raw: &BTreeMap<Spanned<String>, Spanned<String>>,
    error: &Locate<'_>,
) -> Result<BTreeMap<String, String>, SpecError> {
    const RESERVED: [&str; 2] = ["app", "managed-by"];
    let allowed = |text: &str| text.chars().all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
    if raw.len() > MAX_TAGS - RESERVED.len() {
        let first = raw.keys().next().map(Spanned::span);
        return Err(error(
            first,
            format!("aws.tags: {} tags, but AWS takes at most {} besides app and managed-by", raw.len(), MAX_TAGS - 2),
        ));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in raw {
        let (name, text) = (key.get_ref(), value.get_ref());
        let problem = if RESERVED.contains(&name.as_str()) {
            Some(format!("aws.tags: {name:?} is set by provision itself (it marks the resources as this app's)"))
        } else if name.to_ascii_lowercase().starts_with("aws:") {
            Some(format!("aws.tags: {name:?}: keys starting with aws: are reserved for AWS"))
        } else if name.is_empty() || name.chars().count() > 128 || !allowed(name) {
            Some(format!("aws.tags: key {name:?} must be 1-128 letters, digits, spaces or _ . : / = + - @"))
        } else if text.chars().count() > 256 || !allowed(text) {
            Some(format!(
                "aws.tags.{name}: value {text:?} must be at most 256 letters, digits, spaces or _ . : / = + - @"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(error(Some(key.span()), problem));
        }
        tags.insert(name.clone(), text.clone());
    }
    Ok(tags)
}

/// Whether `text` reads as an image reference: no spaces, a repository,
/// and a digest, if any, of sha256's length.
fn is_image_reference(text: &str) -> bool {
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    let digest_ok = digest.is_none_or(|digest| {
        digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with(':')
        && !text.chars().any(char::is_whitespace)
        && digest_ok
}

fn is_aws_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether Fargate offers `memory` MiB with `cpu` units.
/// The Fargate sizes, as AWS lists them: each cpu with its memory range
/// (MiB) and step.
const FARGATE_SIZES: [(u32, u32, u32, u32); 7] = [
    (256, 512, 2048, 0),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122_880, 8192),
];

/// What memory `cpu` is offered with, in words; and the smallest cpu
/// offered with `memory`, if any: the two ways to fix a size Fargate does
/// not have.
fn fargate_offer(cpu: u32, memory: u32) -> String {
    let offered = match FARGATE_SIZES.iter().find(|(size, ..)| *size == cpu) {
        Some((256, ..)) => "512, 1024 or 2048 MiB".to_owned(),
        Some((_, min, max, step)) => format!("{min} to {max} MiB in steps of {step}"),
        None => "nothing".to_owned(),
    };
    let other = FARGATE_SIZES.iter().map(|(size, ..)| *size).find(|size| fargate_size_ok(*size, memory));
    match other {
        Some(size) => format!("with aws.cpu {cpu} Fargate offers {offered}; {memory} MiB needs aws.cpu = {size}"),
        None => format!("with aws.cpu {cpu} Fargate offers {offered}; no cpu is offered with {memory} MiB"),
    }
}

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

pub(super) fn parse_aws_service(
    raw: Option<&RawAwsService>,
    name: &str,
    env: &BTreeMap<String, String>,
    stopping: &Stopping,
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
                    format!(
                        "aws.memory {} MiB is not offered with aws.cpu {cpu}: {}",
                        memory.get_ref(),
                        fargate_offer(cpu, value)
                    ),
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
        None => stopping.stop_timeout,
        Some(secs) if !(2..=120).contains(secs.get_ref()) => {
            return Err(at(secs.span(), format!("aws.stop_timeout_secs {} is outside 2..=120", secs.get_ref())));
        }
        Some(secs) if Duration::from_secs(*secs.get_ref() as u64) < stopping.stop_timeout => {
            return Err(at(
                secs.span(),
                format!(
                    "aws.stop_timeout_secs ({}) is too short: {}, so it must be at least {} (or leave it out: that \
                     is the default)",
                    secs.get_ref(),
                    stopping.explain(),
                    stopping.stop_timeout.as_secs()
                ),
            ));
        }
        Some(secs) => Duration::from_secs(*secs.get_ref() as u64),
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
        // At the line of the field that says 100, which is the one to change.
        let given = deployment.and_then(|d| d.maximum_percent.as_ref().or(d.minimum_healthy_percent.as_ref()));
        return Err(error(
            Some(given.map_or(service_span, Spanned::span)),
            format!(
                "service {name:?}: aws.deployment cannot keep 100% healthy with at most 100%: a deployment could \
                 never start a task; raise maximum_percent (e.g. 200) or lower minimum_healthy_percent"
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

//! One `[[service]]`: its fields, checked with their lines, and how its
//! replicas stop (the drain and deadline its TTL and connection age imply).

use std::{collections::BTreeMap, ops::Range, time::Duration};

use serde::Deserialize;
use service_runtime::{ConnectionAge, age};
use toml::Spanned;

use crate::{
    Locate, SpecError,
    autoscaling::{self, Autoscaling, RawAutoscaling},
    aws::{AwsService, RawAwsService, parse_aws_service},
    health::{self, HealthCheck, RawHealthCheck},
    ingress::{self, Ingress, RawIngress},
    is_dns_label,
};

/// Fargate's largest stopTimeout.
const MAX_STOP_TIMEOUT_SECS: u64 = 120;

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
    /// How many replicas to keep healthy; with `autoscaling`, how many to
    /// start with.
    pub count: u32,
    /// Target tracking between a minimum and a maximum count, if the
    /// service scales.
    pub autoscaling: Option<Autoscaling>,
    /// The load balancer in front of it on AWS, if clients outside the VPC
    /// call it.
    pub ingress: Option<Ingress>,
    /// Extra environment, as a task definition would set it.
    pub env: BTreeMap<String, String>,
    /// Services whose discovery target this one gets as `<NAME>_ADDR`.
    pub depends_on: Vec<String>,
    /// How the runner (and ECS) checks a replica.
    pub health_check: HealthCheck,
    /// TTL of the service's DNS records.
    pub dns_ttl: Duration,
    /// How long a client connection lives before the replica sends GOAWAY.
    pub connection_age: ConnectionAge,
    /// How it runs on Fargate.
    pub aws: AwsService,
    /// The stores it uses: the variable that receives a store's URL, and
    /// the store's name.
    pub stores: BTreeMap<String, String>,
    /// The line of its `[[service]]` table in the stack file: where a
    /// check made later (AWS's limits) points.
    pub line: usize,
}

impl Service {
    /// How a replica of this service stops, derived from its TTL and
    /// connection age: the same numbers locally and on ECS.
    pub fn stopping(&self) -> Stopping {
        Stopping::of(self.dns_ttl, self.connection_age)
    }

    /// The variables that tell the runtime its TTL, connection age, drain
    /// and deadline, given the time the platform allows between SIGTERM and
    /// SIGKILL. The stack's own `env` wins over these.
    pub fn runtime_env(&self, stop_timeout: Duration) -> BTreeMap<String, String> {
        let stopping = self.stopping();
        let mut env = BTreeMap::from([
            ("DNS_TTL_SECS".to_owned(), self.dns_ttl.as_secs().to_string()),
            ("MAX_CONNECTION_AGE_SECS".to_owned(), self.connection_age.max.map_or(0, |max| max.as_secs()).to_string()),
            ("MAX_CONNECTION_AGE_GRACE_SECS".to_owned(), self.connection_age.grace.as_secs().to_string()),
            ("DRAIN_SECS".to_owned(), stopping.drain.as_secs().to_string()),
            // Exit a second before the platform's SIGKILL.
            ("SHUTDOWN_TIMEOUT_SECS".to_owned(), stop_timeout.as_secs().saturating_sub(1).to_string()),
        ]);
        env.extend(self.env.clone());
        env
    }

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

/// The stop of one replica, from SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopping {
    /// The longest it keeps answering while NOT_SERVING: the DNS TTL, one
    /// whole connection age with its jitter, and a second.
    pub drain: Duration,
    /// When it exits at the latest: the drain, then the grace for the calls
    /// in flight at the last GOAWAY.
    pub deadline: Duration,
    /// The shortest stopTimeout that lets it exit before SIGKILL.
    pub stop_timeout: Duration,
    dns_ttl: Duration,
    age: ConnectionAge,
}

impl Stopping {
    /// The stop of a replica whose records have `dns_ttl` and whose
    /// connections live `age`.
    pub fn of(dns_ttl: Duration, age: ConnectionAge) -> Self {
        let drain = age::drain_bound(dns_ttl, &age);
        let deadline = age::shutdown_deadline(drain, &age);
        Self { drain, deadline, stop_timeout: deadline + Duration::from_secs(1), dns_ttl, age }
    }

    /// How the numbers add up, for plan and errors.
    pub fn explain(&self) -> String {
        format!(
            "a stopping replica answers for up to {} s (dns_ttl_secs {} + max_connection_age_secs {} with {}% \
             jitter{} + {}) and exits within {} s (+ max_connection_age_grace_secs {})",
            self.drain.as_secs(),
            self.dns_ttl.as_secs(),
            self.age.max.map_or(0, |max| max.as_secs()),
            age::JITTER_PERCENT,
            if self.age.max.is_some() && self.age.longest() < age::GRPC_CORE_RESOLUTION_INTERVAL {
                format!(
                    ", at least {} s: grpc-core resolves at most that often",
                    age::GRPC_CORE_RESOLUTION_INTERVAL.as_secs()
                )
            } else {
                String::new()
            },
            age::DRAIN_MARGIN_SECS,
            self.deadline.as_secs(),
            self.age.grace.as_secs(),
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub(crate) name: Spanned<String>,
    binary: Option<Spanned<String>>,
    package: Option<String>,
    port: Option<Spanned<i64>>,
    count: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    health_check: Option<RawHealthCheck>,
    dns_ttl_secs: Option<Spanned<i64>>,
    max_connection_age_secs: Option<Spanned<i64>>,
    max_connection_age_grace_secs: Option<Spanned<i64>>,
    pub(crate) aws: Option<RawAwsService>,
    #[serde(default)]
    pub(crate) stores: BTreeMap<String, Spanned<String>>,
    autoscaling: Option<Spanned<RawAutoscaling>>,
    ingress: Option<Spanned<RawIngress>>,
}

/// One service, checked; `earlier` are the services before it in the file.
pub(crate) fn parse(
    spanned: &Spanned<RawService>,
    earlier: &[(Service, Range<usize>)],
    error: &Locate<'_>,
) -> Result<Service, SpecError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().clone();
    let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
    if !is_dns_label(&name) {
        return Err(error(Some(raw.name.span()), format!("service name {name:?} must be a DNS label (a-z, 0-9, '-')")));
    }
    if earlier.iter().any(|(service, _)| service.name == name) {
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
    let autoscaling = raw
        .autoscaling
        .as_ref()
        .map(|table| autoscaling::parse(table, &name, count, raw.count.as_ref().map(Spanned::span), &error))
        .transpose()?;
    let ingress = raw.ingress.as_ref().map(|table| ingress::parse(table, &name, &error)).transpose()?;
    let binary = raw.binary.as_ref().map_or_else(|| name.clone(), |binary| binary.get_ref().clone());
    let health_check = health::parse(raw.health_check.as_ref(), &binary, &name, spanned.span(), &error)?;
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
    let seconds = |field: &Option<Spanned<i64>>, name: &str, default: u64, max: u64| match field {
        None => Ok(default),
        Some(value) => u64::try_from(*value.get_ref())
            .ok()
            .filter(|secs| *secs <= max)
            .ok_or_else(|| at(value.span(), format!("{name} {} is outside 0..={max}", value.get_ref()))),
    };
    let connection_age = ConnectionAge::from_secs(
        seconds(&raw.max_connection_age_secs, "max_connection_age_secs", 30, 3600)?,
        seconds(&raw.max_connection_age_grace_secs, "max_connection_age_grace_secs", 10, 600)?,
    );
    // A stopping replica drains for the TTL and one connection age, and
    // must be gone before stopTimeout ends in SIGKILL.
    let stopping = Stopping::of(dns_ttl, connection_age);
    if stopping.stop_timeout.as_secs() > MAX_STOP_TIMEOUT_SECS {
        return Err(error(
            Some(spanned.span()),
            format!(
                "service {name:?}: {}, which needs a stopTimeout of {} s, more than Fargate's {MAX_STOP_TIMEOUT_SECS}: \
                 lower dns_ttl_secs, max_connection_age_secs or max_connection_age_grace_secs",
                stopping.explain(),
                stopping.stop_timeout.as_secs()
            ),
        ));
    }
    let service_aws = parse_aws_service(raw.aws.as_ref(), &name, &raw.env, &stopping, spanned.span(), &error)?;
    Ok(Service {
        name: name.clone(),
        package: raw.package.clone().unwrap_or_else(|| binary.clone()),
        binary,
        port,
        count,
        autoscaling,
        ingress,
        env: raw.env.clone(),
        depends_on: raw.depends_on.iter().map(|dependency| dependency.get_ref().clone()).collect(),
        health_check,
        dns_ttl,
        connection_age,
        aws: service_aws,
        stores: raw.stores.iter().map(|(variable, store)| (variable.clone(), store.get_ref().clone())).collect(),
        line: error(Some(spanned.span()), String::new()).line,
    })
}

/// Every `depends_on` names another service of the stack, with replicas to
/// answer.
pub(crate) fn check_dependencies(
    raw_services: &[Spanned<RawService>],
    services: &[(Service, Range<usize>)],
    error: &Locate<'_>,
) -> Result<(), SpecError> {
    for spanned in raw_services {
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
                Some((target, span)) if target.autoscaling.as_ref().is_some_and(|scaling| scaling.min == 0) => {
                    return Err(error(
                        Some(span.clone()),
                        format!(
                            "service {:?}: autoscaling.min is 0 but {:?} depends on it",
                            target.name,
                            raw.name.get_ref()
                        ),
                    ));
                }
                Some((target, _)) if &target.name == raw.name.get_ref() => {
                    return Err(error(Some(dependency.span()), format!("service {:?} depends on itself", target.name)));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

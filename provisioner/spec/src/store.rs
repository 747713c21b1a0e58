//! The stack's Redis stores (`[[store]]`): one leaderboard for every
//! replica. Locally a `redis-server` of the stack's own, on AWS an
//! ElastiCache replication group; a service names the variable that
//! receives a store's URL (`[service.stores] RANKING_STORE = "leaderboard"`).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError, is_dns_label};

/// The port a store listens on unless the stack says otherwise (Redis's).
pub const DEFAULT_PORT: u16 = 6379;

/// A Redis store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// A DNS label: the local member's name and part of the AWS names.
    pub name: String,
    /// Where it listens (locally on its own loopback address, on AWS the
    /// replication group's port).
    pub port: u16,
    /// How it runs on ElastiCache.
    pub aws: AwsStore,
    /// The line of its name in the stack file: where a check made later
    /// (AWS's limits) points.
    pub line: usize,
}

/// The engine ElastiCache runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Valkey: the open-source fork of Redis, cheaper on ElastiCache.
    Valkey,
    /// Redis OSS.
    Redis,
}

/// A store's ElastiCache settings (`[store.aws]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsStore {
    /// `valkey` (the default) or `redis`.
    pub engine: Engine,
    /// The engine version; `None` takes ElastiCache's default.
    pub engine_version: Option<String>,
    /// The node type, e.g. `cache.t4g.micro`.
    pub node_type: String,
    /// Read replicas beside the primary: 1 (the default) gives automatic
    /// failover across two zones; 0 is a one-node store for development.
    pub replicas: u32,
    /// Days ElastiCache keeps its automatic daily snapshots: 7 by default,
    /// 0 turns them off, at most 35.
    pub snapshot_retention_days: u32,
}

/// How long automatic snapshots are kept when the stack does not say.
pub const DEFAULT_SNAPSHOT_RETENTION_DAYS: u32 = 7;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    name: Spanned<String>,
    port: Option<Spanned<i64>>,
    aws: Option<RawAwsStore>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAwsStore {
    engine: Option<Spanned<String>>,
    engine_version: Option<Spanned<String>>,
    node_type: Option<Spanned<String>>,
    replicas: Option<Spanned<i64>>,
    snapshot_retention_days: Option<Spanned<i64>>,
}

impl RawStore {
    /// The name as written, with where it stands.
    pub(super) fn name(&self) -> &Spanned<String> {
        &self.name
    }
}

/// Checks one `[[store]]` table.
pub(super) fn parse(raw: &RawStore, error: &Locate<'_>) -> Result<Store, SpecError> {
    let name = raw.name.get_ref().clone();
    let at = |span: Range<usize>, message: String| error(Some(span), format!("store {name:?}: {message}"));
    if !is_dns_label(&name) {
        return Err(error(Some(raw.name.span()), format!("store name {name:?} must be a DNS label (a-z, 0-9, '-')")));
    }
    let port = match &raw.port {
        None => DEFAULT_PORT,
        Some(port) => match u16::try_from(*port.get_ref()) {
            Ok(port) if port > 0 => port,
            _ => return Err(at(port.span(), format!("port {} is outside 1..=65535", port.get_ref()))),
        },
    };
    let default = RawAwsStore::default();
    let aws = raw.aws.as_ref().unwrap_or(&default);
    let engine = match &aws.engine {
        None => Engine::Valkey,
        Some(engine) => match engine.get_ref().as_str() {
            "valkey" => Engine::Valkey,
            "redis" => Engine::Redis,
            other => {
                return Err(at(engine.span(), format!("aws.engine {other:?} is not one of \"valkey\", \"redis\"")));
            }
        },
    };
    let engine_version = match &aws.engine_version {
        None => None,
        Some(version) => {
            let text = version.get_ref();
            let ok = !text.is_empty()
                && text.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(at(version.span(), format!("aws.engine_version {text:?} is not a version like \"7.2\"")));
            }
            // The ranking writes BEST boards with ZADD ... GT and EXPIREAT ... NX.
            let major: u32 = text.split('.').next().and_then(|major| major.parse().ok()).unwrap_or(0);
            if major < 7 {
                return Err(at(
                    version.span(),
                    format!(
                        "aws.engine_version {text:?} is older than 7.0, which the ranking needs (ZADD ... GT, EXPIREAT ... NX); use 7.0 or later, or leave it out for ElastiCache's default"
                    ),
                ));
            }
            Some(text.clone())
        }
    };
    let node_type = match &aws.node_type {
        None => "cache.t4g.micro".to_owned(),
        Some(node_type) => {
            let text = node_type.get_ref();
            if !text.starts_with("cache.") || text.split('.').count() != 3 {
                return Err(at(
                    node_type.span(),
                    format!("aws.node_type {text:?} is not an ElastiCache node type like \"cache.t4g.micro\""),
                ));
            }
            text.clone()
        }
    };
    let replicas = match &aws.replicas {
        None => 1,
        Some(replicas) => match u32::try_from(*replicas.get_ref()) {
            Ok(replicas) if replicas <= 5 => replicas,
            _ => {
                return Err(at(
                    replicas.span(),
                    format!("aws.replicas {} is outside 0..=5 (ElastiCache's read replicas)", replicas.get_ref()),
                ));
            }
        },
    };
    let snapshot_retention_days = match &aws.snapshot_retention_days {
        None => DEFAULT_SNAPSHOT_RETENTION_DAYS,
        Some(days) => match u32::try_from(*days.get_ref()) {
            Ok(days) if days <= 35 => days,
            _ => {
                return Err(at(
                    days.span(),
                    format!(
                        "aws.snapshot_retention_days {} is outside 0..=35 (ElastiCache keeps daily snapshots up to 35 \
                         days; 0 turns them off)",
                        days.get_ref()
                    ),
                ));
            }
        },
    };
    let line = error(Some(raw.name.span()), String::new()).line;
    Ok(Store {
        name,
        port,
        aws: AwsStore { engine, engine_version, node_type, replicas, snapshot_retention_days },
        line,
    })
}

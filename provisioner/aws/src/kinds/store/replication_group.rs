//! Each store's ElastiCache replication group: cluster mode off, Valkey by
//! default, the stack's node type, a primary and `replicas` read replicas
//! (with one or more: automatic failover across zones), encryption in
//! transit and at rest, AUTH with the token from the store's secret. Apply
//! waits until it is available before the services that use it roll out,
//! and then points the secret's URL at its primary endpoint. Destroy keeps a
//! final snapshot unless told not to: a leaderboard is data.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, bail};

use super::{
    secret::{StoreSecret, publish, read_url, token_of},
    security_group::StoreSecurityGroup,
    subnet_group::{CacheSubnetGroup, elasticache_tags, retag_elasticache},
};
use crate::{
    clients::{
        Clients,
        error::{classify, explain, unless_gone},
    },
    engine::{
        limits::Problem,
        names::{Names, Tags},
        plan::Action,
        poll::poll_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
        status::{StatusReport, StoreStatus},
    },
};
use stack_spec::Stack;

/// A store's replication group.
pub struct ReplicationGroup;

/// How long a store may take to become available (real creation takes 6 to
/// 10 minutes; Terraform's provider waits up to 60).
const AVAILABLE_LIMIT: Duration = Duration::from_secs(3600);

/// A replication group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The replication group id, `<app>-<store>`.
    pub id: String,
    /// The store's name in the stack file.
    pub store: String,
    pub engine: String,
    /// `None`: ElastiCache's default (desired), or not reported (live).
    pub engine_version: Option<String>,
    pub node_type: String,
    /// The primary and its replicas; `None` when not reported.
    pub nodes: Option<u32>,
    pub automatic_failover: bool,
    pub multi_az: bool,
    pub transit_encryption: bool,
    pub at_rest_encryption: bool,
    pub auth: bool,
    pub port: u16,
    /// Days its automatic daily snapshots are kept (0: none); `None` when
    /// not reported.
    pub snapshot_retention_days: Option<u32>,
    /// Its cache subnet group; not reported back, not compared.
    pub subnet_group: String,
    /// The secret with its token; not compared.
    pub secret: String,
    /// ElastiCache's state (live only).
    pub status: String,
    /// The primary endpoint's host (live only).
    pub primary: Option<String>,
}

impl Kind for ReplicationGroup {
    const LABEL: &'static str = "elasticache store";
    const KEY: &'static str = "store";
    type Spec = GroupSpec;

    /// ElastiCache's rules for a replication group id.
    fn check(stack: &Stack) -> Vec<Problem> {
        let names = Names::of(stack);
        stack
            .stores
            .iter()
            .filter_map(|store| {
                let id = names.store(&store.name);
                let ok = id.len() <= 40 && !id.contains("--") && id.starts_with(|c: char| c.is_ascii_lowercase());
                (!ok).then(|| Problem {
                    line: store.line,
                    message: format!(
                        "store {:?}: its ElastiCache id {id:?} (app-store) must be at most 40 characters, start with \
                         a letter and have no \"--\": shorten the app or the store name",
                        store.name
                    ),
                })
            })
            .collect()
    }

    fn desired(stack: &Stack, _live: &Live) -> Vec<GroupSpec> {
        let names = Names::of(stack);
        stack
            .stores
            .iter()
            .map(|store| {
                let aws = &store.aws;
                GroupSpec {
                    id: names.store(&store.name),
                    store: store.name.clone(),
                    engine: match aws.engine {
                        stack_spec::store::Engine::Valkey => "valkey",
                        stack_spec::store::Engine::Redis => "redis",
                    }
                    .to_owned(),
                    engine_version: aws.engine_version.clone(),
                    node_type: aws.node_type.clone(),
                    nodes: Some(aws.replicas + 1),
                    automatic_failover: aws.replicas > 0,
                    multi_az: aws.replicas > 0,
                    transit_encryption: true,
                    at_rest_encryption: true,
                    auth: true,
                    port: store.port,
                    snapshot_retention_days: Some(aws.snapshot_retention_days),
                    subnet_group: names.store(&store.name),
                    secret: names.store_secret(&store.name),
                    status: String::new(),
                    primary: None,
                }
            })
            .collect()
    }

    fn name(spec: &GroupSpec) -> &str {
        &spec.id
    }

    fn fields(spec: &GroupSpec) -> Fields {
        let mut fields = Fields::from([
            ("engine", spec.engine.clone()),
            ("node_type", spec.node_type.clone()),
            ("automatic_failover", render::on_off(spec.automatic_failover)),
            ("multi_az", render::on_off(spec.multi_az)),
            ("encryption_in_transit", render::on_off(spec.transit_encryption)),
            ("encryption_at_rest", render::on_off(spec.at_rest_encryption)),
            ("auth_token", render::on_off(spec.auth)),
            ("port", spec.port.to_string()),
        ]);
        if let Some(version) = &spec.engine_version {
            fields.insert("engine_version", version.clone());
        }
        if let Some(nodes) = spec.nodes {
            fields.insert("nodes", nodes.to_string());
        }
        if let Some(days) = spec.snapshot_retention_days {
            fields.insert("snapshot_retention_days", days.to_string());
        }
        fields
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<GroupSpec>>> {
        let mut found = BTreeMap::new();
        for store in &cx.stack.stores {
            let id = cx.names.store(&store.name);
            let Some(group) = describe(cx.clients, &id).await? else { continue };
            // On its way out: as good as gone (a new apply makes it again).
            if group.status() == Some("deleting") {
                continue;
            }
            let arn = group.arn().unwrap_or_default().to_owned();
            let (owned, tags) = elasticache_tags(cx, &arn).await?;
            let primary = group.node_groups().first().and_then(|node_group| node_group.primary_endpoint());
            let enabled = |status: Option<&str>| matches!(status, Some("enabled" | "enabling"));
            let members = group.member_clusters();
            let nodes = if members.is_empty() {
                group.node_groups().first().map(|node_group| node_group.node_group_members().len())
            } else {
                Some(members.len())
            }
            .filter(|nodes| *nodes > 0)
            .and_then(|nodes| u32::try_from(nodes).ok());
            let automatic_failover = enabled(group.automatic_failover().map(|status| status.as_str()));
            // Failover needs a replica: a report of one node with failover on
            // contradicts itself (an emulator's), so the count is not known.
            let nodes = nodes.filter(|nodes| !(automatic_failover && *nodes < 2));
            let engine_version = match members.first() {
                Some(member) => engine_version(cx.clients, member).await?,
                None => None,
            };
            let spec = GroupSpec {
                id: id.clone(),
                store: store.name.clone(),
                engine: group.engine().unwrap_or("redis").to_owned(),
                engine_version,
                node_type: group.cache_node_type().unwrap_or_default().to_owned(),
                nodes,
                automatic_failover,
                multi_az: enabled(group.multi_az().map(|status| status.as_str())),
                transit_encryption: group.transit_encryption_enabled().unwrap_or(false),
                at_rest_encryption: group.at_rest_encryption_enabled().unwrap_or(false),
                auth: group.auth_token_enabled().unwrap_or(false),
                port: primary.and_then(|endpoint| u16::try_from(endpoint.port()?).ok()).unwrap_or(store.port),
                snapshot_retention_days: group.snapshot_retention_limit().and_then(|days| u32::try_from(days).ok()),
                subnet_group: String::new(),
                secret: cx.names.store_secret(&store.name),
                status: group.status().unwrap_or_default().to_owned(),
                primary: primary.and_then(|endpoint| endpoint.address()).map(str::to_owned),
            };
            found.insert(id.clone(), Found { id, arn, owned, tags: Some(tags), spec });
        }
        Ok(found)
    }

    fn replacement_reason(want: &GroupSpec, have: &GroupSpec) -> Option<String> {
        let why = if want.engine != have.engine {
            "the engine"
        } else if want.port != have.port {
            "the port"
        } else if want.transit_encryption != have.transit_encryption {
            "encryption in transit"
        } else if want.at_rest_encryption != have.at_rest_encryption {
            "encryption at rest"
        } else {
            return None;
        };
        Some(format!(
            "{why} can only change by recreating the store, which loses its boards (a final snapshot is kept)"
        ))
    }

    /// Creates (with the secret's token), resizes or replaces the store,
    /// waits until it is available, and points the secret at it; passes
    /// on its id.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &GroupSpec,
        have: Option<&Found<GroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let clients = cx.cx.clients;
        let secret_arn = cx.made.id::<StoreSecret>(&spec.secret);
        match (action, have) {
            (Action::Unchanged, Some(_)) => {}
            (Action::Update { .. }, Some(found)) => {
                update(clients, spec, &found.spec).await?;
                Self::done("updated", &spec.id);
            }
            (action, have) => {
                if let (Action::Replace { .. }, Some(found)) = (action, have) {
                    let snapshot = replacement_snapshot_name(&found.spec.id, now_secs());
                    delete(clients, &found.spec.id, Some(&snapshot)).await?;
                    provision_cli::say!(
                        "  deleting elasticache store {} to replace it (final snapshot {snapshot})",
                        found.spec.id
                    );
                    wait_gone(clients, &found.spec.id).await?;
                }
                create(cx, spec, &secret_arn).await?;
                Self::done("created", &spec.id);
            }
        }
        let primary = wait_available(clients, &spec.id).await?;
        publish(clients, &secret_arn, &format!("{primary}:{}", spec.port)).await?;
        Ok(Output::id(&spec.id))
    }

    fn teardown_line(found: &Found<GroupSpec>, options: DestroyOptions) -> Option<String> {
        Some(match snapshot_name(&found.spec.id, options) {
            Some(snapshot) => format!("elasticache store {} (its data kept in a final snapshot {snapshot})", found.id),
            None => format!("elasticache store {} (no final snapshot: --skip-final-snapshot)", found.id),
        })
    }

    /// Asks ElastiCache to delete each store, with a final snapshot unless
    /// told not to; what the store used (its security group and subnet
    /// group) is deleted once ElastiCache lets go of it.
    async fn retag(cx: Cx<'_>, found: &Found<GroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_elasticache(cx, &found.arn, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<GroupSpec>>, options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let snapshot = snapshot_name(&found.id, options);
            delete(cx.clients, &found.id, snapshot.as_deref()).await?;
            match snapshot {
                Some(snapshot) => {
                    provision_cli::say!("  deleting elasticache store {} (final snapshot {snapshot})", found.id)
                }
                None => provision_cli::say!("  deleting elasticache store {} (no final snapshot)", found.id),
            }
        }
        Ok(())
    }

    /// Each store's state, engine, nodes and primary endpoint.
    async fn status(cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        for store in &cx.stack.stores {
            let id = cx.names.store(&store.name);
            let found = live.get::<ReplicationGroup>(&id);
            report.stores.push(match found {
                None => StoreStatus { name: store.name.clone(), id, ..StoreStatus::default() },
                Some(found) => {
                    let spec = &found.spec;
                    StoreStatus {
                        name: store.name.clone(),
                        id,
                        created: true,
                        status: Some(spec.status.clone()),
                        engine: Some(spec.engine.clone()),
                        engine_version: spec.engine_version.clone(),
                        nodes: spec.nodes,
                        primary: spec.primary.clone(),
                        port: Some(spec.port),
                    }
                }
            });
        }
        Ok(())
    }
}

async fn describe(clients: &Clients, id: &str) -> anyhow::Result<Option<aws_sdk_elasticache::types::ReplicationGroup>> {
    let answer = clients.elasticache.describe_replication_groups().replication_group_id(id).send().await;
    let answer = answer
        .map_err(|error| classify(error, "elasticache:DescribeReplicationGroups", &format!("elasticache store {id}")));
    Ok(unless_gone(answer)?.and_then(|answer| answer.replication_groups().first().cloned()))
}

async fn engine_version(clients: &Clients, cluster: &str) -> anyhow::Result<Option<String>> {
    let answer = clients.elasticache.describe_cache_clusters().cache_cluster_id(cluster).send().await;
    let answer = answer.map_err(|error| classify(error, "elasticache:DescribeCacheClusters", cluster));
    Ok(unless_gone(answer)?.and_then(|answer| {
        answer.cache_clusters().first().and_then(|cluster| cluster.engine_version()).map(str::to_owned)
    }))
}

async fn create(cx: ApplyCx<'_>, spec: &GroupSpec, secret_arn: &str) -> anyhow::Result<()> {
    use aws_sdk_elasticache::types::Tag;
    let (clients, names) = (cx.cx.clients, cx.cx.names);
    let url = read_url(clients, secret_arn).await?.context("the store's secret has no value yet")?;
    let mut request = clients
        .elasticache
        .create_replication_group()
        .replication_group_id(&spec.id)
        .replication_group_description(format!("store {} of {}", spec.store, names.app()))
        .engine(&spec.engine)
        .set_engine_version(spec.engine_version.clone())
        .cache_node_type(&spec.node_type)
        .num_cache_clusters(i32::try_from(spec.nodes.unwrap_or(1)).unwrap_or(1))
        .automatic_failover_enabled(spec.automatic_failover)
        .multi_az_enabled(spec.multi_az)
        .transit_encryption_enabled(spec.transit_encryption)
        .at_rest_encryption_enabled(spec.at_rest_encryption)
        .auth_token(token_of(&url)?)
        .set_snapshot_retention_limit(spec.snapshot_retention_days.and_then(|days| i32::try_from(days).ok()))
        .port(i32::from(spec.port))
        .cache_subnet_group_name(cx.made.id::<CacheSubnetGroup>(&spec.subnet_group))
        .security_group_ids(cx.made.id::<StoreSecurityGroup>(&names.store_security_group(&spec.store)));
    for (key, value) in names.tags() {
        request = request.tags(Tag::builder().key(key).value(value).build());
    }
    if let Err(error) = request.send().await {
        let error = classify(error, "elasticache:CreateReplicationGroup", &format!("elasticache store {}", spec.id));
        if error.code.as_deref() != Some("ReplicationGroupAlreadyExists") {
            return Err(error.into());
        }
        // Asked for by an apply that was interrupted, or made meanwhile by
        // someone else: carried on with only if its tags say it is ours.
        let found = describe(clients, &spec.id).await?;
        let arn = found.as_ref().and_then(|group| group.arn()).unwrap_or_default().to_owned();
        let tags = elasticache_tags(cx.cx, &arn).await?.1;
        names.check_appeared(
            &format!("elasticache store {}", spec.id),
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
    }
    Ok(())
}

/// One in-place change of a store, in the order [`changes`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// To this many nodes (a primary and replicas), growing or shrinking.
    Resize { nodes: u32, grow: bool },
    /// Node type, engine version, failover, Multi-AZ.
    Modify,
}

/// What an update of `have` into `want` does, in order. Replicas are added
/// before the settings change and removed after: failover needs a replica
/// to exist (0 -> 1 replica enables it), and must be off before the last
/// one goes.
fn changes(want: &GroupSpec, have: &GroupSpec) -> Vec<Change> {
    let resize = match (want.nodes, have.nodes) {
        (Some(wanted), Some(current)) if wanted != current => {
            Some(Change::Resize { nodes: wanted, grow: wanted > current })
        }
        _ => None,
    };
    let retention_changes = have.snapshot_retention_days.is_some()
        && want.snapshot_retention_days.is_some()
        && want.snapshot_retention_days != have.snapshot_retention_days;
    let modify = (want.node_type != have.node_type
        || retention_changes
        || (want.engine_version.is_some() && want.engine_version != have.engine_version)
        || want.automatic_failover != have.automatic_failover
        || want.multi_az != have.multi_az)
        .then_some(Change::Modify);
    let grows = matches!(resize, Some(Change::Resize { grow: true, .. }));
    let order = if grows { [resize, modify] } else { [modify, resize] };
    order.into_iter().flatten().collect()
}

/// Changes what ElastiCache changes in place, in [`changes`]'s order,
/// waiting for the store between two.
async fn update(clients: &Clients, want: &GroupSpec, have: &GroupSpec) -> anyhow::Result<()> {
    let resource = format!("elasticache store {}", want.id);
    let changes = changes(want, have);
    for (index, change) in changes.iter().enumerate() {
        if index > 0 {
            wait_available(clients, &want.id).await?;
        }
        match *change {
            Change::Resize { nodes, grow } => resize_to(clients, &want.id, nodes, grow).await?,
            Change::Modify => {
                let version = want.engine_version.clone().filter(|_| want.engine_version != have.engine_version);
                clients
                    .elasticache
                    .modify_replication_group()
                    .replication_group_id(&want.id)
                    .apply_immediately(true)
                    .set_cache_node_type((want.node_type != have.node_type).then(|| want.node_type.clone()))
                    .set_engine_version(version)
                    .set_snapshot_retention_limit(
                        want.snapshot_retention_days
                            .filter(|_| want.snapshot_retention_days != have.snapshot_retention_days)
                            .and_then(|days| i32::try_from(days).ok()),
                    )
                    .automatic_failover_enabled(want.automatic_failover)
                    .multi_az_enabled(want.multi_az)
                    .send()
                    .await
                    .map_err(|e| explain(e, "elasticache:ModifyReplicationGroup", &resource))?;
            }
        }
    }
    if changes.last() == Some(&Change::Modify) {
        wait_available(clients, &want.id).await?;
    }
    Ok(())
}

/// `IncreaseReplicaCount` (`grow`) or `DecreaseReplicaCount` to `nodes`
/// nodes: a primary and `nodes - 1` replicas.
async fn resize_to(clients: &Clients, id: &str, nodes: u32, grow: bool) -> anyhow::Result<()> {
    let resource = format!("elasticache store {id}");
    let replicas = i32::try_from(nodes.saturating_sub(1)).unwrap_or(0);
    let elasticache = &clients.elasticache;
    if grow {
        elasticache
            .increase_replica_count()
            .replication_group_id(id)
            .new_replica_count(replicas)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| explain(e, "elasticache:IncreaseReplicaCount", &resource))?;
    } else {
        elasticache
            .decrease_replica_count()
            .replication_group_id(id)
            .new_replica_count(replicas)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| explain(e, "elasticache:DecreaseReplicaCount", &resource))?;
    }
    Ok(())
}

async fn delete(clients: &Clients, id: &str, snapshot: Option<&str>) -> anyhow::Result<()> {
    let answer = clients
        .elasticache
        .delete_replication_group()
        .replication_group_id(id)
        .set_final_snapshot_identifier(snapshot.map(str::to_owned))
        .send()
        .await;
    let resource = format!("elasticache store {id}");
    unless_gone(answer.map_err(|error| classify(error, "elasticache:DeleteReplicationGroup", &resource)))?;
    Ok(())
}

/// Waits until the store is available, a line every minute; returns its
/// primary endpoint's host.
async fn wait_available(clients: &Clients, id: &str) -> anyhow::Result<String> {
    let started = tokio::time::Instant::now();
    let mut said = started;
    let primary = poll_until(AVAILABLE_LIMIT, Duration::from_secs(15), || async {
        let group = describe(clients, id).await?.with_context(|| format!("elasticache store {id} disappeared"))?;
        let status = group.status().unwrap_or_default();
        if status == "available" {
            let primary = group.node_groups().first().and_then(|node_group| node_group.primary_endpoint());
            return Ok(primary.and_then(|endpoint| endpoint.address()).map(str::to_owned));
        }
        if matches!(status, "create-failed" | "deleting") {
            bail!("elasticache store {id} is {status}");
        }
        Ok(None)
    });
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            if said.elapsed() >= Duration::from_secs(60) {
                said = tokio::time::Instant::now();
                provision_cli::say!(
                    "  waiting for elasticache store {id} to be available ({}s)",
                    started.elapsed().as_secs()
                );
            }
        }
    };
    let primary = tokio::select! {
        primary = primary => primary?,
        () = progress => unreachable!("the progress loop never ends"),
    };
    primary.with_context(|| format!("elasticache store {id} did not become available within 60 minutes"))
}

/// Waits until a deleted store is gone, so its id can be used again.
async fn wait_gone(clients: &Clients, id: &str) -> anyhow::Result<()> {
    let gone = poll_until(AVAILABLE_LIMIT, Duration::from_secs(15), || async {
        Ok(describe(clients, id).await?.is_none().then_some(()))
    })
    .await?;
    gone.with_context(|| format!("elasticache store {id} was not deleted within 60 minutes"))
}

/// The stores `plan` replaces that `given` (names from the stack file, or
/// replication group ids) does not name, as (id, name).
pub fn unconsented_replacements(
    plan: &crate::engine::plan::Plan,
    desired: &crate::engine::state::Desired,
    given: &[String],
) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter(|step| step.kind == ReplicationGroup::KEY && matches!(step.action, Action::Replace { .. }))
        .filter_map(|step| {
            let store = desired.get::<ReplicationGroup>(&step.name)?.store.clone();
            let named = given.iter().any(|given| *given == store || *given == step.name);
            (!named).then(|| (step.name.clone(), store))
        })
        .collect()
}

/// The snapshot a replacement keeps: `<id>-before-replace-<yyyymmdd-hhmmss>`
/// (UTC), unique for each replacement (ElastiCache refuses a name it has).
fn replacement_snapshot_name(id: &str, now: u64) -> String {
    format!("{id}-before-replace-{}", utc_stamp(now))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// The final snapshot destroy keeps: `<id>-final-<yyyymmdd-hhmmss>` (UTC),
/// or none with `--skip-final-snapshot`.
fn snapshot_name(id: &str, options: DestroyOptions) -> Option<String> {
    (!options.skip_final_snapshot).then(|| format!("{id}-final-{}", utc_stamp(options.started_at)))
}

/// `yyyymmdd-hhmmss` of a Unix time, in UTC.
fn utc_stamp(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (the proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_named_by_the_utc_time() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_795_779_045), "20261127-113045");
        let options = DestroyOptions { started_at: 0, ..DestroyOptions::default() };
        assert_eq!(snapshot_name("app-board", options).as_deref(), Some("app-board-final-19700101-000000"));
        assert_eq!(replacement_snapshot_name("app-board", 86_400 + 61), "app-board-before-replace-19700102-000101");
        let skipped = DestroyOptions { skip_final_snapshot: true, ..options };
        assert_eq!(snapshot_name("app-board", skipped), None);
    }

    fn group(nodes: u32) -> GroupSpec {
        GroupSpec {
            id: "app-board".into(),
            store: "board".into(),
            engine: "valkey".into(),
            engine_version: None,
            node_type: "cache.t4g.micro".into(),
            nodes: Some(nodes),
            automatic_failover: nodes > 1,
            multi_az: nodes > 1,
            transit_encryption: true,
            at_rest_encryption: true,
            auth: true,
            port: 6379,
            snapshot_retention_days: Some(7),
            subnet_group: String::new(),
            secret: String::new(),
            status: "available".into(),
            primary: None,
        }
    }

    #[test]
    fn a_replacement_needs_its_store_named_and_nothing_else_does() {
        use crate::engine::plan::{Plan, Step};
        let step =
            |name: &str, action: Action| Step { kind: ReplicationGroup::KEY, label: "", name: name.into(), action };
        let mut desired = crate::engine::state::Desired::default();
        let other = GroupSpec { id: "app-cache".into(), store: "cache".into(), ..group(2) };
        desired.insert::<ReplicationGroup>(vec![group(2), other]);
        let plan = Plan {
            app: "app".into(),
            account: String::new(),
            region: String::new(),
            vpc: String::new(),
            steps: vec![
                step("app-board", Action::Replace { reason: "the engine".into() }),
                step("app-cache", Action::Update { changes: Vec::new() }),
            ],
            notes: Vec::new(),
        };
        assert_eq!(unconsented_replacements(&plan, &desired, &[]), [("app-board".to_owned(), "board".to_owned())]);
        assert_eq!(unconsented_replacements(&plan, &desired, &["cache".into()]).len(), 1);
        assert!(unconsented_replacements(&plan, &desired, &["board".into()]).is_empty());
        assert!(unconsented_replacements(&plan, &desired, &["app-board".into()]).is_empty());
    }

    #[test]
    fn a_replica_is_added_before_failover_and_removed_after_it() {
        let grow = Change::Resize { nodes: 2, grow: true };
        assert_eq!(changes(&group(2), &group(1)), [grow, Change::Modify], "0 -> 1 replica");
        let shrink = Change::Resize { nodes: 1, grow: false };
        assert_eq!(changes(&group(1), &group(2)), [Change::Modify, shrink], "1 -> 0 replicas");
        let more = Change::Resize { nodes: 3, grow: true };
        assert_eq!(changes(&group(3), &group(2)), [more], "failover stays on: nothing to modify");
        let bigger = GroupSpec { node_type: "cache.r7g.large".into(), ..group(1) };
        assert_eq!(changes(&bigger, &group(1)), [Change::Modify]);
        assert_eq!(changes(&group(1), &group(1)), []);
    }
}

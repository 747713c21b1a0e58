//! The tasks' security group: the service ports open only to members of the
//! group (or the sources the stack names in `allow_from`, and a service's
//! load balancer on that service's port), all egress (image pulls, logs,
//! AWS APIs). A rule found that the stack does not ask for is revoked.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use super::ingress::{self, security_group::IngressSecurityGroup};
use crate::{
    clients::ec2::{Filter, Permission, SecurityGroup as Ec2Group},
    engine::{
        names::Tags,
        plan::Action,
        poll::wait_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};
use stack_spec::Stack;

/// The tasks' security group.
pub struct SecurityGroup;

/// The source of an ingress rule meaning the group itself.
pub const FROM_SELF: &str = "self";

/// The group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupSpec {
    pub name: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// (TCP port, source group id, [`FROM_SELF`] or a load balancer's
    /// [`ingress::source`]).
    pub ingress: BTreeSet<(u16, String)>,
    /// Rules of any other shape (someone else's): none wanted.
    pub foreign: Vec<Permission>,
}

impl Kind for SecurityGroup {
    const LABEL: &'static str = "security group";
    const KEY: &'static str = "security-group";
    type Spec = SecurityGroupSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<SecurityGroupSpec> {
        let ingress = stack
            .services
            .iter()
            .flat_map(|service| {
                std::iter::once(FROM_SELF.to_owned())
                    .chain(stack.aws.allow_from.iter().cloned())
                    .chain(service.ingress.as_ref().map(|_| ingress::source(&service.name)))
                    .map(move |source| (service.port, source))
            })
            .collect();
        let name = crate::engine::names::Names::of(stack).security_group();
        vec![SecurityGroupSpec { name, vpc_id: live.vpc_id.clone(), ingress, foreign: Vec::new() }]
    }

    fn name(spec: &SecurityGroupSpec) -> &str {
        &spec.name
    }

    fn own_tags(want: &SecurityGroupSpec) -> Tags {
        name_tag(&want.name)
    }

    fn fields(spec: &SecurityGroupSpec) -> Fields {
        group_fields(&spec.vpc_id, &spec.ingress, &spec.foreign)
    }

    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<SecurityGroupSpec>>> {
        let name = cx.names.security_group();
        let vpc_id = &live.vpc_id;
        let load_balancers: BTreeMap<&str, String> = cx
            .stack
            .services
            .iter()
            .filter_map(|service| {
                let group = live.get::<IngressSecurityGroup>(&cx.names.ingress_security_group(&service.name))?;
                Some((group.id.as_str(), ingress::source(&service.name)))
            })
            .collect();
        let group = read_group(cx, &name, vpc_id, |own, source| match load_balancers.get(source) {
            Some(label) => label.clone(),
            None if source == own => FROM_SELF.to_owned(),
            None => source.to_owned(),
        })
        .await?;
        let Some(ReadGroup { id, owned, tags, ingress, foreign }) = group else { return Ok(BTreeMap::new()) };
        let found = Found {
            arn: id.clone(),
            owned,
            tags: Some(tags),
            spec: SecurityGroupSpec { name: name.clone(), vpc_id: vpc_id.to_owned(), ingress, foreign },
            id,
        };
        Ok(BTreeMap::from([(name, found)]))
    }

    /// Creates the group if missing and brings its rules to the stack's;
    /// passes on its `sg-` id.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &SecurityGroupSpec,
        have: Option<&Found<SecurityGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let names = cx.cx.names;
        let load_balancer_group = |source: &str| {
            let service = cx.cx.stack.services.iter().find(|service| ingress::source(&service.name) == source)?;
            let name = names.ingress_security_group(&service.name);
            let made = cx.made.id::<IngressSecurityGroup>(&name);
            // One being retired was not applied: its rule goes by its live id.
            Some(if made.is_empty() { cx.live.get::<IngressSecurityGroup>(&name)?.id.clone() } else { made })
        };
        let permission = |id: &str, (port, source): &(u16, String)| {
            let mut rule = Permission::tcp(*port);
            if let Some(group) = load_balancer_group(source) {
                rule.groups.push((group, Some(source.clone())));
                return rule;
            }
            match source.as_str() {
                FROM_SELF => rule.groups.push((id.to_owned(), Some("tasks of the same app".into()))),
                group if group.starts_with("sg-") => {
                    rule.groups.push((group.to_owned(), Some("named in the stack's allow_from".into())));
                }
                cidr => rule.cidrs.push(cidr.to_owned()),
            }
            rule
        };
        let want = WantedGroup {
            name: &spec.name,
            vpc_id: &spec.vpc_id,
            description: format!("tasks of {}: service ports from the group only", names.app()),
            ingress: &spec.ingress,
        };
        let have = have.map(|found| LiveGroup::new(&found.id, &found.spec.ingress, &found.spec.foreign));
        Ok(Output::id(apply_group::<Self>(cx, want, have, action, permission).await?))
    }

    fn teardown_line(found: &Found<SecurityGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("security group {} ({})", found.spec.name, found.id))
    }

    async fn retag(cx: Cx<'_>, found: &Found<SecurityGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_group(cx, &found.id, set, remove).await
    }

    async fn destroy(
        cx: Cx<'_>,
        owned: Vec<&Found<SecurityGroupSpec>>,
        _options: DestroyOptions,
    ) -> anyhow::Result<()> {
        for group in owned {
            // The tasks' network interfaces linger a little after they stop.
            delete_when_free(cx, &group.id, Duration::from_secs(300)).await?;
            crate::engine::journal::done("deleted", "security group", &format!("{} ({})", group.spec.name, group.id));
        }
        Ok(())
    }
}

/// A security group as read back.
pub struct ReadGroup {
    /// Its `sg-` id.
    pub id: String,
    /// Whether it carries this app's tags.
    pub owned: bool,
    /// All its tags.
    pub tags: Tags,
    /// Its TCP ingress rules as (port, source); see [`read_group`].
    pub ingress: BTreeSet<(u16, String)>,
    /// Its other ingress rules (any protocol, a range of ports), which the
    /// tool never makes: someone else's, shown by plan, revoked by apply.
    pub foreign: Vec<Permission>,
}

/// Reads the group called `name` in `vpc_id`, if there is one. A source
/// group's id is shown as `name_group(the group's own id, source id)` says
/// (the tasks' group is "self" to itself, "tasks" to a store's group).
pub async fn read_group(
    cx: Cx<'_>,
    name: &str,
    vpc_id: &str,
    name_group: impl Fn(&str, &str) -> String,
) -> anyhow::Result<Option<ReadGroup>> {
    let groups = cx
        .clients
        .ec2
        .describe_security_groups(
            &[Filter("group-name", name), Filter("vpc-id", vpc_id)],
            &format!("security group {name}"),
        )
        .await?;
    Ok(groups.first().map(|group| ReadGroup {
        id: group.id.clone(),
        owned: cx.names.owns(group.tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))),
        tags: group.tags.clone(),
        ingress: ingress_rules(group, |source| name_group(&group.id, source)),
        foreign: group.ingress.iter().filter(|permission| !single_tcp_port(permission)).cloned().collect(),
    }))
}

/// The `Name` tag every group gets: the EC2 console's name column shows it.
pub fn name_tag(name: &str) -> Tags {
    Tags::from([("Name".to_owned(), name.to_owned())])
}

/// Puts a security group's tags back to the stack's (`CreateTags`,
/// `DeleteTags`); the three kinds of group share it.
pub async fn retag_group(cx: Cx<'_>, group_id: &str, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
    if !set.is_empty() {
        cx.clients.ec2.create_tags(group_id, set).await?;
    }
    if !remove.is_empty() {
        cx.clients.ec2.delete_tags(group_id, remove).await?;
    }
    Ok(())
}

/// What plan compares of a security group: its VPC and its rules (those
/// of other shapes than one TCP port, which the tool never makes, apart).
pub fn group_fields(vpc_id: &str, ingress: &BTreeSet<(u16, String)>, foreign: &[Permission]) -> Fields {
    let rules: Vec<String> = ingress.iter().map(|(port, source)| format!("tcp/{port} from {source}")).collect();
    let others: Vec<String> = foreign.iter().map(describe).collect();
    Fields::from([
        ("vpc", vpc_id.to_owned()),
        ("ingress", rules.join(", ")),
        ("other_ingress", if others.is_empty() { "none".to_owned() } else { others.join(", ") }),
    ])
}

/// A rule as people read it: "all traffic from 0.0.0.0/0", "udp/53 from sg-1".
fn describe(permission: &Permission) -> String {
    let what = match (permission.protocol.as_str(), permission.from_port, permission.to_port) {
        ("-1", _, _) => "all traffic".to_owned(),
        (protocol, Some(from), Some(to)) if from == to => format!("{protocol}/{from}"),
        (protocol, Some(from), Some(to)) => format!("{protocol}/{from}-{to}"),
        (protocol, _, _) => format!("{protocol}/all"),
    };
    let sources: Vec<&str> = permission
        .groups
        .iter()
        .map(|(group, _)| group.as_str())
        .chain(permission.cidrs.iter().map(String::as_str))
        .collect();
    format!("{what} from {}", sources.join(" "))
}

/// Whether a rule has the one shape the tool makes: TCP on one port.
fn single_tcp_port(permission: &Permission) -> bool {
    permission.protocol == "tcp" && permission.from_port.is_some() && permission.from_port == permission.to_port
}

/// A security group as the stack wants it, for [`apply_group`].
pub struct WantedGroup<'a> {
    pub name: &'a str,
    pub vpc_id: &'a str,
    /// What it is for, said once at creation.
    pub description: String,
    /// Its TCP ingress rules as (port, source).
    pub ingress: &'a BTreeSet<(u16, String)>,
}

/// A security group as plan read it, for [`apply_group`].
pub struct LiveGroup<'a> {
    /// Its `sg-` id.
    pub id: &'a str,
    /// Its TCP rules as (port, source).
    pub ingress: &'a BTreeSet<(u16, String)>,
    /// Its rules of other shapes.
    pub foreign: &'a [Permission],
}

impl<'a> LiveGroup<'a> {
    /// The live group of a kind's [`Found`].
    pub fn new(id: &'a str, ingress: &'a BTreeSet<(u16, String)>, foreign: &'a [Permission]) -> Self {
        Self { id, ingress, foreign }
    }
}

/// What apply does to every kind of security group: creates it if missing,
/// authorizes the rules `want` has and the live group (`have`: its id, its
/// rules and its foreign rules) lacks, and revokes the ones only the live
/// group has, foreign ones included; `permission(group id, rule)` turns a
/// rule into EC2's form. Returns the group's id.
pub async fn apply_group<K: Kind>(
    cx: ApplyCx<'_>,
    want: WantedGroup<'_>,
    have: Option<LiveGroup<'_>>,
    action: &Action,
    permission: impl Fn(&str, &(u16, String)) -> Permission,
) -> anyhow::Result<String> {
    let (id, live, foreign) = match &have {
        Some(group) if *action == Action::Unchanged => return Ok(group.id.to_owned()),
        Some(group) => (group.id.to_owned(), group.ingress.clone(), group.foreign.to_vec()),
        None => {
            let mut tags = cx.cx.names.tags();
            tags.extend(name_tag(want.name));
            let id = cx.cx.clients.ec2.create_security_group(want.name, &want.description, want.vpc_id, &tags).await?;
            K::done("created", want.name);
            (id, BTreeSet::new(), Vec::new())
        }
    };
    let ec2 = &cx.cx.clients.ec2;
    let resource = format!("security group {}", want.name);
    let missing: Vec<_> = want.ingress.difference(&live).map(|rule| permission(&id, rule)).collect();
    if !missing.is_empty() {
        ec2.authorize_ingress(&id, &missing, &resource).await?;
    }
    let mut extra: Vec<_> = live.difference(want.ingress).map(|rule| permission(&id, rule)).collect();
    extra.extend(foreign);
    if !extra.is_empty() {
        ec2.revoke_ingress(&id, &extra, &resource).await?;
    }
    if have.is_some() && matches!(action, Action::Update { .. }) {
        K::done("updated", want.name);
    }
    Ok(id)
}

/// Deletes a security group once nothing uses it any more (EC2 refuses
/// while network interfaces are in it), waiting up to `limit`.
pub async fn delete_when_free(cx: Cx<'_>, id: &str, limit: Duration) -> anyhow::Result<()> {
    wait_until(&format!("security group {id} to be free"), limit, || async {
        match cx.clients.ec2.delete_security_group(id).await {
            Ok(()) => Ok(true),
            Err(error) if error.code.as_deref() == Some("DependencyViolation") => Ok(false),
            Err(error) => Err(error.into()),
        }
    })
    .await
}

/// A group's TCP ingress rules as (port, source): a source group's id as
/// `name_group` names it, a CIDR as written (not ours: plan shows it and
/// apply revokes it).
fn ingress_rules(group: &Ec2Group, name_group: impl Fn(&str) -> String) -> BTreeSet<(u16, String)> {
    let mut ingress = BTreeSet::new();
    for permission in group.ingress.iter().filter(|permission| single_tcp_port(permission)) {
        let (Some(from), Some(to)) = (permission.from_port, permission.to_port) else { continue };
        let ports = || (from..=to).filter_map(|port| u16::try_from(port).ok());
        for (source, _) in &permission.groups {
            let source = name_group(source);
            ingress.extend(ports().map(|port| (port, source.clone())));
        }
        for cidr in &permission.cidrs {
            ingress.extend(ports().map(|port| (port, cidr.clone())));
        }
    }
    ingress
}

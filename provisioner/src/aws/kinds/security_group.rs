//! The tasks' security group: the service ports open only to members of the
//! group (or the sources the stack names in `allow_from`), all egress (image
//! pulls, logs, AWS APIs). A rule found that the stack does not ask for is
//! revoked.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::Context as _;
use aws_sdk_ec2::types::Filter;

use crate::{
    aws::{
        destroy::wait_until,
        error::{AwsError, classify, explain},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
    spec::Stack,
};

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
    /// (TCP port, source group id or [`FROM_SELF`]).
    pub ingress: BTreeSet<(u16, String)>,
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
                    .map(move |source| (service.port, source))
            })
            .collect();
        let name = crate::aws::names::Names::new(&stack.app).security_group();
        vec![SecurityGroupSpec { name, vpc_id: live.vpc_id.clone(), ingress }]
    }

    fn name(spec: &SecurityGroupSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &SecurityGroupSpec) -> Fields {
        let rules: Vec<String> =
            spec.ingress.iter().map(|(port, source)| format!("tcp/{port} from {source}")).collect();
        Fields::from([("vpc", spec.vpc_id.clone()), ("ingress", rules.join(", "))])
    }

    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<SecurityGroupSpec>>> {
        let name = cx.names.security_group();
        let vpc_id = &live.vpc_id;
        let answer = cx
            .clients
            .ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(&name).build())
            .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
            .send()
            .await
            .map_err(|error| explain(error, "ec2:DescribeSecurityGroups", &format!("security group {name}")))?;
        let Some(group) = answer.security_groups().first() else { return Ok(BTreeMap::new()) };
        let id = group.group_id().unwrap_or_default().to_owned();
        let ingress = ingress_rules(group, |source| if source == id { FROM_SELF } else { source }.to_owned());
        let found = Found {
            arn: id.clone(),
            owned: cx.names.owns(group.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))),
            spec: SecurityGroupSpec { name: name.clone(), vpc_id: vpc_id.to_owned(), ingress },
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
        use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
        let names = cx.cx.names;
        let (id, live_ingress) = match have {
            Some(found) if *action == Action::Unchanged => return Ok(Output::id(&found.id)),
            Some(found) => (found.id.clone(), found.spec.ingress.clone()),
            None => {
                let description = format!("tasks of {}: service ports from the group only", names.app());
                let id = create_group(cx, &spec.name, &spec.vpc_id, &description).await?;
                Self::done("created", &spec.name);
                (id, BTreeSet::new())
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
        sync_ingress(cx, &spec.name, &id, &spec.ingress, &live_ingress, permission).await?;
        if have.is_some() && matches!(action, Action::Update { .. }) {
            Self::done("updated", &spec.name);
        }
        Ok(Output::id(id))
    }

    fn teardown_line(found: &Found<SecurityGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("security group {} ({})", found.spec.name, found.id))
    }

    async fn destroy(
        cx: Cx<'_>,
        owned: Vec<&Found<SecurityGroupSpec>>,
        _options: DestroyOptions,
    ) -> anyhow::Result<()> {
        for group in owned {
            // The tasks' network interfaces linger a little after they stop.
            delete_when_free(cx, &group.id, Duration::from_secs(300)).await?;
            println!("  deleted security group {} ({})", group.spec.name, group.id);
        }
        Ok(())
    }
}

/// Creates a security group of the app named `name` in `vpc_id`; returns
/// its id.
pub async fn create_group(cx: ApplyCx<'_>, name: &str, vpc_id: &str, description: &str) -> anyhow::Result<String> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut tags = TagSpecification::builder().resource_type(ResourceType::SecurityGroup);
    for (key, value) in cx.cx.names.tags() {
        tags = tags.tags(Tag::builder().key(key).value(value).build());
    }
    tags = tags.tags(Tag::builder().key("Name").value(name).build());
    let answer = cx
        .cx
        .clients
        .ec2
        .create_security_group()
        .group_name(name)
        .description(description)
        .vpc_id(vpc_id)
        .tag_specifications(tags.build())
        .send()
        .await
        .map_err(|e| explain(e, "ec2:CreateSecurityGroup", &format!("security group {name}")))?;
    Ok(answer.group_id().context("CreateSecurityGroup returned no id")?.to_owned())
}

/// Authorizes the rules `wanted` has and `live` lacks, and revokes the
/// ones only `live` has; `permission` turns a rule into EC2's form.
pub async fn sync_ingress(
    cx: ApplyCx<'_>,
    name: &str,
    id: &str,
    wanted: &BTreeSet<(u16, String)>,
    live: &BTreeSet<(u16, String)>,
    permission: impl Fn(&(u16, String)) -> aws_sdk_ec2::types::IpPermission,
) -> anyhow::Result<()> {
    let ec2 = &cx.cx.clients.ec2;
    let resource = format!("security group {name}");
    let missing: Vec<_> = wanted.difference(live).map(&permission).collect();
    if !missing.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(missing))
            .send()
            .await
            .map_err(|e| explain(e, "ec2:AuthorizeSecurityGroupIngress", &resource))?;
    }
    let extra: Vec<_> = live.difference(wanted).map(&permission).collect();
    if !extra.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(extra))
            .send()
            .await
            .map_err(|e| explain(e, "ec2:RevokeSecurityGroupIngress", &resource))?;
    }
    Ok(())
}

/// Deletes a security group once nothing uses it any more (EC2 refuses
/// while network interfaces are in it), waiting up to `limit`.
pub async fn delete_when_free(cx: Cx<'_>, id: &str, limit: Duration) -> anyhow::Result<()> {
    wait_until(&format!("security group {id} to be free"), limit, || async {
        match cx.clients.ec2.delete_security_group().group_id(id).send().await {
            Ok(_) => Ok(true),
            Err(error) => {
                let error: AwsError = classify(error, "ec2:DeleteSecurityGroup", id);
                if error.code.as_deref() == Some("DependencyViolation") { Ok(false) } else { Err(error.into()) }
            }
        }
    })
    .await
}

/// A group's TCP ingress rules as (port, source): a source group's id as
/// `name_group` names it, a CIDR as written (not ours: plan shows it and
/// apply revokes it).
pub fn ingress_rules(
    group: &aws_sdk_ec2::types::SecurityGroup,
    name_group: impl Fn(&str) -> String,
) -> BTreeSet<(u16, String)> {
    let mut ingress = BTreeSet::new();
    for permission in group.ip_permissions() {
        let (Some("tcp"), Some(from), Some(to)) =
            (permission.ip_protocol(), permission.from_port(), permission.to_port())
        else {
            continue;
        };
        let ports = || (from..=to).filter_map(|port| u16::try_from(port).ok());
        for pair in permission.user_id_group_pairs() {
            let Some(source) = pair.group_id() else { continue };
            let source = name_group(source);
            ingress.extend(ports().map(|port| (port, source.clone())));
        }
        for range in permission.ip_ranges() {
            let source = range.cidr_ip().unwrap_or("?").to_owned();
            ingress.extend(ports().map(|port| (port, source.clone())));
        }
    }
    ingress
}

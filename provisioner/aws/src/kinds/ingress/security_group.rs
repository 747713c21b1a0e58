//! The security group of a service's load balancer: 443 from the allowed
//! CIDRs only (anywhere, IPv4 and IPv6, for an internet-facing one by
//! default; the VPC's range for an internal one).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use stack_spec::{Stack, ingress::Allow};

use super::HTTPS_PORT;
use crate::{
    clients::ec2::Permission,
    engine::{
        names::{Names, Tags},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
    kinds::security_group::{
        LiveGroup, ReadGroup, WantedGroup, apply_group, delete_when_free, group_fields, name_tag, read_group,
        retag_group,
    },
};

/// A load balancer's security group.
pub struct IngressSecurityGroup;

/// A load balancer's group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressGroupSpec {
    pub name: String,
    /// The service whose load balancer it guards.
    pub service: String,
    pub vpc_id: String,
    /// (TCP port, CIDR or source group id).
    pub ingress: BTreeSet<(u16, String)>,
    /// Rules of any other shape (someone else's): none wanted.
    pub foreign: Vec<Permission>,
}

impl Kind for IngressSecurityGroup {
    const LABEL: &'static str = "security group";
    const KEY: &'static str = "ingress-security-group";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = IngressGroupSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<IngressGroupSpec> {
        let names = Names::of(stack);
        super::services(stack)
            .map(|(service, ingress)| {
                let cidrs = match &ingress.allow {
                    Allow::Anywhere => vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()],
                    Allow::Vpc => vec![live.vpc_cidr.clone()],
                    Allow::Cidrs(cidrs) => cidrs.clone(),
                };
                IngressGroupSpec {
                    name: names.ingress_security_group(&service.name),
                    service: service.name.clone(),
                    vpc_id: live.vpc_id.clone(),
                    ingress: cidrs.into_iter().map(|cidr| (HTTPS_PORT, cidr)).collect(),
                    foreign: Vec::new(),
                }
            })
            .collect()
    }

    fn name(spec: &IngressGroupSpec) -> &str {
        &spec.name
    }

    fn own_tags(want: &IngressGroupSpec) -> Tags {
        name_tag(&want.name)
    }

    fn fields(spec: &IngressGroupSpec) -> Fields {
        group_fields(&spec.vpc_id, &spec.ingress, &spec.foreign)
    }

    /// Every service's group, whether or not it has an ingress table now
    /// (one left over is deleted).
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<IngressGroupSpec>>> {
        let mut found = BTreeMap::new();
        for service in &cx.stack.services {
            let name = cx.names.ingress_security_group(&service.name);
            let group = read_group(cx, &name, &live.vpc_id, |_, source| source.to_owned()).await?;
            let Some(ReadGroup { id, owned, tags, ingress, foreign }) = group else { continue };
            let spec = IngressGroupSpec {
                name: name.clone(),
                service: service.name.clone(),
                vpc_id: live.vpc_id.clone(),
                ingress,
                foreign,
            };
            found.insert(name, Found { arn: id.clone(), id, owned, tags: Some(tags), spec });
        }
        Ok(found)
    }

    /// Creates the group if missing and brings its rules to the stack's;
    /// passes on its id.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &IngressGroupSpec,
        have: Option<&Found<IngressGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let permission = |_: &str, (port, source): &(u16, String)| {
            let mut rule = Permission::tcp(*port);
            if source.starts_with("sg-") {
                rule.groups.push((source.clone(), None));
            } else {
                rule.cidrs.push(source.clone());
            }
            rule
        };
        let want = WantedGroup {
            name: &spec.name,
            vpc_id: &spec.vpc_id,
            description: format!("load balancer of {} of {}: 443 only", spec.service, cx.cx.names.app()),
            ingress: &spec.ingress,
        };
        let have = have.map(|found| LiveGroup::new(&found.id, &found.spec.ingress, &found.spec.foreign));
        Ok(Output::id(apply_group::<Self>(cx, want, have, action, permission).await?))
    }

    fn teardown_line(found: &Found<IngressGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("security group {} ({})", found.spec.name, found.id))
    }

    async fn retag(cx: Cx<'_>, found: &Found<IngressGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_group(cx, &found.id, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<IngressGroupSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for group in owned {
            // A deleted load balancer's network interfaces go minutes later.
            delete_when_free(cx, &group.id, Duration::from_secs(900)).await?;
            crate::engine::journal::done("deleted", "security group", &format!("{} ({})", group.spec.name, group.id));
        }
        Ok(())
    }
}

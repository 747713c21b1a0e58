//! The security group in front of each store: its port from the tasks'
//! security group only, no CIDR.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::{
    clients::ec2::Permission,
    engine::{
        names::{Names, Tags},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
    kinds::security_group::{
        LiveGroup, ReadGroup, SecurityGroup, WantedGroup, apply_group, delete_when_free, group_fields, name_tag,
        read_group, retag_group,
    },
};
use stack_spec::Stack;

/// A store's security group.
pub struct StoreSecurityGroup;

/// The source of a store's only rule: the tasks' security group.
pub const FROM_TASKS: &str = "tasks";

/// A store's group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreGroupSpec {
    pub name: String,
    /// The store it guards.
    pub store: String,
    pub vpc_id: String,
    /// (TCP port, [`FROM_TASKS`] or what else is there).
    pub ingress: BTreeSet<(u16, String)>,
    /// Rules of any other shape (someone else's): none wanted.
    pub foreign: Vec<Permission>,
}

impl Kind for StoreSecurityGroup {
    const LABEL: &'static str = "security group";
    const KEY: &'static str = "store-security-group";
    type Spec = StoreGroupSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<StoreGroupSpec> {
        let names = Names::of(stack);
        stack
            .stores
            .iter()
            .map(|store| StoreGroupSpec {
                name: names.store_security_group(&store.name),
                store: store.name.clone(),
                vpc_id: live.vpc_id.clone(),
                ingress: BTreeSet::from([(store.port, FROM_TASKS.to_owned())]),
                foreign: Vec::new(),
            })
            .collect()
    }

    fn name(spec: &StoreGroupSpec) -> &str {
        &spec.name
    }

    fn own_tags(want: &StoreGroupSpec) -> Tags {
        name_tag(&want.name)
    }

    fn fields(spec: &StoreGroupSpec) -> Fields {
        group_fields(&spec.vpc_id, &spec.ingress, &spec.foreign)
    }

    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<StoreGroupSpec>>> {
        let tasks = live.get::<SecurityGroup>(&cx.names.security_group()).map(|found| found.id.clone());
        let mut found = BTreeMap::new();
        for store in &cx.stack.stores {
            let name = cx.names.store_security_group(&store.name);
            let group = read_group(cx, &name, &live.vpc_id, |_, source| {
                if Some(source) == tasks.as_deref() { FROM_TASKS } else { source }.to_owned()
            })
            .await?;
            let Some(ReadGroup { id, owned, tags, ingress, foreign }) = group else { continue };
            let spec = StoreGroupSpec {
                name: name.clone(),
                store: store.name.clone(),
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
        spec: &StoreGroupSpec,
        have: Option<&Found<StoreGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let names = cx.cx.names;
        let tasks = cx.made.id::<SecurityGroup>(&names.security_group());
        let permission = |_: &str, (port, source): &(u16, String)| {
            let mut rule = Permission::tcp(*port);
            match source.as_str() {
                FROM_TASKS => rule.groups.push((tasks.clone(), Some("the app's tasks".into()))),
                group if group.starts_with("sg-") => rule.groups.push((group.to_owned(), None)),
                cidr => rule.cidrs.push(cidr.to_owned()),
            }
            rule
        };
        let want = WantedGroup {
            name: &spec.name,
            vpc_id: &spec.vpc_id,
            description: format!("store {} of {}: its port from the app's tasks only", spec.store, names.app()),
            ingress: &spec.ingress,
        };
        let have = have.map(|found| LiveGroup::new(&found.id, &found.spec.ingress, &found.spec.foreign));
        Ok(Output::id(apply_group::<Self>(cx, want, have, action, permission).await?))
    }

    fn teardown_line(found: &Found<StoreGroupSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("security group {} ({})", found.spec.name, found.id))
    }

    async fn retag(cx: Cx<'_>, found: &Found<StoreGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_group(cx, &found.id, set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<StoreGroupSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for group in owned {
            // The store's network interfaces go with it, minutes after its
            // delete was asked for.
            delete_when_free(cx, &group.id, Duration::from_secs(1800)).await?;
            crate::engine::journal::done("deleted", "security group", &format!("{} ({})", group.spec.name, group.id));
        }
        Ok(())
    }
}

//! What every kind of AWS resource answers, so that plan, apply, destroy and
//! status can walk the stack without knowing any kind. A kind's module holds
//! all of its code behind this trait: its comparable spec, how the stack
//! turns into it, how it is read back, what changes in place and what forces
//! a replacement, how it is created, updated and deleted, and its status.

use std::{collections::BTreeMap, fmt::Debug, future::Future};

use crate::{
    clients::Clients,
    engine::{
        names::{Names, Tags},
        plan::{Action, Steps},
        state::{Desired, Live, Made},
        status::StatusReport,
    },
};
use stack_spec::Stack;

/// A resource's comparable fields, by name, rendered for people.
pub type Fields = BTreeMap<&'static str, String>;

/// A resource that exists, with what identifies it and whether it is ours.
#[derive(Debug, Clone)]
pub struct Found<T> {
    /// Its id or ARN, whichever later calls need.
    pub id: String,
    /// Its ARN, for tag calls.
    pub arn: String,
    /// Whether it carries this app's tags.
    pub owned: bool,
    /// Its tags, for the kinds whose tags plan compares (`None` where the
    /// kind does not read them, e.g. a listener, which has its balancer's).
    pub tags: Option<Tags>,
    /// What it looks like now.
    pub spec: T,
}

/// What every call of a kind's code may use.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    /// The clients every call goes through.
    pub clients: &'a Clients,
    /// Names and tags of the app's resources.
    pub names: &'a Names,
    /// The stack file, as loaded.
    pub stack: &'a Stack,
}

/// What apply hands a kind beside the resource it applies.
#[derive(Clone, Copy)]
pub struct ApplyCx<'a> {
    /// Clients, names and the stack.
    pub cx: Cx<'a>,
    /// What every resource should look like.
    pub desired: &'a Desired,
    /// What they looked like when the plan was made.
    pub live: &'a Live,
    /// What the kinds applied before this one made: the ids and ARNs a
    /// kind takes from the kinds it needs.
    pub made: &'a Made,
}

/// What destroy was asked to do beyond the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyOptions {
    /// Delete the services' log groups too (kept by default).
    pub delete_logs: bool,
    /// Delete the stores without a final snapshot (kept by default).
    pub skip_final_snapshot: bool,
    /// When destroy started (Unix seconds): names the final snapshots.
    pub started_at: u64,
}

/// What a kind's apply passes on: the id or ARN the kinds that need it use,
/// and the deployment it started, if any, for the caller to wait on.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The resource's id, ARN or URI, whichever the kinds that need it use.
    pub id: String,
    /// A deployment apply started, to wait for.
    pub rollout: Option<crate::engine::rollout::Rollout>,
}

impl Output {
    /// An output with only an id.
    pub fn id(id: impl Into<String>) -> Self {
        Self { id: id.into(), rollout: None }
    }
}

/// One kind of resource and everything provision does with it. The verbs
/// call these through the table of kinds (`crate::kinds::KINDS`, walked by
/// [`crate::engine::graph::Graph`]); they hold no kind's code.
pub trait Kind: Send + Sync + 'static {
    /// How plan, apply and destroy name the kind for people ("log group").
    const LABEL: &'static str;
    /// How `plan --output json` names it ("log-group").
    const KEY: &'static str;
    /// What plan compares: desired and live are both read into it.
    type Spec: Clone + Debug + Send + Sync + 'static;
    /// Whether a live resource of this kind that the stack no longer asks
    /// for is deleted by apply (after everything else, in destroy's order).
    /// Only for kinds whose read looks up every name the stack could give
    /// them, e.g. a service's load balancer whether or not the service has
    /// an ingress table now.
    const RETIRED_WITH_THE_STACK: bool = false;

    /// Settings of the stack this kind cannot take on AWS, each at its line;
    /// checked before any call.
    fn check(_stack: &Stack) -> Vec<crate::engine::limits::Problem> {
        Vec::new()
    }

    /// What the stack asks for, in plan order, given what `live` tells of
    /// the account (its id, the VPC, the subnets, the images).
    fn desired(stack: &Stack, live: &Live) -> Vec<Self::Spec>;

    /// The name a resource is found by and shown as.
    fn name(spec: &Self::Spec) -> &str;

    /// The fields plan compares and shows.
    fn fields(spec: &Self::Spec) -> Fields;

    /// Reads the live resources of this kind that the stack names, with
    /// read-only calls, by name; `live` holds the kinds read before it.
    fn read(
        cx: Cx<'_>,
        live: &Live,
    ) -> impl Future<Output = anyhow::Result<BTreeMap<String, Found<Self::Spec>>>> + Send;

    /// Refuses a plan that cannot be applied (e.g. a resource that cannot
    /// move to where the stack now says).
    fn precondition(_want: &Self::Spec, _have: Option<&Found<Self::Spec>>, _live: &Live) -> anyhow::Result<()> {
        Ok(())
    }

    /// Why the live resource must be recreated, if a field differs that
    /// AWS cannot change in place.
    fn replacement_reason(_want: &Self::Spec, _have: &Self::Spec) -> Option<String> {
        None
    }

    /// The fields plan compares, wanted and live; for kinds whose wanted
    /// fields depend on the steps planned before them.
    fn compared(
        want: &Self::Spec,
        have: Option<&Found<Self::Spec>>,
        _steps: &Steps,
        _live: &Live,
    ) -> (Fields, Option<Fields>) {
        (Self::fields(want), have.map(|found| Self::fields(&found.spec)))
    }

    /// Something the user should know about this resource's plan.
    fn note(_want: &Self::Spec) -> Option<String> {
        None
    }

    /// Creates, updates or replaces one resource as `action` says (a
    /// resource without a step is `Unchanged`); returns what the kinds that
    /// need it use.
    fn apply(
        cx: ApplyCx<'_>,
        want: &Self::Spec,
        have: Option<&Found<Self::Spec>>,
        action: &Action,
    ) -> impl Future<Output = anyhow::Result<Output>> + Send;

    /// The line destroy's confirmation shows for a live resource; `None`
    /// when destroy leaves it alone.
    fn teardown_line(found: &Found<Self::Spec>, options: DestroyOptions) -> Option<String>;

    /// Tags this kind puts on a resource beside the stack's (e.g. the VPC
    /// a namespace was made for), so that plan does not see them as drift.
    fn own_tags(_want: &Self::Spec) -> Tags {
        Tags::new()
    }

    /// Sets `set` and removes `remove` on a live resource whose tags have
    /// drifted from the stack's (plan shows it as a `tags` change). Only
    /// kinds that read their tags into [`Found::tags`] are asked.
    fn retag(
        _cx: Cx<'_>,
        _found: &Found<Self::Spec>,
        _set: &Tags,
        _remove: &[String],
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { anyhow::bail!("provision cannot change the tags of a {} in place", Self::LABEL) }
    }

    /// Deletes the live resources of this kind that are this app's.
    fn destroy(
        cx: Cx<'_>,
        owned: Vec<&Found<Self::Spec>>,
        options: DestroyOptions,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Fills this kind's part of `provision status` in `report` (a
    /// disagreement between two views as a service's warning).
    fn status(
        _cx: Cx<'_>,
        _live: &Live,
        _report: &mut StatusReport,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// How apply reports a change it made: "  created log group NAME".
    fn done(what: &str, name: &str) {
        crate::engine::journal::done(what, Self::LABEL, name);
    }
}

/// Reads the resources named `names` at once with `read`; the ones that
/// exist, by name.
pub async fn read_each<T, F, Fut>(names: Vec<String>, read: F) -> anyhow::Result<BTreeMap<String, Found<T>>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<Found<T>>>>,
{
    let found = futures_util::future::try_join_all(names.iter().cloned().map(read)).await?;
    Ok(names.into_iter().zip(found).filter_map(|(name, found)| Some((name, found?))).collect())
}

/// Shared field renderings, so that every kind shows a value the same way.
pub mod render {
    use std::collections::{BTreeMap, BTreeSet};

    /// A scaled service's bounds, or that it does not scale.
    pub fn capacity(bounds: Option<(u32, u32)>) -> String {
        match bounds {
            Some((min, max)) => format!("min {min} max {max}"),
            None => "none (autoscaling off)".to_owned(),
        }
    }

    /// `on` or `off`.
    pub fn on_off(value: bool) -> String {
        if value { "on" } else { "off" }.to_owned()
    }

    /// A set as `a,b`, or `none`.
    pub fn join(values: &BTreeSet<String>) -> String {
        if values.is_empty() { "none".to_owned() } else { values.iter().cloned().collect::<Vec<_>>().join(",") }
    }

    /// A map as `a=1 b=2`, or `none`.
    pub fn pairs(values: &BTreeMap<String, String>) -> String {
        if values.is_empty() {
            return "none".to_owned();
        }
        values.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(" ")
    }

    /// `arn:...:task-definition/family:7` -> `family:7`.
    pub fn revision_of(arn: &str) -> String {
        arn.rsplit('/').next().unwrap_or(arn).to_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn revision_of_keeps_family_and_number() {
            assert_eq!(revision_of("arn:aws:ecs:us-east-1:1:task-definition/app-game:7"), "app-game:7");
        }
    }
}

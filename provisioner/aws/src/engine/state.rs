//! The three states the verbs pass between kinds: what the stack asks for
//! ([`Desired`]), what the account has ([`Live`]), and what apply made
//! ([`Made`]). Each holds every kind's resources by the kind's type, so a
//! kind reads another's typed spec (a task definition, the ECS service that
//! runs it) without the verbs knowing either.

use std::{
    any::Any,
    collections::{BTreeMap, BTreeSet},
};

use crate::engine::{
    names::Tags,
    resource::{Found, Kind, Output},
};

/// The live state of everything the stack describes.
#[derive(Debug, Default)]
pub struct Live {
    /// The account the credentials belong to.
    pub account: String,
    /// The region the clients call.
    pub region: String,
    /// The stack's VPC, resolved (`default` becomes an id).
    pub vpc_id: String,
    /// The VPC's IPv4 range (who an internal load balancer admits by
    /// default).
    pub vpc_cidr: String,
    /// The stack's subnets, resolved.
    pub subnets: BTreeSet<String>,
    /// The VPC's subnets by whether they route to an internet gateway
    /// (where a load balancer of each scheme goes by default); read only
    /// when a service has an ingress.
    pub public_subnets: BTreeSet<String>,
    pub private_subnets: BTreeSet<String>,
    /// The managed policies the stack attaches to task roles, by ARN: their
    /// default version's document, which the app's permissions boundary
    /// must allow (a boundary caps what a policy grants).
    pub task_role_policies: BTreeMap<String, serde_json::Value>,
    /// Each kind's live resources by name (a `BTreeMap<String,
    /// Found<K::Spec>>`), under the kind's key.
    found: BTreeMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl Live {
    /// The live state of an account before any kind is read.
    pub fn new(account: String, region: String, vpc: &crate::clients::ec2::Vpc, subnets: BTreeSet<String>) -> Self {
        Self {
            account,
            region,
            vpc_id: vpc.id.clone(),
            vpc_cidr: vpc.cidr.clone(),
            subnets,
            public_subnets: BTreeSet::new(),
            private_subnets: BTreeSet::new(),
            task_role_policies: BTreeMap::new(),
            found: BTreeMap::new(),
        }
    }

    /// Records what was read of kind `K`.
    pub fn insert<K: Kind>(&mut self, found: BTreeMap<String, Found<K::Spec>>) {
        self.found.insert(K::KEY, Box::new(found));
    }

    fn map<K: Kind>(&self) -> Option<&BTreeMap<String, Found<K::Spec>>> {
        self.found.get(K::KEY).and_then(|map| (**map).downcast_ref())
    }

    /// The live resource of kind `K` named `name`.
    pub fn get<K: Kind>(&self, name: &str) -> Option<&Found<K::Spec>> {
        self.map::<K>().and_then(|map| map.get(name))
    }

    /// Every live resource of kind `K`, by name.
    pub fn all<K: Kind>(&self) -> impl Iterator<Item = (&String, &Found<K::Spec>)> {
        self.map::<K>().into_iter().flatten()
    }
}

/// What the stack asks for: each kind's specs, in plan order.
#[derive(Debug, Default)]
pub struct Desired {
    /// The tags every resource should carry: the two ownership tags and
    /// `[aws.tags]`.
    pub tags: Tags,
    /// Each kind's specs (a `Vec<K::Spec>`), under the kind's key.
    specs: BTreeMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl Desired {
    /// Records the specs of kind `K`.
    pub fn insert<K: Kind>(&mut self, specs: Vec<K::Spec>) {
        self.specs.insert(K::KEY, Box::new(specs));
    }

    /// Every spec of kind `K`, in plan order.
    pub fn all<K: Kind>(&self) -> &[K::Spec] {
        self.specs.get(K::KEY).and_then(|specs| (**specs).downcast_ref::<Vec<K::Spec>>()).map_or(&[], Vec::as_slice)
    }

    /// The spec of kind `K` named `name`.
    pub fn get<K: Kind>(&self, name: &str) -> Option<&K::Spec> {
        self.all::<K>().iter().find(|spec| K::name(spec) == name)
    }
}

/// What apply has made so far: each resource's output by kind and name, in
/// the order applied (so rollouts are waited for in the stack's order).
#[derive(Debug, Default)]
pub struct Made {
    outputs: Vec<(&'static str, String, Output)>,
}

impl Made {
    /// Records the output of the resource of kind `key` named `name`.
    pub fn insert(&mut self, key: &'static str, name: String, output: Output) {
        self.outputs.push((key, name, output));
    }

    /// The id a resource of kind `K` named `name` passed on; empty when it
    /// was not applied (the call that needs it then fails with AWS's word).
    pub fn id<K: Kind>(&self, name: &str) -> String {
        self.outputs
            .iter()
            .find(|(key, found, _)| *key == K::KEY && found == name)
            .map(|(_, _, output)| output.id.clone())
            .unwrap_or_default()
    }

    /// The deployments apply started.
    pub fn rollouts(&self) -> Vec<crate::engine::rollout::Rollout> {
        self.outputs.iter().filter_map(|(_, _, output)| output.rollout.clone()).collect()
    }
}

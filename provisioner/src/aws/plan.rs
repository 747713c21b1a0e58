//! The plan: desired state against live state, a step per resource. Pure:
//! it makes no call, so plan output is exactly what apply will do.

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::bail;
use serde::Serialize;

use super::{
    desired::{Context, Desired},
    live::{Found, Live},
    model::{Fields, Kind},
    names::Names,
};
use crate::spec::Stack;

/// What apply does to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// It does not exist yet.
    Create,
    /// It exists and these fields change in place.
    Update { changes: Vec<FieldChange> },
    /// It must be deleted and made again.
    Replace { reason: String },
    /// It is as the stack says.
    Unchanged,
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// One resource's step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub kind: Kind,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

/// Everything apply would do, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub app: String,
    pub account: String,
    pub region: String,
    pub vpc: String,
    pub steps: Vec<Step>,
    /// Things the user should know (a service held at 0 tasks and why).
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether apply would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|step| step.action != Action::Unchanged)
    }

    /// The plan cut down to the steps `keep` accepts; apply leaves every
    /// other resource as it is.
    pub fn only(mut self, keep: impl Fn(&Step) -> bool) -> Self {
        self.steps.retain(|step| keep(step));
        self.notes.clear();
        self
    }

    /// The step for one resource.
    pub fn step(&self, kind: Kind, name: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.kind == kind && step.name == name)
    }

    /// Counts by action: create, update, replace, unchanged.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for step in &self.steps {
            counts[match step.action {
                Action::Create => 0,
                Action::Update { .. } => 1,
                Action::Replace { .. } => 2,
                Action::Unchanged => 3,
            }] += 1;
        }
        counts
    }

    /// The plan as people read it: a line per resource, changed fields
    /// below it, then the notes and a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Plan for app {} in account {}, region {} ({}):\n",
            self.app, self.account, self.region, self.vpc
        );
        for step in &self.steps {
            let (mark, word) = match &step.action {
                Action::Create => ("+", "create"),
                Action::Update { .. } => ("~", "update"),
                Action::Replace { .. } => ("-/+", "replace"),
                Action::Unchanged => ("=", "unchanged"),
            };
            let _ = writeln!(out, "  {mark:<3} {word:<9}  {:<19}  {}", step.kind.label(), step.name);
            match &step.action {
                Action::Update { changes } => {
                    for change in changes {
                        let _ = writeln!(out, "                  {}: {} -> {}", change.field, change.old, change.new);
                    }
                }
                Action::Replace { reason } => {
                    let _ = writeln!(out, "                  because {reason}");
                }
                Action::Create | Action::Unchanged => {}
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        let [create, update, replace, unchanged] = self.counts();
        let _ = writeln!(
            out,
            "\n{create} to create, {update} to update, {replace} to replace, {unchanged} unchanged.{}",
            if self.has_changes() { "" } else { " Nothing to do." }
        );
        out
    }
}

/// The image each service should run: the stack's, else the one its live
/// task definition runs, else the newest in its repository, else none.
pub fn images(stack: &Stack, live: &Live) -> BTreeMap<String, Option<String>> {
    let names = Names::new(&stack.app);
    stack
        .services
        .iter()
        .map(|service| {
            let image = service
                .aws
                .image
                .clone()
                .or_else(|| {
                    live.task_definitions.get(&names.family(&service.name)).and_then(|found| found.spec.image.clone())
                })
                .or_else(|| live.newest_images.get(&names.repository(&service.name)).cloned());
            (service.name.clone(), image)
        })
        .collect()
}

/// The desired state for `stack` given what `live` says about the account.
pub fn desired(stack: &Stack, live: &Live) -> Desired {
    Desired::new(
        stack,
        &Context {
            account: live.account.clone(),
            vpc_id: live.vpc_id.clone(),
            subnets: live.subnets.clone(),
            images: images(stack, live),
        },
    )
}

/// Compares `desired` with `live`. A field the live side lacks was not
/// reported by the API and is not compared. Fails when a resource with one of the
/// stack's names exists but is not this app's: apply must not take it over.
pub fn plan(app: &str, desired: &Desired, live: &Live) -> anyhow::Result<Plan> {
    if let Some(namespace) = live.namespace.as_ref().filter(|found| found.owned)
        && let Some(vpc) = namespace.spec.vpc.as_ref().filter(|vpc| **vpc != live.vpc_id)
    {
        bail!(
            "cloud map namespace {} answers in {vpc}, but the stack's VPC is {}: a namespace cannot move; run \
             `provision destroy` with the stack as it was, then apply",
            namespace.spec.name,
            live.vpc_id
        );
    }
    let mut steps = Steps::default();
    fn view<T>(found: Option<&Found<T>>, fields: impl Fn(&T) -> Fields) -> Option<(&str, bool, Fields)> {
        found.map(|found| (found.id.as_str(), found.owned, fields(&found.spec)))
    }

    steps.add(
        Kind::Cluster,
        &desired.cluster.name,
        view(live.cluster.as_ref(), |spec| spec.fields()),
        desired.cluster.fields(),
    );
    steps.add(
        Kind::Namespace,
        &desired.namespace.name,
        view(live.namespace.as_ref(), |_| Fields::new()),
        Fields::new(),
    );
    steps.add(
        Kind::SecurityGroup,
        &desired.security_group.name,
        view(live.security_group.as_ref(), |spec| spec.fields()),
        desired.security_group.fields(),
    );
    let roles = std::iter::once(&desired.execution_role).chain(desired.services.iter().map(|s| &s.task_role));
    for role in roles {
        steps.add(Kind::Role, &role.name, view(live.roles.get(&role.name), |spec| spec.fields()), role.fields());
    }
    for service in &desired.services {
        let log_group = &service.log_group;
        steps.add(
            Kind::LogGroup,
            &log_group.name,
            view(live.log_groups.get(&log_group.name), |s| s.fields()),
            log_group.fields(),
        );
    }
    for service in &desired.services {
        let repository = &service.repository;
        steps.add(
            Kind::Repository,
            &repository.name,
            view(live.repositories.get(&repository.name), |spec| spec.fields()),
            repository.fields(),
        );
    }
    for service in &desired.services {
        let discovery = &service.discovery;
        let found = live.discovery.get(&discovery.name);
        let reason = found.filter(|found| found.owned).and_then(|found| discovery.replacement_reason(&found.spec));
        match reason {
            Some(reason) => steps.replace(Kind::DiscoveryService, &discovery.name, reason),
            None => steps.add(
                Kind::DiscoveryService,
                &discovery.name,
                view(found, |spec| spec.fields()),
                discovery.fields(),
            ),
        }
    }
    for service in &desired.services {
        let definition = &service.task_definition;
        steps.add(
            Kind::TaskDefinition,
            &definition.family,
            view(live.task_definitions.get(&definition.family), |spec| spec.fields()),
            definition.fields(),
        );
    }
    for service in &desired.services {
        let found = live.services.get(&service.name);
        let definition = &service.task_definition.family;
        let latest = live.task_definitions.get(definition).map(|found| found.arn.clone());
        let changes_of = |kind: Kind, name: &str| {
            steps.steps.iter().any(|step| step.kind == kind && step.name == name && step.action != Action::Unchanged)
        };
        let definition_changes = changes_of(Kind::TaskDefinition, definition);
        let registry = if changes_of(Kind::DiscoveryService, &service.discovery.name) {
            format!("{} (new)", service.discovery.name)
        } else {
            live.discovery.get(&service.discovery.name).map(|found| found.id.clone()).unwrap_or_default()
        };
        steps.add(
            Kind::Service,
            &service.name,
            view(found, |spec| {
                let mut fields = spec.fields();
                fields.insert("task_definition", revision_of(&found.map(|f| f.id.clone()).unwrap_or_default()));
                fields.insert("cloud_map_service", spec.registry.clone().unwrap_or_else(|| "none".to_owned()));
                fields
            }),
            {
                let mut fields = service.service.fields();
                let wanted = if definition_changes {
                    format!("{definition}:(new revision)")
                } else {
                    latest.as_deref().map(revision_of).unwrap_or_default()
                };
                fields.insert("task_definition", wanted);
                fields.insert("cloud_map_service", registry);
                fields
            },
        );
    }
    let Steps { steps, foreign } = steps;
    if !foreign.is_empty() {
        bail!(
            "these resources exist but are not this app's (they lack the tags app={app} and managed-by=provision), \
             so provision will not change them: {}. Rename the app or the resource in the stack file, or remove \
             the resource",
            foreign.join(", ")
        );
    }
    let notes = desired
        .services
        .iter()
        .filter_map(|service| service.held_back.as_ref().map(|reason| format!("{}: {reason}", service.name)));
    Ok(Plan {
        app: app.to_owned(),
        account: live.account.clone(),
        region: live.region.clone(),
        vpc: live.vpc_id.clone(),
        steps,
        notes: notes.collect(),
    })
}

/// The steps so far, and the names found that belong to someone else.
#[derive(Default)]
struct Steps {
    steps: Vec<Step>,
    foreign: Vec<String>,
}

impl Steps {
    fn add(&mut self, kind: Kind, name: &str, found: Option<(&str, bool, Fields)>, wanted: Fields) {
        let action = match found {
            None => Action::Create,
            Some((_, false, _)) => {
                self.foreign.push(format!("{} {name}", kind.label()));
                Action::Unchanged
            }
            Some((_, true, current)) => changes(&current, &wanted),
        };
        self.steps.push(Step { kind, name: name.to_owned(), action });
    }

    fn replace(&mut self, kind: Kind, name: &str, reason: String) {
        self.steps.push(Step { kind, name: name.to_owned(), action: Action::Replace { reason } });
    }
}

/// `arn:...:task-definition/family:7` -> `family:7`.
pub fn revision_of(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

fn changes(current: &Fields, wanted: &Fields) -> Action {
    let changes: Vec<FieldChange> = wanted
        .iter()
        .filter_map(|(field, new)| {
            let old = current.get(field)?;
            (old != new).then(|| FieldChange { field: (*field).to_owned(), old: old.clone(), new: new.clone() })
        })
        .collect();
    if changes.is_empty() { Action::Unchanged } else { Action::Update { changes } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_lists_only_the_fields_that_differ() {
        let current = Fields::from([("cpu", "256".to_owned()), ("memory", "512".to_owned())]);
        let wanted = Fields::from([("cpu", "512".to_owned()), ("memory", "512".to_owned())]);
        assert_eq!(
            changes(&current, &wanted),
            Action::Update { changes: vec![FieldChange { field: "cpu".into(), old: "256".into(), new: "512".into() }] }
        );
        assert_eq!(changes(&wanted, &wanted), Action::Unchanged);
    }

    #[test]
    fn revision_of_keeps_family_and_number() {
        assert_eq!(revision_of("arn:aws:ecs:us-east-1:1:task-definition/app-game:7"), "app-game:7");
    }
}

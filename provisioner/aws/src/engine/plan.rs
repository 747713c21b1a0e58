//! The plan: desired state against live state, a step per resource, each
//! kind comparing its own (see [`crate::engine::graph`]). Pure: it makes no call, so
//! plan output is exactly what apply will do.

use std::fmt::Write as _;

use anyhow::bail;
use provision_cli::colour;
use serde::Serialize;

use crate::engine::{
    graph::Graph,
    resource::Fields,
    state::{Desired, Live},
};

/// The field plan shows tag drift under (see [`crate::engine::graph`]).
pub const TAGS_FIELD: &str = "tags";

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
    /// The stack no longer asks for it: apply deletes it after everything
    /// else, in destroy's order.
    Delete,
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
    /// The kind's key ([`crate::engine::resource::Kind::KEY`]).
    pub kind: &'static str,
    /// How people read the kind.
    #[serde(skip)]
    pub label: &'static str,
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

    /// What apply does to one resource: a resource without a step is left
    /// as it is.
    pub fn action(&self, kind: &str, name: &str) -> &Action {
        self.steps
            .iter()
            .find(|step| step.kind == kind && step.name == name)
            .map_or(&Action::Unchanged, |step| &step.action)
    }

    /// Counts by action: create, update, replace, delete, unchanged.
    pub fn counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for step in &self.steps {
            counts[match step.action {
                Action::Create => 0,
                Action::Update { .. } => 1,
                Action::Replace { .. } => 2,
                Action::Delete => 3,
                Action::Unchanged => 4,
            }] += 1;
        }
        counts
    }

    /// The plan as people read it: a line per resource to change (every
    /// resource with `--verbose`), changed fields below it, then the notes
    /// and a summary; "No changes." when there are none, as terraform says.
    pub fn render(&self) -> String {
        self.render_with(crate::clients::verbose::enabled())
    }

    /// [`render`](Self::render), with the unchanged resources or without;
    /// the actions in colour (which [`provision_cli::colour::print`] keeps
    /// on a terminal only).
    pub fn render_with(&self, unchanged_too: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Plan for app {} in account {}, region {} ({}):\n",
            self.app, self.account, self.region, self.vpc
        );
        for step in self.steps.iter().filter(|step| unchanged_too || step.action != Action::Unchanged) {
            let (mark, word, style) = match &step.action {
                Action::Create => ("+", "create", colour::ADDED),
                Action::Update { .. } => ("~", "update", colour::CHANGED),
                Action::Replace { .. } => ("-/+", "replace", colour::REMOVED),
                Action::Delete => ("-", "delete", colour::REMOVED),
                Action::Unchanged => ("=", "unchanged", colour::PLAIN),
            };
            let what = colour::paint(style, &format!("{mark:<3} {word:<9}"));
            let _ = writeln!(out, "  {what}  {:<19}  {}", step.label, step.name);
            match &step.action {
                Action::Update { changes } => {
                    for change in changes {
                        let _ = writeln!(out, "                  {}: {} -> {}", change.field, change.old, change.new);
                    }
                }
                Action::Replace { reason } => {
                    let _ = writeln!(out, "                  because {reason}");
                }
                Action::Create | Action::Delete | Action::Unchanged => {}
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        let [create, update, replace, delete, unchanged] = self.counts();
        if self.has_changes() {
            let _ = writeln!(
                out,
                "\n{create} to create, {update} to update, {replace} to replace, {delete} to delete, {unchanged} \
                 unchanged."
            );
        } else {
            let _ = writeln!(out, "No changes: AWS matches the stack file ({unchanged} resources unchanged).");
        }
        out
    }
}

/// Plans `desired` against `live`, kind by kind in the graph's order. A
/// field the live side lacks was not reported by the API and is not
/// compared. Fails when a resource with one of the stack's names exists but
/// is not this app's: apply must not take it over.
pub fn plan(graph: Graph, app: &str, desired: &Desired, live: &Live) -> anyhow::Result<Plan> {
    let mut steps = Steps::default();
    for node in graph.nodes() {
        node.kind.plan(desired, live, &mut steps)?;
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
    Ok(Plan {
        app: app.to_owned(),
        account: live.account.clone(),
        region: live.region.clone(),
        vpc: live.vpc_id.clone(),
        steps,
        notes: graph.nodes().iter().flat_map(|node| node.kind.notes(desired)).collect(),
    })
}

/// The steps so far, and the names found that belong to someone else.
#[derive(Default)]
pub struct Steps {
    steps: Vec<Step>,
    foreign: Vec<String>,
}

impl Steps {
    /// Adds the step that takes `found` (ownership and fields, if the
    /// resource exists) to `wanted`.
    pub fn add(
        &mut self,
        kind: &'static str,
        label: &'static str,
        name: &str,
        found: Option<(bool, Fields)>,
        wanted: &Fields,
    ) {
        let action = match found {
            None => Action::Create,
            Some((false, _)) => {
                self.foreign.push(format!("{label} {name}"));
                Action::Unchanged
            }
            Some((true, current)) => changes(&current, wanted),
        };
        self.push(kind, label, name, action);
    }

    /// Adds a step as it is.
    pub fn push(&mut self, kind: &'static str, label: &'static str, name: &str, action: Action) {
        self.steps.push(Step { kind, label, name: name.to_owned(), action });
    }

    /// Whether the resource of kind `kind` named `name` changes (more than
    /// its tags: a retagged resource is the same resource to the kinds that
    /// use it).
    pub fn changes(&self, kind: &str, name: &str) -> bool {
        self.steps.iter().any(|step| {
            step.kind == kind
                && step.name == name
                && match &step.action {
                    Action::Unchanged => false,
                    Action::Update { changes } => changes.iter().any(|change| change.field != TAGS_FIELD),
                    Action::Create | Action::Replace { .. } | Action::Delete => true,
                }
        })
    }
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

    fn plan_of(actions: Vec<Action>) -> Plan {
        let steps = actions
            .into_iter()
            .enumerate()
            .map(|(index, action)| Step {
                kind: "log_group",
                label: "log group",
                name: format!("group-{index}"),
                action,
            })
            .collect();
        Plan {
            app: "shop".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            vpc: "vpc-1".into(),
            steps,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_plan_without_changes_says_so_in_one_line_and_lists_unchanged_ones_only_when_asked() {
        let plan = plan_of(vec![Action::Unchanged, Action::Unchanged]);
        let text = colour::strip(&plan.render_with(false));
        assert!(text.ends_with("No changes: AWS matches the stack file (2 resources unchanged).\n"), "{text}");
        assert!(!text.contains("group-0"), "{text}");
        assert!(colour::strip(&plan.render_with(true)).contains("=   unchanged  log group            group-0"));
    }

    #[test]
    fn the_summary_counts_every_action_deletes_included() {
        let plan = plan_of(vec![Action::Create, Action::Delete, Action::Unchanged]);
        let text = colour::strip(&plan.render_with(false));
        assert!(text.contains("+   create     log group            group-0"), "{text}");
        assert!(text.contains("-   delete     log group            group-1"), "{text}");
        assert!(!text.contains("group-2"), "unchanged hidden: {text}");
        assert!(text.ends_with("1 to create, 0 to update, 0 to replace, 1 to delete, 1 unchanged.\n"), "{text}");
    }
}

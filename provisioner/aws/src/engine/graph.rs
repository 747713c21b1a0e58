//! The stack's dependency graph: the kinds of resource provision manages
//! (the table is `crate::kinds::KINDS`, handed in as a [`Graph`]), what
//! each takes from the others, and so the order of every verb. Plan lists
//! the kinds in the table's order; read and apply go layer by layer (a kind
//! after every kind it reads or needs, the kinds of one layer at once);
//! destroy tears each kind down as soon as nothing left needs it.

use std::{collections::BTreeMap, marker::PhantomData};

use futures_util::future::{BoxFuture, try_join_all};

use crate::engine::{
    names::{Names, Tags, is_aws_tag, tag_changes},
    plan::{Action, FieldChange, Plan, Steps, TAGS_FIELD},
    resource::{ApplyCx, Cx, DestroyOptions, Found, Kind, Output, render},
    state::{Desired, Live},
    status::StatusReport,
};
use stack_spec::Stack;

/// One kind and its edges in the graph.
pub struct Node {
    /// The kind's code.
    pub kind: &'static dyn AnyKind,
    /// Kinds apply must have applied first: their ids and ARNs are passed to
    /// this one. Destroy tears them down after it, in this order.
    pub needs: &'static [&'static str],
    /// Kinds whose live state reading this one looks at.
    pub reads: &'static [&'static str],
}

/// The table of kinds the verbs work on: every kind with its edges, in
/// plan order. The engine is handed it rather than naming it, so that the
/// kinds (which use the engine) are not also what the engine is built on.
#[derive(Clone, Copy)]
pub struct Graph(&'static [Node]);

impl Graph {
    /// The graph of `nodes`, which list every kind that an edge names.
    pub const fn new(nodes: &'static [Node]) -> Self {
        Self(nodes)
    }

    /// Every kind, in plan order.
    pub fn nodes(self) -> &'static [Node] {
        self.0
    }

    /// The kinds in layers by `edges` (a node's needs or reads): each layer
    /// after every layer it depends on, in the table's order within a layer.
    pub fn layers(self, edges: impl Fn(&Node) -> &'static [&'static str]) -> Vec<Vec<&'static Node>> {
        let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
        // A node's edges may point later in the list (a read of a kind that
        // is applied after it), so settle the depths until nothing moves.
        for _ in 0..self.0.len() {
            for node in self.0 {
                let level =
                    edges(node).iter().map(|key| depth.get(key).map_or(1, |level| level + 1)).max().unwrap_or(0);
                depth.insert(node.kind.key(), level);
            }
        }
        let mut layers: Vec<Vec<&Node>> = Vec::new();
        for node in self.0 {
            let level = depth[node.kind.key()];
            if layers.len() <= level {
                layers.resize_with(level + 1, Vec::new);
            }
            layers[level].push(node);
        }
        layers
    }

    /// Destroy's order: a kind nothing needs first, then, depth first, each
    /// kind it needs once nothing left needs that one.
    pub fn teardown_order(self) -> Vec<&'static Node> {
        let mut dependents: BTreeMap<&str, usize> = BTreeMap::new();
        for node in self.0 {
            for need in node.needs {
                *dependents.entry(need).or_default() += 1;
            }
        }
        fn visit(
            nodes: &'static [Node],
            node: &'static Node,
            dependents: &mut BTreeMap<&str, usize>,
            order: &mut Vec<&'static Node>,
        ) {
            order.push(node);
            for need in node.needs {
                let left = dependents.get_mut(need).expect("counted above");
                *left -= 1;
                if *left == 0
                    && let Some(next) = nodes.iter().find(|candidate| candidate.kind.key() == *need)
                {
                    visit(nodes, next, dependents, order);
                }
            }
        }
        let mut order = Vec::new();
        for node in self.0.iter().rev() {
            if !dependents.contains_key(node.kind.key()) {
                visit(self.0, node, &mut dependents, &mut order);
            }
        }
        order
    }

    /// Checks the stack against every kind's limits.
    pub fn check(self, stack: &Stack) -> Vec<crate::engine::limits::Problem> {
        self.0.iter().flat_map(|node| node.kind.check(stack)).collect()
    }

    /// Every kind's desired state.
    pub fn desired(self, stack: &Stack, live: &Live) -> Desired {
        let mut desired = Desired::default();
        desired.tags = Names::of(stack).tag_map();
        for node in self.0 {
            node.kind.desire(stack, live, &mut desired);
        }
        desired
    }

    /// Reads every kind, layer by layer, each layer's kinds at once.
    pub async fn read(self, cx: Cx<'_>, mut live: Live) -> anyhow::Result<Live> {
        for layer in self.layers(|node| node.reads) {
            let recorders = try_join_all(layer.iter().map(|node| node.kind.read(cx, &live))).await?;
            for record in recorders {
                record(&mut live);
            }
        }
        Ok(live)
    }
}

/// A [`Kind`] behind a pointer, so that the graph can list different kinds.
pub trait AnyKind: Sync {
    /// The kind's key ([`Kind::KEY`]).
    fn key(&self) -> &'static str;
    /// Settings of the stack the kind cannot take ([`Kind::check`]).
    fn check(&self, stack: &Stack) -> Vec<crate::engine::limits::Problem>;
    /// Records what the stack asks of the kind.
    fn desire(&self, stack: &Stack, live: &Live, desired: &mut Desired);
    /// Reads the kind; the result records itself in the live state.
    fn read<'a>(&'a self, cx: Cx<'a>, live: &'a Live) -> BoxFuture<'a, anyhow::Result<Recorder>>;
    /// Adds the kind's steps to the plan.
    fn plan(&self, desired: &Desired, live: &Live, steps: &mut Steps) -> anyhow::Result<()>;
    /// The notes of the kind's plan.
    fn notes(&self, desired: &Desired) -> Vec<String>;
    /// Applies the kind's steps of `plan`; returns each resource's output.
    fn apply<'a>(&'a self, cx: ApplyCx<'a>, plan: &'a Plan) -> BoxFuture<'a, anyhow::Result<Vec<(String, Output)>>>;
    /// Destroy's confirmation lines.
    fn teardown_lines(&self, live: &Live, options: DestroyOptions) -> Vec<String>;
    /// Deletes the kind's owned resources.
    fn destroy<'a>(&'a self, cx: Cx<'a>, live: &'a Live, options: DestroyOptions) -> BoxFuture<'a, anyhow::Result<()>>;
    /// Deletes the kind's resources `plan` says to delete.
    fn retire<'a>(&'a self, cx: Cx<'a>, live: &'a Live, plan: &'a Plan) -> BoxFuture<'a, anyhow::Result<()>>;
    /// The kind's part of `provision status`.
    fn status<'a>(
        &'a self,
        cx: Cx<'a>,
        live: &'a Live,
        report: &'a mut StatusReport,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Why a resource with one of the stack's names is not this app's, from
/// its tags (where its kind reads them).
fn foreign_reason(tags: Option<&Tags>) -> String {
    use crate::engine::names::{APP_TAG, MANAGED_BY, MANAGED_BY_TAG};
    let Some(tags) = tags else { return "not this app's".to_owned() };
    let managed = tags.get(MANAGED_BY_TAG).is_some_and(|value| value == MANAGED_BY);
    match (tags.get(APP_TAG), managed) {
        (None, false) => format!("not this app's: it has neither an {APP_TAG} tag nor {MANAGED_BY_TAG}={MANAGED_BY}"),
        (None, true) => format!("not this app's: it has no {APP_TAG} tag"),
        (Some(app), true) => format!("not this app's: it is tagged {APP_TAG}={app}"),
        (Some(app), false) => {
            format!(
                "not this app's: tagged {APP_TAG}={app} but not {MANAGED_BY_TAG}={MANAGED_BY}, so provision did not make it"
            )
        }
    }
}

/// The tags a resource of kind `K` should carry.
fn wanted_tags<K: Kind>(desired: &Desired, want: &K::Spec) -> Tags {
    let mut tags = desired.tags.clone();
    tags.extend(K::own_tags(want));
    tags
}

fn clone_pair((key, value): (&String, &String)) -> (String, String) {
    (key.clone(), value.clone())
}

/// The step a kind's apply is handed (a tags-only update is no update of
/// its own fields), and whether the resource's tags are to be put back.
fn without_tags(action: &Action) -> (Action, bool) {
    match action {
        Action::Update { changes } if changes.iter().any(|change| change.field == TAGS_FIELD) => {
            let rest: Vec<FieldChange> = changes.iter().filter(|change| change.field != TAGS_FIELD).cloned().collect();
            (if rest.is_empty() { Action::Unchanged } else { Action::Update { changes: rest } }, true)
        }
        other => (other.clone(), false),
    }
}

/// What a kind's read found, to record in the live state once every read
/// of its layer is done.
pub type Recorder = Box<dyn FnOnce(&mut Live) + Send>;

/// The [`AnyKind`] of `K`.
pub struct Of<K>(PhantomData<K>);

impl<K: Kind> Of<K> {
    /// `K` as the graph lists it.
    pub const KIND: &'static dyn AnyKind = &Of::<K>(PhantomData);
}

impl<K: Kind> AnyKind for Of<K> {
    fn key(&self) -> &'static str {
        K::KEY
    }

    fn check(&self, stack: &Stack) -> Vec<crate::engine::limits::Problem> {
        K::check(stack)
    }

    fn desire(&self, stack: &Stack, live: &Live, desired: &mut Desired) {
        desired.insert::<K>(K::desired(stack, live));
    }

    fn read<'a>(&'a self, cx: Cx<'a>, live: &'a Live) -> BoxFuture<'a, anyhow::Result<Recorder>> {
        Box::pin(async move {
            let found = K::read(cx, live).await?;
            let record: Recorder = Box::new(move |live: &mut Live| live.insert::<K>(found));
            Ok(record)
        })
    }

    fn plan(&self, desired: &Desired, live: &Live, steps: &mut Steps) -> anyhow::Result<()> {
        for want in desired.all::<K>() {
            let name = K::name(want);
            let have = live.get::<K>(name);
            K::precondition(want, have, live)?;
            let reason = have.filter(|found| found.owned).and_then(|found| K::replacement_reason(want, &found.spec));
            if let Some(reason) = reason {
                steps.push(K::KEY, K::LABEL, name, Action::Replace { reason });
                continue;
            }
            let (mut wanted, mut current) = K::compared(want, have, steps, live);
            if let (Some(live_tags), Some(current)) = (have.and_then(|found| found.tags.as_ref()), current.as_mut()) {
                let compared: Tags = live_tags.iter().filter(|(key, _)| !is_aws_tag(key)).map(clone_pair).collect();
                wanted.insert(TAGS_FIELD, render::pairs(&wanted_tags::<K>(desired, want)));
                current.insert(TAGS_FIELD, render::pairs(&compared));
            }
            let found = have.map(|found| (found.owned, current.unwrap_or_default()));
            steps.add(K::KEY, K::LABEL, name, found, &wanted);
        }
        if K::RETIRED_WITH_THE_STACK {
            for (name, _) in live.all::<K>().filter(|(_, found)| found.owned) {
                if desired.get::<K>(name).is_none() {
                    steps.push(K::KEY, K::LABEL, name, Action::Delete);
                }
            }
        }
        Ok(())
    }

    fn notes(&self, desired: &Desired) -> Vec<String> {
        desired.all::<K>().iter().filter_map(K::note).collect()
    }

    fn apply<'a>(&'a self, cx: ApplyCx<'a>, plan: &'a Plan) -> BoxFuture<'a, anyhow::Result<Vec<(String, Output)>>> {
        Box::pin(async move {
            let specs = cx.desired.all::<K>();
            let outputs = try_join_all(specs.iter().map(|want| async move {
                let name = K::name(want);
                let have = cx.live.get::<K>(name);
                let (action, retag) = without_tags(plan.action(K::KEY, name));
                let output = K::apply(cx, want, have, &action).await?;
                if let (true, Some(found)) = (retag, have) {
                    let wanted = wanted_tags::<K>(cx.desired, want);
                    let (set, remove) = tag_changes(&wanted, found.tags.as_ref().unwrap_or(&Tags::new()));
                    K::retag(cx.cx, found, &set, &remove).await?;
                    K::done("retagged", name);
                }
                Ok::<_, anyhow::Error>(output)
            }))
            .await?;
            Ok(specs.iter().map(|want| K::name(want).to_owned()).zip(outputs).collect())
        })
    }

    fn teardown_lines(&self, live: &Live, options: DestroyOptions) -> Vec<String> {
        live.all::<K>()
            .filter_map(|(_, found)| {
                let line = K::teardown_line(found, options)?;
                Some(if found.owned { line } else { format!("{line} (kept: {})", foreign_reason(found.tags.as_ref())) })
            })
            .collect()
    }

    fn destroy<'a>(&'a self, cx: Cx<'a>, live: &'a Live, options: DestroyOptions) -> BoxFuture<'a, anyhow::Result<()>> {
        let owned: Vec<&Found<K::Spec>> = live.all::<K>().map(|(_, found)| found).filter(|found| found.owned).collect();
        Box::pin(K::destroy(cx, owned, options))
    }

    fn retire<'a>(&'a self, cx: Cx<'a>, live: &'a Live, plan: &'a Plan) -> BoxFuture<'a, anyhow::Result<()>> {
        let retired: Vec<&Found<K::Spec>> = live
            .all::<K>()
            .filter(|(name, found)| found.owned && *plan.action(K::KEY, name) == Action::Delete)
            .map(|(_, found)| found)
            .collect();
        Box::pin(async move {
            if retired.is_empty() { Ok(()) } else { K::destroy(cx, retired, DestroyOptions::default()).await }
        })
    }

    fn status<'a>(
        &'a self,
        cx: Cx<'a>,
        live: &'a Live,
        report: &'a mut StatusReport,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(K::status(cx, live, report))
    }
}

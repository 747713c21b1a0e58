//! The stack's dependency graph: every kind of resource provision manages,
//! what each takes from the others, and so the order of every verb. Plan
//! lists the kinds in [`KINDS`] order; read and apply go layer by layer
//! (a kind after every kind it reads or needs, the kinds of one layer at
//! once); destroy tears each kind down as soon as nothing left needs it.

use std::{collections::BTreeMap, marker::PhantomData};

use futures_util::future::{BoxFuture, try_join_all};

use super::{
    kinds::{
        cloud_map_service::CloudMapService,
        cluster::Cluster,
        ecs_service::EcsService,
        ingress::{
            listener::Listener, load_balancer::LoadBalancer, security_group::IngressSecurityGroup,
            target_group::TargetGroup,
        },
        log_group::LogGroup,
        namespace::Namespace,
        pipeline::{bucket::ArtifactBucket, delivery::DeliveryPipeline, project::BuildProject},
        repository::Repository,
        role::Role,
        scaling::{policy::ScalingPolicy, target::ScalableTarget},
        security_group::SecurityGroup,
        store::{
            replication_group::ReplicationGroup, secret::StoreSecret, security_group::StoreSecurityGroup,
            subnet_group::CacheSubnetGroup,
        },
        task_definition::TaskDefinition,
    },
    plan::{Action, Plan, Steps},
    resource::{ApplyCx, Cx, DestroyOptions, Found, Kind, Output},
    state::{Desired, Live},
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

/// Every kind, in plan order, with what it takes from the others. Adding a
/// kind is its module under `kinds/` plus one line here, e.g.
/// `Node { kind: Of::<LoadBalancer>::KIND, needs: &[SecurityGroup::KEY], reads: &[] },`
/// (and a line in the kinds listed as `needs` of those that use it).
pub static KINDS: &[Node] = &[
    Node { kind: Of::<Cluster>::KIND, needs: &[], reads: &[] },
    Node { kind: Of::<Namespace>::KIND, needs: &[], reads: &[] },
    // a load balancer's group: 443 from the allowed CIDRs
    Node { kind: Of::<IngressSecurityGroup>::KIND, needs: &[], reads: &[] },
    // the load balancers' groups' ids (each admitted on its service's port)
    Node { kind: Of::<SecurityGroup>::KIND, needs: &[IngressSecurityGroup::KEY], reads: &[IngressSecurityGroup::KEY] },
    Node { kind: Of::<Role>::KIND, needs: &[], reads: &[] },
    Node { kind: Of::<LogGroup>::KIND, needs: &[], reads: &[] },
    Node { kind: Of::<Repository>::KIND, needs: &[], reads: &[] },
    // the tasks' security group's id (the only source it admits)
    Node { kind: Of::<StoreSecurityGroup>::KIND, needs: &[SecurityGroup::KEY], reads: &[SecurityGroup::KEY] },
    Node { kind: Of::<CacheSubnetGroup>::KIND, needs: &[], reads: &[] },
    // made before its store: it holds the AUTH token the store is made with
    Node { kind: Of::<StoreSecret>::KIND, needs: &[], reads: &[] },
    // its security group's id, its subnet group, its secret's token
    Node {
        kind: Of::<ReplicationGroup>::KIND,
        needs: &[StoreSecurityGroup::KEY, StoreSecret::KEY, CacheSubnetGroup::KEY],
        reads: &[],
    },
    // the namespace's id
    Node { kind: Of::<CloudMapService>::KIND, needs: &[Namespace::KEY], reads: &[Namespace::KEY] },
    // its security group's id
    Node { kind: Of::<LoadBalancer>::KIND, needs: &[IngressSecurityGroup::KEY], reads: &[IngressSecurityGroup::KEY] },
    Node { kind: Of::<TargetGroup>::KIND, needs: &[], reads: &[] },
    // its load balancer's ARN and its target group's
    Node {
        kind: Of::<Listener>::KIND,
        needs: &[LoadBalancer::KEY, TargetGroup::KEY],
        reads: &[LoadBalancer::KEY, TargetGroup::KEY],
    },
    // the log groups' names, the repositories' URIs, the roles' ARNs, the
    // stores' secrets' ARNs (once the stores are available); reads the
    // revision each ECS service runs (what apply compares with)
    Node {
        kind: Of::<TaskDefinition>::KIND,
        needs: &[LogGroup::KEY, Repository::KEY, Role::KEY, StoreSecret::KEY, ReplicationGroup::KEY],
        reads: &[EcsService::KEY],
    },
    // the Cloud Map service's ARN, the task definition's ARN, the security
    // group's id, the cluster, the target group's ARN (attached once its
    // listener forwards to it, as ECS requires)
    Node {
        kind: Of::<EcsService>::KIND,
        needs: &[
            CloudMapService::KEY,
            TaskDefinition::KEY,
            SecurityGroup::KEY,
            Cluster::KEY,
            TargetGroup::KEY,
            Listener::KEY,
        ],
        reads: &[Cluster::KEY],
    },
    // the ECS service it scales (Application Auto Scaling checks that it
    // exists)
    Node { kind: Of::<ScalableTarget>::KIND, needs: &[EcsService::KEY], reads: &[] },
    // its scalable target; reads only the targets that exist
    Node { kind: Of::<ScalingPolicy>::KIND, needs: &[ScalableTarget::KEY], reads: &[ScalableTarget::KEY] },
    // the pipeline's artifacts and the build's cache
    Node { kind: Of::<ArtifactBucket>::KIND, needs: &[], reads: &[] },
    // the build role's ARN, its cache's bucket and its log group
    Node { kind: Of::<BuildProject>::KIND, needs: &[Role::KEY, ArtifactBucket::KEY, LogGroup::KEY], reads: &[] },
    // the pipeline role's ARN, the artifact store, the project it runs
    Node {
        kind: Of::<DeliveryPipeline>::KIND,
        needs: &[Role::KEY, ArtifactBucket::KEY, BuildProject::KEY],
        reads: &[],
    },
];

/// The kinds in layers by `edges` (a node's needs or reads): each layer
/// after every layer it depends on, in [`KINDS`] order within a layer.
pub fn layers(edges: impl Fn(&Node) -> &'static [&'static str]) -> Vec<Vec<&'static Node>> {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    // A node's edges may point later in the list (a read of a kind that
    // is applied after it), so settle the depths until nothing moves.
    for _ in 0..KINDS.len() {
        for node in KINDS {
            let level = edges(node).iter().map(|key| depth.get(key).map_or(1, |level| level + 1)).max().unwrap_or(0);
            depth.insert(node.kind.key(), level);
        }
    }
    let mut layers: Vec<Vec<&Node>> = Vec::new();
    for node in KINDS {
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
pub fn teardown_order() -> Vec<&'static Node> {
    let mut dependents: BTreeMap<&str, usize> = BTreeMap::new();
    for node in KINDS {
        for need in node.needs {
            *dependents.entry(need).or_default() += 1;
        }
    }
    fn visit(node: &'static Node, dependents: &mut BTreeMap<&str, usize>, order: &mut Vec<&'static Node>) {
        order.push(node);
        for need in node.needs {
            let left = dependents.get_mut(need).expect("counted above");
            *left -= 1;
            if *left == 0
                && let Some(next) = KINDS.iter().find(|candidate| candidate.kind.key() == *need)
            {
                visit(next, dependents, order);
            }
        }
    }
    let mut order = Vec::new();
    for node in KINDS.iter().rev() {
        if !dependents.contains_key(node.kind.key()) {
            visit(node, &mut dependents, &mut order);
        }
    }
    order
}

/// A [`Kind`] behind a pointer, so that the graph can list different kinds.
pub trait AnyKind: Sync {
    /// The kind's key ([`Kind::KEY`]).
    fn key(&self) -> &'static str;
    /// Settings of the stack the kind cannot take ([`Kind::check`]).
    fn check(&self, stack: &Stack) -> Vec<String>;
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
    fn status<'a>(&'a self, cx: Cx<'a>, live: &'a Live, out: &'a mut String) -> BoxFuture<'a, anyhow::Result<bool>>;
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

    fn check(&self, stack: &Stack) -> Vec<String> {
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
            let (wanted, current) = K::compared(want, have, steps, live);
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
            let outputs = try_join_all(specs.iter().map(|want| {
                let name = K::name(want);
                K::apply(cx, want, cx.live.get::<K>(name), plan.action(K::KEY, name))
            }))
            .await?;
            Ok(specs.iter().map(|want| K::name(want).to_owned()).zip(outputs).collect())
        })
    }

    fn teardown_lines(&self, live: &Live, options: DestroyOptions) -> Vec<String> {
        live.all::<K>()
            .filter_map(|(_, found)| {
                let line = K::teardown_line(found, options)?;
                Some(if found.owned { line } else { format!("{line} (kept: not this app's)") })
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

    fn status<'a>(&'a self, cx: Cx<'a>, live: &'a Live, out: &'a mut String) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(K::status(cx, live, out))
    }
}

/// Checks the stack against every kind's limits.
pub fn check(stack: &Stack) -> Vec<String> {
    KINDS.iter().flat_map(|node| node.kind.check(stack)).collect()
}

/// Every kind's desired state.
pub fn desired(stack: &Stack, live: &Live) -> Desired {
    let mut desired = Desired::default();
    for node in KINDS {
        node.kind.desire(stack, live, &mut desired);
    }
    desired
}

/// Reads every kind, layer by layer, each layer's kinds at once.
pub async fn read(cx: Cx<'_>, mut live: Live) -> anyhow::Result<Live> {
    for layer in layers(|node| node.reads) {
        let recorders = try_join_all(layer.iter().map(|node| node.kind.read(cx, &live))).await?;
        for record in recorders {
            record(&mut live);
        }
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(nodes: &[&Node]) -> Vec<&'static str> {
        nodes.iter().map(|node| node.kind.key()).collect()
    }

    #[test]
    fn every_edge_names_a_listed_kind() {
        for node in KINDS {
            for edge in node.needs.iter().chain(node.reads) {
                assert!(KINDS.iter().any(|other| other.kind.key() == *edge), "{} -> {edge}", node.kind.key());
            }
        }
    }

    #[test]
    fn apply_goes_by_what_each_kind_needs() {
        let layers: Vec<Vec<&str>> = layers(|node| node.needs).iter().map(|layer| keys(layer)).collect();
        assert_eq!(
            layers,
            [
                vec![
                    "cluster",
                    "namespace",
                    "ingress-security-group",
                    "role",
                    "log-group",
                    "repository",
                    "cache-subnet-group",
                    "store-secret",
                    "target-group",
                    "artifact-bucket"
                ],
                vec!["security-group", "discovery-service", "load-balancer", "build-project"],
                vec!["store-security-group", "listener", "pipeline"],
                vec!["store"],
                vec!["task-definition"],
                vec!["service"],
                vec!["scalable-target"],
                vec!["scaling-policy"],
            ]
        );
    }

    #[test]
    fn read_goes_by_what_each_kind_looks_at() {
        let layers: Vec<Vec<&str>> = layers(|node| node.reads).iter().map(|layer| keys(layer)).collect();
        assert_eq!(
            layers,
            [
                vec![
                    "cluster",
                    "namespace",
                    "ingress-security-group",
                    "role",
                    "log-group",
                    "repository",
                    "cache-subnet-group",
                    "store-secret",
                    "store",
                    "target-group",
                    "scalable-target",
                    "artifact-bucket",
                    "build-project",
                    "pipeline"
                ],
                vec!["security-group", "discovery-service", "load-balancer", "service", "scaling-policy"],
                vec!["store-security-group", "listener", "task-definition"],
            ]
        );
    }

    #[test]
    fn destroy_tears_a_kind_down_once_nothing_needs_it() {
        assert_eq!(
            keys(&teardown_order()),
            [
                "pipeline",
                "build-project",
                "artifact-bucket",
                "scaling-policy",
                "scalable-target",
                "service",
                "discovery-service",
                "namespace",
                "task-definition",
                "log-group",
                "repository",
                "role",
                "store",
                "store-security-group",
                "store-secret",
                "cache-subnet-group",
                "security-group",
                "cluster",
                "listener",
                "load-balancer",
                "ingress-security-group",
                "target-group"
            ]
        );
    }
}

//! The resource kinds provision manages on AWS, one module each (its spec,
//! read-back, diff, create/update/delete, status and limits), and the table
//! of how they depend on each other, [`KINDS`], which the verbs hand to the
//! engine as [`GRAPH`]. Kinds use the engine and the clients, never a verb.

pub mod boundary;
pub mod cloud_map_service;
pub mod cluster;
pub mod ecs_service;
pub mod ingress;
pub mod log_group;
pub mod namespace;
pub mod pipeline;
pub mod repository;
pub mod role;
pub mod scaling;
pub mod security_group;
pub mod store;
pub mod task_definition;

use boundary::Boundary;
use cloud_map_service::CloudMapService;
use cluster::Cluster;
use ecs_service::EcsService;
use ingress::{
    listener::Listener, load_balancer::LoadBalancer, security_group::IngressSecurityGroup, target_group::TargetGroup,
};
use log_group::LogGroup;
use namespace::Namespace;
use pipeline::{bucket::ArtifactBucket, delivery::DeliveryPipeline, project::BuildProject};
use repository::Repository;
use role::Role;
use scaling::{policy::ScalingPolicy, target::ScalableTarget};
use security_group::SecurityGroup;
use store::{
    replication_group::ReplicationGroup, secret::StoreSecret, security_group::StoreSecurityGroup,
    subnet_group::CacheSubnetGroup,
};
use task_definition::TaskDefinition;

use crate::engine::{
    graph::{Graph, Node, Of},
    resource::Kind as _,
};

/// The table as the engine takes it.
pub const GRAPH: Graph = Graph::new(KINDS);

/// Every kind, in plan order, with what it takes from the others. Adding a
/// kind is its module here plus one line in this table, e.g.
/// `Node { kind: Of::<LoadBalancer>::KIND, needs: &[SecurityGroup::KEY], reads: &[] },`
/// (and a line in the kinds listed as `needs` of those that use it).
pub static KINDS: &[Node] = &[
    Node { kind: Of::<Cluster>::KIND, needs: &[], reads: &[] },
    Node { kind: Of::<Namespace>::KIND, needs: &[], reads: &[] },
    // a load balancer's group: 443 from the allowed CIDRs
    Node { kind: Of::<IngressSecurityGroup>::KIND, needs: &[], reads: &[] },
    // the load balancers' groups' ids (each admitted on its service's port)
    Node { kind: Of::<SecurityGroup>::KIND, needs: &[IngressSecurityGroup::KEY], reads: &[IngressSecurityGroup::KEY] },
    Node { kind: Of::<Boundary>::KIND, needs: &[], reads: &[] },
    // the boundary each role carries
    Node { kind: Of::<Role>::KIND, needs: &[Boundary::KEY], reads: &[] },
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::limits;

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
        let layers: Vec<Vec<&str>> = GRAPH.layers(|node| node.needs).iter().map(|layer| keys(layer)).collect();
        assert_eq!(
            layers,
            [
                vec![
                    "cluster",
                    "namespace",
                    "ingress-security-group",
                    "boundary",
                    "log-group",
                    "repository",
                    "cache-subnet-group",
                    "store-secret",
                    "target-group",
                    "artifact-bucket"
                ],
                vec!["security-group", "role", "discovery-service", "load-balancer"],
                vec!["store-security-group", "listener", "build-project"],
                vec!["store", "pipeline"],
                vec!["task-definition"],
                vec!["service"],
                vec!["scalable-target"],
                vec!["scaling-policy"],
            ]
        );
    }

    #[test]
    fn read_goes_by_what_each_kind_looks_at() {
        let layers: Vec<Vec<&str>> = GRAPH.layers(|node| node.reads).iter().map(|layer| keys(layer)).collect();
        assert_eq!(
            layers,
            [
                vec![
                    "cluster",
                    "namespace",
                    "ingress-security-group",
                    "boundary",
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
            keys(&GRAPH.teardown_order()),
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
                "boundary",
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

    #[test]
    fn local_intervals_are_refused_for_ecs_with_the_field_and_value() {
        let text = "[[service]]\nname = \"svc\"\n[service.health_check]\ninterval_secs = 0.5\ntimeout_secs = 0.2\n";
        let stack = stack_spec::parse(text, "stack.toml").unwrap();
        let error = limits::check(GRAPH, &stack, Path::new("stack.toml")).unwrap_err().to_string();
        assert_eq!(
            error,
            "the stack file asks for what AWS refuses:\nstack.toml:4: service \"svc\": health_check.interval_secs 0.5 \
             is not what ECS accepts (whole seconds, 5 to 300): set it to 5\nstack.toml:5: service \"svc\": \
             health_check.timeout_secs 0.2 is not what ECS accepts (whole seconds, 2 to 60): set it to 2"
        );
        // Each problem at its own line, whichever field it is.
        let text = "app = \"a\"\n[[service]]\nname = \"svc\"\n[service.health_check]\nstart_period_secs = 301\n";
        let stack = stack_spec::parse(text, "stack.toml").unwrap();
        let error = limits::check(GRAPH, &stack, Path::new("stack.toml")).unwrap_err().to_string();
        assert!(error.contains("\nstack.toml:5: service \"svc\": health_check.start_period_secs 301"), "{error}");
        let committed = stack_spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack.toml")).unwrap();
        assert!(limits::check(GRAPH, &committed, Path::new("stack.toml")).is_ok());
    }
}

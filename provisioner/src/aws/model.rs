//! What each resource should look like, as plain data. The desired state is
//! built from the stack file and the live state is read back into the same
//! types, so a plan is a field-by-field comparison of the two.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// A resource's comparable fields, by name, rendered for people.
pub type Fields = BTreeMap<&'static str, String>;

/// The kinds of resources, in the order apply creates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// ECS cluster.
    Cluster,
    /// Cloud Map private DNS namespace.
    Namespace,
    /// EC2 security group of the tasks.
    SecurityGroup,
    /// IAM role.
    Role,
    /// CloudWatch log group.
    LogGroup,
    /// ECR repository.
    Repository,
    /// Cloud Map service (the DNS name).
    DiscoveryService,
    /// ECS task definition family.
    TaskDefinition,
    /// ECS service.
    Service,
}

impl Kind {
    /// How plan output names the kind.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Cluster => "ecs cluster",
            Kind::Namespace => "cloud map namespace",
            Kind::SecurityGroup => "security group",
            Kind::Role => "iam role",
            Kind::LogGroup => "log group",
            Kind::Repository => "ecr repository",
            Kind::DiscoveryService => "cloud map service",
            Kind::TaskDefinition => "task definition",
            Kind::Service => "ecs service",
        }
    }
}

/// The ECS cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    /// Whether Container Insights collects metrics.
    pub container_insights: bool,
    /// FARGATE and FARGATE_SPOT.
    pub capacity_providers: BTreeSet<String>,
}

impl ClusterSpec {
    pub fn fields(&self) -> Fields {
        Fields::from([
            ("container_insights", on_off(self.container_insights)),
            ("capacity_providers", join(&self.capacity_providers)),
        ])
    }
}

/// The Cloud Map private DNS namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// The DNS domain, e.g. `local`.
    pub name: String,
    /// The VPC it answers in, from the tag apply puts on it ([`VPC_TAG`]);
    /// a namespace cannot move to another VPC.
    pub vpc: Option<String>,
}

/// The tag recording a namespace's VPC (Cloud Map itself only tells it
/// through Route 53).
pub const VPC_TAG: &str = "vpc";

/// The source of an ingress rule meaning the group itself.
pub const FROM_SELF: &str = "self";

/// The tasks' security group: service ports open only to members of the
/// group (or the named sources), all egress (image pulls, logs, AWS APIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupSpec {
    pub name: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// (TCP port, source group id or [`FROM_SELF`]).
    pub ingress: BTreeSet<(u16, String)>,
}

impl SecurityGroupSpec {
    pub fn fields(&self) -> Fields {
        let rules: Vec<String> =
            self.ingress.iter().map(|(port, source)| format!("tcp/{port} from {source}")).collect();
        Fields::from([("vpc", self.vpc_id.clone()), ("ingress", rules.join(", "))])
    }
}

/// An IAM role that ECS tasks assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    /// The inline policy, if the role needs one.
    pub policy: Option<Value>,
    /// Managed policy ARNs attached to it.
    pub managed_policies: BTreeSet<String>,
}

impl RoleSpec {
    pub fn fields(&self) -> Fields {
        Fields::from([
            ("inline_policy", self.policy.as_ref().map_or_else(|| "none".to_owned(), summarize_policy)),
            ("managed_policies", join(&self.managed_policies)),
        ])
    }

    /// Who may assume it: ECS tasks only.
    pub fn trust_policy() -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "ecs-tasks.amazonaws.com" },
                "Action": "sts:AssumeRole"
            }]
        })
    }
}

/// A service's log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupSpec {
    pub name: String,
    /// Days CloudWatch keeps the logs.
    pub retention_days: u32,
}

impl LogGroupSpec {
    pub fn fields(&self) -> Fields {
        Fields::from([("retention_days", self.retention_days.to_string())])
    }
}

/// A service's image repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySpec {
    pub name: String,
    /// Whether ECR scans each pushed image for vulnerabilities.
    pub scan_on_push: bool,
    /// Whether a tag, once pushed, always names the same image.
    pub immutable_tags: bool,
    /// The lifecycle policy keeps this many images.
    pub keep_images: u32,
}

impl RepositorySpec {
    pub fn fields(&self) -> Fields {
        Fields::from([
            ("scan_on_push", on_off(self.scan_on_push)),
            ("tag_mutability", if self.immutable_tags { "IMMUTABLE" } else { "MUTABLE" }.to_owned()),
            ("lifecycle_keep_images", self.keep_images.to_string()),
        ])
    }

    /// The lifecycle policy: expire all but the newest `keep_images`.
    pub fn lifecycle_policy(&self) -> Value {
        json!({
            "rules": [{
                "rulePriority": 1,
                "description": format!("keep the last {} images", self.keep_images),
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": self.keep_images
                },
                "action": { "type": "expire" }
            }]
        })
    }

    /// Reads `keep_images` back from a lifecycle policy this tool wrote.
    pub fn keep_images_of(policy: &Value) -> Option<u32> {
        policy["rules"][0]["selection"]["countNumber"].as_u64().and_then(|count| u32::try_from(count).ok())
    }
}

/// A service's Cloud Map service: MULTIVALUE A and SRV records whose
/// health ECS reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySpec {
    pub name: String,
    /// TTL of the A and SRV records.
    pub ttl_secs: i64,
    /// A and SRV.
    pub record_types: BTreeSet<String>,
    /// MULTIVALUE: up to 8 healthy records per answer.
    pub routing_policy: String,
    /// Whether ECS reports task health (HealthCheckCustomConfig).
    pub custom_health_check: bool,
}

impl DiscoverySpec {
    pub fn fields(&self) -> Fields {
        Fields::from([
            ("dns_ttl_secs", self.ttl_secs.to_string()),
            ("records", join(&self.record_types)),
            ("routing_policy", self.routing_policy.clone()),
            ("health_check", if self.custom_health_check { "reported by ECS" } else { "none" }.to_owned()),
        ])
    }

    /// Fields that Cloud Map cannot change in place.
    pub fn replacement_reason(&self, live: &DiscoverySpec) -> Option<String> {
        if self.record_types != live.record_types {
            return Some("DNS record types can only change by recreating the Cloud Map service".into());
        }
        if self.routing_policy != live.routing_policy {
            return Some("the routing policy can only change by recreating the Cloud Map service".into());
        }
        if self.custom_health_check != live.custom_health_check {
            return Some("the health check type can only change by recreating the Cloud Map service".into());
        }
        None
    }
}

/// A container health check as ECS runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    pub command: Vec<String>,
    pub interval_secs: i32,
    pub timeout_secs: i32,
    pub retries: i32,
    pub start_period_secs: i32,
}

/// A task definition's content (what decides whether a new revision is
/// needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub cpu: u32,
    pub memory: u32,
    pub architecture: String,
    /// The image; `None` while the repository has none (the service then
    /// runs no task).
    pub image: Option<String>,
    pub port: u16,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub health_check: HealthCheckSpec,
    pub stop_timeout_secs: i32,
    pub log_group: String,
    pub execution_role: String,
    pub task_role: String,
}

/// The image a task definition names while there is none to run.
pub const NO_IMAGE: &str = "none (not deployed yet)";

/// The tag a task definition's image carries while there is no image: the
/// service runs no task, and reading it back means "no image".
pub const NO_IMAGE_TAG: &str = "not-deployed-yet";

impl TaskDefinitionSpec {
    pub fn fields(&self) -> Fields {
        let health = &self.health_check;
        Fields::from([
            ("cpu", self.cpu.to_string()),
            ("memory", self.memory.to_string()),
            ("architecture", self.architecture.clone()),
            ("image", self.image.clone().unwrap_or_else(|| NO_IMAGE.to_owned())),
            ("port", format!("{}/grpc", self.port)),
            ("environment", pairs(&self.environment)),
            ("secrets", pairs(&self.secrets)),
            (
                "health_check",
                format!(
                    "{} every {}s, timeout {}s, {} retries, start period {}s",
                    health.command.join(" "),
                    health.interval_secs,
                    health.timeout_secs,
                    health.retries,
                    health.start_period_secs
                ),
            ),
            ("stop_timeout_secs", self.stop_timeout_secs.to_string()),
            ("log_group", self.log_group.clone()),
            ("execution_role", self.execution_role.clone()),
            ("task_role", self.task_role.clone()),
        ])
    }
}

/// An ECS service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub desired_count: i32,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub subnets: BTreeSet<String>,
    pub assign_public_ip: bool,
    /// The Cloud Map service id (`srv-...`) it registers tasks in; known
    /// only for a live service (plan compares it).
    pub registry: Option<String>,
    /// Whether the API reported the deployment configuration (AWS always
    /// does; an emulator may not, and what was not reported is not compared).
    pub deployment_reported: bool,
}

impl ServiceSpec {
    pub fn fields(&self) -> Fields {
        let mut fields = Fields::from([
            ("desired_count", self.desired_count.to_string()),
            (
                "deployment",
                format!(
                    "min {}% max {}%, circuit breaker {}, rollback {}",
                    self.minimum_healthy_percent,
                    self.maximum_percent,
                    on_off(self.circuit_breaker),
                    on_off(self.rollback)
                ),
            ),
            ("subnets", join(&self.subnets)),
            ("public_ip", on_off(self.assign_public_ip)),
        ]);
        if !self.deployment_reported {
            fields.remove("deployment");
        }
        fields
    }
}

fn on_off(value: bool) -> String {
    if value { "on" } else { "off" }.to_owned()
}

fn join(values: &BTreeSet<String>) -> String {
    if values.is_empty() { "none".to_owned() } else { values.iter().cloned().collect::<Vec<_>>().join(",") }
}

fn pairs(values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        return "none".to_owned();
    }
    values.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(" ")
}

/// A policy in one line: its actions, so a change shows what it grants.
fn summarize_policy(policy: &Value) -> String {
    let mut actions = BTreeSet::new();
    let mut resources = BTreeSet::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        for field in ["Action", "Resource"] {
            let target = if field == "Action" { &mut actions } else { &mut resources };
            match &statement[field] {
                Value::String(value) => {
                    target.insert(value.clone());
                }
                Value::Array(values) => target.extend(values.iter().filter_map(Value::as_str).map(str::to_owned)),
                _ => {}
            }
        }
    }
    format!("{} on {}", join(&actions), join(&resources))
}

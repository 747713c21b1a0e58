//! The desired state: the stack file turned into resource specs, given the
//! few facts only the account knows (account id, VPC, subnets, images).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{
    model::{
        ClusterSpec, DiscoverySpec, FROM_SELF, HealthCheckSpec, LogGroupSpec, NamespaceSpec, RepositorySpec, RoleSpec,
        SecurityGroupSpec, ServiceSpec, TaskDefinitionSpec,
    },
    names::{IMAGE_BINARY, Names},
};
use crate::spec::{Architecture, DRAIN_MARGIN_SECS, Stack};

/// Images an ECR repository keeps before the lifecycle policy expires the
/// oldest: enough to roll back a few deploys.
pub const KEEP_IMAGES: u32 = 20;

/// What only the account can tell.
#[derive(Debug, Clone)]
pub struct Context {
    /// The account id, for ARNs in policies.
    pub account: String,
    /// The VPC the namespace and security group belong to.
    pub vpc_id: String,
    /// The subnets tasks run in.
    pub subnets: BTreeSet<String>,
    /// The image each service runs, by service name; `None` when there is
    /// none yet.
    pub images: BTreeMap<String, Option<String>>,
}

/// Everything apply makes.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The ECS cluster.
    pub cluster: ClusterSpec,
    /// The Cloud Map private DNS namespace.
    pub namespace: NamespaceSpec,
    /// The tasks' security group.
    pub security_group: SecurityGroupSpec,
    /// The role ECS starts every task with.
    pub execution_role: RoleSpec,
    /// One entry per service, in stack order.
    pub services: Vec<ServiceDesired>,
}

/// Everything one service needs.
#[derive(Debug, Clone)]
pub struct ServiceDesired {
    /// The service's name (its DNS label and ECS service name).
    pub name: String,
    /// The gRPC port (also the SRV records' port).
    pub port: u16,
    /// The role the service's code runs as.
    pub task_role: RoleSpec,
    /// Where its logs go.
    pub log_group: LogGroupSpec,
    /// Where its images live.
    pub repository: RepositorySpec,
    /// Its DNS name in Cloud Map.
    pub discovery: DiscoverySpec,
    /// What one task runs.
    pub task_definition: TaskDefinitionSpec,
    /// How many tasks run, and how they are replaced.
    pub service: ServiceSpec,
    /// Why the service runs fewer tasks than the stack asks, if it does.
    pub held_back: Option<String>,
}

impl Desired {
    /// The desired state of `stack` in the account `context` describes.
    pub fn new(stack: &Stack, context: &Context) -> Self {
        let names = Names::new(&stack.app);
        let services = stack
            .services
            .iter()
            .map(|service| {
                let image = context.images.get(&service.name).cloned().flatten();
                let held_back = image.is_none().then(|| {
                    format!(
                        "no image in ECR repository {} yet: runs 0 tasks until `provision deploy` pushes one",
                        names.repository(&service.name)
                    )
                });
                let mut environment = service.env.clone();
                environment.insert("GRPC_ADDR".into(), format!("0.0.0.0:{}", service.port));
                environment.entry("LOG_FORMAT".into()).or_insert_with(|| "json".into());
                // Zero-downtime stop: keep serving (NOT_SERVING) until every
                // client's DNS cache has expired, then exit before ECS's
                // SIGKILL at stopTimeout.
                let drain = service.dns_ttl.as_secs() + DRAIN_MARGIN_SECS;
                environment.entry("DRAIN_SECS".into()).or_insert_with(|| drain.to_string());
                let deadline = service.aws.stop_timeout.as_secs().saturating_sub(1);
                environment.entry("SHUTDOWN_TIMEOUT_SECS".into()).or_insert_with(|| deadline.to_string());
                for dependency in &service.depends_on {
                    if let Some(target) = stack.services.iter().find(|candidate| &candidate.name == dependency) {
                        environment.insert(
                            target.addr_variable(),
                            format!("dns:///{}:{}", target.dns_name(&stack.namespace), target.port),
                        );
                    }
                }
                for name in service.aws.secrets.keys() {
                    environment.remove(name);
                }
                let check = &service.health_check;
                let mut command = check.command.clone();
                if command.first() == Some(&service.binary) {
                    command[0] = IMAGE_BINARY.to_owned();
                }
                let deployment = &service.aws.deployment;
                ServiceDesired {
                    name: service.name.clone(),
                    port: service.port,
                    task_role: RoleSpec {
                        name: names.task_role(&service.name),
                        policy: None,
                        managed_policies: service.aws.task_role_policies.iter().cloned().collect(),
                    },
                    log_group: LogGroupSpec {
                        name: names.log_group(&service.name),
                        retention_days: stack.aws.log_retention_days,
                    },
                    repository: RepositorySpec {
                        name: names.repository(&service.name),
                        scan_on_push: true,
                        immutable_tags: true,
                        keep_images: KEEP_IMAGES,
                    },
                    discovery: DiscoverySpec {
                        name: service.name.clone(),
                        ttl_secs: i64::try_from(service.dns_ttl.as_secs()).unwrap_or(i64::MAX),
                        record_types: BTreeSet::from(["A".to_owned(), "SRV".to_owned()]),
                        routing_policy: "MULTIVALUE".into(),
                        custom_health_check: true,
                    },
                    task_definition: TaskDefinitionSpec {
                        family: names.family(&service.name),
                        cpu: service.aws.cpu,
                        memory: service.aws.memory,
                        architecture: match service.aws.architecture {
                            Architecture::X86_64 => "X86_64",
                            Architecture::Arm64 => "ARM64",
                        }
                        .to_owned(),
                        image,
                        port: service.port,
                        environment,
                        secrets: service.aws.secrets.clone(),
                        health_check: HealthCheckSpec {
                            command,
                            interval_secs: whole_secs(check.interval),
                            timeout_secs: whole_secs(check.timeout),
                            retries: i32::try_from(check.retries).unwrap_or(10),
                            start_period_secs: whole_secs(check.start_period),
                        },
                        stop_timeout_secs: whole_secs(service.aws.stop_timeout),
                        log_group: names.log_group(&service.name),
                        execution_role: names.execution_role(),
                        task_role: names.task_role(&service.name),
                    },
                    service: ServiceSpec {
                        name: service.name.clone(),
                        desired_count: if held_back.is_some() {
                            0
                        } else {
                            i32::try_from(service.count).unwrap_or(i32::MAX)
                        },
                        minimum_healthy_percent: to_i32(deployment.minimum_healthy_percent),
                        maximum_percent: to_i32(deployment.maximum_percent),
                        circuit_breaker: deployment.circuit_breaker,
                        rollback: deployment.rollback,
                        subnets: context.subnets.clone(),
                        assign_public_ip: stack.aws.assign_public_ip,
                        registry: None,
                        deployment_reported: true,
                    },
                    held_back,
                }
            })
            .collect::<Vec<_>>();
        let secrets = stack.services.iter().flat_map(|service| service.aws.secrets.values().cloned()).collect();
        Self {
            cluster: ClusterSpec {
                name: stack.aws.cluster.clone(),
                container_insights: true,
                capacity_providers: BTreeSet::from(["FARGATE".to_owned(), "FARGATE_SPOT".to_owned()]),
            },
            namespace: NamespaceSpec { name: stack.namespace.clone(), vpc: Some(context.vpc_id.clone()) },
            security_group: SecurityGroupSpec {
                name: names.security_group(),
                vpc_id: context.vpc_id.clone(),
                ingress: stack
                    .services
                    .iter()
                    .flat_map(|service| {
                        std::iter::once(FROM_SELF.to_owned())
                            .chain(stack.aws.allow_from.iter().cloned())
                            .map(move |source| (service.port, source))
                    })
                    .collect(),
            },
            execution_role: RoleSpec {
                name: names.execution_role(),
                policy: Some(execution_policy(&names, context, &secrets)),
                managed_policies: BTreeSet::new(),
            },
            services,
        }
    }
}

/// What ECS needs to start the app's tasks, and nothing more: pull from
/// the app's repositories, write to its log groups, read the named secrets.
/// IAM roles are global while the stack is regional, so the policy holds
/// for the app in any region: applying it in a second region does not take
/// the first one's permissions away.
fn execution_policy(names: &Names, context: &Context, secrets: &BTreeSet<String>) -> Value {
    let (account, app) = (&context.account, names.app());
    let mut statements = vec![
        json!({ "Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"] }),
        json!({
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [format!("arn:aws:ecr:*:{account}:repository/{app}/*")]
        }),
        json!({
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [format!("arn:aws:logs:*:{account}:log-group:/ecs/{app}/*")]
        }),
    ];
    let secrets_manager: Vec<&String> = secrets.iter().filter(|arn| arn.contains(":secretsmanager:")).collect();
    if !secrets_manager.is_empty() {
        statements.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets_manager
        }));
    }
    let parameters: Vec<&String> = secrets.iter().filter(|arn| arn.contains(":ssm:")).collect();
    if !parameters.is_empty() {
        statements.push(json!({
            "Sid": "ReadParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": parameters
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn whole_secs(duration: std::time::Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

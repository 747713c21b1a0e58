//! What `provision status` found, as data: each kind fills its part (the
//! services beside their Cloud Map instances, the stores, the scaling, the
//! load balancers, the pipeline's runs), then it is printed once, as text
//! for people or as JSON for programs (docs/json-output.md). Keeping the
//! data apart from its printing is what lets both say the same thing.

use std::fmt::Write as _;

use provision_cli::colour::{WARNING, paint};
use serde::Serialize;

use crate::{clients::app_autoscaling::Activity, engine::resource::render};

/// The whole stack's state; `consistent` is false wherever two views of a
/// service disagree (exit 1).
#[derive(Debug, Default, Serialize)]
pub struct StatusReport {
    pub cluster: String,
    pub account: String,
    pub region: String,
    /// Whether the cluster exists (nothing below does without it).
    pub cluster_exists: bool,
    pub services: Vec<ServiceStatus>,
    pub stores: Vec<StoreStatus>,
    pub autoscaling: Vec<ScalingStatus>,
    pub ingress: Vec<IngressStatus>,
    /// The delivery pipeline, when the stack has one and it exists.
    pub pipeline: Option<PipelineStatus>,
    /// Every warning of every service, in order: what `consistent` sums up.
    pub warnings: Vec<String>,
    pub consistent: bool,
}

/// One ECS service beside the Cloud Map service that answers its name.
#[derive(Debug, Default, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The private DNS name clients resolve (`game-server.local`).
    pub dns_name: String,
    /// Whether the ECS service exists.
    pub created: bool,
    pub desired: Option<i32>,
    pub running: Option<i32>,
    pub pending: Option<i32>,
    /// The task definition revision it runs (`family:N`).
    pub task_definition: Option<String>,
    pub deployments: Vec<DeploymentStatus>,
    /// Whether the Cloud Map service exists.
    pub cloud_map_service: bool,
    /// Whether its tasks are a load balancer's targets (`target` is set).
    pub load_balanced: bool,
    pub tasks: Vec<TaskStatus>,
    /// Cloud Map instances with no running task behind them.
    pub orphan_instances: Vec<InstanceStatus>,
    pub warnings: Vec<String>,
}

/// One deployment of a service.
#[derive(Debug, Default, Serialize)]
pub struct DeploymentStatus {
    /// `PRIMARY` or `ACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`.
    pub rollout_state: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed: i32,
    pub reason: Option<String>,
}

/// One running task and what Cloud Map (and the load balancer) say of it.
#[derive(Debug, Default, Serialize)]
pub struct TaskStatus {
    pub id: String,
    pub ip: String,
    /// ECS's `lastStatus`.
    pub status: String,
    /// ECS's container health.
    pub health: String,
    pub task_definition: String,
    /// Its Cloud Map instance's health; none when it is not registered.
    pub cloud_map: Option<String>,
    /// Its target health (with the reason), behind a load balancer.
    pub target: Option<String>,
}

/// A Cloud Map instance.
#[derive(Debug, Default, Serialize)]
pub struct InstanceStatus {
    pub id: String,
    pub ip: String,
    pub health: String,
}

/// One store (ElastiCache replication group).
#[derive(Debug, Default, Serialize)]
pub struct StoreStatus {
    pub name: String,
    pub id: String,
    pub created: bool,
    pub status: Option<String>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub nodes: Option<u32>,
    pub primary: Option<String>,
    pub port: Option<u16>,
}

/// One autoscaled service.
#[derive(Debug, Default, Serialize)]
pub struct ScalingStatus {
    pub service: String,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<i32>,
    pub activities: Vec<Activity>,
    /// Why the activities could not be read, if they could not.
    pub error: Option<String>,
}

/// One service's load balancer.
#[derive(Debug, Default, Serialize)]
pub struct IngressStatus {
    pub service: String,
    pub dns_name: Option<String>,
    pub port: u16,
    pub scheme: String,
    pub state: String,
}

/// The delivery pipeline's last executions.
#[derive(Debug, Default, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub executions: Vec<ExecutionStatus>,
    /// Why the executions could not be read, if they could not.
    pub error: Option<String>,
}

/// One pipeline execution.
#[derive(Debug, Default, Serialize)]
pub struct ExecutionStatus {
    pub id: String,
    pub status: String,
    /// RFC 3339, UTC.
    pub started: Option<String>,
    pub duration_secs: Option<f64>,
    pub commit: Option<String>,
    /// The commit message's first line.
    pub commit_message: Option<String>,
}

impl StatusReport {
    /// Settles `warnings` and `consistent` from the services.
    pub fn finish(&mut self) {
        self.warnings = self.services.iter().flat_map(|service| service.warnings.iter().cloned()).collect();
        self.consistent = self.warnings.is_empty();
    }

    /// The report for people, part by part in the order kinds are built.
    pub fn render(&self) -> String {
        let mut out = format!("Cluster {} in account {}, region {}\n", self.cluster, self.account, self.region);
        if !self.cluster_exists {
            out.push_str("  the cluster does not exist: `provision apply` creates it\n");
            return out;
        }
        for service in &self.services {
            service.render(&mut out);
        }
        for store in &self.stores {
            store.render(&mut out);
        }
        if !self.autoscaling.is_empty() {
            out.push_str("\nautoscaling\n");
            for scaling in &self.autoscaling {
                scaling.render(&mut out);
            }
        }
        if !self.ingress.is_empty() {
            out.push_str("\ningress\n");
            for ingress in &self.ingress {
                let _ = writeln!(
                    out,
                    "  {:<16} {}:{}  {}, {}",
                    ingress.service,
                    ingress.dns_name.as_deref().unwrap_or("-"),
                    ingress.port,
                    ingress.scheme,
                    ingress.state
                );
            }
        }
        if let Some(pipeline) = &self.pipeline {
            out.push('\n');
            out.push_str(&pipeline.render());
        }
        out
    }
}

impl ServiceStatus {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\nservice {}  ({})", self.name, self.dns_name);
        if !self.created {
            out.push_str("  not created: `provision apply` creates it\n");
            return;
        }
        let count = |value: Option<i32>| value.map_or_else(|| "-".to_owned(), |value| value.to_string());
        let _ = writeln!(
            out,
            "  desired {} running {} pending {}  task definition {}",
            count(self.desired),
            count(self.running),
            count(self.pending),
            self.task_definition.as_deref().unwrap_or("-")
        );
        for deployment in &self.deployments {
            let _ = writeln!(
                out,
                "  deployment {:<8} {:<12} {}  desired {} running {} pending {} failed {}{}",
                deployment.status,
                deployment.rollout_state,
                deployment.task_definition,
                deployment.desired,
                deployment.running,
                deployment.pending,
                deployment.failed,
                deployment.reason.as_ref().map(|reason| format!("  ({reason})")).unwrap_or_default()
            );
        }
        if !self.cloud_map_service {
            let _ = writeln!(out, "  Cloud Map service {} does not exist", self.name);
        }
        if self.tasks.is_empty() && self.orphan_instances.is_empty() {
            out.push_str("  no tasks, no Cloud Map instances\n");
        } else {
            let target_column = if self.load_balanced { " target" } else { "" };
            let _ = writeln!(
                out,
                "  {:<34} {:<15} {:<10} {:<10} {:<10} {:<10}{target_column}",
                "task", "ip", "status", "health", "revision", "cloud map"
            );
            for task in &self.tasks {
                let target = task.target.as_ref().map(|target| format!(" {target}")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<34} {:<15} {:<10} {:<10} {:<10} {:<10}{target}",
                    task.id,
                    task.ip,
                    task.status,
                    task.health,
                    task.task_definition,
                    task.cloud_map.as_deref().unwrap_or("-")
                );
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "  {}", paint(WARNING, &format!("warning: {warning}")));
        }
    }
}

impl StoreStatus {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\nstore {}  (elasticache {})", self.name, self.id);
        if !self.created {
            out.push_str("  not created: `provision apply` creates it\n");
            return;
        }
        let _ = writeln!(
            out,
            "  {}  {} {}  {} node(s)  primary {}:{}",
            self.status.as_deref().unwrap_or("-"),
            self.engine.as_deref().unwrap_or("-"),
            self.engine_version.as_deref().unwrap_or("(version not reported)"),
            self.nodes.map_or_else(|| "?".to_owned(), |nodes| nodes.to_string()),
            self.primary.as_deref().unwrap_or("-"),
            self.port.map_or_else(|| "-".to_owned(), |port| port.to_string())
        );
    }
}

impl ScalingStatus {
    fn render(&self, out: &mut String) {
        let capacity = render::capacity(self.min.zip(self.max));
        let desired = self.desired.map_or_else(|| "-".to_owned(), |count| count.to_string());
        let _ = writeln!(out, "  {:<16} {capacity}, desired {desired}", self.service);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "    scaling activities: cannot read them: {error}");
        } else if self.activities.is_empty() {
            out.push_str("    no scaling activity yet\n");
        }
        for activity in &self.activities {
            let _ = writeln!(
                out,
                "    {} {:<10} {} ({})",
                activity.start, activity.status, activity.description, activity.cause
            );
        }
    }
}

impl PipelineStatus {
    /// The executions as a table (also `provision pipeline status`).
    pub fn render(&self) -> String {
        let mut out = format!("pipeline {}\n", self.name);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  cannot read its executions: {error}");
            return out;
        }
        if self.executions.is_empty() {
            out.push_str("  no execution yet: a push to the branch, or `provision pipeline run`, starts one\n");
            return out;
        }
        let _ = writeln!(out, "  {:<36} {:<11} {:<25} {:>8}  commit", "execution", "status", "started", "took");
        for execution in &self.executions {
            let took = execution.duration_secs.map_or_else(|| "-".to_owned(), |secs| format!("{}s", secs.round()));
            let commit = match (&execution.commit, &execution.commit_message) {
                (Some(id), message) => format!("{} {}", &id[..id.len().min(8)], message.as_deref().unwrap_or_default())
                    .trim_end()
                    .to_owned(),
                (None, _) => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<36} {:<11} {:<25} {took:>8}  {commit}",
                execution.id,
                execution.status,
                execution.started.as_deref().unwrap_or("-")
            );
        }
        out
    }
}

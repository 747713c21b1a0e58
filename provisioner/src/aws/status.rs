//! `provision status`: each service's deployments and tasks beside the
//! Cloud Map instances that answer its DNS name, with a warning wherever the
//! two disagree (a running task missing from DNS, or DNS naming a task that
//! is gone).

use std::{collections::BTreeMap, fmt::Write as _};

use aws_sdk_ecs::types::DesiredStatus;

use super::{
    error::explain,
    live::{Live, service_tasks, task_id},
    plan::revision_of,
    sdk::Clients,
};
use crate::spec::Stack;

/// A task as status shows it.
#[derive(Debug, Clone)]
struct TaskView {
    id: String,
    ip: String,
    last_status: String,
    health: String,
    revision: String,
}

/// Prints the state of every service in the stack.
pub async fn show(clients: &Clients, stack: &Stack, live: &Live) -> anyhow::Result<bool> {
    let cluster = &stack.aws.cluster;
    let mut out = String::new();
    let mut consistent = true;
    let _ = writeln!(out, "Cluster {cluster} in account {}, region {}", live.account, live.region);
    if live.cluster.is_none() {
        let _ = writeln!(out, "  the cluster does not exist: `provision apply` creates it");
        print!("{out}");
        return Ok(true);
    }
    for service in &stack.services {
        let _ = writeln!(out, "\nservice {}  ({}.{})", service.name, service.name, stack.namespace);
        let Some(found) = live.services.get(&service.name) else {
            let _ = writeln!(out, "  not created: `provision apply` creates it");
            continue;
        };
        let Some(ecs_service) = live.described_services.get(&service.name) else { continue };
        let _ = writeln!(
            out,
            "  desired {} running {} pending {}  task definition {}",
            ecs_service.desired_count(),
            ecs_service.running_count(),
            ecs_service.pending_count(),
            revision_of(&found.id)
        );
        for deployment in ecs_service.deployments() {
            let _ = writeln!(
                out,
                "  deployment {:<8} {:<12} {}  desired {} running {} pending {} failed {}{}",
                deployment.status().unwrap_or_default(),
                deployment.rollout_state().map(|state| state.as_str()).unwrap_or_default(),
                revision_of(deployment.task_definition().unwrap_or_default()),
                deployment.desired_count(),
                deployment.running_count(),
                deployment.pending_count(),
                deployment.failed_tasks(),
                deployment.rollout_state_reason().map(|reason| format!("  ({reason})")).unwrap_or_default()
            );
        }
        let tasks = tasks(clients, cluster, &service.name).await?;
        let instances = match live.discovery.get(&service.name) {
            Some(registry) => instances(clients, &registry.id).await?,
            None => {
                let _ = writeln!(out, "  Cloud Map service {} does not exist", service.name);
                BTreeMap::new()
            }
        };
        if tasks.is_empty() && instances.is_empty() {
            let _ = writeln!(out, "  no tasks, no Cloud Map instances");
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<34} {:<15} {:<10} {:<10} {:<10} cloud map",
            "task", "ip", "status", "health", "revision"
        );
        for task in &tasks {
            let registered = instances.get(&task.id).map_or("-", |(_, health)| health.as_str());
            let _ = writeln!(
                out,
                "  {:<34} {:<15} {:<10} {:<10} {:<10} {registered}",
                task.id, task.ip, task.last_status, task.health, task.revision
            );
            if task.last_status == "RUNNING" && !instances.contains_key(&task.id) {
                consistent = false;
                let _ =
                    writeln!(out, "  warning: running task {} ({}) is not registered in Cloud Map", task.id, task.ip);
            }
        }
        for (id, (ip, health)) in &instances {
            if !tasks.iter().any(|task| &task.id == id) {
                consistent = false;
                let _ = writeln!(out, "  warning: Cloud Map instance {id} ({ip}, {health}) has no running task");
            }
        }
    }
    print!("{out}");
    Ok(consistent)
}

async fn tasks(clients: &Clients, cluster: &str, service: &str) -> anyhow::Result<Vec<TaskView>> {
    // A service has at most its desired count running: one page of 100.
    let tasks = service_tasks(clients, cluster, service, DesiredStatus::Running, 100).await?;
    Ok(tasks
        .iter()
        .map(|task| TaskView {
            id: task_id(task).to_owned(),
            ip: task
                .attachments()
                .iter()
                .flat_map(|attachment| attachment.details())
                .find(|detail| detail.name() == Some("privateIPv4Address"))
                .and_then(|detail| detail.value())
                .unwrap_or("-")
                .to_owned(),
            last_status: task.last_status().unwrap_or("-").to_owned(),
            health: task.health_status().map_or_else(|| "-".to_owned(), |health| health.as_str().to_owned()),
            revision: revision_of(task.task_definition_arn().unwrap_or_default()),
        })
        .collect())
}

/// Instance id -> (IP, health) of a Cloud Map service.
async fn instances(clients: &Clients, service_id: &str) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let listed = clients
        .cloud_map
        .list_instances()
        .service_id(service_id)
        .send()
        .await
        .map_err(|error| explain(error, "servicediscovery:ListInstances", service_id))?;
    let mut instances = BTreeMap::new();
    for instance in listed.instances() {
        let Some(id) = instance.id() else { continue };
        let ip = instance.attributes().and_then(|a| a.get("AWS_INSTANCE_IPV4")).cloned().unwrap_or_else(|| "-".into());
        instances.insert(id.to_owned(), (ip, "UNKNOWN".to_owned()));
    }
    if !instances.is_empty() {
        let health = clients
            .cloud_map
            .get_instances_health_status()
            .service_id(service_id)
            .send()
            .await
            .map_err(|error| explain(error, "servicediscovery:GetInstancesHealthStatus", service_id))?;
        for (id, status) in health.status().into_iter().flatten() {
            if let Some(entry) = instances.get_mut(id) {
                entry.1 = status.as_str().to_owned();
            }
        }
    }
    Ok(instances)
}

//! ECS reads that more than one part needs (the rollout watch, status,
//! rollback): a service's tasks, a task's id, the deployment an update
//! started. The calls themselves are the SDK's.

use aws_sdk_ecs::types::DesiredStatus;

use super::{Clients, error::explain};

/// Puts an ECS resource's tags (a cluster's, a service's, a task
/// definition's) back to `set` less `remove`.
pub async fn retag(
    clients: &Clients,
    arn: &str,
    set: &crate::engine::names::Tags,
    remove: &[String],
) -> anyhow::Result<()> {
    use aws_sdk_ecs::types::Tag;
    if !set.is_empty() {
        let tags = set.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
        let answer = clients.ecs.tag_resource().resource_arn(arn).set_tags(Some(tags)).send().await;
        answer.map_err(|error| explain(error, "ecs:TagResource", arn))?;
    }
    if !remove.is_empty() {
        let answer = clients.ecs.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec())).send().await;
        answer.map_err(|error| explain(error, "ecs:UntagResource", arn))?;
    }
    Ok(())
}

/// The id of the PRIMARY deployment in an answer of CreateService or
/// UpdateService.
pub fn primary_deployment(service: Option<&aws_sdk_ecs::types::Service>) -> Option<String> {
    service
        .and_then(|service| service.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
        .and_then(|deployment| deployment.id())
        .map(str::to_owned)
}

/// The tasks of an ECS service with `status` (RUNNING, or STOPPED for the
/// latest failures), at most `limit` of them (ECS's page: up to 100).
pub async fn service_tasks(
    clients: &Clients,
    cluster: &str,
    service: &str,
    status: DesiredStatus,
    limit: i32,
) -> anyhow::Result<Vec<aws_sdk_ecs::types::Task>> {
    let resource = format!("ECS service {service}");
    let listed = clients
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(status)
        .max_results(limit)
        .send()
        .await
        .map_err(|error| explain(error, "ecs:ListTasks", &resource))?;
    if listed.task_arns().is_empty() {
        return Ok(Vec::new());
    }
    let described = clients
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .send()
        .await
        .map_err(|error| explain(error, "ecs:DescribeTasks", &resource))?;
    Ok(described.tasks().to_vec())
}

/// A task's id: the last part of its ARN (what Cloud Map names its
/// instance after).
pub fn task_id(task: &aws_sdk_ecs::types::Task) -> &str {
    task.task_arn().and_then(|arn| arn.rsplit('/').next()).unwrap_or_default()
}

//! `provision destroy`: removes what apply made, in reverse order, and only
//! what carries this app's tags. Services are scaled to zero and drained
//! first, so Cloud Map has no instance left when its service goes.

use std::time::Duration;

use anyhow::bail;

use super::{
    apply::wait_operation,
    backoff::poll_until,
    error::{AwsError, classify, explain},
    live::Live,
    names::INLINE_POLICY,
    sdk::Clients,
};
use crate::spec::Stack;

/// What destroy would delete, as lines for the confirmation.
pub fn targets(stack: &Stack, live: &Live, delete_logs: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut add = |owned: bool, what: String| {
        lines.push(if owned { what } else { format!("{what} (kept: not this app's)") });
    };
    for (name, found) in &live.services {
        add(found.owned, format!("ecs service {name} (scaled to 0 first)"));
    }
    for (name, found) in &live.discovery {
        add(found.owned, format!("cloud map service {name}"));
    }
    if let Some(found) = &live.namespace {
        add(found.owned, format!("cloud map namespace {}", stack.namespace));
    }
    for (family, found) in &live.task_definitions {
        add(found.owned, format!("task definition {family} (every active revision)"));
    }
    if delete_logs {
        for (name, found) in &live.log_groups {
            add(found.owned, format!("log group {name}"));
        }
    }
    for (name, found) in &live.repositories {
        add(found.owned, format!("ecr repository {name} (only if it holds no image)"));
    }
    for (name, found) in &live.roles {
        add(found.owned, format!("iam role {name}"));
    }
    if let Some(found) = &live.security_group {
        add(found.owned, format!("security group {} ({})", found.spec.name, found.id));
    }
    if let Some(found) = &live.cluster {
        add(found.owned, format!("ecs cluster {}", stack.aws.cluster));
    }
    lines
}

/// Deletes the stack's resources.
pub async fn destroy(clients: &Clients, stack: &Stack, live: &Live, delete_logs: bool) -> anyhow::Result<()> {
    let cluster = &stack.aws.cluster;
    let ecs = &clients.ecs;

    let services: Vec<&String> = live.services.iter().filter(|(_, f)| f.owned).map(|(name, _)| name).collect();
    for name in &services {
        ecs.update_service()
            .cluster(cluster)
            .service(*name)
            .desired_count(0)
            .send()
            .await
            .map_err(|e| explain(e, "ecs:UpdateService", &format!("ECS service {name}")))?;
        println!("  scaled ecs service {name} to 0");
    }
    for name in &services {
        wait_until(&format!("ECS service {name} to stop its tasks"), Duration::from_secs(600), || async {
            let answer = ecs
                .describe_services()
                .cluster(cluster)
                .services(*name)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:DescribeServices", &format!("ECS service {name}")))?;
            Ok(answer.services().iter().all(|service| service.running_count() == 0 && service.pending_count() == 0))
        })
        .await?;
        ecs.delete_service()
            .cluster(cluster)
            .service(*name)
            .force(true)
            .send()
            .await
            .map_err(|e| explain(e, "ecs:DeleteService", &format!("ECS service {name}")))?;
        println!("  deleted ecs service {name}");
    }

    for (name, found) in live.discovery.iter().filter(|(_, found)| found.owned) {
        // ECS deregisters the stopped tasks' instances; until it has, Cloud
        // Map refuses the delete with ResourceInUse.
        wait_until(&format!("Cloud Map service {name} to have no instance"), Duration::from_secs(300), || async {
            match clients.cloud_map.delete_service().id(&found.id).send().await {
                Ok(_) => Ok(true),
                Err(error) => {
                    let error = classify(error, "servicediscovery:DeleteService", &format!("Cloud Map service {name}"));
                    match error.code.as_deref() {
                        Some("ResourceInUse") => Ok(false),
                        _ if error.is_not_found() => Ok(true),
                        _ => Err(error.into()),
                    }
                }
            }
        })
        .await?;
        println!("  deleted cloud map service {name}");
    }
    if let Some(namespace) = live.namespace.as_ref().filter(|found| found.owned) {
        let answer =
            clients.cloud_map.delete_namespace().id(&namespace.id).send().await.map_err(|e| {
                explain(e, "servicediscovery:DeleteNamespace", &format!("namespace {}", stack.namespace))
            })?;
        if let Some(operation) = answer.operation_id() {
            wait_operation(clients, operation, &format!("namespace {}", stack.namespace)).await?;
        }
        println!("  deleted cloud map namespace {}", stack.namespace);
    }

    for (family, _) in live.task_definitions.iter().filter(|(_, found)| found.owned) {
        let revisions = super::live::active_revisions(clients, family).await?;
        for arn in &revisions {
            ecs.deregister_task_definition()
                .task_definition(arn)
                .send()
                .await
                .map_err(|e| explain(e, "ecs:DeregisterTaskDefinition", arn))?;
        }
        println!("  deregistered task definition {family} ({} revisions)", revisions.len());
    }

    if delete_logs {
        for (name, _) in live.log_groups.iter().filter(|(_, found)| found.owned) {
            clients
                .logs
                .delete_log_group()
                .log_group_name(name)
                .send()
                .await
                .map_err(|e| explain(e, "logs:DeleteLogGroup", &format!("log group {name}")))?;
            println!("  deleted log group {name}");
        }
    } else if !live.log_groups.is_empty() {
        println!("  kept {} log group(s) (--delete-logs deletes them)", live.log_groups.len());
    }

    for (name, _) in live.repositories.iter().filter(|(_, found)| found.owned) {
        if live.newest_images.contains_key(name) {
            println!("  kept ecr repository {name}: it holds images (delete them to remove it)");
            continue;
        }
        clients
            .ecr
            .delete_repository()
            .repository_name(name)
            .send()
            .await
            .map_err(|e| explain(e, "ecr:DeleteRepository", &format!("ECR repository {name}")))?;
        println!("  deleted ecr repository {name}");
    }

    for (name, found) in live.roles.iter().filter(|(_, found)| found.owned) {
        let resource = format!("IAM role {name}");
        if found.spec.policy.is_some() {
            clients
                .iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(INLINE_POLICY)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DeleteRolePolicy", &resource))?;
        }
        for policy in &found.spec.managed_policies {
            clients
                .iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DetachRolePolicy", &resource))?;
        }
        clients.iam.delete_role().role_name(name).send().await.map_err(|e| explain(e, "iam:DeleteRole", &resource))?;
        println!("  deleted iam role {name}");
    }

    if let Some(group) = live.security_group.as_ref().filter(|found| found.owned) {
        // The tasks' network interfaces linger a little after they stop.
        wait_until(&format!("security group {} to be free", group.id), Duration::from_secs(300), || async {
            match clients.ec2.delete_security_group().group_id(&group.id).send().await {
                Ok(_) => Ok(true),
                Err(error) => {
                    let error: AwsError = classify(error, "ec2:DeleteSecurityGroup", &group.id);
                    if error.code.as_deref() == Some("DependencyViolation") { Ok(false) } else { Err(error.into()) }
                }
            }
        })
        .await?;
        println!("  deleted security group {} ({})", group.spec.name, group.id);
    }

    if live.cluster.as_ref().is_some_and(|found| found.owned) {
        ecs.delete_cluster()
            .cluster(cluster)
            .send()
            .await
            .map_err(|e| explain(e, "ecs:DeleteCluster", &format!("cluster {cluster}")))?;
        println!("  deleted ecs cluster {cluster}");
    }
    Ok(())
}

/// Retries `check` with backoff until it says done, or fails at `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let done = poll_until(limit, Duration::from_secs(15), || {
        let check = check();
        async move { Ok(check.await?.then_some(())) }
    })
    .await?;
    if done.is_none() {
        bail!("gave up waiting for {what} after {}s; run destroy again later", limit.as_secs());
    }
    Ok(())
}

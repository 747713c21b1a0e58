//! Feeds the deployment wait from DescribeServices, and explains a failed
//! rollout with the stopped tasks' reasons.

use std::io::IsTerminal;

use anyhow::bail;
use aws_sdk_ecs::types::DesiredStatus;

use crate::{
    clients::{
        Clients,
        ecs::{service_tasks, task_id},
        error::{AwsError, classify},
    },
    engine::{
        journal,
        progress::{LogView, TerminalView, View},
        rollout::{self, DeploymentState, Outcome, PollError, Rollout, ServiceState, Verdict, WaitOptions},
    },
};

/// Waits for `rollouts` in `cluster`, printing progress; fails (after
/// printing why) if any failed, was rolled back or timed out.
pub async fn wait_for(
    clients: &Clients,
    cluster: &str,
    rollouts: &[Rollout],
    options: WaitOptions,
) -> anyhow::Result<()> {
    if rollouts.is_empty() {
        return Ok(());
    }
    provision_cli::say!("\nWaiting for {} deployment(s) (--no-wait to skip, --wait-timeout to bound):", rollouts.len());
    let poll = |names: Vec<String>| describe(clients, cluster, rollouts, names);
    // Where progress goes: stderr while stdout carries JSON.
    let on_terminal = if provision_cli::output::stdout_claimed() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let mut view: Box<dyn View> =
        if on_terminal { Box::new(TerminalView::default()) } else { Box::new(LogView::default()) };
    let show = |progress| provision_cli::output::show_raw(&view.show(progress));
    let outcomes = rollout::wait(rollouts, options, poll, show).await;
    report(clients, cluster, &outcomes).await
}

/// Prints each outcome; a failure also gets its stopped tasks' reasons.
async fn report(clients: &Clients, cluster: &str, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for outcome in outcomes {
        match &outcome.verdict {
            Verdict::Done => {
                provision_cli::say!("  {}: deployment completed", outcome.service);
                journal::deployment(&outcome.service, "completed", None);
            }
            Verdict::Failed(reason) => {
                provision_cli::say!("  {}: FAILED: {reason}", outcome.service);
                journal::deployment(&outcome.service, "failed", Some(reason.clone()));
                for line in stopped_reasons(clients, cluster, &outcome.service).await.unwrap_or_default() {
                    provision_cli::say!("    stopped task {line}");
                }
                failed.push(outcome.service.clone());
            }
            Verdict::InProgress => {
                journal::deployment(&outcome.service, "timed_out", None);
                failed.push(outcome.service.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "deployment of {} did not succeed (see above); `provision status` shows the services' state",
            failed.join(", ")
        );
    }
    Ok(())
}

async fn describe(
    clients: &Clients,
    cluster: &str,
    rollouts: &[Rollout],
    names: Vec<String>,
) -> Result<Vec<ServiceState>, PollError> {
    let answer = clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names))
        .send()
        .await
        .map_err(|error| poll_error(classify(error, "ecs:DescribeServices", &format!("cluster {cluster}"))))?;
    let mut states: Vec<ServiceState> = answer
        .services()
        .iter()
        .map(|service| ServiceState {
            name: service.service_name().unwrap_or_default().to_owned(),
            deployments: service
                .deployments()
                .iter()
                .map(|deployment| DeploymentState {
                    id: deployment.id().unwrap_or_default().to_owned(),
                    status: deployment.status().unwrap_or_default().to_owned(),
                    rollout_state: deployment.rollout_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    rollout_reason: deployment.rollout_state_reason().unwrap_or_default().to_owned(),
                    task_definition: deployment.task_definition().unwrap_or_default().to_owned(),
                    desired: deployment.desired_count(),
                    running: deployment.running_count(),
                    pending: deployment.pending_count(),
                    failed: deployment.failed_tasks(),
                })
                .collect(),
            events: service.events().iter().take(10).filter_map(|event| event.message().map(str::to_owned)).collect(),
            healthy_targets: None,
        })
        .collect();
    for state in &mut states {
        let group = rollouts.iter().find(|rollout| rollout.service == state.name).and_then(|r| r.target_group.as_ref());
        let Some(group) = group else { continue };
        let resource = format!("target group of ECS service {}", state.name);
        let targets = clients.elb.target_health(group, &resource).await.map_err(poll_error)?;
        state.healthy_targets = Some(targets.iter().filter(|target| target.state == "healthy").count());
    }
    Ok(states)
}

/// A failed poll: throttling slows the wait down, anything else ends it.
fn poll_error(error: AwsError) -> PollError {
    if error.is_throttled() { PollError::Throttled } else { PollError::Fatal(error.into()) }
}

/// `id: reason` of the service's most recently stopped tasks.
async fn stopped_reasons(clients: &Clients, cluster: &str, service: &str) -> anyhow::Result<Vec<String>> {
    let tasks = service_tasks(clients, cluster, service, DesiredStatus::Stopped, 5).await?;
    Ok(tasks
        .iter()
        .map(|task| {
            let id = task_id(task);
            let containers: Vec<String> = task
                .containers()
                .iter()
                .filter_map(|container| container.reason().map(|reason| format!("container: {reason}")))
                .collect();
            format!(
                "{id}: {}{}",
                task.stopped_reason().unwrap_or("no reason given"),
                if containers.is_empty() { String::new() } else { format!(" ({})", containers.join("; ")) }
            )
        })
        .collect())
}

//! Waiting for ECS deployments: the success rule, the circuit-breaker
//! rollback as a failure, a deadline, and a line of progress per service.
//! The rule works on plain snapshots so it can be driven by scripted
//! answers as well as by DescribeServices.

use std::{collections::BTreeMap, future::Future, time::Duration};

use tokio::time::Instant;

use crate::engine::progress::Progress;

/// A deployment apply or deploy started and must see through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The ECS service.
    pub service: String,
    /// The PRIMARY deployment the update created, when ECS said.
    pub deployment_id: Option<String>,
    /// The task definition ARN it rolls out.
    pub task_definition: String,
    /// The count it should reach; `None` when autoscaling owns the count,
    /// which may move during the rollout (ECS suspends scale-in while a
    /// deployment runs, not scale-out): then the deployment's own desired
    /// count at each poll.
    pub desired_count: Option<i32>,
    /// The target group of its load balancer, if it has one: the rollout is
    /// done only once that many targets are healthy there too.
    pub target_group: Option<String>,
}

/// One deployment of a service, as DescribeServices shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentState {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
    pub rollout_reason: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed: i32,
}

/// A service at one poll.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceState {
    pub name: String,
    pub deployments: Vec<DeploymentState>,
    /// Newest first.
    pub events: Vec<String>,
    /// Healthy targets in its load balancer's target group, if it has one.
    pub healthy_targets: Option<usize>,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still going.
    InProgress,
    /// The deployment is COMPLETED with every task running.
    Done,
    /// The deployment failed or was rolled back; why.
    Failed(String),
}

/// Judges `rollout` against one snapshot of its service: done when its
/// deployment is PRIMARY, COMPLETED, sized for the rollout's count and has
/// every task running (and, behind a load balancer, as many healthy
/// targets); failed when it failed or another revision took over.
pub fn judge(rollout: &Rollout, state: &ServiceState) -> Verdict {
    let ours = state.deployments.iter().find(|deployment| match &rollout.deployment_id {
        Some(id) => &deployment.id == id,
        None => deployment.task_definition == rollout.task_definition && deployment.status == "PRIMARY",
    });
    let primary = state.deployments.iter().find(|deployment| deployment.status == "PRIMARY");
    match ours {
        Some(deployment) if deployment.rollout_state == "FAILED" => Verdict::Failed(format!(
            "deployment {} failed: {}",
            deployment.id,
            if deployment.rollout_reason.is_empty() { "no reason given" } else { &deployment.rollout_reason }
        )),
        Some(deployment) if deployment.status == "PRIMARY" => {
            let wanted = rollout.desired_count.unwrap_or(deployment.desired);
            let targets_ready = rollout.target_group.is_none()
                || state.healthy_targets.is_some_and(|healthy| healthy >= usize::try_from(wanted).unwrap_or(0));
            if deployment.rollout_state == "COMPLETED"
                && deployment.desired == wanted
                && deployment.running == wanted
                && targets_ready
            {
                Verdict::Done
            } else {
                Verdict::InProgress
            }
        }
        // Ours is no longer primary: the circuit breaker rolled back (or
        // someone else deployed over it).
        _ => match primary {
            Some(primary) if primary.task_definition != rollout.task_definition => Verdict::Failed(format!(
                "rolled back to {}: {}",
                crate::engine::resource::render::revision_of(&primary.task_definition),
                if primary.rollout_reason.is_empty() {
                    "the circuit breaker stopped the deployment"
                } else {
                    &primary.rollout_reason
                }
            )),
            Some(_) => Verdict::InProgress,
            None => Verdict::Failed("the service has no deployment (was it deleted?)".into()),
        },
    }
}

/// Why a poll failed.
#[derive(Debug)]
pub enum PollError {
    /// Throttled: poll again later, more slowly.
    Throttled,
    /// Anything else ends the wait.
    Fatal(anyhow::Error),
}

/// How the wait ended for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub service: String,
    pub verdict: Verdict,
}

/// Settings of a wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Give up (as a failure) after this long.
    pub timeout: Duration,
    /// First delay between polls; doubles on throttling, up to `max_interval`.
    pub interval: Duration,
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(900),
            interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
        }
    }
}

/// Polls until every rollout is done or failed, or the deadline passes.
/// `poll` answers the current state of the named services; `report` gets
/// each service's state at every poll and each new event, for a
/// [`crate::engine::progress::View`] to show.
pub async fn wait<P, F>(
    rollouts: &[Rollout],
    options: WaitOptions,
    mut poll: P,
    mut report: impl FnMut(Progress),
) -> Vec<Outcome>
where
    P: FnMut(Vec<String>) -> F,
    F: Future<Output = Result<Vec<ServiceState>, PollError>>,
{
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut seen_events: BTreeMap<String, String> = BTreeMap::new();
    let mut interval = options.interval;
    loop {
        let pending: Vec<&Rollout> = rollouts.iter().filter(|r| !outcomes.contains_key(&r.service)).collect();
        if pending.is_empty() {
            break;
        }
        match poll(pending.iter().map(|rollout| rollout.service.clone()).collect()).await {
            Ok(states) => {
                interval = options.interval;
                for rollout in &pending {
                    let Some(state) = states.iter().find(|state| state.name == rollout.service) else { continue };
                    let verdict = judge(rollout, state);
                    report(Progress::Status {
                        service: rollout.service.clone(),
                        line: progress_line(rollout, state, &verdict),
                        elapsed: started.elapsed(),
                    });
                    let newest = state.events.first().cloned().unwrap_or_default();
                    if seen_events.get(&rollout.service) != Some(&newest) && !newest.is_empty() {
                        // Events newer than the last one shown, oldest first.
                        let shown = seen_events.get(&rollout.service);
                        let fresh: Vec<&String> =
                            state.events.iter().take_while(|event| Some(*event) != shown).collect();
                        for event in fresh.into_iter().rev().take(3) {
                            report(Progress::Event(format!("    {}: {event}", rollout.service)));
                        }
                        seen_events.insert(rollout.service.clone(), newest);
                    }
                    if verdict != Verdict::InProgress {
                        outcomes.insert(rollout.service.clone(), verdict);
                    }
                }
            }
            Err(PollError::Throttled) => {
                interval = (interval * 2).min(options.max_interval);
                report(Progress::Event(format!("  throttled by ECS: polling every {}s", interval.as_secs())));
            }
            Err(PollError::Fatal(error)) => {
                for rollout in &pending {
                    outcomes.insert(
                        rollout.service.clone(),
                        Verdict::Failed(format!("cannot read the service: {error:#}")),
                    );
                }
                break;
            }
        }
        if outcomes.len() == rollouts.len() {
            break;
        }
        if started.elapsed() + interval > options.timeout {
            for rollout in rollouts {
                outcomes.entry(rollout.service.clone()).or_insert_with(|| {
                    Verdict::Failed(format!(
                        "not finished after {}s (--wait-timeout); the deployment goes on in ECS",
                        options.timeout.as_secs()
                    ))
                });
            }
            break;
        }
        tokio::time::sleep(interval).await;
    }
    rollouts
        .iter()
        .map(|rollout| Outcome {
            service: rollout.service.clone(),
            verdict: outcomes.remove(&rollout.service).unwrap_or(Verdict::InProgress),
        })
        .collect()
}

fn progress_line(rollout: &Rollout, state: &ServiceState, verdict: &Verdict) -> String {
    let deployment = state
        .deployments
        .iter()
        .find(|d| rollout.deployment_id.as_ref() == Some(&d.id))
        .or_else(|| state.deployments.iter().find(|d| d.status == "PRIMARY"));
    let (rollout_state, desired, running, pending, failed) = deployment
        .map_or(("UNKNOWN", 0, 0, 0, 0), |d| (d.rollout_state.as_str(), d.desired, d.running, d.pending, d.failed));
    let state_word = match verdict {
        Verdict::Done => "done",
        Verdict::Failed(_) => "FAILED",
        Verdict::InProgress => rollout_state,
    };
    let targets = state.healthy_targets.map(|healthy| format!(" healthy targets {healthy}")).unwrap_or_default();
    format!(
        "  {:<16} {state_word:<12} desired {desired} running {running} pending {pending} failed {failed}{targets}",
        rollout.service
    )
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use super::*;
    use crate::engine::progress::{LogView, View};

    const NEW: &str = "arn:aws:ecs:r:1:task-definition/app-game:2";
    const OLD: &str = "arn:aws:ecs:r:1:task-definition/app-game:1";

    fn rollout() -> Rollout {
        Rollout {
            service: "game".into(),
            deployment_id: Some("ecs-svc/2".into()),
            task_definition: NEW.into(),
            desired_count: Some(2),
            target_group: None,
        }
    }

    fn deployment(id: &str, status: &str, rollout_state: &str, definition: &str, running: i32) -> DeploymentState {
        DeploymentState {
            id: id.into(),
            status: status.into(),
            rollout_state: rollout_state.into(),
            task_definition: definition.into(),
            desired: 2,
            running,
            ..DeploymentState::default()
        }
    }

    fn state(deployments: Vec<DeploymentState>, events: &[&str]) -> ServiceState {
        ServiceState {
            name: "game".into(),
            deployments,
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            healthy_targets: None,
        }
    }

    type Poll = std::future::Ready<Result<Vec<ServiceState>, PollError>>;

    /// Answers each poll with the next scripted answer (the last repeats).
    fn scripted(
        answers: Vec<Result<ServiceState, &'static str>>,
    ) -> (impl FnMut(Vec<String>) -> Poll, Arc<Mutex<usize>>) {
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let polls = Arc::new(Mutex::new(0));
        let counter = polls.clone();
        let poll = move |_names: Vec<String>| {
            *counter.lock().unwrap() += 1;
            let mut answers = answers.lock().unwrap();
            let answer = if answers.len() > 1 { answers.pop_front().unwrap() } else { answers[0].clone() };
            std::future::ready(match answer {
                Ok(state) => Ok(vec![state]),
                Err("throttled") => Err(PollError::Throttled),
                Err(other) => Err(PollError::Fatal(anyhow::anyhow!(other))),
            })
        };
        (poll, polls)
    }

    fn options() -> WaitOptions {
        WaitOptions {
            timeout: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(40),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn success_needs_completed_primary_with_all_tasks_running() {
        let (poll, polls) = scripted(vec![
            Ok(state(
                vec![
                    deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", NEW, 0),
                    deployment("ecs-svc/1", "ACTIVE", "COMPLETED", OLD, 2),
                ],
                &["started 2 tasks"],
            )),
            Ok(state(
                vec![
                    deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", NEW, 2),
                    deployment("ecs-svc/1", "ACTIVE", "COMPLETED", OLD, 2),
                ],
                &[],
            )),
            // COMPLETED but a task short still is not done.
            Ok(state(vec![deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 1)], &[])),
            // Nor is a deployment sized for another count.
            Ok(state(
                vec![DeploymentState { desired: 0, ..deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 0) }],
                &[],
            )),
            Ok(state(vec![deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 2)], &["has reached a steady state"])),
        ]);
        let (mut lines, mut view) = (Vec::new(), LogView::default());
        let outcomes = wait(&[rollout()], options(), poll, |progress| {
            lines.extend(view.show(progress).lines().map(str::to_owned))
        })
        .await;
        assert_eq!(outcomes, vec![Outcome { service: "game".into(), verdict: Verdict::Done }]);
        assert_eq!(*polls.lock().unwrap(), 5);
        assert!(lines.iter().any(|line| line.contains("started 2 tasks")), "{lines:?}");
        assert!(lines.iter().any(|line| line.contains("steady state")), "{lines:?}");
        assert!(lines.iter().any(|line| line.contains(" done ")), "a line shows the service done: {lines:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn circuit_breaker_rollback_is_a_failure_naming_the_old_revision() {
        let (poll, _) = scripted(vec![
            Ok(state(
                vec![
                    deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", NEW, 0),
                    deployment("ecs-svc/1", "ACTIVE", "COMPLETED", OLD, 2),
                ],
                &[],
            )),
            // The breaker trips: ECS makes a new primary deployment of the old revision.
            Ok(state(
                vec![
                    DeploymentState {
                        rollout_reason: "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1".into(),
                        ..deployment("ecs-svc/3", "PRIMARY", "IN_PROGRESS", OLD, 0)
                    },
                    deployment("ecs-svc/2", "ACTIVE", "FAILED", NEW, 0),
                ],
                &[],
            )),
        ]);
        let outcomes = wait(&[rollout()], options(), poll, |_| {}).await;
        let Verdict::Failed(reason) = &outcomes[0].verdict else { panic!("{outcomes:?}") };
        assert!(reason.contains("ecs-svc/2 failed"), "{reason}");
    }

    #[test]
    fn an_autoscaled_rollout_is_done_at_whatever_count_it_was_scaled_to() {
        let scaled = Rollout { desired_count: None, ..rollout() };
        let mut grown = deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 2);
        grown.desired = 5;
        assert_eq!(judge(&scaled, &state(vec![grown.clone()], &[])), Verdict::InProgress, "3 of 5 still starting");
        grown.running = 5;
        assert_eq!(judge(&scaled, &state(vec![grown.clone()], &[])), Verdict::Done);
        // With a fixed count, the same deployment is not what was asked for.
        assert_eq!(judge(&rollout(), &state(vec![grown], &[])), Verdict::InProgress);
    }

    #[test]
    fn behind_a_load_balancer_a_rollout_is_done_once_its_targets_are_healthy() {
        let balanced = Rollout { target_group: Some("arn:tg".into()), ..rollout() };
        let completed = deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 2);
        let mut now = state(vec![completed], &[]);
        assert_eq!(judge(&balanced, &now), Verdict::InProgress, "target health not read yet");
        now.healthy_targets = Some(1);
        assert_eq!(judge(&balanced, &now), Verdict::InProgress, "one of two targets still initial");
        now.healthy_targets = Some(2);
        assert_eq!(judge(&balanced, &now), Verdict::Done);
        assert!(progress_line(&balanced, &now, &Verdict::Done).ends_with("healthy targets 2"));
    }

    #[test]
    fn a_primary_of_another_revision_is_a_rollback() {
        let now = state(
            vec![DeploymentState {
                rollout_reason: "circuit breaker".into(),
                ..deployment("ecs-svc/3", "PRIMARY", "IN_PROGRESS", OLD, 1)
            }],
            &[],
        );
        assert_eq!(judge(&rollout(), &now), Verdict::Failed("rolled back to app-game:1: circuit breaker".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_deployment_fails_at_the_deadline() {
        let (poll, polls) =
            scripted(vec![Ok(state(vec![deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", NEW, 1)], &[]))]);
        let started = Instant::now();
        let (mut lines, mut view) = (Vec::new(), LogView::default());
        let outcomes = wait(&[rollout()], options(), poll, |progress| {
            lines.extend(view.show(progress).lines().map(str::to_owned))
        })
        .await;
        let Verdict::Failed(reason) = &outcomes[0].verdict else { panic!("{outcomes:?}") };
        assert!(reason.contains("not finished after 600s"), "{reason}");
        // An unchanged state is shown every 30 s (0 s to 600 s), not at every 5 s poll.
        assert_eq!(lines.len(), 21, "{lines:#?}");
        assert!(lines[1].ends_with("(30s)"), "{lines:#?}");
        assert!(started.elapsed() <= Duration::from_secs(600));
        assert!(*polls.lock().unwrap() >= 100, "polled every 5 s until the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_slows_polling_down_and_does_not_fail() {
        let (poll, polls) = scripted(vec![
            Err("throttled"),
            Err("throttled"),
            Err("throttled"),
            Ok(state(vec![deployment("ecs-svc/2", "PRIMARY", "COMPLETED", NEW, 2)], &[])),
        ]);
        let started = Instant::now();
        let (mut lines, mut view) = (Vec::new(), LogView::default());
        let outcomes = wait(&[rollout()], options(), poll, |progress| {
            lines.extend(view.show(progress).lines().map(str::to_owned))
        })
        .await;
        assert_eq!(outcomes[0].verdict, Verdict::Done);
        assert_eq!(*polls.lock().unwrap(), 4);
        // 10 + 20 + 40 s: the delay doubled after each throttled answer.
        assert_eq!(started.elapsed(), Duration::from_secs(70));
        assert!(lines.iter().any(|line| line.contains("throttled")), "{lines:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reading_the_service_ends_the_wait_as_a_failure() {
        let (poll, _) = scripted(vec![Err("AccessDenied")]);
        let outcomes = wait(&[rollout()], options(), poll, |_| {}).await;
        assert!(matches!(&outcomes[0].verdict, Verdict::Failed(reason) if reason.contains("AccessDenied")));
    }
}

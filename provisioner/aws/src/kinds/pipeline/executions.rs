//! The delivery pipeline's executions: the last few as lines (id, status,
//! start, duration, commit), and one run followed stage by stage (the
//! build's phase and its log link) until it ends. Following is pure logic
//! fed by a poll, as the deployment wait is, so it is tested against
//! scripted answers (moto runs no build).

use std::{fmt::Write as _, future::Future, time::Duration};

use aws_smithy_types::date_time::Format;
use tokio::time::Instant;

use crate::{
    clients::{Clients, codepipeline::ExecutionSummary, error::AwsError},
    engine::status::{ExecutionStatus, PipelineStatus},
};

/// Where one execution stands at a poll.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunState {
    /// `InProgress`, `Succeeded`, `Failed`, `Stopped`, `Superseded`...
    pub status: String,
    /// Why, when it failed.
    pub summary: String,
    /// Each stage's latest state, when the pipeline's state could be read.
    pub stages: Vec<StageState>,
}

/// One stage of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageState {
    pub name: String,
    pub status: String,
    /// Its action's summary or error message.
    pub detail: String,
    /// The build it runs, for the build stage.
    pub build: Option<BuildState>,
}

/// The build a stage runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildState {
    pub id: String,
    /// `PROVISIONING`, `BUILD`, `POST_BUILD`, `COMPLETED`...
    pub phase: String,
    /// Its logs in the console.
    pub logs: String,
}

/// How a followed run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    /// Failed, stopped or superseded: why.
    Failed(String),
    /// Still running at the deadline.
    TimedOut,
}

/// Whether a connection can be used, from its `ConnectionStatus`.
pub fn connection_ready(arn: &str, status: &str) -> Result<(), String> {
    match status {
        "AVAILABLE" => Ok(()),
        "PENDING" => Err(format!(
            "connection {arn} is PENDING: it was created but not approved; approve it once in the console \
             (Developer Tools > Settings > Connections > the connection > Update pending connection), then run again"
        )),
        other => Err(format!(
            "connection {arn} is {other}: the pipeline cannot read the repository; check it in the console \
             (Developer Tools > Settings > Connections)"
        )),
    }
}

/// Follows one execution until it ends or `timeout` passes, polling every
/// `interval`; `report` gets each line that changed.
pub async fn follow<P, F>(mut poll: P, interval: Duration, timeout: Duration, mut report: impl FnMut(String)) -> Ending
where
    P: FnMut() -> F,
    F: Future<Output = anyhow::Result<RunState>>,
{
    let started = Instant::now();
    let mut shown: Vec<String> = Vec::new();
    loop {
        match poll().await {
            Ok(state) => {
                for line in lines(&state) {
                    if !shown.contains(&line) {
                        report(format!("{line}  ({}s)", started.elapsed().as_secs()));
                        shown.push(line);
                    }
                }
                match state.status.as_str() {
                    "Succeeded" => return Ending::Succeeded,
                    "Failed" | "Stopped" | "Stopping" | "Superseded" | "Cancelled" => {
                        return Ending::Failed(failure(&state));
                    }
                    _ => {}
                }
            }
            Err(error) => report(format!("  cannot read the execution: {error:#} (trying again)")),
        }
        if started.elapsed() + interval > timeout {
            return Ending::TimedOut;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The lines that describe a state: the execution, then each stage.
fn lines(state: &RunState) -> Vec<String> {
    let mut lines = vec![format!("  execution  {}", state.status)];
    for stage in &state.stages {
        let mut line = format!("  {:<10} {}", stage.name, stage.status);
        if let Some(build) = &stage.build {
            let _ = write!(line, "  build {} phase {}", build.id, build.phase);
            if !build.logs.is_empty() {
                let _ = write!(line, "  logs {}", build.logs);
            }
        }
        if !stage.detail.is_empty() {
            let _ = write!(line, "  ({})", stage.detail);
        }
        lines.push(line);
    }
    lines
}

/// Why a run did not succeed: the failed stage and its message.
fn failure(state: &RunState) -> String {
    let stage = state.stages.iter().find(|stage| stage.status == "Failed");
    match (stage, state.summary.as_str()) {
        (Some(stage), _) => format!(
            "{} in stage {}{}",
            state.status,
            stage.name,
            if stage.detail.is_empty() { String::new() } else { format!(": {}", stage.detail) }
        ),
        (None, "") => state.status.clone(),
        (None, summary) => format!("{}: {summary}", state.status),
    }
}

/// The pipeline's last `count` executions, newest first; where they
/// cannot be read, the report says why.
pub async fn executions(clients: &Clients, name: &str, count: u32) -> PipelineStatus {
    let mut status = PipelineStatus { name: name.to_owned(), ..PipelineStatus::default() };
    match clients.codepipeline.executions(name, count).await {
        Ok(executions) => status.executions = executions.iter().map(execution_status).collect(),
        Err(error) => status.error = Some(format!("{error:#}")),
    }
    status
}

/// One execution summary: id, status, start (UTC), duration, commit.
fn execution_status(execution: &ExecutionSummary) -> ExecutionStatus {
    let duration_secs = match (execution.started, execution.last_update) {
        (Some(start), Some(end)) => Some(end.as_secs_f64() - start.as_secs_f64()),
        _ => None,
    };
    ExecutionStatus {
        id: execution.id.clone(),
        status: execution.status.clone(),
        started: execution.started.and_then(|start| start.fmt(Format::DateTime).ok()),
        duration_secs,
        commit: execution.revision.as_ref().map(|(id, _)| id.clone()),
        commit_message: execution
            .revision
            .as_ref()
            .map(|(_, summary)| summary.lines().next().unwrap_or_default().to_owned()),
    }
}

/// The connection's status (`AVAILABLE`, `PENDING`, `ERROR`).
pub async fn connection_status(clients: &Clients, arn: &str) -> Result<String, AwsError> {
    clients.connections.status(arn).await
}

/// One poll of a run: the execution's status and, where it can be read,
/// each stage's state and the build's phase.
pub async fn poll_run(clients: &Clients, name: &str, id: &str) -> anyhow::Result<RunState> {
    let execution = clients.codepipeline.execution(name, id).await?;
    let mut state = RunState { status: execution.status, summary: execution.summary, stages: Vec::new() };
    // Stage detail is a courtesy (an emulator may not have it).
    let Ok(stages) = clients.codepipeline.stages(name).await else {
        return Ok(state);
    };
    for stage in stages {
        if stage.execution_id != id {
            state.stages.push(StageState { name: stage.name, status: "-".into(), ..StageState::default() });
            continue;
        }
        let build_id = Some(stage.external_id.as_str()).filter(|id| id.contains(':') && stage.action_name != "Source");
        let build = match build_id {
            Some(build_id) => {
                let builds = clients.codebuild.builds(&[build_id.to_owned()]).await.unwrap_or_default();
                builds.into_iter().next().map(|build| BuildState {
                    id: build_id.to_owned(),
                    phase: build.phase,
                    logs: build.logs,
                })
            }
            None => None,
        };
        state.stages.push(StageState { name: stage.name, status: stage.status, detail: stage.detail, build });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use aws_smithy_types::DateTime;

    use super::*;

    fn stage(name: &str, status: &str, build: Option<(&str, &str)>) -> StageState {
        StageState {
            name: name.into(),
            status: status.into(),
            detail: String::new(),
            build: build.map(|(id, phase)| BuildState {
                id: id.into(),
                phase: phase.into(),
                logs: "https://logs".into(),
            }),
        }
    }

    fn state(status: &str, stages: Vec<StageState>) -> RunState {
        RunState { status: status.into(), summary: String::new(), stages }
    }

    /// Answers each poll with the next scripted state (the last repeats).
    fn scripted(states: Vec<RunState>) -> impl FnMut() -> std::future::Ready<anyhow::Result<RunState>> {
        let states = Arc::new(Mutex::new(VecDeque::from(states)));
        move || {
            let mut states = states.lock().unwrap();
            let next = if states.len() > 1 { states.pop_front().unwrap() } else { states[0].clone() };
            std::future::ready(Ok(next))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_is_followed_stage_by_stage_with_the_build_phase_and_its_logs() {
        let poll = scripted(vec![
            state("InProgress", vec![stage("Source", "InProgress", None), stage("Deploy", "-", None)]),
            state(
                "InProgress",
                vec![
                    stage("Source", "Succeeded", None),
                    stage("Deploy", "InProgress", Some(("shop-deploy:1", "BUILD"))),
                ],
            ),
            state(
                "InProgress",
                vec![
                    stage("Source", "Succeeded", None),
                    stage("Deploy", "InProgress", Some(("shop-deploy:1", "BUILD"))),
                ],
            ),
            state(
                "Succeeded",
                vec![
                    stage("Source", "Succeeded", None),
                    stage("Deploy", "Succeeded", Some(("shop-deploy:1", "COMPLETED"))),
                ],
            ),
        ]);
        let mut lines = Vec::new();
        let ending = follow(poll, Duration::from_secs(10), Duration::from_secs(3600), |line| lines.push(line)).await;
        assert_eq!(ending, Ending::Succeeded);
        let lines: Vec<String> = lines.iter().map(|line| line.rsplit_once("  (").unwrap().0.to_owned()).collect();
        assert_eq!(
            lines,
            [
                "  execution  InProgress",
                "  Source     InProgress",
                "  Deploy     -",
                "  Source     Succeeded",
                "  Deploy     InProgress  build shop-deploy:1 phase BUILD  logs https://logs",
                "  execution  Succeeded",
                "  Deploy     Succeeded  build shop-deploy:1 phase COMPLETED  logs https://logs",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_stage_is_named_with_its_message_and_a_stuck_run_times_out() {
        let mut failed = stage("Deploy", "Failed", Some(("shop-deploy:2", "COMPLETED")));
        failed.detail = "Error while executing command: bash .ci/run. Reason: exit status 1".into();
        let poll = scripted(vec![state("Failed", vec![stage("Source", "Succeeded", None), failed])]);
        let ending = follow(poll, Duration::from_secs(10), Duration::from_secs(3600), |_| {}).await;
        assert_eq!(
            ending,
            Ending::Failed(
                "Failed in stage Deploy: Error while executing command: bash .ci/run. Reason: exit status 1".into()
            )
        );
        let poll = scripted(vec![state("InProgress", vec![])]);
        let started = tokio::time::Instant::now();
        assert_eq!(follow(poll, Duration::from_secs(10), Duration::from_secs(60), |_| {}).await, Ending::TimedOut);
        assert!(started.elapsed() <= Duration::from_secs(60));
    }

    #[test]
    fn a_pending_connection_says_to_approve_it() {
        let arn = "arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e";
        assert_eq!(connection_ready(arn, "AVAILABLE"), Ok(()));
        let pending = connection_ready(arn, "PENDING").unwrap_err();
        assert!(pending.contains("is PENDING") && pending.contains("Update pending connection"), "{pending}");
        assert!(connection_ready(arn, "ERROR").unwrap_err().contains("is ERROR"));
    }

    #[test]
    fn an_execution_reads_as_a_line_with_its_commit_and_duration() {
        let execution_line = |execution: &ExecutionSummary| {
            let status =
                PipelineStatus { name: "p".into(), executions: vec![execution_status(execution)], error: None };
            status.render().lines().last().unwrap_or_default().to_owned()
        };
        let execution = ExecutionSummary {
            id: "e-1".into(),
            status: "Succeeded".into(),
            started: Some(DateTime::from_secs_f64(1_800_000_000.0)),
            last_update: Some(DateTime::from_secs_f64(1_800_000_754.2)),
            revision: Some(("0123456789abcdef".into(), "Add the ingress\n\nbody".into())),
        };
        let line = execution_line(&execution);
        assert!(line.contains("e-1") && line.contains("Succeeded") && line.contains("754s"), "{line}");
        assert!(line.contains("2027-01-15T08:00:00Z"), "the start in UTC: {line}");
        assert!(line.ends_with("01234567 Add the ingress"), "{line}");
        let running = ExecutionSummary { id: "e-2".into(), status: "InProgress".into(), ..ExecutionSummary::default() };
        assert!(execution_line(&running).ends_with("       -  -"), "{}", execution_line(&running));
        let as_json = serde_json::to_value(execution_status(&execution)).unwrap();
        assert_eq!(as_json["commit"], "0123456789abcdef");
        assert_eq!(as_json["commit_message"], "Add the ingress");
        assert_eq!(as_json["started"], "2027-01-15T08:00:00Z");
        assert!((as_json["duration_secs"].as_f64().unwrap() - 754.2).abs() < 0.01, "{as_json}");
    }
}

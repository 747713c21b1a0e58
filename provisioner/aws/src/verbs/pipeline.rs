//! `provision pipeline run` and `provision pipeline status`: start the
//! delivery pipeline and follow it stage by stage, or list its last
//! executions (the reading and following are the pipeline kind's, in
//! `kinds/pipeline/executions.rs`).

use clap::Args;

use super::{AwsArgs, status::StatusArgs};

/// `provision pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

/// What `provision pipeline` does.
#[derive(Debug, clap::Subcommand)]
pub enum PipelineCommand {
    /// Start the delivery pipeline on the branch's latest commit and follow
    /// it stage by stage; fails when it does.
    Run(PipelineRunArgs),
    /// The pipeline's last executions: commit, result, duration.
    Status(StatusArgs),
}

/// `provision pipeline run`.
#[derive(Debug, Args)]
pub struct PipelineRunArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// How long to follow the run before failing (`75m`, `2h`); default:
    /// the build's timeout and 15 minutes for the rest.
    #[arg(long, value_parser = provision_cli::duration::parse_positive, conflicts_with = "timeout_minutes")]
    pub timeout: Option<std::time::Duration>,
    /// The same in minutes: the spelling before --timeout, kept for a
    /// release.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_minutes: Option<u64>,
}

/// Runs the pipeline subcommand.
#[cfg(feature = "aws")]
pub async fn run(args: PipelineArgs) -> anyhow::Result<u8> {
    use std::time::Duration;

    use crate::{engine::names::Names, kinds::pipeline::executions::executions};

    match args.command {
        PipelineCommand::Run(args) => {
            let (stack, clients) = super::connect(&args.aws).await?;
            let build_minutes = stack.pipeline.as_ref().map_or(60, |pipeline| u64::from(pipeline.timeout_minutes));
            let timeout = args
                .timeout
                .or(args.timeout_minutes.map(|minutes| Duration::from_secs(minutes * 60)))
                .unwrap_or(Duration::from_secs((build_minutes + 15) * 60));
            start_and_follow(&clients, &stack, timeout).await?;
        }
        PipelineCommand::Status(args) => {
            let (stack, clients) = super::connect(&args.aws).await?;
            let status = executions(&clients, &Names::of(&stack).pipeline(), 10).await;
            if let Some(error) = &status.error {
                anyhow::bail!("pipeline {}: cannot read its executions: {error}", status.name);
            }
            match args.output {
                super::Output::Text => provision_cli::colour::print(&status.render()),
                super::Output::Json => println!("{}", serde_json::to_string_pretty(&status)?),
            }
        }
    }
    Ok(0)
}

/// Checks the connection, starts an execution and follows it; fails when
/// it does.
#[cfg(feature = "aws")]
async fn start_and_follow(
    clients: &crate::clients::Clients,
    stack: &stack_spec::Stack,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use std::time::Duration;

    use anyhow::{Context as _, bail};

    use crate::{
        engine::names::Names,
        kinds::pipeline::executions::{Ending, connection_ready, connection_status, follow, poll_run},
    };

    let pipeline = stack.pipeline.as_ref().context("the stack file has no [pipeline] table")?;
    let name = Names::of(stack).pipeline();
    match connection_status(clients, &pipeline.connection_arn).await {
        Ok(status) => connection_ready(&pipeline.connection_arn, &status).map_err(anyhow::Error::msg)?,
        // Status is a courtesy; the pipeline's source stage says the rest.
        Err(error) => provision_cli::say!("connection: cannot check it ({error}); going on"),
    }
    let id = clients.codepipeline.start_execution(&name).await.map_err(|error| {
        if error.is_not_found() {
            anyhow::anyhow!("pipeline {name} does not exist: `provision apply` makes it from [pipeline]")
        } else {
            error.into()
        }
    })?;
    provision_cli::say!("started pipeline {name}, execution {id}");
    let poll = || poll_run(clients, &name, &id);
    let ending = follow(poll, Duration::from_secs(10), timeout, |line| provision_cli::say!("{line}")).await;
    match ending {
        Ending::Succeeded => {
            provision_cli::say!("pipeline {name}: execution {id} succeeded");
            Ok(())
        }
        Ending::Failed(why) => bail!("pipeline {name}: execution {id} did not succeed: {why}"),
        Ending::TimedOut => bail!(
            "pipeline {name}: execution {id} still running after {} (--timeout); `provision pipeline status` \
             shows it",
            provision_cli::duration::format(timeout)
        ),
    }
}

//! `provision rollback`: move a service back to the task definition
//! revision before the one it runs, and wait for that deployment.

use clap::Args;
#[cfg(feature = "aws")]
use {
    anyhow::{Context as _, bail},
    stack_spec::Stack,
};

use super::AwsArgs;
#[cfg(feature = "aws")]
use crate::{
    clients::{Clients, ecs::primary_deployment, error::explain},
    engine::{names::Names, resource::render::revision_of, rollout::Rollout, watch},
    kinds::task_definition::active_revisions,
};

/// `provision rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The service to move back to its previous task definition revision.
    pub service: String,
    /// Return once the service is updated, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the deployment before failing (`15m`, `900s`;
    /// a bare number is seconds).
    #[arg(long, default_value = "15m", value_parser = provision_cli::duration::parse_positive)]
    pub wait_timeout: std::time::Duration,
}

/// Rolls the service back and waits.
#[cfg(feature = "aws")]
pub async fn run(args: RollbackArgs) -> anyhow::Result<u8> {
    let (stack, clients) = super::connect(&args.aws).await?;
    let rollout = roll_back(&clients, &stack, &args.service).await?;
    if !args.no_wait {
        watch::wait_for(&clients, &stack.aws.cluster, &[rollout], super::wait_options(args.wait_timeout)).await?;
    }
    Ok(0)
}

#[cfg(feature = "aws")]
/// Moves `service` back to the task definition revision before the one it
/// runs; returns the rollout to wait for.
async fn roll_back(clients: &Clients, stack: &Stack, service: &str) -> anyhow::Result<Rollout> {
    let names = Names::of(stack);
    super::deploy::select(stack, &[service.to_owned()])?;
    let cluster = &stack.aws.cluster;
    let resource = format!("ECS service {service}");
    let described = clients
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|error| explain(error, "ecs:DescribeServices", &resource))?;
    let Some(current) = described.services().iter().find(|s| s.status() == Some("ACTIVE")) else {
        bail!("{resource} does not exist in cluster {cluster}: run `provision apply` first");
    };
    let current_arn = current.task_definition().unwrap_or_default().to_owned();
    let number = |arn: &str| revision_of(arn).rsplit_once(':').and_then(|(_, n)| n.parse::<u32>().ok());
    let current_number = number(&current_arn).context("the service's task definition has no revision number")?;
    let family = names.family(service);
    let revisions = active_revisions(clients, &family).await?;
    let previous = revisions
        .iter()
        .filter_map(|arn| number(arn).map(|n| (n, arn)))
        .filter(|(n, _)| *n < current_number)
        .max_by_key(|(n, _)| *n)
        .map(|(_, arn)| arn.clone())
        .with_context(|| {
            format!("{service} runs {}: there is no earlier active revision to go back to", revision_of(&current_arn))
        })?;
    provision_cli::say!("rolling {service} back: {} -> {}", revision_of(&current_arn), revision_of(&previous));
    let answer = clients
        .ecs
        .update_service()
        .cluster(cluster)
        .service(service)
        .task_definition(&previous)
        .send()
        .await
        .map_err(|error| explain(error, "ecs:UpdateService", &resource))?;
    let deployment_id = primary_deployment(answer.service());
    Ok(Rollout {
        service: service.to_owned(),
        deployment_id,
        task_definition: previous,
        // What it runs now, unless autoscaling may move it meanwhile.
        desired_count: stack
            .services
            .iter()
            .find(|candidate| candidate.name == service)
            .is_none_or(|candidate| candidate.autoscaling.is_none())
            .then(|| current.desired_count()),
        target_group: current
            .load_balancers()
            .first()
            .and_then(|attached| attached.target_group_arn())
            .map(str::to_owned),
    })
}

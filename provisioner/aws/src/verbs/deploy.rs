//! `provision deploy`: build and push the services' images (or take a
//! prebuilt one), then plan the stack with those images pinned by digest,
//! apply that plan to the services' task definitions and services (their
//! autoscaling on a first image), and watch the rollout.

use std::path::PathBuf;

use clap::Args;
#[cfg(feature = "aws")]
use {
    anyhow::{Context as _, bail},
    stack_spec::{Service, Stack},
    std::{collections::BTreeMap, path::Path},
};

use super::AwsArgs;
#[cfg(feature = "aws")]
use crate::{
    clients::Clients,
    engine::{self, account, names::Names, pin::pin, resource::Kind as _, state::Live, watch},
    images::{check_binaries, default_tag, docker},
    kinds::{
        GRAPH,
        cluster::Cluster,
        ecs_service::EcsService,
        namespace::Namespace,
        repository::Repository,
        scaling::{policy::ScalingPolicy, target::ScalableTarget},
        task_definition::TaskDefinition,
    },
};

/// `provision deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The services to deploy (repeat for several); all by default.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The image tag to build and push; default: the git commit (short),
    /// or CODEBUILD_RESOLVED_SOURCE_VERSION in CodeBuild.
    #[arg(long)]
    pub tag: Option<String>,
    /// Deploy this existing image instead of building one (with one
    /// --service); a tag in the service's repository is pinned by digest.
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Package the services' binaries already built in DIR (e.g.
    /// target/release) instead of compiling them inside `docker build`: the
    /// Dockerfile's `prebuilt` stage, seconds per image. Each must be built
    /// for its service's architecture.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub binaries: Option<PathBuf>,
    /// Create or update the infrastructure first (`provision apply`)
    /// instead of stopping when it is missing.
    #[arg(long)]
    pub apply: bool,
    /// Return once the services are updated, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for deployments before failing, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout: u64,
}

/// Deploys: infrastructure (with `--apply`), repositories, images, then
/// the selected services' plan, applied and watched.
#[cfg(feature = "aws")]
pub async fn run(args: DeployArgs) -> anyhow::Result<u8> {
    let (stack, clients) = super::connect(&args.aws).await?;
    let root = args.aws.stack.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let selected = select(&stack, &args.services)?;
    if args.image.is_some() && selected.len() != 1 {
        bail!("--image names one image: pass exactly one --service with it");
    }
    if let Some(dir) = &args.binaries {
        check_binaries(dir, &selected)?;
    }
    let mut live = account::read(GRAPH, &clients, &stack).await?;
    let missing = missing_infrastructure(&stack, &live, &selected);
    if !missing.is_empty() {
        if !args.apply {
            bail!(
                "the infrastructure is not there yet (missing: {}): run `provision apply` first, or deploy with \
                 --apply",
                missing.join(", ")
            );
        }
        super::apply_stack(&stack, &clients, true, None).await?;
        live = account::read(GRAPH, &clients, &stack).await?;
    }
    let images = push_images(&clients, &stack, root, live, &selected, &args).await?;

    let mut pinned = stack.clone();
    for service in &mut pinned.services {
        if let Some(image) = images.get(&service.name) {
            service.aws.image = Some(image.clone());
        }
    }
    let live = account::read(GRAPH, &clients, &pinned).await?;
    let names = Names::new(&stack.app);
    let families: Vec<String> = selected.iter().map(|service| names.family(&service.name)).collect();
    let services: Vec<String> = selected.iter().map(|service| service.name.clone()).collect();
    let mut planned = engine::plan_read(GRAPH, pinned, live)?;
    planned.plan = planned.plan.only(|step| match step.kind {
        TaskDefinition::KEY => families.contains(&step.name),
        // A service's first image registers its autoscaling, if it has any.
        EcsService::KEY | ScalableTarget::KEY => services.contains(&step.name),
        ScalingPolicy::KEY => step.name.split('/').next().is_some_and(|service| services.iter().any(|s| s == service)),
        _ => false,
    });
    for (service, image) in &images {
        println!("{service}: {image}");
    }
    if !planned.plan.has_changes() {
        println!("Nothing to deploy: the services already run these images.");
        return Ok(0);
    }
    print!("{}", planned.plan.render());
    println!("\nDeploying:");
    let rollouts = engine::apply_plan(GRAPH, &clients, &planned, |_| true).await?.rollouts();
    if !args.no_wait {
        watch::wait_for(&clients, &stack.aws.cluster, &rollouts, super::wait_options(args.wait_timeout)).await?;
    }
    Ok(0)
}

/// Makes the selected services' repositories if missing, then builds and
/// pushes their images (or takes `--image`); each service's image pinned
/// by digest.
#[cfg(feature = "aws")]
async fn push_images(
    clients: &Clients,
    stack: &Stack,
    root: &Path,
    live: Live,
    selected: &[&Service],
    args: &DeployArgs,
) -> anyhow::Result<BTreeMap<String, String>> {
    let names = Names::new(&stack.app);
    // The repositories first: a build needs somewhere to push.
    let repositories: Vec<String> = selected.iter().map(|service| names.repository(&service.name)).collect();
    let mut planned = engine::plan_read(GRAPH, stack.clone(), live)?;
    planned.plan = planned.plan.only(|step| step.kind == Repository::KEY && repositories.contains(&step.name));
    let made = engine::apply_plan(GRAPH, clients, &planned, |kind| kind == Repository::KEY).await?;
    let uri = |service: &Service| made.id::<Repository>(&names.repository(&service.name));

    let mut images = BTreeMap::new();
    if let Some(image) = &args.image {
        let service = selected[0];
        images
            .insert(service.name.clone(), pin(clients, &names.repository(&service.name), &uri(service), image).await?);
        return Ok(images);
    }
    let architecture = |service: &Service| {
        planned
            .desired
            .get::<TaskDefinition>(&names.family(&service.name))
            .map_or("X86_64", |definition| definition.architecture.as_str())
            .to_owned()
    };
    let targets: Vec<(&Service, String, String)> =
        selected.iter().map(|service| (*service, uri(service), architecture(service))).collect();
    let builds: Vec<docker::Build> = targets
        .iter()
        .map(|(service, uri, architecture)| docker::Build { service, repository_uri: uri, architecture })
        .collect();
    let tag = || match &args.tag {
        Some(tag) => Ok(tag.clone()),
        None => default_tag(root, std::env::var("CODEBUILD_RESOLVED_SOURCE_VERSION").ok()),
    };
    let pushed = docker::build_and_push(clients, root, &builds, tag, args.binaries.as_deref()).await?;
    for ((name, image), (service, uri, _)) in pushed.into_iter().zip(&targets) {
        images.insert(name, pin(clients, &names.repository(&service.name), uri, &image).await?);
    }
    Ok(images)
}

#[cfg(feature = "aws")]
/// The services `names` selects (all when empty), or an error listing the
/// stack's services.
pub fn select<'a>(stack: &'a Stack, names: &[String]) -> anyhow::Result<Vec<&'a Service>> {
    if names.is_empty() {
        return Ok(stack.services.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            stack.services.iter().find(|service| &service.name == name).with_context(|| {
                let known: Vec<&str> = stack.services.iter().map(|service| service.name.as_str()).collect();
                format!("--service {name}: not in the stack (its services: {})", known.join(", "))
            })
        })
        .collect()
}

#[cfg(feature = "aws")]
/// What of the infrastructure the selected services need is missing.
pub fn missing_infrastructure(stack: &Stack, live: &Live, selected: &[&Service]) -> Vec<String> {
    let mut missing = Vec::new();
    if live.get::<Cluster>(&stack.aws.cluster).is_none() {
        missing.push(format!("ecs cluster {}", stack.aws.cluster));
    }
    if live.get::<Namespace>(&stack.namespace).is_none() {
        missing.push(format!("cloud map namespace {}", stack.namespace));
    }
    for service in selected {
        if live.get::<EcsService>(&service.name).is_none() {
            missing.push(format!("ecs service {}", service.name));
        }
    }
    missing
}

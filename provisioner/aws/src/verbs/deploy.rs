//! `provision deploy`: build and push the services' images (or take a
//! prebuilt one), then plan the stack with those images pinned by digest,
//! apply that plan to the services' task definitions and services (their
//! autoscaling on a first image), and watch the rollout.
//!
//! Images are built by our own builder by default (each release binary
//! added as one layer to the stack's base image, pushed with ECR's
//! layer-upload calls: no Docker, no daemon, no login), or by Docker with
//! `--builder docker`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
#[cfg(feature = "aws")]
use {
    anyhow::{Context as _, bail},
    stack_spec::{Service, Stack},
    std::{collections::BTreeMap, path::Path},
};

use super::{AwsArgs, LockArgs, Output};
#[cfg(feature = "aws")]
use crate::{
    clients::Clients,
    engine::{self, account, names::Names, pin::pin, resource::Kind as _, state::Live, watch},
    images::{
        base::BlobCache,
        build::{base_for, build},
        check_binaries, default_tag, docker, ecr,
        registry::Registry,
    },
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
    #[command(flatten)]
    pub lock: LockArgs,
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
    /// The services' release binaries, already built in DIR (e.g.
    /// target/release), each for its service's architecture. Without it,
    /// deploy builds them first (`cargo build --release --locked`); with
    /// `--builder docker`, `docker build` compiles them unless this is given
    /// (then the Dockerfile's `prebuilt` stage packages them).
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub binaries: Option<PathBuf>,
    /// What builds the images: `oci`, provision itself (no daemon), or
    /// `docker`, the Dockerfile through a Docker daemon.
    #[arg(long, value_enum, default_value_t = Builder::Oci)]
    pub builder: Builder,
    /// A registry (HOST:PORT) the base image is pulled from over plain HTTP
    /// instead of HTTPS (a mirror on loopback); repeat for several.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Create or update the infrastructure first (`provision apply`)
    /// instead of stopping when it is missing. The pipeline's build sets
    /// PROVISION_DEPLOY_APPLY=true when `[pipeline] deploys = "stack"`.
    #[arg(long, env = "PROVISION_DEPLOY_APPLY")]
    pub apply: bool,
    /// With --apply: consent to replacing this store (see `provision apply
    /// --replace-store`).
    #[arg(long, value_name = "STORE", env = "PROVISION_REPLACE_STORE", value_delimiter = ',')]
    pub replace_store: Vec<String>,
    /// Return once the services are updated, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for deployments before failing (`15m`, `900s`;
    /// a bare number is seconds).
    #[arg(long, default_value = "15m", value_parser = provision_cli::duration::parse_positive)]
    pub wait_timeout: std::time::Duration,
    /// `text`: progress for people; `json`: progress on stderr, then one
    /// document on stdout: each service's image by digest, the plan, each
    /// change and each deployment's result (docs/json-output.md).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Who builds the services' images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Builder {
    /// provision itself: the binary as one layer on `[aws] base_image`,
    /// pushed with ECR's own calls. Reproducible, no daemon.
    Oci,
    /// `docker build` with the repository's Dockerfile, `docker push`.
    Docker,
}

/// Deploys: infrastructure (with `--apply`), repositories, images, then
/// the selected services' plan, applied and watched.
#[cfg(feature = "aws")]
pub async fn run(args: DeployArgs) -> anyhow::Result<u8> {
    args.output.claim_stdout();
    let (stack, clients) = super::connect(&args.aws).await?;
    let root = args.aws.stack.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let selected = select(&stack, &args.services)?;
    if args.image.is_some() && selected.len() != 1 {
        bail!("--image names one image: pass exactly one --service with it");
    }
    if let Some(dir) = &args.binaries {
        check_binaries(dir, &selected)?;
    }
    let lock = super::lock(&clients, &stack, "deploy", &args.lock).await?;
    lock.hold(deploy(&args, &stack, &clients, root, &selected)).await
}

/// Deploy under the lock.
#[cfg(feature = "aws")]
async fn deploy(
    args: &DeployArgs,
    stack: &Stack,
    clients: &crate::clients::Clients,
    root: &Path,
    selected: &[&Service],
) -> anyhow::Result<u8> {
    let mut live = account::read(GRAPH, clients, stack).await?;
    let missing = missing_infrastructure(stack, &live, selected);
    if !missing.is_empty() {
        if !args.apply {
            bail!(
                "the infrastructure is not there yet (missing: {}): run `provision apply` first, or deploy with \
                 --apply",
                missing.join(", ")
            );
        }
        super::apply_stack(stack, clients, true, &args.replace_store, None).await?;
        live = account::read(GRAPH, clients, stack).await?;
    }
    let images = push_images(clients, stack, root, live, selected, args).await?;

    let mut pinned = stack.clone();
    for service in &mut pinned.services {
        if let Some(image) = images.get(&service.name) {
            service.aws.image = Some(image.clone());
        }
    }
    let live = account::read(GRAPH, clients, &pinned).await?;
    let names = Names::of(stack);
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
        provision_cli::say!("{service}: {image}");
    }
    if !planned.plan.has_changes() {
        provision_cli::say!("Nothing to deploy: the services already run these images.");
    } else {
        provision_cli::output::show(&planned.plan.render());
        provision_cli::say!("\nDeploying:");
        let rollouts = engine::apply_plan(GRAPH, clients, &planned, |_| true).await?.rollouts();
        if !args.no_wait {
            watch::wait_for(clients, &stack.aws.cluster, &rollouts, super::wait_options(args.wait_timeout)).await?;
        }
    }
    if args.output.is_json() {
        let mut document = super::applied_json(&planned.plan)?;
        document["images"] = serde_json::to_value(&images)?;
        println!("{}", serde_json::to_string_pretty(&document)?);
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
    let names = Names::of(stack);
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
    if args.builder == Builder::Oci {
        let binaries = match &args.binaries {
            Some(dir) => dir.clone(),
            None => compile(root, selected)?,
        };
        check_binaries(&binaries, selected)?;
        let tag = tag()?;
        let registry = Registry::new(&args.insecure_registry);
        let cache = BlobCache::new(BlobCache::default_dir());
        for (service, uri, _) in &targets {
            let base = base_for(&registry, &cache, &stack.aws.base_image, service).await?;
            let image = build(&binaries, &base, service, &cache)?;
            let repository = names.repository(&service.name);
            let pushed = ecr::push(clients, &repository, &tag, &image, &cache).await?;
            eprintln!("{}: {uri}:{tag} built on {}: {pushed}", service.name, base.reference);
            images.insert(service.name.clone(), pin(clients, &repository, uri, &format!("{uri}:{tag}")).await?);
        }
        return Ok(images);
    }
    let pushed = docker::build_and_push(clients, root, &builds, tag, args.binaries.as_deref()).await?;
    for ((name, image), (service, uri, _)) in pushed.into_iter().zip(&targets) {
        images.insert(name, pin(clients, &names.repository(&service.name), uri, &image).await?);
    }
    Ok(images)
}

/// Builds the selected services' release binaries in the workspace at
/// `root` (`cargo build --release --locked`); the directory they are in.
#[cfg(feature = "aws")]
fn compile(root: &Path, selected: &[&Service]) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    // Cargo's own output is on stderr; its stdout too, so that `-o json`
    // keeps stdout for the document.
    command.args(["build", "--release", "--locked"]).current_dir(root).stdout(std::io::stderr());
    for service in selected {
        command.args(["--package", &service.package, "--bin", &service.binary]);
    }
    eprintln!("building the binaries: cargo build --release --locked ({})", root.display());
    let status = command.status().with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("cargo build of the services failed ({status}): fix the build, or pass --binaries DIR");
    }
    let metadata = std::process::Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run {} metadata", cargo.to_string_lossy()))?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).context("cargo metadata printed no JSON")?;
    let target = metadata["target_directory"].as_str().context("cargo metadata names no target directory")?;
    Ok(Path::new(target).join("release"))
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

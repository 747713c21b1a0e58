//! `provision deploy` and `provision rollback`: build and push a service's
//! image (or take a prebuilt one), pin it by digest in a new task
//! definition revision, move the ECS service to it and wait, exactly as
//! apply does.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use aws_sdk_ecr::types::ImageIdentifier;
use base64::Engine as _;

use super::{
    account, docker,
    error::{classify, explain},
    graph,
    kinds::{
        cluster::Cluster,
        ecs_service::{EcsService, primary_deployment},
        namespace::Namespace,
        repository::Repository,
        scaling::{policy::ScalingPolicy, target::ScalableTarget},
        task_definition::{TaskDefinition, active_revisions},
    },
    names::Names,
    plan,
    resource::{Cx, Kind as _, render::revision_of},
    sdk::Clients,
    state::Live,
    wait::Rollout,
};
use stack_spec::{Service, Stack};

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// Services by name; empty means all.
    pub services: Vec<String>,
    /// The image tag to build and push; default: the git commit.
    pub tag: Option<String>,
    /// A prebuilt image to deploy instead of building one.
    pub image: Option<String>,
    /// Where the services' release binaries already are: the images only
    /// package them (the Dockerfile's `prebuilt` stage).
    pub binaries: Option<PathBuf>,
}

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

/// The tag of a build: CodeBuild's source version (`source_version`, from
/// CODEBUILD_RESOLVED_SOURCE_VERSION), else the git commit, marked dirty
/// (and made unique, tags being immutable) when the work tree has changes.
pub fn default_tag(root: &Path, source_version: Option<String>) -> anyhow::Result<String> {
    if let Some(version) = source_version {
        let version: String = version.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        if !version.is_empty() {
            return Ok(version);
        }
    }
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new("git").args(args).current_dir(root).stdin(Stdio::null()).output();
        match output {
            Ok(output) if output.status.success() => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
            _ => bail!("cannot read the git commit in {} to tag the image: pass --tag", root.display()),
        }
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    if dirty {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Ok(format!("{commit}-dirty-{now}"));
    }
    Ok(commit)
}

/// Deploys `request` and returns the rollouts started.
pub async fn deploy(
    clients: &Clients,
    stack: &Stack,
    root: &Path,
    live: &Live,
    request: &DeployRequest,
) -> anyhow::Result<Vec<Rollout>> {
    let names = Names::new(&stack.app);
    let selected = select(stack, &request.services)?;
    if request.image.is_some() && selected.len() != 1 {
        bail!("--image names one image: pass exactly one --service with it");
    }
    if request.image.is_some() && request.binaries.is_some() {
        bail!("--image deploys an image as it is and --binaries builds one from binaries: pass one of them");
    }
    let desired = graph::desired(stack, live);
    let architecture = |service: &Service| {
        desired
            .get::<TaskDefinition>(&names.family(&service.name))
            .map_or("X86_64", |definition| definition.architecture.as_str())
            .to_owned()
    };

    // The repositories first: a build needs somewhere to push.
    let cx = Cx { clients, names: &names, stack };
    let repositories: Vec<String> = selected.iter().map(|service| names.repository(&service.name)).collect();
    let repository_plan = plan::plan(&stack.app, &desired, live)?
        .only(|step| step.kind == Repository::KEY && repositories.contains(&step.name));
    let made = super::apply::apply(cx, &desired, live, &repository_plan, |kind| kind == Repository::KEY).await?;
    let uris: BTreeMap<String, String> = stack
        .services
        .iter()
        .map(|service| (service.name.clone(), made.id::<Repository>(&names.repository(&service.name))))
        .collect();

    let mut images = BTreeMap::new();
    match &request.image {
        Some(image) => {
            let service = selected[0];
            let uri = &uris[&service.name];
            images.insert(service.name.clone(), pin(clients, &names.repository(&service.name), uri, image).await?);
        }
        None => {
            let docker = docker::find()?;
            docker::check_daemon(&docker)?;
            let tag = match &request.tag {
                Some(tag) => tag.clone(),
                None => default_tag(root, std::env::var("CODEBUILD_RESOLVED_SOURCE_VERSION").ok())?,
            };
            login(clients, &docker).await?;
            for service in &selected {
                let uri = &uris[&service.name];
                let image = format!("{uri}:{tag}");
                let platform = docker::platform(&architecture(service));
                match &request.binaries {
                    Some(dir) => {
                        println!("packaging {} as {image} ({platform})", dir.join(&service.binary).display());
                        let context = stage_binary(dir, service)?;
                        let built = docker::run(
                            &docker,
                            &docker::prebuilt_build_args(&root.join("Dockerfile"), &context, platform, &image),
                            None,
                        );
                        let _ = std::fs::remove_dir_all(&context);
                        built?;
                    }
                    None => {
                        println!("building {image} ({platform})");
                        docker::run(&docker, &docker::build_args(root, &service.binary, platform, &image), None)?;
                    }
                }
                docker::run(&docker, &docker::push_args(&image), None)?;
                images.insert(service.name.clone(), pin(clients, &names.repository(&service.name), uri, &image).await?);
            }
        }
    }

    let mut pinned = stack.clone();
    for service in &mut pinned.services {
        if let Some(image) = images.get(&service.name) {
            service.aws.image = Some(image.clone());
        }
    }
    let live = account::read(clients, &pinned).await?;
    let desired = graph::desired(&pinned, &live);
    let families: Vec<String> = selected.iter().map(|service| names.family(&service.name)).collect();
    let services: Vec<String> = selected.iter().map(|service| service.name.clone()).collect();
    let plan = plan::plan(&stack.app, &desired, &live)?.only(|step| match step.kind {
        TaskDefinition::KEY => families.contains(&step.name),
        // A service's first image registers its autoscaling, if it has any.
        EcsService::KEY | ScalableTarget::KEY => services.contains(&step.name),
        ScalingPolicy::KEY => step.name.split('/').next().is_some_and(|service| services.iter().any(|s| s == service)),
        _ => false,
    });
    for (service, image) in &images {
        println!("{service}: {image}");
    }
    if !plan.has_changes() {
        println!("Nothing to deploy: the services already run these images.");
        return Ok(Vec::new());
    }
    print!("{}", plan.render());
    println!("\nDeploying:");
    let cx = Cx { clients, names: &names, stack: &pinned };
    Ok(super::apply::apply(cx, &desired, &live, &plan, |_| true).await?.rollouts())
}

/// Refuses a `--binaries` directory whose binary for one of `services` is
/// missing, not an executable, or built for another architecture than its
/// tasks; before any call, so a pipeline fails in a second, not after
/// applying.
pub fn check_binaries(dir: &Path, services: &[&Service]) -> anyhow::Result<()> {
    services.iter().try_for_each(|service| check_binary(dir, service))
}

fn check_binary(dir: &Path, service: &Service) -> anyhow::Result<()> {
    let architecture = service.aws.architecture.as_ecs();
    let path = dir.join(&service.binary);
    let mut header = [0u8; 64];
    let read = std::fs::File::open(&path).and_then(|mut file| std::io::Read::read(&mut file, &mut header));
    let Ok(read) = read else {
        bail!(
            "--binaries: no {} binary in {} for service {}: build it (cargo build --release --locked -p {}) or \
             deploy without --binaries",
            service.binary,
            dir.display(),
            service.name,
            service.package
        );
    };
    match docker::elf_architecture(&header[..read]) {
        None => bail!("--binaries: {} is not a Linux executable (ELF, x86_64 or arm64)", path.display()),
        Some(built) if built != architecture => bail!(
            "--binaries: {} is built for {built} but service {}'s tasks run on {architecture} \
             ([service.aws] architecture): build it for that target or deploy without --binaries",
            path.display(),
            service.name
        ),
        Some(_) => Ok(()),
    }
}

/// A build context holding only `service`'s binary, named `service` as the
/// Dockerfile's `prebuilt` stage expects (docker sends the whole context to
/// its daemon, so never the target directory itself).
fn stage_binary(dir: &Path, service: &Service) -> anyhow::Result<PathBuf> {
    let context = std::env::temp_dir().join(format!("provision-image-{}-{}", std::process::id(), service.name));
    std::fs::create_dir_all(&context).with_context(|| format!("cannot create {}", context.display()))?;
    let from = dir.join(&service.binary);
    std::fs::copy(&from, context.join("service"))
        .with_context(|| format!("cannot copy {} into {}", from.display(), context.display()))?;
    Ok(context)
}

/// `image` pinned by digest: a tag in our repository is resolved (and must
/// exist); an image from elsewhere is taken as given.
pub async fn pin(clients: &Clients, repository: &str, uri: &str, image: &str) -> anyhow::Result<String> {
    let Some(reference) = image.strip_prefix(uri) else {
        if !image.contains("@sha256:") {
            eprintln!("warning: {image} is not pinned by digest: each task start may pull a different image");
        }
        return Ok(image.to_owned());
    };
    let id = match (reference.strip_prefix('@'), reference.strip_prefix(':')) {
        (Some(digest), _) => ImageIdentifier::builder().image_digest(digest).build(),
        (_, Some(tag)) => ImageIdentifier::builder().image_tag(tag).build(),
        _ => bail!("image {image}: expected {uri}:TAG or {uri}@sha256:DIGEST"),
    };
    let answer = clients.ecr.describe_images().repository_name(repository).image_ids(id).send().await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ecr:DescribeImages", &format!("ECR repository {repository}"));
            if error.code.as_deref() == Some("ImageNotFoundException") {
                bail!(
                    "image {image} is not in ECR repository {repository}: push it first, or deploy without --image to build it"
                );
            }
            return Err(error.into());
        }
    };
    let digest = answer
        .image_details()
        .first()
        .and_then(|detail| detail.image_digest())
        .with_context(|| format!("image {image} is not in ECR repository {repository}"))?;
    Ok(format!("{uri}@{digest}"))
}

/// The stack with each image that names one of the app's repositories
/// pinned by digest; an image that is not there is an error, so that
/// nothing points a service at an image that does not exist.
pub async fn pin_stack_images(clients: &Clients, stack: &Stack, live: &Live) -> anyhow::Result<Stack> {
    let names = Names::new(&stack.app);
    let mut pinned = stack.clone();
    for service in &mut pinned.services {
        let Some(image) = service.aws.image.clone() else { continue };
        let repository = names.repository(&service.name);
        let uri = format!("{}.dkr.ecr.{}.amazonaws.com/{repository}", live.account, live.region);
        if !image.starts_with(&format!("{uri}:")) && !image.starts_with(&format!("{uri}@")) {
            continue;
        }
        if live.get::<Repository>(&repository).is_none() {
            bail!(
                "service {}: image {image} is in ECR repository {repository}, which does not exist yet: leave \
                 `image` out of the stack file, apply, then `provision deploy`",
                service.name
            );
        }
        service.aws.image = Some(pin(clients, &repository, &uri, &image).await?);
    }
    Ok(pinned)
}

/// Logs docker in to the account's registry with an ECR token.
async fn login(clients: &Clients, docker: &Path) -> anyhow::Result<()> {
    let answer = clients
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|error| explain(error, "ecr:GetAuthorizationToken", "the account's registry"))?;
    let data = answer.authorization_data().first().context("ECR returned no authorization data")?;
    let token = data.authorization_token().context("ECR returned no token")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(token).context("the ECR token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR token is not text")?;
    let (user, password) = decoded.split_once(':').context("the ECR token is not user:password")?;
    let registry = data.proxy_endpoint().context("ECR returned no registry endpoint")?;
    docker::run(docker, &docker::login_args(registry, user), Some(password))
}

/// Moves `service` back to the task definition revision before the one it
/// runs; returns the rollout to wait for.
pub async fn rollback(clients: &Clients, stack: &Stack, service: &str) -> anyhow::Result<Rollout> {
    let names = Names::new(&stack.app);
    select(stack, &[service.to_owned()])?;
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
    println!("rolling {service} back: {} -> {}", revision_of(&current_arn), revision_of(&previous));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebuild_source_version_is_the_tag() {
        let tag = default_tag(Path::new("/nonexistent"), Some("0123456789abcdef0123".into())).unwrap();
        assert_eq!(tag, "0123456789ab");
    }

    #[test]
    fn the_git_commit_is_the_tag_and_a_dirty_tree_says_so() {
        let dir = std::env::temp_dir().join(format!("provision-tag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("file"), "one").unwrap();
        git(&["add", "file"]);
        git(&["commit", "-q", "-m", "one"]);
        let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(&dir).output().unwrap();
        let head = String::from_utf8(head.stdout).unwrap().trim().to_owned();
        assert_eq!(default_tag(&dir, None).unwrap(), head);
        std::fs::write(dir.join("file"), "two").unwrap();
        let dirty = default_tag(&dir, None).unwrap();
        assert!(dirty.starts_with(&format!("{head}-dirty-")), "{dirty}");
        let _ = std::fs::remove_dir_all(&dir);
        let outside = default_tag(Path::new("/"), None).unwrap_err().to_string();
        assert!(outside.contains("pass --tag"), "{outside}");
    }
}

//! Images built with Docker: build for the stack's platform (from source,
//! or packaging a prebuilt binary with the Dockerfile's `prebuilt` stage),
//! log in to ECR with a token, push. The command lines are plain argument
//! lists so they can be checked without a daemon.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use stack_spec::Service;

use crate::clients::{Clients, error::explain};

/// What to tell a user without docker.
const WITHOUT_DOCKER: &str = "or deploy an image built elsewhere with `provision deploy --service NAME --image URI`";

/// The docker CLI, found on PATH.
pub fn find() -> anyhow::Result<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("docker"))
        .find(|candidate| candidate.is_file());
    match found {
        Some(docker) => Ok(docker),
        None => bail!("no docker CLI on PATH: deploy builds images with docker; install it, {WITHOUT_DOCKER}"),
    }
}

/// Fails at once, with what to do, when the docker daemon does not answer.
pub fn check_daemon(docker: &Path) -> anyhow::Result<()> {
    let output = Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", docker.display()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!(
            "the docker daemon is not reachable ({}): start it, {WITHOUT_DOCKER}",
            why.lines().find(|line| !line.trim().is_empty()).unwrap_or("no answer").trim()
        );
    }
    Ok(())
}

/// `docker build` of one service's image from the repository's Dockerfile.
pub fn build_args(context: &Path, binary: &str, platform: &str, image: &str) -> Vec<String> {
    vec![
        "build".into(),
        "--platform".into(),
        platform.into(),
        "--build-arg".into(),
        format!("SERVICE={binary}"),
        "--file".into(),
        context.join("Dockerfile").display().to_string(),
        "--tag".into(),
        image.into(),
        context.display().to_string(),
    ]
}

/// `docker build` of the image of a binary built beforehand: the
/// Dockerfile's `prebuilt` stage, from `context`, a directory holding only
/// the binary, named `service` (the build context is sent to the daemon).
pub fn prebuilt_build_args(dockerfile: &Path, context: &Path, platform: &str, image: &str) -> Vec<String> {
    vec![
        "build".into(),
        "--platform".into(),
        platform.into(),
        "--target".into(),
        "prebuilt".into(),
        "--file".into(),
        dockerfile.display().to_string(),
        "--tag".into(),
        image.into(),
        context.display().to_string(),
    ]
}

/// `docker login` to a registry, the password on stdin (never in argv).
pub fn login_args(registry: &str, user: &str) -> Vec<String> {
    vec!["login".into(), "--username".into(), user.into(), "--password-stdin".into(), registry.into()]
}

/// `docker push`.
pub fn push_args(image: &str) -> Vec<String> {
    vec!["push".into(), image.into()]
}

/// The docker platform of a task definition's CPU architecture.
pub fn platform(architecture: &str) -> &'static str {
    if architecture == "ARM64" { "linux/arm64" } else { "linux/amd64" }
}

/// Runs docker with `args`, its output going to ours (its stdout to our
/// stderr while ours carries JSON); `input` is written to its stdin.
pub fn run(docker: &Path, args: &[String], input: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(docker)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(if provision_cli::output::stdout_claimed() { Stdio::from(std::io::stderr()) } else { Stdio::inherit() })
        .spawn()
        .with_context(|| format!("cannot run docker {}", args.first().map_or("", String::as_str)))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("docker {} failed ({status})", args.first().map_or("", String::as_str));
    }
    Ok(())
}

/// One service's image to build: its spec, its repository's URI and the
/// architecture its tasks run on (`X86_64`, `ARM64`).
pub struct Build<'a> {
    pub service: &'a Service,
    pub repository_uri: &'a str,
    pub architecture: &'a str,
}

/// Builds each image with Docker (from source, or packaging the binaries in
/// `binaries`), tags it `URI:TAG` (`tag` is asked once docker is found to
/// be there) and pushes it to the account's registry; returns each
/// service's pushed reference.
pub async fn build_and_push(
    clients: &Clients,
    root: &Path,
    builds: &[Build<'_>],
    tag: impl FnOnce() -> anyhow::Result<String>,
    binaries: Option<&Path>,
) -> anyhow::Result<Vec<(String, String)>> {
    let docker = find()?;
    check_daemon(&docker)?;
    let tag = tag()?;
    login(clients, &docker).await?;
    let mut pushed = Vec::new();
    for build in builds {
        let service = build.service;
        let image = format!("{}:{tag}", build.repository_uri);
        let platform = platform(build.architecture);
        match binaries {
            Some(dir) => {
                provision_cli::say!("packaging {} as {image} ({platform})", dir.join(&service.binary).display());
                let context = stage_binary(dir, service)?;
                let built =
                    run(&docker, &prebuilt_build_args(&root.join("Dockerfile"), &context, platform, &image), None);
                let _ = std::fs::remove_dir_all(&context);
                built?;
            }
            None => {
                provision_cli::say!("building {image} ({platform})");
                run(&docker, &build_args(root, &service.binary, platform, &image), None)?;
            }
        }
        run(&docker, &push_args(&image), None)?;
        pushed.push((service.name.clone(), image));
    }
    Ok(pushed)
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
    run(docker, &login_args(registry, user), Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_targets_the_stack_platform_and_service_from_the_repository_dockerfile() {
        let args = build_args(
            Path::new("/src/app"),
            "ranking",
            platform("ARM64"),
            "1.dkr.ecr.r.amazonaws.com/app/ranking:abc",
        );
        assert_eq!(
            args,
            [
                "build",
                "--platform",
                "linux/arm64",
                "--build-arg",
                "SERVICE=ranking",
                "--file",
                "/src/app/Dockerfile",
                "--tag",
                "1.dkr.ecr.r.amazonaws.com/app/ranking:abc",
                "/src/app"
            ]
        );
        assert_eq!(platform("X86_64"), "linux/amd64");
    }

    #[test]
    fn a_prebuilt_binary_is_packaged_by_the_prebuilt_stage_from_its_own_context() {
        let args = prebuilt_build_args(Path::new("/src/app/Dockerfile"), Path::new("/tmp/ctx"), "linux/amd64", "r/x:1");
        assert_eq!(
            args,
            [
                "build",
                "--platform",
                "linux/amd64",
                "--target",
                "prebuilt",
                "--file",
                "/src/app/Dockerfile",
                "--tag",
                "r/x:1",
                "/tmp/ctx"
            ]
        );
        let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Dockerfile")).unwrap();
        assert!(dockerfile.contains("FROM runtime AS prebuilt\nCOPY service /usr/local/bin/service"), "{dockerfile}");
    }

    #[test]
    fn login_reads_the_password_from_stdin_and_push_pushes_the_tag() {
        let login = login_args("1.dkr.ecr.r.amazonaws.com", "AWS");
        assert_eq!(login, ["login", "--username", "AWS", "--password-stdin", "1.dkr.ecr.r.amazonaws.com"]);
        assert!(!login.iter().any(|arg| arg.contains("password=")), "no secret in argv");
        assert_eq!(push_args("repo:tag"), ["push", "repo:tag"]);
    }
}

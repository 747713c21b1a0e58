//! The docker command lines deploy runs: build for the stack's platform,
//! log in to ECR with a token, push. Kept as plain argument lists so they
//! can be checked without a daemon.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

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

/// Runs docker with `args`, its output going to ours; `input` is written
/// to its stdin.
pub fn run(docker: &Path, args: &[String], input: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(docker)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
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
    fn login_reads_the_password_from_stdin_and_push_pushes_the_tag() {
        let login = login_args("1.dkr.ecr.r.amazonaws.com", "AWS");
        assert_eq!(login, ["login", "--username", "AWS", "--password-stdin", "1.dkr.ecr.r.amazonaws.com"]);
        assert!(!login.iter().any(|arg| arg.contains("password=")), "no secret in argv");
        assert_eq!(push_args("repo:tag"), ["push", "repo:tag"]);
    }
}

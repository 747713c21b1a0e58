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

/// The task definition architecture (`X86_64`, `ARM64`) an ELF executable
/// runs on, from its header; `None` for anything else.
pub fn elf_architecture(header: &[u8]) -> Option<&'static str> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine, after e_ident (16 bytes) and e_type (2), in the file's
    // byte order (EI_DATA: 1 little-endian, 2 big-endian).
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    match machine {
        0x3e => Some("X86_64"),
        0xb7 => Some("ARM64"),
        _ => None,
    }
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
    fn the_architecture_of_a_binary_is_read_from_its_elf_header() {
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let expected = if cfg!(target_arch = "x86_64") { Some("X86_64") } else { Some("ARM64") };
        assert_eq!(elf_architecture(&this[..64]), expected);
        let mut arm = this[..64].to_vec();
        arm[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
        assert_eq!(elf_architecture(&arm), Some("ARM64"));
        assert_eq!(elf_architecture(b"#!/bin/sh\necho not a binary\n"), None);
    }

    #[test]
    fn login_reads_the_password_from_stdin_and_push_pushes_the_tag() {
        let login = login_args("1.dkr.ecr.r.amazonaws.com", "AWS");
        assert_eq!(login, ["login", "--username", "AWS", "--password-stdin", "1.dkr.ecr.r.amazonaws.com"]);
        assert!(!login.iter().any(|arg| arg.contains("password=")), "no secret in argv");
        assert_eq!(push_args("repo:tag"), ["push", "repo:tag"]);
    }
}

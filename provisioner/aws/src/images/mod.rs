//! The services' images: which binary goes in one and whether it fits the
//! service's tasks, how a build is tagged, and the two builders: our own
//! (the default: the binary added as one layer to a base pulled through the
//! OCI distribution API, no daemon) and Docker's ([`docker`],
//! `--builder docker`).
//!
//! Our builder: [`layer`] (the service's layer, reproducible), [`image`]
//! (config and manifest on top of the base), [`base`] (the base pulled for
//! an architecture, its blobs cached by digest), [`build`] (the two
//! together for a service), and the pushers: [`registry`] (any OCI
//! registry) and [`ecr`] (ECR's layer-upload calls), reporting in
//! [`progress`].

pub mod base;
pub mod build;
pub mod docker;
pub mod ecr;
pub mod image;
pub mod layer;
pub mod progress;
pub mod registry;

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::bail;
use stack_spec::Service;

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
            "--binaries: no {} binary in {} for service {}: build it (cargo build --release --locked -p {}), \
             or deploy without --binaries to have deploy build it",
            service.binary,
            dir.display(),
            service.name,
            service.package
        );
    };
    match elf_architecture(&header[..read]) {
        None => bail!("--binaries: {} is not a Linux executable (ELF, x86_64 or arm64)", path.display()),
        Some(built) if built != architecture => bail!(
            "--binaries: {} is built for {built} but service {}'s tasks run on {architecture} \
             ([service.aws] architecture): build it on or for that architecture, or deploy with --builder \
             docker, whose build compiles for the tasks' platform",
            path.display(),
            service.name
        ),
        Some(_) => Ok(()),
    }
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
}

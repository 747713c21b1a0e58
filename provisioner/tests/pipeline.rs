//! The CodeBuild buildspec parses as YAML and every phase refers to things
//! that exist here: the test script, the package and its feature, the
//! binary, its subcommands and flags, the stack file.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

const PROVISION: &str = env!("CARGO_BIN_EXE_provision");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn buildspec() -> Yaml {
    let text = std::fs::read_to_string(repo().join("pipeline/buildspec.yml")).expect("pipeline/buildspec.yml");
    YamlLoader::load_from_str(&text).expect("buildspec.yml is YAML").remove(0)
}

fn commands(spec: &Yaml, phase: &str) -> Vec<String> {
    spec["phases"][phase]["commands"]
        .as_vec()
        .unwrap_or_else(|| panic!("phase {phase} has a command list"))
        .iter()
        .map(|command| command.as_str().unwrap_or_else(|| panic!("{phase}: {command:?} is not a string")).to_owned())
        .collect()
}

#[test]
fn phases_install_test_and_deploy_in_order() {
    let spec = buildspec();
    assert!(matches!(&spec["version"], Yaml::Real(version) if version == "0.2"), "{:?}", spec["version"]);
    let phases: Vec<&str> = spec["phases"].as_hash().unwrap().keys().map(|key| key.as_str().unwrap()).collect();
    assert_eq!(phases, ["install", "pre_build", "build", "post_build"]);
    assert!(commands(&spec, "install").iter().any(|c| c.contains("rustup") && c.contains("RUST_TOOLCHAIN")));
    // The toolchain is the one the workspace asks for.
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap().parse().unwrap();
    let rust_version = manifest["workspace"]["package"]["rust-version"].as_str().unwrap();
    let toolchain = spec["env"]["variables"]["RUST_TOOLCHAIN"].as_str().unwrap();
    assert!(toolchain.starts_with(rust_version), "{toolchain} vs rust-version {rust_version}");
}

#[test]
fn the_tests_run_through_the_readme_command() {
    let spec = buildspec();
    let tests = commands(&spec, "pre_build");
    assert!(tests.iter().any(|c| c == "bash .ci/run"), "{tests:?}");
    assert!(repo().join(".ci/run").is_file());
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("bash .ci/run"), "the README's test command is the one CodeBuild runs");
}

#[test]
fn the_build_makes_provision_with_the_aws_feature() {
    let spec = buildspec();
    let build = commands(&spec, "build");
    let cargo = build.iter().find(|c| c.starts_with("cargo build")).expect("a cargo build command");
    let words: Vec<&str> = cargo.split_whitespace().collect();
    let after = |flag: &str| {
        words.iter().position(|w| *w == flag).map(|i| words[i + 1]).unwrap_or_else(|| panic!("{flag} in {cargo}"))
    };
    let manifest: toml::Table =
        std::fs::read_to_string(repo().join(after("--package")).join("Cargo.toml")).unwrap().parse().unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some(after("--package")));
    let feature = after("--features").strip_prefix("provisioner/").expect("the feature of provisioner");
    assert!(manifest["features"].as_table().unwrap().contains_key(feature));
    // The same build makes every service's binary, which deploy packages.
    let packages: Vec<&str> = words.windows(2).filter(|pair| pair[0] == "--package").map(|pair| pair[1]).collect();
    let stack = stack_spec::load(&repo().join("stack.toml")).unwrap();
    for service in &stack.services {
        assert!(packages.contains(&service.package.as_str()), "{} is not built: {cargo}", service.package);
    }
    let deploy = build.iter().find(|c| c.contains("provision deploy")).unwrap();
    assert!(deploy.contains("--binaries \"$CARGO_TARGET_DIR/release\""), "{deploy}");
    let bins = manifest["bin"].as_array().unwrap();
    assert!(bins.iter().any(|bin| bin["name"].as_str() == Some("provision")));
    assert!(words.contains(&"--release") && words.contains(&"--locked"));
}

#[test]
fn every_provision_command_is_accepted_by_the_binary() {
    let spec = buildspec();
    let target_dir = spec["env"]["variables"]["CARGO_TARGET_DIR"].as_str().unwrap();
    let mut checked = 0;
    for phase in ["build", "post_build"] {
        for command in commands(&spec, phase) {
            let Some((program, rest)) = command.split_once(' ') else { continue };
            if !program.ends_with("/release/provision") {
                continue;
            }
            assert_eq!(program, "$CARGO_TARGET_DIR/release/provision", "the binary cargo built");
            let args: Vec<String> = rest
                .split("||")
                .next()
                .unwrap()
                .split_whitespace()
                .map(|word| word.trim_matches('"').to_owned())
                .collect();
            if let Some(at) = args.iter().position(|arg| arg == "--stack") {
                assert!(repo().join(&args[at + 1]).is_file(), "{} does not exist", args[at + 1]);
            }
            // clap rejects an unknown subcommand or flag before it prints help.
            let output = std::process::Command::new(PROVISION).args(&args).arg("--help").output().unwrap();
            assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "deploy and status");
    let deploy = commands(&spec, "build").into_iter().find(|c| c.contains("provision deploy")).unwrap();
    assert!(deploy.contains("$CODEBUILD_RESOLVED_SOURCE_VERSION"), "the image is tagged with the source version");
    let cache: Vec<&str> = spec["cache"]["paths"].as_vec().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(
        cache.iter().any(|path| target_dir.starts_with(path.trim_end_matches("/**/*"))),
        "the target dir is cached: {cache:?}"
    );
    assert!(cache.iter().any(|path| path.contains(".cargo/registry")), "{cache:?}");
}

/// The package manager of a CodeBuild curated image's distribution, as
/// AWS documents them: `standard` is Ubuntu, `amazonlinux*` is Amazon
/// Linux (dnf on 2023, yum before).
fn package_manager_of(image: &str) -> &'static str {
    let name = image.trim_start_matches("aws/codebuild/");
    if name.starts_with("standard:") {
        "apt-get"
    } else if name.starts_with("amazonlinux") {
        "dnf"
    } else {
        panic!("{image}: not one of CodeBuild's curated Linux images this test knows")
    }
}

#[test]
fn the_default_build_image_has_the_package_manager_ci_run_installs_with() {
    let run = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let installs_with: Vec<&str> =
        ["apt-get install", "dnf install", "yum install"].into_iter().filter(|command| run.contains(command)).collect();
    assert_eq!(installs_with.len(), 1, ".ci/run installs with one package manager: {installs_with:?}");
    let manager = installs_with[0].split(' ').next().unwrap();
    let image = stack_spec::pipeline::DEFAULT_IMAGE;
    assert_eq!(package_manager_of(image), manager, "the pipeline's default image {image} and .ci/run");
    // Nor does the build need Docker: the project is not privileged.
    let text = std::fs::read_to_string(repo().join("pipeline/buildspec.yml")).unwrap();
    assert!(!text.contains("docker "), "the buildspec runs docker");
    let deploy = commands(&buildspec(), "build").into_iter().find(|c| c.contains("provision deploy")).unwrap();
    assert!(!deploy.contains("--builder docker"), "{deploy}");
}

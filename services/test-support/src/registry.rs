//! A real OCI registry: the CNCF Distribution registry (Debian's
//! `docker-registry`) on a free loopback port over plain HTTP, its storage
//! in a directory of its own, one per test; stopped when dropped.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use crate::{find_executable, free_addr, wait_listening};

/// A running registry owned by a test.
pub struct Registry {
    addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Registry {
    /// Starts a registry on a free loopback port, storing in a new
    /// temporary directory, and waits until it accepts connections.
    pub fn start() -> Self {
        let binary = find_executable(
            "DOCKER_REGISTRY",
            "docker-registry",
            "install Debian's docker-registry package (bash .ci/run does), or set DOCKER_REGISTRY",
        );
        let addr = free_addr();
        let dir = std::env::temp_dir().join(format!("registry-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(dir.join("storage")).expect("registry directory");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("registry config");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut registry = Self { addr, child, dir };
        wait_listening(&mut registry.child, addr, "docker-registry");
        registry
    }

    /// `127.0.0.1:PORT`, the registry part of its image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Pushes a base image for `binary`, as a distroless one is: the shared
    /// libraries it loads (as `ldd` lists them) and nothing else, with
    /// `BASE=1` in its environment. Built with umoci in `dir`, pushed with
    /// skopeo as `base:v1`; its reference pinned by digest.
    pub fn push_base(&self, binary: &Path, dir: &Path) -> String {
        self.push_base_as(binary, dir, "amd64", "v1")
    }

    /// [`Registry::push_base`] with its config saying `architecture`,
    /// pushed as `base:TAG`.
    pub fn push_base_as(&self, binary: &Path, dir: &Path, architecture: &str, tag: &str) -> String {
        let layout = dir.join(format!("base-layout-{tag}"));
        let bundle = dir.join(format!("base-bundle-{tag}"));
        let image = format!("{}:base", layout.display());
        let (umoci, skopeo) = (tool("umoci"), tool("skopeo"));
        run(&umoci, &["init", "--layout", &layout.display().to_string()]);
        run(&umoci, &["new", "--image", &image]);
        run(&umoci, &["unpack", "--rootless", "--image", &image, &bundle.display().to_string()]);
        let rootfs = bundle.join("rootfs");
        for library in shared_libraries(binary) {
            let inside = rootfs.join(library.strip_prefix("/").expect("ldd lists absolute paths"));
            std::fs::create_dir_all(inside.parent().expect("a file in a directory")).expect("a library directory");
            std::fs::copy(&library, &inside)
                .unwrap_or_else(|error| panic!("cannot copy {}: {error}", library.display()));
        }
        run(&umoci, &["repack", "--image", &image, &bundle.display().to_string()]);
        run(&umoci, &["config", "--image", &image, "--config.env", "BASE=1", "--architecture", architecture]);
        let target = format!("docker://{}/base:{tag}", self.host());
        run(&skopeo, &["copy", "--quiet", "--dest-tls-verify=false", &format!("oci:{image}"), &target]);
        let digest = run(&skopeo, &["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &target]);
        format!("{}/base@{}", self.host(), String::from_utf8_lossy(&digest.stdout).trim())
    }
}

/// A tool of Debian's the image tests use (`skopeo`, `umoci`): the path in
/// the variable of its name in capitals, else the one on PATH.
pub fn tool(name: &str) -> PathBuf {
    find_executable(&name.to_uppercase(), name, &format!("install Debian's {name} package (bash .ci/run does)"))
}

/// Runs `program` with `args` to the end; its output, or a panic saying
/// what it printed.
pub fn run(program: &Path, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The shared libraries `binary` loads, the loader among them.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let output = run(Path::new("ldd"), &[&binary.display().to_string()]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with('/')).map(PathBuf::from))
        .collect()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

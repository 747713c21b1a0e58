//! A `provision local` stack for a test, and ways to look at it.

#![allow(dead_code)]

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use contracts::rpc::{GetChampionRequest, rpc_client::RpcClient};
use discovery::{DiscoveryChannel, EndpointState};
use test_support::{Process, free_addr, workspace_binary};

pub const PROVISION: &str = env!("CARGO_BIN_EXE_provision");

pub struct LocalStack {
    pub process: Process,
    pub dns: SocketAddr,
    /// The stack's control socket.
    pub control: PathBuf,
    pub game_port: u16,
    pub stack: PathBuf,
    _dir: TempDir,
}

pub struct TempDir(PathBuf);

impl TempDir {
    /// Removes `path` and what is in it when dropped.
    pub fn new(path: PathBuf) -> Self {
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stack file of a test: the committed shape, on free ports, with short
/// TTLs and intervals so that a test sees changes quickly, and a 2 s drain
/// for game-server so that a test waits for no stop.
pub fn stack_file(game_port: u16, ranking_port: u16, extra: &str) -> String {
    stack_file_draining(game_port, ranking_port, extra, "DRAIN_SECS = \"2\"")
}

/// The stack file of a test with `game_env` as game-server's environment
/// (empty: the drain the TTL and connection age call for).
pub fn stack_file_draining(game_port: u16, ranking_port: u16, extra: &str, game_env: &str) -> String {
    format!(
        r#"
app = "test-stack"
namespace = "local"

[[service]]
name = "game-server"
port = {game_port}
count = 3
dns_ttl_secs = 1
depends_on = ["ranking"]
[service.env]
{game_env}
[service.health_check]
interval_secs = 1
timeout_secs = 1
retries = 2
start_period_secs = 5

[[service]]
name = "ranking"
port = {ranking_port}
count = 2
dns_ttl_secs = 1
[service.health_check]
interval_secs = 1
timeout_secs = 1
retries = 2
start_period_secs = 5
{extra}
"#
    )
}

/// Starts `provision local` for the stack file `stack` with the services
/// this test run built, on a free DNS address, and `args` and `envs`; its
/// runtime directory (where the app's lock and control socket are) is
/// `run` beside the stack file, so each test's stacks are apart and two
/// runs of one stack file meet. Returns the process, its DNS address and
/// its control socket.
pub fn launch_local(stack: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Process, SocketAddr, PathBuf) {
    // Built by this test run, beside the provision binary.
    let bin_dir = workspace_binary("game-server", "game-server").parent().unwrap().to_path_buf();
    workspace_binary("ranking", "ranking");
    let dns = free_addr();
    let dns_text = dns.to_string();
    let mut words = vec![
        "local",
        "--stack",
        stack.to_str().unwrap(),
        "--no-build",
        "--bin-dir",
        bin_dir.to_str().unwrap(),
        "--dns-addr",
        &dns_text,
    ];
    words.extend(args);
    let runtime = stack.parent().unwrap().join("run");
    let mut envs = envs.to_vec();
    envs.push(("XDG_RUNTIME_DIR", runtime.to_str().unwrap()));
    (Process::start(PROVISION, &words, &envs), dns, control_socket(stack))
}

/// Where `launch_local` puts the control socket of the app in `stack`.
pub fn control_socket(stack: &Path) -> PathBuf {
    let text = std::fs::read_to_string(stack).unwrap();
    let app = text
        .lines()
        .find_map(|line| line.strip_prefix("app = "))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .expect("the stack file names its app");
    stack.parent().unwrap().join("run").join("provision").join(format!("{app}.sock"))
}

/// Runs `provision local <request>` against the stack whose control socket
/// is `socket`: "ok" and what it printed, or "error" and what it said.
pub fn control_request(socket: &Path, request: &str) -> String {
    let output = std::process::Command::new(PROVISION)
        .arg("local")
        .args(request.split_whitespace())
        .args(["--control-socket", socket.to_str().unwrap()])
        .output()
        .expect("run provision local");
    if output.status.success() {
        format!("ok\n{}", String::from_utf8_lossy(&output.stdout))
    } else {
        format!("error: {}", String::from_utf8_lossy(&output.stderr))
    }
}

/// Polls the status of the stack `process` runs (control socket `socket`)
/// until `condition` holds, and returns that status table.
pub async fn wait_for_status(socket: &Path, process: &Process, condition: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(answer) = control_request(socket, "status").strip_prefix("ok\n")
            && condition(answer)
        {
            return answer.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(40), "stack never got there; output:\n{}", process.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl LocalStack {
    pub async fn start(extra: &str) -> Self {
        Self::start_with(extra, &[], &[], 2).await
    }

    /// A stack with `extra` in its stack file, `args` and `envs` for
    /// `provision local`, waiting for 3 game-server and `rankings` ranking
    /// replicas.
    pub async fn start_with(extra: &str, args: &[&str], envs: &[(&str, &str)], rankings: usize) -> Self {
        Self::start_from(|game_port, ranking_port| stack_file(game_port, ranking_port, extra), args, envs, rankings)
            .await
    }

    /// A stack from the file `stack` writes for the two ports it is given.
    pub async fn start_from(
        stack: impl Fn(u16, u16) -> String,
        args: &[&str],
        envs: &[(&str, &str)],
        rankings: usize,
    ) -> Self {
        Self::start_until(stack, args, envs, |status| {
            healthy_count(status, "game-server") == 3 && healthy_count(status, "ranking") == rankings
        })
        .await
    }

    /// A stack from the file `stack` writes, once its status satisfies
    /// `ready`.
    pub async fn start_until(
        stack: impl Fn(u16, u16) -> String,
        args: &[&str],
        envs: &[(&str, &str)],
        ready: impl Fn(&str) -> bool,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("provision-local-{}-{}", std::process::id(), free_addr().port()));
        std::fs::create_dir_all(&dir).unwrap();
        let (game_port, ranking_port) = (free_addr().port(), free_addr().port());
        let text = stack(game_port, ranking_port);
        let stack = dir.join("stack.toml");
        std::fs::write(&stack, text).unwrap();
        let (process, dns, control) = launch_local(&stack, args, envs);
        let stack = Self { process, dns, control, game_port, stack, _dir: TempDir(dir) };
        stack.wait_for(ready).await;
        stack
    }

    /// `provision local <request>` against this stack (see
    /// [`control_request`]).
    pub fn control(&self, request: &str) -> String {
        control_request(&self.control, request)
    }

    /// The status table, as `provision local status` prints it.
    pub fn status(&self) -> String {
        let answer = self.control("status");
        answer.strip_prefix("ok\n").unwrap_or_else(|| panic!("status failed: {answer}")).to_owned()
    }

    pub async fn wait_for(&self, condition: impl Fn(&str) -> bool) -> String {
        wait_for_status(&self.control, &self.process, condition).await
    }

    /// The addresses `dig` gets for `<service>.local` from the stack's DNS
    /// server: what any resolver would hand its client.
    pub fn dig(&self, service: &str) -> Vec<String> {
        let output = std::process::Command::new("dig")
            .args([
                "+short",
                "+tries=1",
                "+time=2",
                &format!("@{}", self.dns.ip()),
                "-p",
                &self.dns.port().to_string(),
                &format!("{service}.local"),
                "A",
            ])
            .output()
            .expect("dig runs (apt-get install dnsutils)");
        assert!(output.status.success(), "dig: {}", String::from_utf8_lossy(&output.stderr));
        let mut addresses: Vec<String> =
            String::from_utf8_lossy(&output.stdout).lines().map(|line| line.trim().to_owned()).collect();
        addresses.sort();
        addresses
    }

    pub fn target(&self, service: &str, port: u16) -> String {
        format!("dns://{}/{service}.local:{port}", self.dns)
    }

    pub async fn game_channel(&self) -> DiscoveryChannel {
        let channel =
            discovery::connect(&self.target("game-server", self.game_port)).await.expect("game-server.local resolves");
        wait_ready(&channel, 3).await;
        channel
    }
}

/// Healthy replicas of `service` in DNS, per the status table.
pub fn healthy_count(status: &str, service: &str) -> usize {
    status
        .lines()
        .filter(|line| line.starts_with(&format!("{service} ")) && line.contains(" healthy ") && line.contains(" yes "))
        .count()
}

/// The address column of `service`'s lines.
pub fn addresses(status: &str, service: &str) -> Vec<String> {
    status
        .lines()
        .filter(|line| line.starts_with(&format!("{service} ")))
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

pub async fn wait_ready(channel: &DiscoveryChannel, count: usize) {
    let started = Instant::now();
    while channel.endpoints().iter().filter(|status| status.state == EndpointState::Ready).count() < count {
        assert!(started.elapsed() < Duration::from_secs(20), "endpoints: {:?}", channel.endpoints());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Callers in a loop until stopped; returns the failures.
pub fn call_in_loop(
    channel: &DiscoveryChannel,
    callers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<tonic::Status>>> {
    (0..callers)
        .map(|_| {
            let (channel, stop) = (channel.clone(), Arc::clone(stop));
            tokio::spawn(async move {
                let mut client = RpcClient::new(channel);
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Err(status) = client.get_champion(GetChampionRequest { champion_id: 1 }).await {
                        failures.push(status);
                    }
                }
                failures
            })
        })
        .collect()
}

pub async fn collect(tasks: Vec<tokio::task::JoinHandle<Vec<tonic::Status>>>) -> Vec<tonic::Status> {
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    failures
}

/// A TLS-terminating HTTP/2 proxy in front of one address, as an ALB's
/// HTTPS listener is in front of a task: nghttpx (Debian's nghttp2-proxy),
/// with a certificate for `name` from a CA made for the test.
pub struct TlsFront {
    pub addr: SocketAddr,
    /// The CA's certificate, for `--ca-cert`.
    pub ca: PathBuf,
    _process: Process,
    _dir: TempDir,
}

impl TlsFront {
    /// Starts it towards `backend` (`IP:PORT`, plaintext HTTP/2).
    pub fn start(backend: &str, name: &str) -> Self {
        let dir =
            TempDir::new(std::env::temp_dir().join(format!("tls-front-{}-{}", std::process::id(), free_addr().port())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let openssl = |args: &[&str]| {
            let done = std::process::Command::new("openssl").args(args).current_dir(&dir.0).output().expect("openssl");
            assert!(done.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&done.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test CA"],
            ]
            .concat(),
        );
        openssl(
            &[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", &format!("/CN={name}")]].concat(),
        );
        std::fs::write(dir.0.join("leaf.ext"), format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"))
            .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        let nghttpx = test_support::find_executable(
            "NGHTTPX",
            "nghttpx",
            "install Debian's nghttp2-proxy (.ci/run does), or set NGHTTPX",
        );
        let addr = free_addr();
        let frontend = format!("--frontend={},{}", addr.ip(), addr.port());
        let backend = format!("--backend={};;proto=h2", backend.replace(':', ","));
        let (key, cert) = (dir.0.join("key.pem"), dir.0.join("cert.pem"));
        let process = Process::start(
            nghttpx,
            &[
                &frontend,
                &backend,
                "--workers=1",
                "--no-ocsp",
                "--conf=/dev/null",
                "--errorlog-file=/dev/stderr",
                key.to_str().unwrap(),
                cert.to_str().unwrap(),
            ],
            &[],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nghttpx did not listen on {addr}: {}", process.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { addr, ca: dir.0.join("ca.pem"), _process: process, _dir: dir }
    }
}

//! What every integration test in the workspace needs: free loopback ports,
//! workspace binaries started as real processes (and always reaped), and
//! waiting until a server reports SERVING; and the outside components the
//! AWS and image tests run against (moto, a registry, a fault proxy, the
//! model check of recorded requests).
//!
//! Everything here stays on 127.0.0.0/8: tests never reach another host.

use std::{
    io::{BufRead, BufReader, Read},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

mod fault_proxy;
mod grpcio;
mod json_schema;
mod locked_down;
mod moto;
mod redis;
mod registry;

pub use fault_proxy::FaultProxy;
pub use grpcio::{GrpcioClient, GrpcioReport, GrpcioSummary};
pub use json_schema::{assert_matches_schema, schema_path};
pub use locked_down::start_locked_down;
pub use moto::{MotoServer, validate_requests};
pub use redis::RedisServer;
pub use registry::{Registry, run, tool};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// How long a test waits for a freshly started server before giving up.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// A loopback address with a port nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    free_addr_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A free port on `ip`, which must be a local address (e.g. 127.0.0.2).
pub fn free_addr_on(ip: IpAddr) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind a free loopback port");
    listener.local_addr().expect("local address of a bound listener")
}

/// A port that is free on every one of `ips` right now, so that one replica
/// per loopback address can listen on the same port, as awsvpc tasks do.
pub fn free_port_on_all(ips: &[IpAddr]) -> u16 {
    for _ in 0..100 {
        let first = free_addr_on(ips[0]);
        let port = first.port();
        let listeners: Vec<_> = ips[1..].iter().map(|ip| TcpListener::bind(SocketAddr::new(*ip, port))).collect();
        if listeners.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// The loopback addresses 127.0.0.2, 127.0.0.3, ... (`count` of them): each
/// stands for one task's own IP.
pub fn loopback_ips(count: u8) -> Vec<IpAddr> {
    (0..count).map(|index| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index))).collect()
}

/// A tool a test needs: the path in the environment variable `variable`,
/// else `name` found on PATH; panics with `how_to_install` if neither.
pub fn find_executable(variable: &str, name: &str, how_to_install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found: {how_to_install}"))
}

/// The path of a workspace binary, building it first if this test run has
/// not (e.g. `cargo test -p discovery` does not build `game-server`).
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Test executables live in <target>/<profile>/deps/.
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe.parent().and_then(Path::parent).expect("target profile directory");
    let path = profile_dir.join(bin);
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--package", package, "--bin", bin]);
        // Benches run from the release profile and need its binaries.
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        let status = command.status().unwrap_or_else(|error| panic!("cannot run cargo to build {bin}: {error}"));
        assert!(status.success(), "building {bin} failed");
    }
    assert!(path.is_file(), "{} does not exist after building", path.display());
    path
}

/// Waits until `child`, started as `what`, accepts connections on `addr`;
/// panics if it exits first or takes longer than [`START_DEADLINE`].
pub(crate) fn wait_listening(child: &mut std::process::Child, addr: SocketAddr, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(started.elapsed() < START_DEADLINE, "{what} did not listen on {addr} within {START_DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command for `program` with the test's environment, except the
/// variables the services read, so that a developer's shell settings
/// cannot change a test.
pub fn service_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for var in [
        "GRPC_ADDR",
        "HEALTH_ADDR",
        "DNS_TTL_SECS",
        "MAX_CONNECTION_AGE_SECS",
        "MAX_CONNECTION_AGE_GRACE_SECS",
        "DRAIN_SECS",
        "SHUTDOWN_TIMEOUT_SECS",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

/// A child process that is killed and reaped when dropped, with its output
/// kept for assertions and printed to the test's stderr as it arrives.
pub struct Process {
    name: String,
    child: Child,
    output: Arc<Mutex<String>>,
    collectors: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `program` with `args` and the extra environment `envs`.
    /// The environment of the test is kept, except the variables the services
    /// read, so that a developer's shell settings cannot change a test.
    pub fn start(program: impl AsRef<Path>, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let program = program.as_ref();
        let name = program.file_name().map_or_else(|| "process".into(), |name| name.to_string_lossy().into_owned());
        let mut command = service_command(program);
        command.args(args).envs(envs.iter().copied());
        Self::spawn(name, command)
    }

    /// Starts `command` (its output piped and collected) as `name`.
    pub fn spawn(name: String, mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", command.get_program().to_string_lossy()));
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let collectors = vec![collect(&name, stdout, Arc::clone(&output)), collect(&name, stderr, Arc::clone(&output))];
        Self { name, child, output, collectors }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as ECS does to stop a task.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    /// Sends SIGKILL: the task dies without a word.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed: {}", std::io::Error::last_os_error());
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on our child") {
                // Its last lines may still be in the pipes: read them all
                // before anyone looks at the output.
                let drained = Instant::now();
                while !self.collectors.iter().all(|collector| collector.is_finished())
                    && drained.elapsed() < Duration::from_secs(5)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process printed so far, stdout and stderr interleaved.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!("[{}] killed at the end of the test", self.name);
        }
    }
}

fn collect(name: &str, stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            let mut output = into.lock().expect("output lock");
            output.push_str(&line);
            output.push('\n');
        }
    })
}

/// Asks `addr` once for the health of `service` ("" for the whole server).
pub async fn health_status(addr: SocketAddr, service: &str) -> Result<ServingStatus, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(1));
    let channel = endpoint.connect().await.map_err(|error| format!("connect {addr}: {error}"))?;
    let request = HealthCheckRequest { service: service.to_owned() };
    let response = HealthClient::new(channel).check(request).await.map_err(|status| status.to_string())?;
    Ok(response.into_inner().status())
}

/// Waits until `addr` reports the whole server SERVING, or panics with the
/// last error after [`START_DEADLINE`].
pub async fn wait_serving(addr: SocketAddr) {
    let started = Instant::now();
    loop {
        let last = match health_status(addr, "").await {
            Ok(ServingStatus::Serving) => return,
            Ok(other) => format!("{other:?}"),
            Err(error) => error,
        };
        if started.elapsed() > START_DEADLINE {
            panic!("{addr} not SERVING after {START_DEADLINE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

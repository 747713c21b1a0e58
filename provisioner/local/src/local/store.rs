//! A store of the stack, run locally: `redis-server` on the store's own
//! loopback address with append-only persistence in a data directory (only
//! its user may enter it), so that the boards outlive the run. It requires
//! a password made for each run, handed to its clients in their store URL
//! as on AWS and never printed, with protected mode on. Its health check
//! logs in and asks the server for its process id: a server that is not
//! the one this run started (another stack's on the same address) fails
//! it. Unhealthy, it is restarted, with backoff while it keeps failing; it
//! is the first member to start and the last to stop. It answers the
//! control endpoint like a service.

use std::{
    io::Read as _,
    net::SocketAddr,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::PathBuf,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{mpsc, oneshot},
};

use super::{
    replica::{Replica, ReplicaState},
    supervisor::{ReplicaStatus, Request, ServiceStatus},
};

/// How often the store is PINGed.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one PING may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed PINGs in a row that make a running store unhealthy.
const RETRIES: u32 = 3;
/// The longest wait before restarting a store that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long redis-server may take to write its append-only file and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A store's password: shown as `***` by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// 32 hex characters from the system's random source.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(Self(bytes.iter().map(|byte| format!("{byte:02x}")).collect()))
    }

    /// The password itself, for the URL and the server's configuration.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Everything fixed about how one store runs.
#[derive(Debug, Clone)]
pub struct StoreSetup {
    /// The store's name in the stack file.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `redis-server`.
    pub program: PathBuf,
    /// Where its append-only file lives between runs.
    pub data_dir: PathBuf,
    /// What its clients log in with.
    pub password: Password,
}

impl StoreSetup {
    /// The URL its clients get, password included (in their environment,
    /// which only their user can read, as ECS hands the secret on AWS).
    pub fn url(&self) -> String {
        format!("redis://:{}@{}", self.password.expose(), self.addr)
    }

    /// The configuration file with the password: in the data directory,
    /// readable by its user only, so the password is not on a command line
    /// that `ps` shows.
    pub fn config_file(&self) -> PathBuf {
        self.data_dir.join("provision.conf")
    }

    /// `redis-server`'s command line: the configuration file, this address
    /// only, append-only persistence (every write, fsync each second) and
    /// no snapshots, protected mode on.
    pub fn args(&self) -> Vec<String> {
        let words = [
            &self.config_file().display().to_string(),
            "--bind",
            &self.addr.ip().to_string(),
            "--port",
            &self.addr.port().to_string(),
            "--dir",
            &self.data_dir.display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        .map(str::to_owned);
        words.to_vec()
    }
}

/// Runs one store until asked to shut down.
struct StoreMember {
    setup: StoreSetup,
    process: Option<Replica>,
    seq: u32,
    restarts: u32,
    failure_streak: u32,
    next_start_at: Instant,
    next_check_at: Instant,
}

/// Starts the store; returns the handle to ask it things.
pub fn spawn(setup: StoreSetup) -> mpsc::Sender<Request> {
    let (requests_tx, requests) = mpsc::channel(16);
    let member = StoreMember {
        setup,
        process: None,
        seq: 0,
        restarts: 0,
        failure_streak: 0,
        next_start_at: Instant::now(),
        next_check_at: Instant::now(),
    };
    tokio::spawn(member.run(requests));
    requests_tx
}

impl StoreMember {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        loop {
            self.reap();
            if self.process.is_none() && Instant::now() >= self.next_start_at {
                self.start();
            }
            if self.process.is_some() && Instant::now() >= self.next_check_at {
                self.next_check_at = Instant::now() + CHECK_EVERY;
                self.check().await;
            }
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Status(reply)) => {
                        let _ = reply.send(self.status());
                    }
                    Some(Request::Kill(reply)) => {
                        let _ = reply.send(self.kill());
                    }
                    Some(Request::Restart(reply)) => {
                        let _ = reply.send(Err(format!(
                            "{} is a store: kill it to see it restarted (its data is kept)",
                            self.setup.name
                        )));
                    }
                    Some(Request::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    fn start(&mut self) {
        self.seq += 1;
        let setup = &self.setup;
        if let Err(error) = prepare(setup) {
            eprintln!("provision | {}: cannot prepare {}: {error}", setup.name, setup.data_dir.display());
            self.note_failure();
            return;
        }
        match Replica::start_process(&setup.name, "redis", self.seq, setup.addr, &setup.program, &setup.args(), &[]) {
            Ok(process) => {
                println!(
                    "provision | {}/redis starting on {} (pid {}, data in {})",
                    setup.name,
                    setup.addr,
                    process.pid,
                    setup.data_dir.display()
                );
                self.process = Some(process);
            }
            Err(error) => {
                eprintln!("provision | {}: cannot start {}: {error}", setup.name, setup.program.display());
                self.note_failure();
            }
        }
    }

    /// Notices a store process that exited, and schedules its restart.
    fn reap(&mut self) {
        let Some(process) = self.process.as_mut() else { return };
        if let Ok(Some(status)) = process.child.try_wait() {
            println!("provision | {}/redis stopped ({status}); restarting it", self.setup.name);
            self.process = None;
            self.restarts += 1;
            self.note_failure();
        }
    }

    fn note_failure(&mut self) {
        self.failure_streak += 1;
        let backoff = Duration::from_secs(1 << self.failure_streak.min(5)).min(MAX_BACKOFF);
        self.next_start_at = Instant::now() + backoff;
    }

    async fn check(&mut self) {
        let Some(pid) = self.process.as_ref().map(|process| process.pid) else { return };
        let outcome = ping(self.setup.addr, &self.setup.password, pid).await;
        let Some(process) = self.process.as_mut() else { return };
        match outcome {
            Ok(()) => {
                if process.state != ReplicaState::Healthy {
                    println!(
                        "provision | {}/redis healthy: pid {pid} answers on {} with this run's password",
                        self.setup.name, self.setup.addr
                    );
                }
                process.state = ReplicaState::Healthy;
                process.failures = 0;
                self.failure_streak = 0;
            }
            Err(why) => {
                process.failures += 1;
                let was_healthy = process.state == ReplicaState::Healthy;
                if was_healthy && process.failures >= RETRIES {
                    println!(
                        "provision | {}/redis unhealthy ({why}) after {RETRIES} checks: restarting it",
                        self.setup.name
                    );
                    process.signal(libc::SIGKILL);
                }
            }
        }
    }

    fn kill(&mut self) -> Result<String, String> {
        let process = self.process.as_ref().ok_or_else(|| format!("{} is not running", self.setup.name))?;
        process.signal(libc::SIGKILL);
        Ok(format!("killed {}/redis ({}, pid {})", self.setup.name, process.addr, process.pid))
    }

    fn status(&self) -> ServiceStatus {
        let replicas = self
            .process
            .iter()
            .map(|process| ReplicaStatus {
                service: self.setup.name.clone(),
                replica: "redis".to_owned(),
                addr: process.addr,
                state: process.state.to_string(),
                in_dns: None,
                pid: process.pid,
                uptime_secs: process.started.elapsed().as_secs(),
                restarts: self.restarts,
                utilization: None,
            })
            .collect();
        ServiceStatus { replicas, scaling: None }
    }

    /// SIGTERM: redis-server finishes its append-only file and exits;
    /// SIGKILL after the deadline.
    async fn shutdown(&mut self) {
        let Some(mut process) = self.process.take() else { return };
        process.signal(libc::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, process.child.wait()).await.is_err() {
            process.signal(libc::SIGKILL);
            let _ = process.child.wait().await;
        }
    }
}

/// The data directory (only its user may enter it) and the configuration
/// file with the password (only its user may read it).
fn prepare(setup: &StoreSetup) -> std::io::Result<()> {
    std::fs::create_dir_all(&setup.data_dir)?;
    std::fs::set_permissions(&setup.data_dir, std::fs::Permissions::from_mode(0o700))?;
    let path = setup.config_file();
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut file, format!("requirepass {}\n", setup.password.expose()).as_bytes())
}

/// Logs in and asks for the server's process id: `Ok` when it is `pid`,
/// the process this run started.
async fn ping(addr: SocketAddr, password: &Password, pid: u32) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|error| error.to_string())?;
        let auth = format!("AUTH {}\r\nINFO server\r\n", password.expose());
        stream.write_all(auth.as_bytes()).await.map_err(|error| error.to_string())?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await.map_err(|error| error.to_string())?;
            if read == 0 {
                return Err("the connection closed".to_owned());
            }
            answer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&answer);
            if !text.starts_with("+OK\r\n") {
                if text.contains("\r\n") {
                    // Not this run's server: another password, or none.
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    return Err(format!("refused this run's password ({line})"));
                }
                continue;
            }
            if let Some(line) = text.lines().find(|line| line.starts_with("process_id:")) {
                let found = line.trim_start_matches("process_id:").trim();
                return if found == pid.to_string() {
                    Ok(())
                } else {
                    Err(format!("is process {found}, not the {pid} this run started"))
                };
            }
            if text.matches("\r\n").count() > 2 && text.ends_with("\r\n\r\n") {
                return Err("answered INFO without a process_id".to_owned());
            }
        }
    };
    tokio::time::timeout(CHECK_TIMEOUT, exchange).await.unwrap_or_else(|_| Err("no answer within 1s".to_owned()))
}

/// `redis-server` on PATH, if there is one.
pub fn find_redis_server() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// Where a store's data lives unless `--data-dir` says otherwise: under
/// `$XDG_DATA_HOME` (or `~/.local/share`), outside the work tree.
pub fn default_data_root() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("share")));
    base.unwrap_or_else(std::env::temp_dir).join("provision")
}

/// Waits (up to 10 s) until the store answers PING, so that its clients
/// find it when they start; a store that takes longer is reported, and its
/// clients retry.
pub async fn wait_healthy(name: &str, store: &mpsc::Sender<Request>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (tx, rx) = oneshot::channel();
        if store.send(Request::Status(tx)).await.is_err() {
            return;
        }
        if rx.await.is_ok_and(|status| status.replicas.iter().any(|replica| replica.state == "healthy")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("provision | {name}: not answering PING after 10 s; starting its clients anyway");
}

/// Stops the store; never fails: a closed channel just means the store has
/// stopped already.
pub async fn stop(store: &mpsc::Sender<Request>) {
    let (tx, rx) = oneshot::channel();
    if store.send(Request::Shutdown(tx)).await.is_ok() {
        let _ = rx.await;
    }
}

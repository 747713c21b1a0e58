//! One replica: a service binary started as a child process on its own
//! loopback address, its output shown with a `service/replica` prefix.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Instant};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
};

use super::{
    redis_log::RedisLog,
    usage::{Reading, Utilization},
};

/// Where a replica is in its life, as ECS would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaState {
    /// Started, not yet healthy: not in DNS.
    Starting,
    /// Passed its health check: in DNS.
    Healthy,
    /// Being stopped (SIGTERM sent): out of DNS, draining.
    Draining,
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplicaState::Starting => "starting",
            ReplicaState::Healthy => "healthy",
            ReplicaState::Draining => "draining",
        })
    }
}

/// A running replica.
pub struct Replica {
    /// Sequence number within its service; names and addresses come from it.
    pub seq: u32,
    /// `replica-<seq>`: the DNS instance id and log prefix.
    pub name: String,
    /// Where it serves.
    pub addr: SocketAddr,
    /// The process.
    pub child: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it is in its life.
    pub state: ReplicaState,
    /// When it was started.
    pub started: Instant,
    /// Failed health checks in a row (after the start period).
    pub failures: u32,
    /// When a draining replica gets SIGKILL.
    pub kill_at: Option<Instant>,
    /// Its last reading from the OS, to measure CPU from.
    pub last_reading: Option<Reading>,
    /// Its utilization between its last two readings.
    pub utilization: Option<Utilization>,
}

impl Replica {
    /// Starts `program serve` for `service` as replica `seq` on `addr` with
    /// `env` (plus `GRPC_ADDR`).
    pub fn start(
        service: &str,
        seq: u32,
        addr: SocketAddr,
        program: &Path,
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        Self::start_process(service, &format!("replica-{seq}"), seq, addr, program, &["serve".to_owned()], env)
    }

    /// Starts `program` with `args` as `member` of `service`, its output
    /// prefixed `service/member`. The child dies with this process, so a
    /// crashed runner leaves no orphans.
    pub fn start_process(
        service: &str,
        member: &str,
        seq: u32,
        addr: SocketAddr,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        super::port_holder::check_free(addr)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("GRPC_ADDR")
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .env("GRPC_ADDR", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C in the terminal reaches the
            // runner only, which then stops replicas in order.
            .process_group(0);
        // SAFETY: prctl only sets a flag of the new process; it allocates
        // nothing and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        let name = member.to_owned();
        let prefix = format!("{service}/{name}");
        let fold = member == "redis";
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward(prefix.clone(), stdout, fold));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward(prefix, stderr, fold));
        }
        Ok(Self {
            seq,
            name,
            addr,
            child,
            pid,
            state: ReplicaState::Starting,
            started: Instant::now(),
            failures: 0,
            kill_at: None,
            last_reading: None,
            utilization: None,
        })
    }

    /// Sends `signal` to the process, if it still runs.
    pub fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill(2) with our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

/// Prints each line of `stream` behind `prefix`; a store's through
/// [`RedisLog`] (`fold`).
async fn forward(prefix: String, stream: impl AsyncRead + Unpin, fold: bool) {
    let mut lines = BufReader::new(stream).lines();
    let mut redis = fold.then(RedisLog::default);
    while let Ok(Some(line)) = lines.next_line().await {
        let shown = match &mut redis {
            Some(redis) => redis.line(&line),
            None => Some(line),
        };
        if let Some(shown) = shown {
            println!("{prefix} | {shown}");
        }
    }
}

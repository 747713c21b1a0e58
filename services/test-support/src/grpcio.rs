//! A gRPC client nobody here wrote, as a test's other party: Python grpcio
//! (grpc-core, its own c-ares DNS resolver, `round_robin`) running
//! `grpcio_client.py` beside this file, calling one method in a loop.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::find_executable;

/// One of the client's periodic lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcioReport {
    /// Milliseconds since the client started calling.
    pub millis: u64,
    /// Calls that succeeded so far.
    pub ok: u64,
    /// Calls that failed so far.
    pub failed: u64,
    /// The servers the client holds connections to now (round_robin calls
    /// every one of them).
    pub peers: Vec<String>,
    /// Distinct connections seen so far.
    pub connections_seen: u64,
}

/// The client's last line, after it was told to stop.
#[derive(Debug, Clone)]
pub struct GrpcioSummary {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Up to 20 failures, each with its time and status.
    pub failures: Vec<String>,
}

/// A running grpcio client, stopped when dropped.
pub struct GrpcioClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    /// Set when the script's output ends: it exited (or failed to start).
    ended: Arc<AtomicBool>,
}

/// The Python with grpcio: `GRPCIO_PYTHON`, else `python3` on PATH.
fn python() -> PathBuf {
    find_executable(
        "GRPCIO_PYTHON",
        "python3",
        "`pip install grpcio` into a virtualenv and set GRPCIO_PYTHON to its python (bash .ci/run does both)",
    )
}

fn number(value: &Value, field: &str) -> u64 {
    value[field].as_u64().unwrap_or_default()
}

impl GrpcioClient {
    /// Starts calling `target` (e.g. `dns://127.0.0.1:8600/game-server.local:5000`)
    /// with `args` for the script (`--method`, `--threads`, `--every`).
    pub fn start(target: &str, args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grpcio_client.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(target)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", script.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let collected = Arc::clone(&lines);
        let ended = Arc::new(AtomicBool::new(false));
        let output_ended = Arc::clone(&ended);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => collected.lock().unwrap().push(value),
                    Err(_) => eprintln!("[grpcio] {line}"),
                }
            }
            output_ended.store(true, Ordering::SeqCst);
        });
        let errors = child.stderr.take().expect("piped stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines().map_while(Result::ok) {
                eprintln!("[grpcio] {line}");
                collected.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdin = child.stdin.take();
        Self { child, stdin, lines, stderr, ended }
    }

    /// Every periodic report so far.
    pub fn reports(&self) -> Vec<GrpcioReport> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.get("done").is_none())
            .map(|line| GrpcioReport {
                millis: (line["t"].as_f64().unwrap_or_default() * 1000.0) as u64,
                ok: number(line, "ok"),
                failed: number(line, "failed"),
                peers: line["peers"]
                    .as_array()
                    .map(|peers| peers.iter().filter_map(|peer| peer.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                connections_seen: number(line, "connections_seen"),
            })
            .collect()
    }

    /// Waits until a report satisfies `condition`, for at most `limit`;
    /// returns it, or `None` with the reports so far printed.
    pub async fn wait_for(&self, limit: Duration, condition: impl Fn(&GrpcioReport) -> bool) -> Option<GrpcioReport> {
        let started = Instant::now();
        let mut checked = 0;
        while started.elapsed() < limit {
            let ended = self.ended.load(Ordering::SeqCst);
            let reports = self.reports();
            if let Some(found) = reports[checked..].iter().find(|report| condition(report)) {
                return Some(found.clone());
            }
            checked = reports.len();
            if ended {
                eprintln!("[grpcio] the client exited: {}", self.stderr.lock().unwrap());
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("[grpcio] no report met the condition in {limit:?}: {:?}", self.reports().last());
        None
    }

    /// Waits until the client has made `calls` successful calls, so that a
    /// test starts its disturbance on a client that is really calling.
    pub async fn wait_calling(&self, calls: u64) {
        let started = self.wait_for(Duration::from_secs(20), |report| report.ok >= calls).await;
        assert!(
            started.is_some(),
            "the grpcio client never got {calls} calls through: {}",
            self.stderr.lock().unwrap()
        );
    }

    /// Tells the client to stop and returns its totals.
    pub async fn stop(mut self) -> GrpcioSummary {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let started = Instant::now();
        loop {
            if let Some(done) = self.lines.lock().unwrap().iter().find(|line| line.get("done").is_some()) {
                return GrpcioSummary {
                    ok: number(done, "ok"),
                    failed: number(done, "failed"),
                    failures: done["failures"]
                        .as_array()
                        .map(|failures| failures.iter().filter_map(|line| line.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                };
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the grpcio client did not stop: {}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for GrpcioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

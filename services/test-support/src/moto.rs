//! A real AWS API emulator: moto's server (PyPI `moto[server]`) on a free
//! loopback port, one per test so tests never see each other's resources.

use std::{
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{START_DEADLINE, find_executable, free_addr};

/// A running moto server owned by a test; stopped when dropped.
pub struct MotoServer {
    addr: SocketAddr,
    child: Child,
}

/// The `moto_server` executable: `MOTO_SERVER`, else the one on PATH.
fn moto_server_binary() -> PathBuf {
    find_executable(
        "MOTO_SERVER",
        "moto_server",
        "`pip install 'moto[server]'` and set MOTO_SERVER to its path (bash .ci/run does both)",
    )
}

impl MotoServer {
    /// Starts a server on a free loopback port and waits until it accepts
    /// connections.
    pub fn start() -> Self {
        let addr = free_addr();
        let child = Command::new(moto_server_binary())
            .args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start moto_server: {error}"));
        let mut server = Self { addr, child };
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited at start: {status}");
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "moto_server did not listen on {addr} within {START_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The endpoint URL to give AWS clients (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real `redis-server` on a free loopback port, stopped and started at
//! will, with nothing saved to disk.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::free_addr;

/// A running (or stopped) redis-server owned by a test.
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
}

/// The redis-server binary: `REDIS_SERVER`, else the one on PATH.
fn redis_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("redis-server not found: `apt-get install redis-server` (bash .ci/run does it)"))
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        let mut server = Self { addr: free_addr(), child: None };
        server.restart();
        server
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://ADDR`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(redis_server_binary())
            .args(["--bind", &self.addr.ip().to_string(), "--port", &self.addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start redis-server: {error}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(self.addr) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut reply = [0u8; 7];
                    if stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n" {
                        return;
                    }
                }
            }
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server on {} did not start", self.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

//! A real `redis-server` on a free loopback port, stopped and started at
//! will, with nothing saved to disk.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{find_executable, free_addr};

/// A running (or stopped) redis-server owned by a test.
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
    extra_args: Vec<String>,
    state_dir: Option<PathBuf>,
}

/// The redis-server binary: `REDIS_SERVER`, else the one on PATH.
fn redis_server_binary() -> PathBuf {
    find_executable("REDIS_SERVER", "redis-server", "`apt-get install redis-server` (bash .ci/run does it)")
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments, e.g.
    /// `["--requirepass", "secret"]`.
    pub fn start_with(args: &[&str]) -> Self {
        let addr = free_addr();
        // Its own directory: a replica's sync writes an RDB file even with
        // saving off, which would land in the test's working directory.
        let dir = std::env::temp_dir().join(format!("redis-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(&dir).expect("redis state directory");
        let mut extra_args: Vec<String> = vec!["--dir".into(), dir.display().to_string()];
        extra_args.extend(args.iter().map(|arg| (*arg).to_owned()));
        let mut server = Self { addr, child: None, extra_args, state_dir: Some(dir) };
        server.restart();
        server
    }

    /// Starts a one-node Redis Cluster owning every slot: what a
    /// `redis+cluster://` client needs, on one process.
    pub fn start_cluster() -> Self {
        let addr = free_addr();
        let dir = std::env::temp_dir().join(format!("redis-cluster-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(&dir).expect("cluster state directory");
        let extra_args = vec![
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            dir.join("nodes.conf").display().to_string(),
        ];
        let mut server = Self { addr, child: None, extra_args, state_dir: Some(dir) };
        server.restart();
        let reply = server.command("CLUSTER ADDSLOTSRANGE 0 16383");
        assert!(reply.starts_with("+OK"), "CLUSTER ADDSLOTSRANGE: {reply}");
        let started = Instant::now();
        while !server.command("CLUSTER INFO").contains("cluster_state:ok") {
            assert!(started.elapsed() < Duration::from_secs(10), "the one-node cluster never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Sends one inline command and returns what came back first.
    fn command(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr).expect("connect to redis-server");
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        let mut reply = vec![0u8; 4096];
        let read = stream.read(&mut reply).unwrap_or(0);
        String::from_utf8_lossy(&reply[..read]).into_owned()
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
            .args(&self.extra_args)
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
                    // A server with a password answers NOAUTH: it is up all the same.
                    if stream.read_exact(&mut reply).is_ok()
                        && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
                    {
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
        if let Some(dir) = &self.state_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

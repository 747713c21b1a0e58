//! A proxy in front of moto's server that fails every Nth distinct request
//! once, as AWS does when busy (throttling in each protocol's shape, a 500,
//! a reset connection), or pages every list and describe call small:
//! `fault_proxy.py` beside this crate, run with the venv's Python. What
//! retries and paging must survive, and moto never does.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::{free_addr, moto::python, wait_listening};

/// A running fault proxy; stopped when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://` URL) that fails the first
    /// attempt of every `every`th distinct request.
    pub fn start(upstream: &str, every: u32) -> Self {
        Self::spawn(upstream, every, 0)
    }

    /// Starts a proxy to `upstream` that sets the page size of every call
    /// that pages (botocore's paginator model) to `page` items, or the
    /// model's minimum.
    pub fn paging(upstream: &str, page: u32) -> Self {
        Self::spawn(upstream, 0, page)
    }

    /// Starts a proxy to `upstream` that refuses with 403 every request of
    /// `method` whose path matches `path` (a Python regular expression),
    /// as AWS refuses a caller without permission.
    pub fn denying(upstream: &str, method: &str, path: &str) -> Self {
        Self::spawn_with(upstream, 0, 0, &format!("{method} {path}"), std::time::Duration::ZERO)
    }

    /// Starts a proxy to `upstream` that holds every request for `delay`
    /// before passing it on: a command through it runs long enough for a
    /// test to act while it does.
    pub fn slow(upstream: &str, delay: std::time::Duration) -> Self {
        Self::spawn_with(upstream, 0, 0, "", delay)
    }

    /// Starts a proxy to `upstream` that answers the first `times` requests
    /// whose body matches `body` (a Python regular expression) with
    /// `status`, `content_type` and `answer`, and passes on the rest.
    pub fn answering(upstream: &str, body: &str, status: u16, content_type: &str, answer: &str, times: u32) -> Self {
        let rule = serde_json::json!([
            {"body": body, "status": status, "type": content_type, "answer": answer, "times": times}
        ]);
        Self::spawn_full(upstream, 0, 0, "", std::time::Duration::ZERO, &rule.to_string())
    }

    fn spawn(upstream: &str, every: u32, page: u32) -> Self {
        Self::spawn_with(upstream, every, page, "", std::time::Duration::ZERO)
    }

    fn spawn_with(upstream: &str, every: u32, page: u32, deny: &str, delay: std::time::Duration) -> Self {
        Self::spawn_full(upstream, every, page, deny, delay, "")
    }

    fn spawn_full(upstream: &str, every: u32, page: u32, deny: &str, delay: std::time::Duration, canned: &str) -> Self {
        let addr = free_addr();
        let log = std::env::temp_dir().join(format!("fault-proxy-{}-{}", std::process::id(), addr.port()));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fault_proxy.py");
        let child = Command::new(python())
            .arg(&script)
            .args([&addr.port().to_string(), upstream, &every.to_string()])
            .arg(&log)
            .arg(page.to_string())
            .arg(deny)
            .arg(delay.as_millis().to_string())
            .arg(canned)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", script.display()));
        let mut proxy = Self { addr, child, log };
        wait_listening(&mut proxy.child, addr, "fault_proxy.py");
        proxy
    }

    /// The endpoint URL to give AWS clients instead of moto's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The faults injected so far, a line each: kind, method, path, target.
    pub fn faults(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

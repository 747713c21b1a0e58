//! A real AWS API emulator: moto's server (PyPI `moto[server]`) on a free
//! loopback port, one per test so tests never see each other's resources.
//! It runs through `moto_server.py` beside this crate, which puts two
//! services' timestamps in AWS's wire format and records one request at a
//! time (see that file), and changes nothing else.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::{find_executable, free_addr, wait_listening};

/// A running moto server owned by a test; stopped when dropped. It records
/// every request it gets (moto's recorder, into a file of its own), so a
/// test can read what was sent, not only what it did.
pub struct MotoServer {
    addr: SocketAddr,
    child: Child,
    recording: PathBuf,
}

/// The `moto_server` executable: `MOTO_SERVER`, else the one on PATH.
fn moto_server_binary() -> PathBuf {
    find_executable(
        "MOTO_SERVER",
        "moto_server",
        "`pip install 'moto[server]'` and set MOTO_SERVER to its path (bash .ci/run does both)",
    )
}

/// The Python of the venv moto is installed in.
pub(crate) fn python() -> PathBuf {
    moto_server_binary().with_file_name("python3")
}

impl MotoServer {
    /// Starts a server on a free loopback port and waits until it accepts
    /// connections.
    pub fn start() -> Self {
        let addr = free_addr();
        let recording = std::env::temp_dir().join(format!("moto-recording-{}-{}", std::process::id(), addr.port()));
        let python = python();
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .env("MOTO_ENABLE_RECORDING", "true")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {} {}: {error}", python.display(), launcher.display()));
        let mut server = Self { addr, child, recording };
        wait_listening(&mut server.child, addr, "moto_server");
        server
    }

    /// The endpoint URL to give AWS clients (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request the server got so far, oldest first: `method`, `url`,
    /// `headers` and `body` (text) as moto's recorder wrote them.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut entry: serde_json::Value = serde_json::from_str(line).expect("a recorder line is JSON");
                if entry["body_encoded"] == true {
                    use base64::Engine as _;
                    let body = base64::engine::general_purpose::STANDARD
                        .decode(entry["body"].as_str().unwrap_or_default())
                        .expect("the recorder's base64");
                    entry["body"] = serde_json::Value::String(String::from_utf8_lossy(&body).into_owned());
                }
                entry
            })
            .collect()
    }

    /// The JSON bodies of the requests for `target` (a JSON protocol's
    /// `X-Amz-Target`, e.g. `AmazonEC2ContainerServiceV20141113.UpdateService`)
    /// from the `skip`th request on.
    pub fn json_requests(&self, target: &str, skip: usize) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .skip(skip)
            .filter(|entry| {
                entry["headers"].as_object().is_some_and(|headers| {
                    headers.iter().any(|(name, value)| name.eq_ignore_ascii_case("x-amz-target") && value == target)
                })
            })
            .map(|entry| serde_json::from_str(entry["body"].as_str().unwrap_or_default()).expect("a JSON body"))
            .collect()
    }

    /// Calls `operation` (boto3's name, e.g. `describe_vpcs`) of AWS
    /// `service` on this server with boto3, the AWS SDK for Python that moto
    /// is installed with, `params` as its keyword arguments; the answer as
    /// JSON, without its ResponseMetadata (a streamed body read as text). Fixtures and checks made by a
    /// client nobody here wrote, which costs the tests no Rust SDK crate to
    /// compile. Panics with boto3's error when the call fails.
    pub fn boto3(&self, service: &str, operation: &str, params: serde_json::Value) -> serde_json::Value {
        const CALL: &str = r#"
import json, sys, boto3
service, operation, endpoint, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
answer = getattr(client, operation)(**params)
answer.pop("ResponseMetadata", None)
for key, value in list(answer.items()):
    if hasattr(value, "read"):
        answer[key] = value.read().decode("utf-8", "replace")
print(json.dumps(answer, default=str))
"#;
        let python = python();
        let output = Command::new(&python)
            .args(["-c", CALL, service, operation, &self.url(), &params.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {} for boto3: {error}", python.display()));
        assert!(
            output.status.success(),
            "boto3 {service}.{operation}({params}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!("boto3 {service}.{operation} printed no JSON ({error}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept for validate_requests.py when MOTO_RECORDINGS_DIR asks
        // (`.ci/run` checks every request against AWS's models after the
        // tests), else removed.
        if let Some(dir) = std::env::var_os("MOTO_RECORDINGS_DIR")
            && let Some(name) = self.recording.file_name()
            && std::fs::create_dir_all(&dir).is_ok()
            && std::fs::rename(&self.recording, std::path::Path::new(&dir).join(name)).is_ok()
        {
            return;
        }
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// Checks the requests of moto recordings against AWS's service models
/// (`validate_requests.py` beside this crate): whether none breaks its
/// model, and what the check printed.
pub fn validate_requests(recordings: &[PathBuf]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("validate_requests.py");
    let output = Command::new(python())
        .arg(&script)
        .args(recordings)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// One CloudWatch Logs request of more than 8 KiB (the size at which
    /// moto's recorder writes an entry in two writes), sent over a plain
    /// HTTP/1.1 connection; its answer read to the end.
    fn send_large_request(server: &MotoServer, name: &str) {
        let body = serde_json::json!({ "logGroupName": name, "tags": { "filler": "x".repeat(20_000) } }).to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: Logs_20140328.CreateLogGroup\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\n\r\n{body}",
            server.addr,
            body.len()
        );
        let mut connection = std::net::TcpStream::connect(server.addr).expect("connect to moto");
        connection.write_all(request.as_bytes()).expect("send to moto");
        let mut answer = Vec::new();
        connection.read_to_end(&mut answer).expect("moto's answer");
        assert!(answer.starts_with(b"HTTP/1.1 200"), "moto refused {name}: {}", String::from_utf8_lossy(&answer));
    }

    /// moto's own recorder interleaves concurrent entries of over 8 KiB
    /// (10 to 18 of 240 lines unreadable with these eight threads); the launcher
    /// records one at a time, so every line is one whole request.
    #[test]
    fn concurrent_large_requests_are_recorded_one_line_each() {
        let server = MotoServer::start();
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let server = &server;
                scope.spawn(move || {
                    for request in 0..30 {
                        send_large_request(server, &format!("group-{thread}-{request}"));
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&server.recording).expect("the recording");
        let unreadable = text.lines().filter(|line| serde_json::from_str::<serde_json::Value>(line).is_err()).count();
        assert_eq!(unreadable, 0, "{unreadable} of {} recorded lines are not one JSON request", text.lines().count());
        assert_eq!(server.requests().len(), 240);
    }
}

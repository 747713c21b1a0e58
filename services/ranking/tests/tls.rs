//! `rediss://` for real: a `redis-server` with TLS (a CA and certificates
//! made here) and a password, as ElastiCache runs with encryption in transit
//! and AUTH. The ranking service checks the certificate's chain and name;
//! an untrusted certificate, a name that does not match or a wrong password
//! is one clear line at start-up and UNAVAILABLE on calls, and the password
//! is never in its output.

use std::{net::SocketAddr, path::PathBuf};

use contracts::ranking::v1::{Board, GetTopRequest, Period, SubmitScoreRequest, ranking_client::RankingClient};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use test_support::{Process, RedisServer, free_addr, wait_serving};
use tonic::{Code, transport::Channel};

const RANKING: &str = env!("CARGO_BIN_EXE_ranking");
const PASSWORD: &str = "s3cret-Token-0123456789abcdef";

/// A CA, and a server certificate it signed for `names`, written as PEM
/// files in a fresh directory.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make(names: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("ranking-tls-{}-{}", std::process::id(), free_addr().port()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "ranking test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>()).unwrap();
        let server_cert = server.signed_by(&server_key, &Issuer::new(ca, ca_key)).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-server with a password, TLS on `tls_port` (and its plain port,
/// which the test harness uses to see it is up).
fn tls_server(certificates: &Certificates, tls_port: u16) -> RedisServer {
    let port = tls_port.to_string();
    let (cert, key, ca) =
        (certificates.path("server.pem"), certificates.path("server.key"), certificates.path("ca.pem"));
    RedisServer::start_with(&[
        "--requirepass",
        PASSWORD,
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ])
}

async fn ranking(store: &str, ca_file: Option<&str>) -> (Process, RankingClient<Channel>) {
    let addr: SocketAddr = free_addr();
    let addr_flag = addr.to_string();
    let mut args = vec!["serve", "--grpc-addr", &addr_flag, "--store", store, "--store-timeout-ms", "2000"];
    if let Some(ca_file) = ca_file {
        args.extend(["--store-ca-file", ca_file]);
    }
    let process = Process::start(RANKING, &args, &[]);
    wait_serving(addr).await;
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    (process, RankingClient::new(channel))
}

fn submit(user: &str, score: i64) -> SubmitScoreRequest {
    SubmitScoreRequest { user_id: user.into(), score, ..Default::default() }
}

fn daily() -> Option<Board> {
    Some(Board { period: Period::Daily as i32, date: String::new() })
}

#[tokio::test]
async fn a_trusted_certificate_for_the_name_and_the_right_password_serve_the_boards() {
    let certificates = Certificates::make(&["localhost", "127.0.0.1"]);
    let tls_port = free_addr().port();
    let _server = tls_server(&certificates, tls_port);
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{tls_port}");
    let (process, mut client) = ranking(&url, Some(&certificates.path("ca.pem"))).await;
    client.submit_score(submit("alice", 300)).await.expect("SubmitScore over TLS");
    let top = client.get_top(GetTopRequest { board: daily(), limit: 10 }).await.unwrap().into_inner();
    assert_eq!(top.entries.iter().map(|entry| entry.user_id.as_str()).collect::<Vec<_>>(), ["alice"]);
    let output = process.output();
    assert!(output.contains("ranking store ready"), "{output}");
    assert!(!output.contains(PASSWORD), "the password is never logged: {output}");
}

/// Starts ranking against `url`, and checks that start-up said `because`
/// in one line and calls fail with UNAVAILABLE, never showing the password.
async fn refused(url: &str, ca_file: Option<&str>, because: &str) {
    let (process, mut client) = ranking(url, ca_file).await;
    let status = client.submit_score(submit("alice", 1)).await.expect_err("no store");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains(PASSWORD), "{status:?}");
    let output = process.output();
    let line = output
        .lines()
        .find(|line| line.contains("ranking store not answering"))
        .unwrap_or_else(|| panic!("no start-up line: {output}"));
    assert!(line.contains(because), "{line}");
    assert!(!output.contains(PASSWORD), "the password is never logged: {output}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let certificates = Certificates::make(&["127.0.0.1"]);
    let tls_port = free_addr().port();
    let _server = tls_server(&certificates, tls_port);
    // The system's roots do not know this CA.
    refused(&format!("rediss://:{PASSWORD}@127.0.0.1:{tls_port}"), None, "UnknownIssuer").await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let certificates = Certificates::make(&["cache.other.example"]);
    let tls_port = free_addr().port();
    let _server = tls_server(&certificates, tls_port);
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{tls_port}");
    refused(&url, Some(&certificates.path("ca.pem")), "not valid for name").await;
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let certificates = Certificates::make(&["127.0.0.1"]);
    let tls_port = free_addr().port();
    let _server = tls_server(&certificates, tls_port);
    let url = format!("rediss://:wrong-{PASSWORD}@127.0.0.1:{tls_port}");
    refused(&url, Some(&certificates.path("ca.pem")), "Password authentication failed").await;
}

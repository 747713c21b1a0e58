//! The `health` subcommand: one gRPC health check, answered by the exit code.
//!
//! ECS runs it inside the container on every health-check interval, so it
//! starts a single-threaded runtime, makes one call under one deadline, and
//! prints one line saying what it found.

use std::{fmt, net::SocketAddr, time::Duration};

use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::cli::HealthArgs;

/// What one probe found. Only `Serving` is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The server reports SERVING for the service asked about.
    Serving,
    /// The server answered with another status (NOT_SERVING while draining).
    NotServing(String),
    /// The server does not know the service name.
    UnknownService,
    /// No answer: refused, reset, or not in time.
    Unreachable(String),
}

impl ProbeOutcome {
    /// The process exit code for this outcome: 0 only when serving.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProbeOutcome::Serving => 0,
            _ => 1,
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Serving => write!(f, "SERVING"),
            ProbeOutcome::NotServing(status) => write!(f, "{status}"),
            ProbeOutcome::UnknownService => write!(f, "SERVICE_UNKNOWN"),
            ProbeOutcome::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// Runs the `health` subcommand: prints one line and returns the exit code.
pub fn run(args: &HealthArgs) -> u8 {
    let addr = args.target();
    let deadline = Duration::from_millis(args.timeout);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("health: cannot start the async runtime: {error}");
            return 1;
        }
    };
    let outcome = runtime.block_on(check(addr, &args.service, deadline));
    let service = if args.service.is_empty() { "server" } else { args.service.as_str() };
    let line = format!("{outcome} ({service} at {addr})");
    if outcome == ProbeOutcome::Serving {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    outcome.exit_code()
}

/// Asks `addr` once whether `service` is serving, within `deadline` for
/// connecting and answering together.
pub async fn check(addr: SocketAddr, service: &str, deadline: Duration) -> ProbeOutcome {
    match tokio::time::timeout(deadline, ask(addr, service)).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::Unreachable(format!("no answer within {} ms", deadline.as_millis())),
    }
}

async fn ask(addr: SocketAddr, service: &str) -> ProbeOutcome {
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => endpoint,
        Err(error) => return ProbeOutcome::Unreachable(format!("bad address: {error}")),
    };
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => return ProbeOutcome::Unreachable(root_cause(&error)),
    };
    let request = HealthCheckRequest { service: service.to_owned() };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => match response.into_inner().status() {
            ServingStatus::Serving => ProbeOutcome::Serving,
            other => ProbeOutcome::NotServing(other.as_str_name().to_owned()),
        },
        Err(status) if status.code() == Code::NotFound => ProbeOutcome::UnknownService,
        Err(status) => ProbeOutcome::Unreachable(format!("{:?}: {}", status.code(), status.message())),
    }
}

/// The innermost error message: "connection refused" says more than
/// "transport error".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

//! Asking a running `provision local`: `provision local status|restart|kill`
//! and `provision bench --chaos` speak the control service on the stack's
//! Unix socket (or on TCP, where the stack was told to serve it).

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use contracts::control::v1::{ServiceRequest, StatusRequest, StatusResponse, control_client::ControlClient};
use tonic::transport::{Channel, Endpoint};

/// How long connecting may take: the socket is local, so a slow connect
/// means the stack is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer may take: a rolling restart waits for every
/// replacement to be healthy.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a running stack takes control requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlTarget {
    /// Its Unix socket (the default).
    Socket(PathBuf),
    /// A TCP address, when it was started with `--control-addr`.
    Tcp(SocketAddr),
}

impl fmt::Display for ControlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(path) => write!(f, "{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// The control service of one running stack.
pub struct Control {
    client: ControlClient<Channel>,
    target: ControlTarget,
}

impl Control {
    /// Connects to the stack at `target`, or says it is not running.
    pub async fn connect(target: &ControlTarget) -> Result<Self, String> {
        let not_running = |why: &dyn fmt::Display| {
            format!(
                "cannot reach `provision local` at {target} ({why}): is it running? Start it with `provision local`"
            )
        };
        if let ControlTarget::Socket(path) = target
            && !path.exists()
        {
            return Err(not_running(&"no such socket"));
        }
        let endpoint = match target {
            ControlTarget::Socket(path) => Endpoint::try_from(format!("unix://{}", path.display())),
            ControlTarget::Tcp(addr) => Endpoint::try_from(format!("http://{addr}")),
        }
        .map_err(|error| not_running(&error))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(ANSWER_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|error| not_running(&source_of(&error)))?;
        Ok(Self { client: ControlClient::new(channel), target: target.clone() })
    }

    /// Every replica and each service's summary.
    pub async fn status(&mut self) -> Result<StatusResponse, String> {
        self.client
            .status(StatusRequest {})
            .await
            .map(|response| response.into_inner())
            .map_err(|status| self.why(status))
    }

    /// Rolls every replica of `service`; answers once the roll is done.
    pub async fn restart(&mut self, service: &str) -> Result<String, String> {
        let request = ServiceRequest { service: service.to_owned() };
        self.client
            .restart(request)
            .await
            .map(|response| response.into_inner().message)
            .map_err(|status| self.why(status))
    }

    /// SIGKILLs one healthy replica of `service`.
    pub async fn kill(&mut self, service: &str) -> Result<String, String> {
        let request = ServiceRequest { service: service.to_owned() };
        self.client.kill(request).await.map(|response| response.into_inner().message).map_err(|status| self.why(status))
    }

    fn why(&self, status: tonic::Status) -> String {
        match status.code() {
            tonic::Code::NotFound | tonic::Code::FailedPrecondition => status.message().to_owned(),
            _ => format!("`provision local` at {} did not answer: {}", self.target, status.message()),
        }
    }
}

/// The innermost cause of a transport error: tonic's own text is only
/// "transport error".
fn source_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The socket of the stack `app` in this user's runtime directory, beside
/// its instance lock.
pub fn socket_path(app: &str) -> PathBuf {
    super::super::instance::runtime_dir().join(format!("{app}.sock"))
}

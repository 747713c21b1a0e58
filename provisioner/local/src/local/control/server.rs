//! The control service as the runner serves it: each request handed to the
//! supervisor of its service, on a Unix socket that only the user who
//! started the stack may connect to (and, when asked, on TCP too).

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use contracts::control::v1::{
    ActionResponse, Replica, Scaling, ScalingTarget, ServiceRequest, ServiceSummary, StatusRequest, StatusResponse,
    control_server::{Control, ControlServer},
};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_stream::{
    StreamExt as _,
    wrappers::{TcpListenerStream, UnixListenerStream},
};
use tonic::{Request as GrpcRequest, Response, Status};

use super::super::supervisor::{Request, ServiceStatus};
use crate::spec::autoscaling::Metric;

/// The supervisors by service name, in stack order, the stores last.
pub type Supervisors = Vec<(String, mpsc::Sender<Request>)>;

/// The longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What the control service answers from.
#[derive(Clone)]
pub struct ControlService {
    app: String,
    dns_addr: SocketAddr,
    supervisors: Supervisors,
}

impl ControlService {
    /// The service for the stack `app`, whose DNS answers on `dns_addr`.
    pub fn new(app: &str, dns_addr: SocketAddr, supervisors: Supervisors) -> Self {
        Self { app: app.to_owned(), dns_addr, supervisors }
    }

    fn supervisor(&self, service: &str) -> Result<&mpsc::Sender<Request>, Status> {
        self.supervisors.iter().find(|(name, _)| name == service).map(|(_, supervisor)| supervisor).ok_or_else(|| {
            let names: Vec<&str> = self.supervisors.iter().map(|(name, _)| name.as_str()).collect();
            Status::not_found(format!("no service {service:?} in the stack (services: {})", names.join(", ")))
        })
    }

    async fn act(
        &self,
        service: &str,
        request: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Request,
    ) -> Result<Response<ActionResponse>, Status> {
        let (tx, rx) = oneshot::channel();
        self.supervisor(service)?.send(request(tx)).await.map_err(|_| stopping())?;
        match rx.await.map_err(|_| stopping())? {
            Ok(message) => Ok(Response::new(ActionResponse { message })),
            Err(why) => Err(Status::failed_precondition(why)),
        }
    }
}

fn stopping() -> Status {
    Status::unavailable("the stack is stopping")
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn status(&self, _: GrpcRequest<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let mut response = StatusResponse {
            app: self.app.clone(),
            pid: std::process::id(),
            dns_addr: self.dns_addr.to_string(),
            ..Default::default()
        };
        for (name, supervisor) in &self.supervisors {
            let (tx, rx) = oneshot::channel();
            supervisor.send(Request::Status(tx)).await.map_err(|_| stopping())?;
            let status = rx.await.map_err(|_| stopping())?;
            add(&mut response, name, status);
        }
        Ok(Response::new(response))
    }

    async fn restart(&self, request: GrpcRequest<ServiceRequest>) -> Result<Response<ActionResponse>, Status> {
        self.act(&request.into_inner().service, Request::Restart).await
    }

    async fn kill(&self, request: GrpcRequest<ServiceRequest>) -> Result<Response<ActionResponse>, Status> {
        self.act(&request.into_inner().service, Request::Kill).await
    }
}

/// Adds one service's replicas and summary to the answer.
fn add(response: &mut StatusResponse, name: &str, status: ServiceStatus) {
    let replacements = status.replicas.iter().map(|replica| replica.restarts).max().unwrap_or(0);
    for replica in status.replicas {
        response.replicas.push(Replica {
            service: replica.service,
            replica: replica.replica,
            address: replica.addr.to_string(),
            state: replica.state,
            in_dns: replica.in_dns,
            pid: replica.pid,
            uptime_secs: replica.uptime_secs,
            cpu_percent: replica.utilization.map(|utilization| utilization.cpu),
            memory_percent: replica.utilization.map(|utilization| utilization.memory),
        });
    }
    let scaling = status.scaling.map(|scaling| Scaling {
        min: scaling.min,
        max: scaling.max,
        desired: scaling.desired,
        targets: scaling
            .targets
            .iter()
            .map(|(metric, target)| ScalingTarget {
                metric: metric.to_string(),
                target_percent: *target,
                measured_percent: scaling.utilization.map(|utilization| match metric {
                    Metric::Cpu => utilization.cpu,
                    Metric::Memory => utilization.memory,
                }),
            })
            .collect(),
        last_change: scaling.last_change.as_ref().map(|(change, _)| change.clone()).unwrap_or_default(),
        last_change_secs_ago: scaling.last_change.map(|(_, ago)| ago.as_secs()).unwrap_or_default(),
    });
    response.services.push(ServiceSummary { name: name.to_owned(), replacements, scaling });
}

/// The control socket while the stack runs: removed when dropped.
pub struct Endpoint {
    path: PathBuf,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves `service` on the Unix socket `path` (mode 0600, in a directory
/// only this user may enter, which the caller made), and on `tcp` when
/// given. The caller holds the app's instance lock, so a socket file left
/// at `path` is a crashed run's and is replaced.
pub async fn serve(path: &Path, tcp: Option<SocketAddr>, service: ControlService) -> anyhow::Result<Endpoint> {
    let length = path.as_os_str().len();
    if length > MAX_SOCKET_PATH {
        bail!(
            "the control socket {} is {length} bytes long, more than the {MAX_SOCKET_PATH} a Unix socket's address \
             holds: set XDG_RUNTIME_DIR to a shorter directory",
            path.display()
        );
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot remove the old socket {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot make the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    let mut endpoint = Endpoint { path: path.to_owned(), tasks: Vec::new() };

    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let incoming = UnixListenerStream::new(listener).filter(move |connection| match connection {
        Ok(stream) => match stream.peer_cred() {
            Ok(peer) if peer.uid() == uid => true,
            Ok(peer) => {
                println!("provision | control socket: refused a connection from uid {} (only uid {uid})", peer.uid());
                false
            }
            Err(error) => {
                println!("provision | control socket: refused a connection whose uid is unknown ({error})");
                false
            }
        },
        Err(_) => true,
    });
    let router = routes(service);
    endpoint.tasks.push(tokio::spawn({
        let router = router.clone();
        async move {
            if let Err(error) = router.serve_with_incoming(incoming).await {
                println!("provision | control socket stopped: {error}");
            }
        }
    }));
    if let Some(addr) = tcp {
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("cannot take control requests on {addr}"))?;
        endpoint.tasks.push(tokio::spawn(async move {
            if let Err(error) = router.serve_with_incoming(TcpListenerStream::new(listener)).await {
                println!("provision | control on {addr} stopped: {error}");
            }
        }));
    }
    Ok(endpoint)
}

/// The control service and its reflection (so that `grpcurl -unix` lists
/// and calls it without the `.proto` file).
fn routes(service: ControlService) -> tonic::transport::server::Router {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::CONTROL_FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the control descriptor set is compiled in");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::CONTROL_FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the control descriptor set is compiled in");
    tonic::transport::Server::builder()
        .add_service(ControlServer::new(service))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
}

//! One endpoint (a task's address): its connection, its health as the
//! endpoint itself reports it, and the counters the bench and status read.

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use futures_util::FutureExt;
use tokio::sync::Notify;
use tonic::{
    Code,
    transport::{Channel, Endpoint as TonicEndpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{balancer::Balancer, options::Options};

/// Where an endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointState {
    /// Opening its connection.
    Connecting,
    /// Connected and serving: calls may pick it.
    Ready,
    /// Connected, but its health says NOT_SERVING (draining): no new calls.
    NotServing,
    /// Its connection failed; it is retried with backoff.
    Failed(String),
}

impl fmt::Display for EndpointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointState::Connecting => write!(f, "connecting"),
            EndpointState::Ready => write!(f, "ready"),
            EndpointState::NotServing => write!(f, "not serving"),
            EndpointState::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// What a channel tells about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The endpoint's address.
    pub addr: SocketAddr,
    /// Its state now.
    pub state: EndpointState,
    /// Calls sent to it since it appeared (retries count again).
    pub picks: u64,
    /// Calls to it that failed in transport.
    pub failures: u64,
    /// Calls to it not finished yet: until the answer's end with
    /// least-requests balancing, until the answer's headers with round robin.
    pub in_flight: usize,
}

/// The shared half of an endpoint: read by calls, written by its task.
#[derive(Debug)]
pub struct Endpoint {
    pub(crate) addr: SocketAddr,
    state: Mutex<(EndpointState, Option<Channel>)>,
    pub(crate) picks: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
    /// The address as a header value, made once: every answer carries it.
    pub(crate) served_by: tonic::codegen::http::HeaderValue,
    /// Counts connections, so that a failure seen on an old connection
    /// cannot end a new one.
    generation: AtomicU64,
    connection_lost: Notify,
    /// Whether it was ever ready: the first time is news, a reconnect after
    /// a connection aged out is not.
    was_ready: std::sync::atomic::AtomicBool,
}

/// A connection to a ready endpoint, as a call uses it.
#[derive(Debug, Clone)]
pub(crate) struct ReadyConnection {
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) channel: Channel,
    pub(crate) generation: u64,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            addr,
            state: Mutex::new((EndpointState::Connecting, None)),
            picks: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            served_by: tonic::codegen::http::HeaderValue::from_str(&addr.to_string())
                .expect("a socket address is a valid header value"),
            generation: AtomicU64::new(0),
            connection_lost: Notify::new(),
            was_ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The connection to use when the endpoint is ready.
    pub(crate) fn ready_connection(self: &Arc<Self>) -> Option<ReadyConnection> {
        let state = self.state.lock().expect("endpoint lock");
        match &*state {
            (EndpointState::Ready, Some(channel)) => Some(ReadyConnection {
                endpoint: Arc::clone(self),
                channel: channel.clone(),
                generation: self.generation.load(Ordering::SeqCst),
            }),
            _ => None,
        }
    }

    fn is_ready(&self) -> bool {
        self.state.lock().expect("endpoint lock").0 == EndpointState::Ready
    }

    pub(crate) fn status(&self) -> EndpointStatus {
        EndpointStatus {
            addr: self.addr,
            state: self.state.lock().expect("endpoint lock").0.clone(),
            picks: self.picks.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Sets the state; returns whether it changed.
    fn set_state(&self, state: EndpointState, channel: Option<Channel>) -> bool {
        let mut current = self.state.lock().expect("endpoint lock");
        let changed = current.0 != state;
        if changed {
            match &state {
                EndpointState::Connecting => tracing::debug!(addr = %self.addr, "endpoint connecting"),
                EndpointState::Ready if self.was_ready.swap(true, Ordering::Relaxed) => {
                    tracing::debug!(addr = %self.addr, "endpoint ready again on a new connection")
                }
                EndpointState::Ready => tracing::info!(addr = %self.addr, "endpoint ready"),
                EndpointState::NotServing => tracing::info!(addr = %self.addr, "endpoint not serving: no new calls"),
                EndpointState::Failed(reason) => tracing::info!(addr = %self.addr, %reason, "endpoint failed"),
            }
        }
        *current = (state, channel);
        changed
    }

    /// A call saw connection `generation` break: stop picking this endpoint
    /// now and let its task reconnect. Returns whether the state changed.
    pub(crate) fn report_transport_failure(&self, generation: u64, reason: &str) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.generation.load(Ordering::SeqCst) != generation {
            return false;
        }
        let changed = self.is_ready() && self.set_state(EndpointState::Failed(reason.to_owned()), None);
        self.connection_lost.notify_one();
        changed
    }
}

/// Keeps one endpoint connected and its state current until aborted.
pub(crate) async fn run(endpoint: Arc<Endpoint>, balancer: Arc<Balancer>, options: Arc<Options>) {
    let mut backoff = options.reconnect_backoff.start();
    loop {
        if endpoint.set_state(EndpointState::Connecting, None) {
            balancer.publish();
        }
        match connect(endpoint.addr, &options).await {
            Ok(channel) => {
                backoff.reset();
                endpoint.generation.fetch_add(1, Ordering::SeqCst);
                // A failure reported against an older connection is stale.
                let _ = endpoint.connection_lost.notified().now_or_never();
                if options.health_check {
                    if watch_health(&endpoint, &balancer, channel, &options).await == WatchEnd::ByServer {
                        // The server aged the connection out (or is closing
                        // it): a new one is expected at once, not after a
                        // backoff that would leave the endpoint idle.
                        balancer.publish();
                        continue;
                    }
                } else {
                    endpoint.set_state(EndpointState::Ready, Some(channel));
                    balancer.publish();
                    endpoint.connection_lost.notified().await;
                }
            }
            Err(reason) => {
                endpoint.set_state(EndpointState::Failed(reason), None);
                balancer.publish();
                // The address may be gone from DNS: look again now.
                balancer.request_reresolve();
            }
        }
        // Whatever ended the connection, no call may pick it any more.
        if endpoint.is_ready() {
            endpoint.set_state(EndpointState::Failed("connection lost".into()), None);
        }
        balancer.publish();
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn connect(addr: SocketAddr, options: &Options) -> Result<Channel, String> {
    let endpoint = TonicEndpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| error.to_string())?
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(options.keepalive_interval)
        .keep_alive_timeout(options.keepalive_timeout)
        .keep_alive_while_idle(true);
    match tokio::time::timeout(options.connect_timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(error)) => Err(crate::retry::root_cause(&error)),
        Err(_) => Err(format!("no connection within {:?}", options.connect_timeout)),
    }
}

/// How a health watch ended.
#[derive(Debug, PartialEq, Eq)]
enum WatchEnd {
    /// The server ended the stream with OK: it sent GOAWAY on this
    /// connection (connection age) or is about to close it.
    ByServer,
    /// The call failed or the connection broke.
    Lost,
}

/// Follows the endpoint's `grpc.health.v1.Health/Watch` stream: SERVING makes
/// it ready, anything else takes it out of rotation. Returns when the
/// connection is lost or the server ends the watch.
async fn watch_health(endpoint: &Endpoint, balancer: &Balancer, channel: Channel, options: &Options) -> WatchEnd {
    let request = HealthCheckRequest { service: options.health_service.clone() };
    let mut client = HealthClient::new(channel.clone());
    let mut stream = tokio::select! {
        response = client.watch(request) => match response {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::Unimplemented => {
                // A server without the health service: trust the connection,
                // as grpc-go does.
                tracing::warn!(addr = %endpoint.addr, "endpoint has no health service; treating it as serving");
                endpoint.set_state(EndpointState::Ready, Some(channel));
                balancer.publish();
                endpoint.connection_lost.notified().await;
                return WatchEnd::Lost;
            }
            Err(status) => {
                endpoint.set_state(EndpointState::Failed(format!("health watch: {}", status.message())), None);
                return WatchEnd::Lost;
            }
        },
        _ = endpoint.connection_lost.notified() => return WatchEnd::Lost,
    };
    loop {
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(update)) => {
                    let state = if update.status() == ServingStatus::Serving {
                        EndpointState::Ready
                    } else {
                        EndpointState::NotServing
                    };
                    let draining = state == EndpointState::NotServing;
                    let keep = (state == EndpointState::Ready).then(|| channel.clone());
                    if endpoint.set_state(state, keep) {
                        balancer.publish();
                        // A draining task is usually being replaced: look
                        // for its successor now rather than at the TTL.
                        if draining {
                            balancer.request_reresolve();
                        }
                    }
                }
                // The server ended the watch: this connection takes no new
                // calls (GOAWAY); the endpoint may well take them on a new one.
                Ok(None) => {
                    endpoint.set_state(EndpointState::Connecting, None);
                    return WatchEnd::ByServer;
                }
                Err(status) => {
                    endpoint.set_state(EndpointState::Failed(format!("health watch: {}", status.message())), None);
                    return WatchEnd::Lost;
                }
            },
            _ = endpoint.connection_lost.notified() => return WatchEnd::Lost,
        }
    }
}

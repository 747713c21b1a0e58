//! Client-side service discovery and load balancing for tonic, over DNS as
//! AWS Cloud Map publishes it.
//!
//! On ECS with Cloud Map, `ranking.local` answers with one A record per
//! healthy task. gRPC keeps long-lived HTTP/2 connections, so resolving once
//! puts all traffic on one task, never sees new tasks and keeps sending to
//! stopped ones. This crate does what grpc-go's `dns` resolver,
//! `round_robin` balancer and client-side health checking do:
//!
//! - re-resolves the name as its TTL runs out and at once when a connection
//!   fails, keeping the last good answer through DNS failures;
//! - keeps one HTTP/2 connection per endpoint and spreads calls over every
//!   ready one (round robin, or least requests);
//! - ejects an endpoint whose connection fails and retries it with backoff,
//!   and takes one out of rotation while its health watch says NOT_SERVING;
//! - retries a call that never reached a server once on another endpoint;
//! - waits at most the call's deadline for a ready endpoint, then fails with
//!   UNAVAILABLE naming the target.
//!
//! ```no_run
//! # async fn example() -> Result<(), discovery::Error> {
//! let channel = discovery::connect("dns:///ranking.local:5000").await?;
//! // let mut client = RankingClient::new(channel);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `target`, `options`: what to resolve and how the channel behaves.
//! - `resolve`, `refresh`: DNS lookups and re-resolving on TTL and failures.
//! - `endpoint`, `balancer`, `channel`: one connection per address, the
//!   pick among the ready ones, and the tower service tonic calls.
//! - `call`, `retry`, `replay`, `backoff`: one call's deadline, its retry
//!   on another endpoint (with the request body kept to send again), and
//!   reconnect backoff.

mod backoff;
mod balancer;
mod call;
mod channel;
mod endpoint;
mod options;
mod refresh;
mod replay;
mod resolve;
mod retry;
mod target;

use std::{sync::Arc, time::Duration};

use tokio::sync::oneshot;

pub use backoff::BackoffConfig;
pub use channel::DiscoveryChannel;
pub use endpoint::{EndpointState, EndpointStatus};
pub use options::Balance;
pub use resolve::{LookupError, RecordKind};
pub use retry::RetryPolicy;
pub use target::{Target, TargetError};

use crate::{balancer::Balancer, options::Options, resolve::DnsLookup};

/// The response header (and status metadata key) naming the endpoint that
/// answered a call, e.g. `127.0.1.3:5000`.
pub const SERVED_BY_HEADER: &str = "x-discovery-endpoint";

/// Why a channel could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target string is malformed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The first lookup said the name does not exist, or the resolver could
    /// not be set up.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// A channel to `target` with the default options, once the first lookup
/// has answered (NXDOMAIN is an error).
pub async fn connect(target: &str) -> Result<DiscoveryChannel, Error> {
    Builder::new(target)?.connect().await
}

/// Options for a channel, then [`Builder::connect`] or
/// [`Builder::connect_lazy`].
#[derive(Debug, Clone)]
pub struct Builder {
    target: Target,
    options: Options,
}

impl Builder {
    /// Starts from the defaults for `target` (see [`Target`] for the syntax).
    pub fn new(target: &str) -> Result<Self, TargetError> {
        Ok(Self { target: target.parse()?, options: Options::default() })
    }

    /// How long a call waits for a ready endpoint when it has no deadline of
    /// its own (default 5 s). A call with a deadline waits that long.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.options.deadline = deadline;
        self
    }

    /// How calls are spread (default round robin).
    pub fn balance(mut self, balance: Balance) -> Self {
        self.options.balance = balance;
        self
    }

    /// Whether to watch each endpoint's `grpc.health.v1.Health` and skip it
    /// while it is not SERVING (default on: a draining task stops getting
    /// calls before DNS drops it).
    pub fn health_check(mut self, enabled: bool) -> Self {
        self.options.health_check = enabled;
        self
    }

    /// The service name the health watch asks about (default "", the whole
    /// server).
    pub fn health_service(mut self, service: impl Into<String>) -> Self {
        self.options.health_service = service.into();
        self
    }

    /// How long opening a connection may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// HTTP/2 keepalive pings: how often, and how long to wait for the answer
    /// before the connection counts as dead (default 20 s and 10 s).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.options.keepalive_interval = interval;
        self.options.keepalive_timeout = timeout;
        self
    }

    /// Bounds on the re-resolution interval that record TTLs set (default
    /// 1 s to 60 s).
    pub fn ttl_bounds(mut self, floor: Duration, ceiling: Duration) -> Self {
        self.options.ttl_floor = floor;
        self.options.ttl_ceiling = ceiling.max(floor);
        self
    }

    /// Which DNS records name the instances (default A/AAAA).
    pub fn records(mut self, kind: RecordKind) -> Self {
        self.options.records = kind;
        self
    }

    /// Backoff between reconnects to a failed endpoint.
    pub fn reconnect_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.options.reconnect_backoff = backoff;
        self
    }

    /// Backoff between lookups while DNS fails.
    pub fn dns_error_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.options.dns_error_backoff = backoff;
        self
    }

    /// How long a name that DNS does not have yet (a dependency still
    /// starting: Cloud Map registers a task once it is healthy) is waited
    /// for at debug level before one warning says so. Default 30 s.
    pub fn quiet_start(mut self, quiet: Duration) -> Self {
        self.options.quiet_start = quiet;
        self
    }

    /// Retries beyond the transparent one, for idempotent methods.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    /// The largest request body kept for a retry (default 64 KiB); larger
    /// requests are sent once.
    pub fn max_replay_bytes(mut self, bytes: usize) -> Self {
        self.options.max_replay_bytes = bytes;
        self
    }

    /// Starts the channel and waits for the first lookup: a name that does
    /// not exist (NXDOMAIN) is an error; a DNS server that does not answer
    /// is not (lookups go on in the background, and calls wait for them).
    pub async fn connect(self) -> Result<DiscoveryChannel, Error> {
        let (first_tx, first_rx) = oneshot::channel();
        let channel = self.start(Some(first_tx))?;
        match first_rx.await {
            Ok(Err(error @ LookupError::NxDomain { .. })) => Err(error.into()),
            _ => Ok(channel),
        }
    }

    /// Starts the channel without waiting: for a dependency that may come up
    /// later than its client. Lookup problems show in calls' UNAVAILABLE
    /// messages and in the logs.
    pub fn connect_lazy(self) -> Result<DiscoveryChannel, Error> {
        self.start(None)
    }

    fn start(self, first: Option<oneshot::Sender<Result<(), LookupError>>>) -> Result<DiscoveryChannel, Error> {
        let options = Arc::new(self.options);
        let balancer = Balancer::new(self.target.to_string(), Arc::clone(&options));
        let resolver = match &self.target {
            Target::Fixed(addrs) => {
                balancer.update(addrs);
                if let Some(first) = first {
                    let _ = first.send(Ok(()));
                }
                None
            }
            Target::Dns { server, host, port } => {
                let lookup = DnsLookup::new(*server, host, *port, options.records)?;
                Some(tokio::spawn(refresh::run(lookup, Arc::clone(&balancer), Arc::clone(&options), first)))
            }
        };
        Ok(DiscoveryChannel::new(balancer, options, resolver))
    }
}

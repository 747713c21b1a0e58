//! Every knob of a discovery channel, with the defaults a service inside a
//! VPC wants.

use std::time::Duration;

use crate::{backoff::BackoffConfig, resolve::RecordKind, retry::RetryPolicy};

/// How a call picks among the ready endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Each ready endpoint in turn (grpc-go's `round_robin`).
    #[default]
    RoundRobin,
    /// The ready endpoint with the fewest calls in flight; ties in turn.
    LeastRequests,
}

/// The options of a channel; see [`crate::Builder`] for what each means.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) deadline: Duration,
    pub(crate) balance: Balance,
    pub(crate) health_check: bool,
    pub(crate) health_service: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) ttl_floor: Duration,
    pub(crate) ttl_ceiling: Duration,
    pub(crate) records: RecordKind,
    pub(crate) reconnect_backoff: BackoffConfig,
    pub(crate) dns_error_backoff: BackoffConfig,
    pub(crate) min_reresolve_interval: Duration,
    pub(crate) quiet_start: Duration,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) max_replay_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            balance: Balance::RoundRobin,
            health_check: true,
            health_service: String::new(),
            connect_timeout: Duration::from_secs(2),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            ttl_floor: Duration::from_secs(1),
            ttl_ceiling: Duration::from_secs(60),
            records: RecordKind::Address,
            reconnect_backoff: BackoffConfig {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(10),
                multiplier: 1.6,
                jitter: 0.2,
            },
            dns_error_backoff: BackoffConfig {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                jitter: 0.2,
            },
            min_reresolve_interval: Duration::from_millis(250),
            quiet_start: Duration::from_secs(30),
            retry: None,
            max_replay_bytes: 64 * 1024,
        }
    }
}

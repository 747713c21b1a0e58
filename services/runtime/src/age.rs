//! Connection age, and the shutdown timing that follows from it.
//!
//! grpc-core, grpc-go and grpc-java resolve DNS again only when a connection
//! is lost (and at most every 30 s in grpc-core). A client whose connections
//! stay up therefore never sees a new task, and keeps calling a task that has
//! left DNS for as long as it answers. Ageing connections out (GOAWAY after a
//! jittered age, as grpc-go's `MaxConnectionAge` does) makes every client
//! re-resolve regularly; a drain that outlasts the DNS TTL plus the longest
//! age (and grpc-core's 30 s between resolutions) means a leaving task is
//! still answering when its clients move on.

use std::time::Duration;

/// The spread of a connection's age around the maximum: ±10%, as grpc-go
/// and grpc-java use, so that connections made together (after a deploy)
/// do not all reconnect in the same instant.
pub const JITTER_PERCENT: u64 = 10;

/// Seconds of drain beyond the TTL and the age: time for the client's last
/// reconnect to land somewhere else.
pub const DRAIN_MARGIN_SECS: u64 = 1;

/// The least time grpc-core lets pass between two DNS resolutions of one
/// channel (`grpc.dns_min_time_between_resolutions_ms`, 30 s by default).
/// A connection aged out sooner makes its client reconnect to the addresses
/// it already has: a task that left DNS keeps getting connections until
/// the client's next resolution may come.
pub const GRPC_CORE_RESOLUTION_INTERVAL: Duration = Duration::from_secs(30);

/// How long a connection may live and how long its calls then have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAge {
    /// The age after which the server sends GOAWAY; `None`: never.
    pub max: Option<Duration>,
    /// How long an aged-out connection's in-flight calls have to finish
    /// before it is closed under them.
    pub grace: Duration,
}

impl ConnectionAge {
    /// From seconds as flags and stack files give them; a zero age means
    /// connections live as long as their clients keep them.
    pub fn from_secs(max_secs: u64, grace_secs: u64) -> Self {
        Self { max: (max_secs > 0).then(|| Duration::from_secs(max_secs)), grace: Duration::from_secs(grace_secs) }
    }

    /// The age of one new connection: the maximum, moved by up to
    /// [`JITTER_PERCENT`] either way.
    pub fn pick(&self) -> Option<Duration> {
        let max = self.max?;
        let spread = max.as_secs_f64() * JITTER_PERCENT as f64 / 100.0;
        Some(Duration::from_secs_f64(max.as_secs_f64() + spread * (fastrand::f64() * 2.0 - 1.0)))
    }

    /// The longest age a connection can be given, jitter included.
    pub fn longest(&self) -> Duration {
        self.max.map_or(Duration::ZERO, |max| max + max * JITTER_PERCENT as u32 / 100)
    }
}

/// The longest a stopping server keeps answering: the DNS TTL (clients that
/// cached the record may still connect), then one whole connection age but
/// at least [`GRPC_CORE_RESOLUTION_INTERVAL`] (every connection made before
/// has been aged out and its client has been free to resolve again), then
/// [`DRAIN_MARGIN_SECS`]. Whole seconds, rounded up. Without ageing, the
/// TTL and the margin: clients move when the drain's GOAWAY comes.
pub fn drain_bound(dns_ttl: Duration, age: &ConnectionAge) -> Duration {
    let moving = if age.max.is_some() { age.longest().max(GRPC_CORE_RESOLUTION_INTERVAL) } else { Duration::ZERO };
    Duration::from_secs((dns_ttl + moving).as_secs_f64().ceil() as u64 + DRAIN_MARGIN_SECS)
}

/// The time from the stop signal to exit: the drain, then the grace for the
/// calls in flight when the last connections are sent GOAWAY.
pub fn shutdown_deadline(drain: Duration, age: &ConnectionAge) -> Duration {
    drain + age.grace.max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_spread_ten_percent_around_the_maximum() {
        let age = ConnectionAge::from_secs(30, 10);
        let picks: Vec<Duration> = (0..1000).map(|_| age.pick().unwrap()).collect();
        assert!(picks.iter().all(|pick| *pick >= Duration::from_secs(27) && *pick <= Duration::from_secs(33)));
        assert!(picks.iter().any(|pick| *pick < Duration::from_secs(29)), "spread below");
        assert!(picks.iter().any(|pick| *pick > Duration::from_secs(31)), "spread above");
        assert_eq!(age.longest(), Duration::from_secs(33));
    }

    #[test]
    fn a_zero_age_turns_ageing_off() {
        let age = ConnectionAge::from_secs(0, 10);
        assert_eq!(age.pick(), None);
        assert_eq!(age.longest(), Duration::ZERO);
        assert_eq!(drain_bound(Duration::from_secs(10), &age), Duration::from_secs(11));
    }

    #[test]
    fn the_drain_outlasts_the_ttl_and_the_longest_age() {
        let age = ConnectionAge::from_secs(30, 10);
        let drain = drain_bound(Duration::from_secs(10), &age);
        assert_eq!(drain, Duration::from_secs(44));
        assert_eq!(shutdown_deadline(drain, &age), Duration::from_secs(54));
        // An age that does not divide by ten rounds up, never down.
        assert_eq!(drain_bound(Duration::from_secs(1), &ConnectionAge::from_secs(35, 1)), Duration::from_secs(41));
    }

    #[test]
    fn a_short_age_still_drains_until_grpc_core_may_resolve_again() {
        assert_eq!(drain_bound(Duration::from_secs(1), &ConnectionAge::from_secs(1, 1)), Duration::from_secs(32));
        assert_eq!(drain_bound(Duration::from_secs(10), &ConnectionAge::from_secs(5, 1)), Duration::from_secs(41));
    }
}

//! The resolver task: looks the name up whenever the last answer's TTL runs
//! out (within a floor and a ceiling), at once when a connection fails, and
//! with backoff while DNS fails. A failed or empty lookup keeps the last
//! good set, as grpc-go does: one bad answer never empties the channel.

use std::sync::Arc;

use tokio::{sync::oneshot, time::Instant};

use crate::{
    balancer::Balancer,
    options::Options,
    resolve::{DnsLookup, LookupError},
};

/// How long lookups of a name that had addresses must fail before it is
/// said: a stack stopping takes its names away for less.
const LASTING_FAILURE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs until aborted. `first` hears the outcome of the first lookup.
pub(crate) async fn run(
    lookup: DnsLookup,
    balancer: Arc<Balancer>,
    options: Arc<Options>,
    mut first: Option<oneshot::Sender<Result<(), LookupError>>>,
) {
    let mut backoff = options.dns_error_backoff.start();
    let mut last_addrs = Vec::new();
    // A name not in DNS yet (a dependency still starting) is waited for
    // quietly for a while, then said once; so is a name that goes away
    // with addresses in hand (a whole stack stopping): only a failure that
    // lasts is news.
    let quiet_until = Instant::now() + options.quiet_start;
    let mut failing_since: Option<Instant> = None;
    let mut said = false;
    loop {
        // Our own schedule is the cache: every lookup asks the server.
        lookup.clear_cache();
        let started = Instant::now();
        let wait = match lookup.lookup().await {
            Ok(resolution) => {
                backoff.reset();
                if failing_since.take().is_some() && std::mem::take(&mut said) {
                    tracing::info!(target = %balancer.target, "lookup answers again");
                }
                balancer.set_problem(None);
                if resolution.addrs != last_addrs {
                    tracing::info!(target = %balancer.target, addrs = ?resolution.addrs, "resolved");
                    last_addrs = resolution.addrs.clone();
                }
                balancer.update(&resolution.addrs);
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(()));
                }
                let ttl = resolution.valid_until.saturating_duration_since(std::time::Instant::now());
                ttl.clamp(options.ttl_floor, options.ttl_ceiling)
            }
            Err(error) => {
                let delay = backoff.next_delay();
                let since = *failing_since.get_or_insert_with(Instant::now);
                let lasting = if last_addrs.is_empty() {
                    Instant::now() >= quiet_until
                } else {
                    since.elapsed() >= LASTING_FAILURE
                };
                if !lasting || std::mem::replace(&mut said, true) {
                    tracing::debug!(target = %balancer.target, %error, retry_in = ?delay, kept = ?last_addrs, "lookup failed");
                } else if last_addrs.is_empty() {
                    tracing::warn!(target = %balancer.target, %error, retry_in = ?delay, "lookup failed");
                } else {
                    tracing::warn!(target = %balancer.target, %error, retry_in = ?delay, kept = ?last_addrs, "lookup failed; keeping the last good addresses");
                }
                balancer.set_problem(Some(error.to_string()));
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                }
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(started + wait) => {}
            _ = balancer.reresolve.notified() => {
                // Many failing calls ask at once: look at most this often.
                tokio::time::sleep_until(started + options.min_reresolve_interval).await;
            }
        }
    }
}

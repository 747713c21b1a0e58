//! The shutdown sequence ECS expects of a task.
//!
//! ECS sends SIGTERM, waits `stopTimeout` and then SIGKILLs. Cloud Map stops
//! answering with the task's address about when SIGTERM is sent, but
//! resolvers keep the old answer for its TTL, and most gRPC clients (grpc-core,
//! grpc-go, grpc-java) resolve again only once a connection is lost. So on the
//! first signal the server reports NOT_SERVING (health watchers react at
//! once) and keeps answering: for at least the DNS TTL, then until every
//! client connection has been aged out or closed, at most for the drain
//! period (TTL + longest connection age, see [`crate::age`]). Then it closes
//! the listener, sends GOAWAY, lets in-flight calls finish, and exits by a
//! hard deadline whatever clients do.

use std::time::Duration;

use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::{oneshot, watch},
    time::Instant,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::connection::OpenConnections;

/// SIGTERM (what ECS and `docker stop` send) and SIGINT (Ctrl-C), registered
/// at start-up so that a signal that arrives early is not lost.
pub struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Registers the handlers.
    pub fn register() -> std::io::Result<Self> {
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Waits for the next SIGTERM or SIGINT and names it.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// What the drain sequence needs to know and touch.
pub struct Drain {
    /// Health statuses to flip: every service name and "" (the whole server).
    pub reporter: HealthReporter,
    /// The names of the services served, besides "".
    pub service_names: Vec<&'static str>,
    /// How long at least to keep accepting: the DNS TTL.
    pub dns_ttl: Duration,
    /// How long at most to keep serving while reporting NOT_SERVING.
    pub drain_period: Duration,
    /// The client connections open; the drain ends early when none is left.
    pub open: OpenConnections,
    /// The limit from the first signal to exit.
    pub deadline: Duration,
}

/// The two moments the server loop waits on.
pub struct DrainHandles {
    /// Turns true when the server must stop accepting and send GOAWAY on
    /// every connection.
    pub stop: watch::Receiver<bool>,
    /// Fires with the instant by which the process must be gone.
    pub hard_deadline: oneshot::Receiver<Instant>,
}

impl Drain {
    /// Runs the sequence in a task: waits for a signal, drains, then tells the
    /// server to stop. A second signal during the drain cuts it short.
    pub fn spawn(self, mut signals: StopSignals) -> DrainHandles {
        let (stop_tx, stop) = watch::channel(false);
        let (deadline_tx, hard_deadline) = oneshot::channel();
        tokio::spawn(async move {
            let signal = signals.next().await;
            let deadline = Instant::now() + self.deadline;
            let _ = deadline_tx.send(deadline);
            tracing::info!(
                signal,
                min_drain_secs = self.dns_ttl.min(self.drain_period).as_secs_f64(),
                max_drain_secs = self.drain_period.as_secs_f64(),
                deadline_secs = self.deadline.as_secs_f64(),
                "stopping: reporting NOT_SERVING and draining"
            );
            let mut reporter = self.reporter;
            for name in self.service_names.iter().copied().chain([""]) {
                reporter.set_service_status(name, ServingStatus::NotServing).await;
            }
            let earliest_end = self.dns_ttl.min(self.drain_period);
            let open = self.open.clone();
            let all_closed = async move {
                tokio::time::sleep(earliest_end).await;
                open.none_left().await;
            };
            tokio::select! {
                _ = tokio::time::sleep(self.drain_period) => {
                    tracing::info!(open_connections = self.open.count(), "drain period over");
                }
                _ = all_closed => tracing::info!("every client connection has closed: ending the drain"),
                signal = signals.next() => tracing::info!(signal, "second signal: ending the drain early"),
            }
            tracing::info!("drain over: closing the listener, GOAWAY to every connection, finishing in-flight calls");
            stop_tx.send_replace(true);
            // Ending the health watch streams lets connections that only hold
            // a watch close now instead of at the deadline.
            for name in self.service_names.iter().copied().chain([""]) {
                reporter.clear_service_status(name).await;
            }
        });
        DrainHandles { stop, hard_deadline }
    }
}

/// Resolves at the hard deadline once it is known; never before a signal.
pub async fn hard_deadline(deadline: oneshot::Receiver<Instant>) {
    match deadline.await {
        Ok(at) => tokio::time::sleep_until(at).await,
        Err(_) => std::future::pending().await,
    }
}

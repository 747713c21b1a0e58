//! The set of endpoints behind a target, which of them are ready, and the
//! pick of one for each call.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    endpoint::{self, Endpoint, EndpointStatus, ReadyConnection},
    options::{Balance, Options},
};

/// Every endpoint of a target with the task that keeps it connected.
type EndpointTable = BTreeMap<SocketAddr, (Arc<Endpoint>, JoinHandle<()>)>;

/// The endpoints of one target and the connections calls may use.
pub(crate) struct Balancer {
    pub(crate) target: String,
    options: Arc<Options>,
    this: Weak<Balancer>,
    endpoints: Mutex<EndpointTable>,
    ready: watch::Sender<Arc<Vec<ReadyConnection>>>,
    next: AtomicUsize,
    pub(crate) reresolve: Notify,
    /// Why the last lookup gave nothing, for UNAVAILABLE messages.
    last_problem: Mutex<Option<String>>,
}

impl Balancer {
    pub(crate) fn new(target: String, options: Arc<Options>) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            target,
            options,
            this: this.clone(),
            endpoints: Mutex::new(BTreeMap::new()),
            ready: watch::Sender::new(Arc::new(Vec::new())),
            // A random first turn, as grpc-go's round_robin starts: clients
            // started together do not all begin on the same endpoint.
            next: AtomicUsize::new(rand::random::<u32>() as usize),
            reresolve: Notify::new(),
            last_problem: Mutex::new(None),
        })
    }

    /// Makes the endpoint set exactly `addrs`: new addresses get a connection
    /// task, vanished ones are dropped at once (no new calls; calls in flight
    /// on them finish on their connection).
    pub(crate) fn update(&self, addrs: &[SocketAddr]) {
        let Some(this) = self.this.upgrade() else { return };
        let mut endpoints = self.endpoints.lock().expect("endpoints lock");
        let before: Vec<SocketAddr> = endpoints.keys().copied().collect();
        endpoints.retain(|addr, (_, task)| {
            let keep = addrs.contains(addr);
            if !keep {
                task.abort();
                tracing::info!(target = %self.target, %addr, "endpoint removed");
            }
            keep
        });
        for addr in addrs {
            if !endpoints.contains_key(addr) {
                tracing::info!(target = %self.target, %addr, "endpoint added");
                let endpoint = Endpoint::new(*addr);
                let task =
                    tokio::spawn(endpoint::run(Arc::clone(&endpoint), Arc::clone(&this), Arc::clone(&self.options)));
                endpoints.insert(*addr, (endpoint, task));
            }
        }
        let changed = before != endpoints.keys().copied().collect::<Vec<_>>();
        drop(endpoints);
        if changed {
            self.publish();
        }
    }

    /// Recomputes the ready connections after any state change.
    pub(crate) fn publish(&self) {
        let endpoints = self.endpoints.lock().expect("endpoints lock");
        let ready: Vec<ReadyConnection> =
            endpoints.values().filter_map(|(endpoint, _)| endpoint.ready_connection()).collect();
        drop(endpoints);
        self.ready.send_if_modified(|current| {
            let same = current.len() == ready.len()
                && current
                    .iter()
                    .zip(&ready)
                    .all(|(old, new)| Arc::ptr_eq(&old.endpoint, &new.endpoint) && old.generation == new.generation);
            if !same {
                *current = Arc::new(ready);
            }
            !same
        });
    }

    /// Asks the resolver to look the name up again now.
    pub(crate) fn request_reresolve(&self) {
        self.reresolve.notify_one();
    }

    pub(crate) fn problem(&self) -> Option<String> {
        self.last_problem.lock().expect("problem lock").clone()
    }

    pub(crate) fn set_problem(&self, problem: Option<String>) {
        *self.last_problem.lock().expect("problem lock") = problem;
    }

    /// Picks a ready connection, waiting for one until `deadline`. `avoid`
    /// names an endpoint that just failed this call, picked only if it is the
    /// only one ready.
    pub(crate) async fn pick(&self, deadline: Instant, avoid: Option<SocketAddr>) -> Result<ReadyConnection, String> {
        // The common case: something is ready, no need to subscribe.
        if let Some(picked) = self.pick_now(avoid, |connection| connection.clone()) {
            return Ok(picked);
        }
        let mut ready = self.ready.subscribe();
        loop {
            let current = Arc::clone(&ready.borrow_and_update());
            if let Some(index) = self.choose(&current, avoid) {
                return Ok(current[index].clone());
            }
            match tokio::time::timeout_at(deadline, ready.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Err(self.no_endpoint_reason()),
            }
        }
    }

    /// Picks a ready connection now, if there is one, and hands it to `use_it`
    /// without cloning it.
    pub(crate) fn pick_now<R>(
        &self,
        avoid: Option<SocketAddr>,
        use_it: impl FnOnce(&ReadyConnection) -> R,
    ) -> Option<R> {
        let ready = self.ready.borrow();
        self.choose(&ready, avoid).map(|index| use_it(&ready[index]))
    }

    /// The index of the connection to use, by the balancing policy.
    fn choose(&self, ready: &[ReadyConnection], avoid: Option<SocketAddr>) -> Option<usize> {
        let allowed = |connection: &ReadyConnection| Some(connection.endpoint.addr) != avoid;
        let allowed_count = ready.iter().filter(|connection| allowed(connection)).count();
        // When the endpoint to avoid is the only one, it is still better than nothing.
        let eligible = |connection: &ReadyConnection| allowed_count == 0 || allowed(connection);
        let count = if allowed_count == 0 { ready.len() } else { allowed_count };
        if count == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let nth =
            |n: usize| ready.iter().enumerate().filter(|(_, connection)| eligible(connection)).nth(n).map(|(i, _)| i);
        match self.options.balance {
            Balance::RoundRobin => nth(turn % count),
            Balance::LeastRequests => (0..count)
                .filter_map(|offset| nth((turn + offset) % count))
                .min_by_key(|&index| ready[index].endpoint.in_flight.load(Ordering::Relaxed)),
        }
    }

    fn no_endpoint_reason(&self) -> String {
        let statuses = self.statuses();
        let problem = self.last_problem.lock().expect("problem lock").clone();
        let mut reason = if statuses.is_empty() {
            format!("no ready endpoint for {}: no address resolved", self.target)
        } else {
            let states: Vec<String> =
                statuses.iter().map(|status| format!("{} {}", status.addr, status.state)).collect();
            format!("no ready endpoint for {} ({})", self.target, states.join(", "))
        };
        if let Some(problem) = problem {
            reason.push_str(&format!("; last lookup: {problem}"));
        }
        reason
    }

    /// Every endpoint's status, sorted by address.
    pub(crate) fn statuses(&self) -> Vec<EndpointStatus> {
        let endpoints = self.endpoints.lock().expect("endpoints lock");
        endpoints.values().map(|(endpoint, _)| endpoint.status()).collect()
    }

    /// Stops every connection task.
    pub(crate) fn shutdown(&self) {
        let mut endpoints = self.endpoints.lock().expect("endpoints lock");
        for (_, (_, task)) in std::mem::take(&mut *endpoints) {
            task.abort();
        }
    }
}

//! The channel generated tonic clients use: `RpcClient::new(channel)`.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::task::JoinHandle;
use tonic::{body::Body, codegen::http, transport::Channel};
use tower::Service;

use crate::{
    balancer::Balancer,
    call::Call,
    endpoint::{Endpoint, EndpointStatus},
    options::Options,
};

/// More cached connection handles than this means endpoints came and went;
/// the cache starts over.
const MAX_CACHED_CONNECTIONS: usize = 16;

/// A load-balancing, self-healing channel to every instance of a service.
///
/// Cheap to clone: clones share the endpoints and their connections. The
/// background tasks stop when the last clone is dropped.
pub struct DiscoveryChannel {
    inner: Arc<Inner>,
    /// This clone's own handles on the connections it used. A handle is
    /// readied in `poll_ready` and used in `call`, as tower intends, so a
    /// call neither clones a handle nor waits for one in the common case.
    cache: Vec<CachedConnection>,
    /// The cache entry `poll_ready` readied (or is readying).
    reserved: Option<Reservation>,
}

struct CachedConnection {
    endpoint: Arc<Endpoint>,
    generation: u64,
    channel: Channel,
}

#[derive(Clone, Copy)]
enum Reservation {
    Polling(usize),
    Ready(usize),
}

struct Inner {
    balancer: Arc<Balancer>,
    options: Arc<Options>,
    resolver: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(resolver) = &self.resolver {
            resolver.abort();
        }
        self.balancer.shutdown();
    }
}

impl Clone for DiscoveryChannel {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner), cache: Vec::new(), reserved: None }
    }
}

impl std::fmt::Debug for DiscoveryChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryChannel").field("target", &self.inner.balancer.target).finish()
    }
}

impl DiscoveryChannel {
    pub(crate) fn new(balancer: Arc<Balancer>, options: Arc<Options>, resolver: Option<JoinHandle<()>>) -> Self {
        Self { inner: Arc::new(Inner { balancer, options, resolver }), cache: Vec::new(), reserved: None }
    }

    /// The target this channel serves, in canonical form.
    pub fn target(&self) -> &str {
        &self.inner.balancer.target
    }

    /// Why the last lookup gave no addresses, while that is so (the channel
    /// keeps using the last good ones meanwhile).
    pub fn lookup_problem(&self) -> Option<String> {
        self.inner.balancer.problem()
    }

    /// Every endpoint known now, with its state and counters, sorted by
    /// address: what the bench and status commands print.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        self.inner.balancer.statuses()
    }

    /// The cache index of a handle on the connection `poll_ready` picks now.
    fn pick_cached(&mut self) -> Option<usize> {
        let cache = &mut self.cache;
        self.inner.balancer.pick_now(None, |connection| {
            if let Some(index) = cache.iter().position(|cached| {
                Arc::ptr_eq(&cached.endpoint, &connection.endpoint) && cached.generation == connection.generation
            }) {
                return index;
            }
            let fresh = CachedConnection {
                endpoint: Arc::clone(&connection.endpoint),
                generation: connection.generation,
                channel: connection.channel.clone(),
            };
            // A newer connection to the same endpoint replaces the old handle.
            if let Some(index) = cache.iter().position(|cached| Arc::ptr_eq(&cached.endpoint, &connection.endpoint)) {
                cache[index] = fresh;
                return index;
            }
            if cache.len() >= MAX_CACHED_CONNECTIONS {
                cache.clear();
            }
            cache.push(fresh);
            cache.len() - 1
        })
    }
}

impl Service<http::Request<Body>> for DiscoveryChannel {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send + 'static>>;

    /// Readies a connection of a picked endpoint. Never fails and never waits
    /// for an endpoint: with none ready, the call itself waits within its
    /// deadline.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let index = match self.reserved {
            Some(Reservation::Ready(_)) => return Poll::Ready(Ok(())),
            Some(Reservation::Polling(index)) => index,
            None => match self.pick_cached() {
                Some(index) => index,
                None => return Poll::Ready(Ok(())),
            },
        };
        match self.cache[index].channel.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.reserved = Some(Reservation::Ready(index));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(_)) => {
                // A dead handle: forget it; the call picks again itself.
                self.cache.swap_remove(index);
                self.reserved = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                self.reserved = Some(Reservation::Polling(index));
                Poll::Pending
            }
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut call = Call::new(Arc::clone(&self.inner.balancer), Arc::clone(&self.inner.options), request);
        let sent = match self.reserved.take() {
            Some(Reservation::Ready(index)) => {
                let cached = &mut self.cache[index];
                call.send_on(&mut cached.channel, Arc::clone(&cached.endpoint), cached.generation)
            }
            _ => None,
        };
        // Holding the shared state keeps the background tasks alive until the
        // call ends, even if every channel handle is dropped meanwhile.
        let keep_alive = Arc::clone(&self.inner);
        Box::pin(async move {
            let response = call.finish(sent).await;
            drop(keep_alive);
            Ok(response)
        })
    }
}

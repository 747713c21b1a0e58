//! One call through a discovery channel: wait for a ready endpoint within the
//! deadline, send, and retry on another endpoint when that is safe.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::time::Instant;
use tonic::{
    Code, Status,
    body::Body,
    codegen::http,
    transport::{Channel, channel::ResponseFuture},
};
use tower::ServiceExt;

use crate::{
    balancer::Balancer,
    endpoint::{Endpoint, ReadyConnection},
    options::{Balance, Options},
    replay::{InFlightBody, InFlightGuard, RequestBody},
    retry::{RetryPolicy, never_reached_server, root_cause},
};

/// An attempt already sent on a connection the caller had readied.
pub(crate) struct SentAttempt {
    endpoint: Arc<Endpoint>,
    generation: u64,
    guard: InFlightGuard,
    response: ResponseFuture,
}

/// A call in progress: the request, kept for retries, and how far it got.
pub(crate) struct Call {
    balancer: Arc<Balancer>,
    options: Arc<Options>,
    parts: http::request::Parts,
    /// The request head as the caller built it, extensions and all, for the
    /// first attempt; retries send a copy without extensions.
    original: Option<http::request::Parts>,
    body: RequestBody,
    deadline: Instant,
    policy: Option<RetryPolicy>,
    max_attempts: u32,
    attempt: u32,
    /// Retries so far of attempts that never reached a server.
    transparent_retries: u32,
}

/// How many times a call whose request never reached a server is sent
/// again (beyond what a retry policy allows). It cannot have run anywhere,
/// so this is safe; more than once because a busy client may find a second
/// connection closing under it too: every replica ages its connections out,
/// and a client that is slow to read their GOAWAYs still picks them for a
/// moment. The deadline bounds it as well.
const TRANSPARENT_RETRIES: u32 = 4;

impl Call {
    /// Takes the request apart and keeps its body if it can be replayed.
    pub(crate) fn new(balancer: Arc<Balancer>, options: Arc<Options>, request: http::Request<Body>) -> Self {
        let wait = grpc_timeout(request.headers()).unwrap_or(options.deadline);
        let policy = options.retry.as_ref().filter(|policy| policy.covers(request.uri().path())).cloned();
        let (original, body) = request.into_parts();
        let parts = copy_head(&original);
        let body = RequestBody::prepare(body, options.max_replay_bytes);
        // One transparent retry, or what the policy allows.
        let max_attempts = policy.as_ref().map_or(2, |policy| policy.max_attempts.max(1));
        Self {
            balancer,
            options,
            parts,
            original: Some(original),
            body,
            deadline: Instant::now() + wait,
            policy,
            max_attempts,
            attempt: 0,
            transparent_retries: 0,
        }
    }

    /// Sends the first attempt on `channel`, which the caller has readied
    /// (`poll_ready`) for `endpoint`.
    pub(crate) fn send_on(
        &mut self,
        channel: &mut Channel,
        endpoint: Arc<Endpoint>,
        generation: u64,
    ) -> Option<SentAttempt> {
        use tower::Service;
        let body = self.body.for_attempt()?;
        self.attempt += 1;
        endpoint.picks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let guard = InFlightGuard::enter(Arc::clone(&endpoint));
        let request = match self.original.take() {
            Some(original) => http::Request::from_parts(original, body),
            None => rebuild(&self.parts, body),
        };
        let response = channel.call(request);
        Some(SentAttempt { endpoint, generation, guard, response })
    }

    /// Runs the call to its end; every failure comes back as a gRPC status
    /// response, never as a transport error.
    pub(crate) async fn finish(mut self, mut sent: Option<SentAttempt>) -> http::Response<Body> {
        let mut avoid: Option<SocketAddr> = None;
        loop {
            let attempt = match sent.take() {
                Some(attempt) => attempt,
                None => match self.send_next(avoid).await {
                    Ok(attempt) => attempt,
                    Err(response) => return response,
                },
            };
            let SentAttempt { endpoint, generation, guard, response } = attempt;
            let may_retry = self.body.is_replayable() && self.attempt < self.max_attempts;
            match response.await {
                Ok(response) => {
                    if let Some(policy) = &self.policy
                        && may_retry
                        && trailers_only_code(&response).is_some_and(|code| policy.codes.contains(&code))
                    {
                        drop(guard);
                        tracing::debug!(target = %self.balancer.target, addr = %endpoint.addr, path = %self.parts.uri.path(), "retrying on another endpoint");
                        avoid = Some(endpoint.addr);
                        tokio::time::sleep(policy.backoff.min(self.deadline.saturating_duration_since(Instant::now())))
                            .await;
                        continue;
                    }
                    let mut response = response;
                    served_by(response.headers_mut(), &endpoint);
                    // Least-requests needs to know when a stream really ends;
                    // round robin only counts calls waiting for their answer,
                    // which spares wrapping every response body.
                    return match self.options.balance {
                        Balance::LeastRequests => response.map(|inner| Body::new(InFlightBody::new(inner, guard))),
                        Balance::RoundRobin => response,
                    };
                }
                Err(error) => {
                    drop(guard);
                    let reason = root_cause(&error);
                    if endpoint.report_transport_failure(generation, &reason) {
                        self.balancer.publish();
                    }
                    self.balancer.request_reresolve();
                    let transparent = never_reached_server(&error)
                        && self.body.is_replayable()
                        && self.transparent_retries < TRANSPARENT_RETRIES;
                    let by_policy = may_retry && self.policy.is_some();
                    if transparent || by_policy {
                        if transparent {
                            self.transparent_retries += 1;
                        }
                        tracing::debug!(target = %self.balancer.target, addr = %endpoint.addr, path = %self.parts.uri.path(), %reason, "retrying on another endpoint");
                        avoid = Some(endpoint.addr);
                        continue;
                    }
                    let mut response = Status::unavailable(format!(
                        "{}: call to {} failed: {reason}",
                        self.balancer.target, endpoint.addr
                    ))
                    .into_http();
                    served_by(response.headers_mut(), &endpoint);
                    return response;
                }
            }
        }
    }

    /// Waits for a ready endpoint (other than `avoid`, if possible) and sends
    /// the next attempt to it.
    async fn send_next(&mut self, avoid: Option<SocketAddr>) -> Result<SentAttempt, http::Response<Body>> {
        let ReadyConnection { endpoint, mut channel, generation } =
            self.balancer.pick(self.deadline, avoid).await.map_err(|reason| Status::unavailable(reason).into_http())?;
        if let Err(error) = channel.ready().await {
            let reason = root_cause(&error);
            endpoint.report_transport_failure(generation, &reason);
            return Err(Status::unavailable(format!(
                "{}: {} is not accepting calls: {reason}",
                self.balancer.target, endpoint.addr
            ))
            .into_http());
        }
        self.send_on(&mut channel, endpoint, generation).ok_or_else(|| {
            Status::unavailable(format!("{}: the request stream was already sent", self.balancer.target)).into_http()
        })
    }
}

/// A copy of a request head without its extensions (which need not be
/// cloneable).
fn copy_head(parts: &http::request::Parts) -> http::request::Parts {
    let (mut copy, ()) = http::Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy
}

/// Names the endpoint that answered in the response headers, so a caller
/// can see (in `Response::metadata` or `Status::metadata`) which replica
/// served each call.
fn served_by(headers: &mut http::HeaderMap, endpoint: &Endpoint) {
    headers.insert(http::HeaderName::from_static(crate::SERVED_BY_HEADER), endpoint.served_by.clone());
}

/// A fresh request with the same head, for one attempt.
fn rebuild(parts: &http::request::Parts, body: Body) -> http::Request<Body> {
    http::Request::from_parts(copy_head(parts), body)
}

/// The status of a response that carries it in its headers (an error
/// answered before any message).
fn trailers_only_code(response: &http::Response<Body>) -> Option<Code> {
    let value = response.headers().get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

/// The call's own deadline, from the `grpc-timeout` header tonic sets for
/// `Request::set_timeout`.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_headers_are_read_in_every_unit() {
        let mut headers = http::HeaderMap::new();
        for (value, expected) in [
            ("250m", Duration::from_millis(250)),
            ("3S", Duration::from_secs(3)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("900u", Duration::from_micros(900)),
            ("5n", Duration::from_nanos(5)),
        ] {
            headers.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&headers), Some(expected), "{value}");
        }
        headers.insert("grpc-timeout", "soon".parse().unwrap());
        assert_eq!(grpc_timeout(&headers), None);
    }
}

//! One debug line per request (method, gRPC status when known, latency), so
//! that turning on debug logging shows traffic without an info-level flood.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tonic::codegen::http;
use tower::{Layer, Service};

/// Wraps a service in [`RequestLog`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner }
    }
}

/// Logs each request at debug level once its response headers are ready.
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> Service<http::Request<B>> for RequestLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !tracing::enabled!(target: "grpc", tracing::Level::DEBUG) {
            return Box::pin(self.inner.call(request));
        }
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let micros = started.elapsed().as_micros() as u64;
            match &result {
                // A failed call answers "trailers-only": grpc-status is a header.
                // A successful one sends it in the trailers, after the body.
                Ok(response) => {
                    let status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .map(|code| tonic::Code::from_bytes(code.as_bytes()))
                        .map_or_else(|| "in trailers".to_owned(), |code| format!("{code:?}"));
                    tracing::debug!(target: "grpc", %method, grpc_status = %status, micros, "request");
                }
                Err(_) => tracing::debug!(target: "grpc", %method, micros, "request failed in transport"),
            }
            result
        })
    }
}

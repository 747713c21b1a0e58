//! Ending the streams that never end on their own when their connection
//! closes.
//!
//! A health `Watch` lasts as long as its client wants; after a GOAWAY it would
//! hold its connection open until the grace runs out and then be cut. Ending
//! it with OK at GOAWAY tells a watching client (this project's discovery
//! channel, grpc-core's client-side health checking) to move to a new
//! connection at once, and lets the aged-out connection close as soon as its
//! unary calls are done.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::future::Either;
use http_body::Frame;
use tokio::sync::watch;
use tonic::{Status, body::Body, codegen::http};
use tower::Service;

/// The methods whose response streams only end when the server ends them.
const ENDLESS_STREAMS: [&str; 1] = ["/grpc.health.v1.Health/Watch"];

/// Wraps one connection's routes: responses of [`ENDLESS_STREAMS`] end when
/// `closing` turns true.
#[derive(Debug, Clone)]
pub struct EndStreamsOnClose<S> {
    inner: S,
    closing: watch::Receiver<bool>,
}

impl<S> EndStreamsOnClose<S> {
    /// `inner` for one connection whose GOAWAY sets `closing`.
    pub fn new(inner: S, closing: watch::Receiver<bool>) -> Self {
        Self { inner, closing }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for EndStreamsOnClose<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    // Only the endless streams pay for a box: every other call is on the
    // request path.
    type Future = Either<S::Future, BoxFuture<Result<http::Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let endless = ENDLESS_STREAMS.contains(&request.uri().path());
        let response = self.inner.call(request);
        if !endless {
            return Either::Left(response);
        }
        let mut closing = self.closing.clone();
        Either::Right(Box::pin(async move {
            let response = response.await?;
            // A trailers-only answer (an error) has nothing left to end.
            if response.headers().contains_key("grpc-status") {
                return Ok(response);
            }
            let closed: BoxFuture<()> = Box::pin(async move {
                let _ = closing.wait_for(|closing| *closing).await;
            });
            Ok(response.map(|body| Body::new(EndOnClose { inner: body, closed, ended: false })))
        }))
    }
}

/// A response body that ends with status OK once `closed` resolves.
struct EndOnClose {
    inner: Body,
    closed: BoxFuture<()>,
    ended: bool,
}

impl http_body::Body for EndOnClose {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.closed.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            trailers.insert("grpc-message", http::HeaderValue::from_static("connection%20closing"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

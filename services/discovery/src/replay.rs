//! Keeping a request body so that a call can be sent again.
//!
//! A unary request is one small message that tonic has encoded by the time
//! the call starts, so it can be kept and replayed to another endpoint. A
//! streaming request is still being written by the caller; it is sent once,
//! as it comes, and never retried.

use std::{
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
};

use futures_util::{FutureExt, StreamExt, stream};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use tonic::{Status, body::Body, codegen::Bytes};

/// A request body, kept whole when that was possible.
pub(crate) enum RequestBody {
    /// The whole body, ready to send any number of times.
    Buffered(Bytes),
    /// A body still being produced; `None` once sent.
    Streaming(Option<Body>),
}

impl RequestBody {
    /// Takes what is available of `body` now, up to `limit` bytes. A body
    /// that ends within that is kept whole; any other is passed on as it is.
    pub(crate) fn prepare(mut body: Body, limit: usize) -> Self {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut size = 0;
        loop {
            if body.is_end_stream() {
                return Self::Buffered(concat(chunks));
            }
            match body.frame().now_or_never() {
                Some(None) => return Self::Buffered(concat(chunks)),
                Some(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        size += data.len();
                        chunks.push(data);
                        if size > limit {
                            return Self::Streaming(Some(prefixed(chunks, None, body)));
                        }
                    }
                    Err(other) => return Self::Streaming(Some(prefixed(chunks, Some(Ok(other)), body))),
                },
                Some(Some(Err(error))) => return Self::Streaming(Some(prefixed(chunks, Some(Err(error)), body))),
                None => return Self::Streaming(Some(prefixed(chunks, None, body))),
            }
        }
    }

    /// Whether the body can be sent again.
    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, Self::Buffered(_))
    }

    /// The body for the next attempt; `None` when a streaming body was sent.
    pub(crate) fn for_attempt(&mut self) -> Option<Body> {
        match self {
            Self::Buffered(bytes) => Some(Body::new(Full::new(bytes.clone()).map_err(|never| match never {}))),
            Self::Streaming(body) => body.take(),
        }
    }
}

fn concat(chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().expect("one chunk"),
        _ => {
            let mut whole = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            for chunk in chunks {
                whole.extend_from_slice(&chunk);
            }
            Bytes::from(whole)
        }
    }
}

/// The frames already read, then `next`, then the rest of `rest`.
fn prefixed(chunks: Vec<Bytes>, next: Option<Result<Frame<Bytes>, Status>>, rest: Body) -> Body {
    let head = stream::iter(chunks.into_iter().map(|chunk| Ok(Frame::data(chunk))).chain(next));
    Body::new(StreamBody::new(head.chain(BodyStream::new(rest))))
}

/// A response body that counts its call as in flight until it is done.
pub(crate) struct InFlightBody {
    inner: Body,
    _guard: InFlightGuard,
}

impl InFlightBody {
    pub(crate) fn new(inner: Body, guard: InFlightGuard) -> Self {
        Self { inner, _guard: guard }
    }
}

impl HttpBody for InFlightBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Decrements an endpoint's in-flight count when dropped.
pub(crate) struct InFlightGuard(Arc<crate::endpoint::Endpoint>);

impl InFlightGuard {
    pub(crate) fn enter(endpoint: Arc<crate::endpoint::Endpoint>) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(endpoint)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

//! Accepting connections and serving each one for its age.
//!
//! tonic's own `max_connection_age` gives every connection the same age (no
//! jitter), and with a grace set it closes the connection at age + grace
//! without ever sending GOAWAY. So the server accepts here, and serves each
//! connection with a tonic server of its own whose shutdown signal is that
//! connection's jittered age (or the end of the drain): tonic then sends
//! GOAWAY and lets the calls in flight finish, and [`AgedIo`] closes the
//! connection at age + grace if they do not.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    time::{Instant, Sleep},
};
use tokio_stream::StreamExt;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::{age::ConnectionAge, stream_end::EndStreamsOnClose};

/// TCP keepalive for connections whose peer vanished without a word.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The number of open client connections, so that the drain can end as
/// soon as the last one has gone.
#[derive(Debug, Clone)]
pub struct OpenConnections(Arc<watch::Sender<usize>>);

impl Default for OpenConnections {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl OpenConnections {
    /// Connections open now.
    pub fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves once no connection is open.
    pub async fn none_left(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(|open| *open == 0).await;
    }

    fn open(&self) -> OpenGuard {
        self.0.send_modify(|open| *open += 1);
        OpenGuard(self.clone())
    }
}

/// Counts one connection until dropped.
struct OpenGuard(OpenConnections);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|open| *open -= 1);
    }
}

/// What every connection of one server shares.
pub(crate) struct Acceptor<L, S> {
    /// The tonic server (its HTTP/2 settings and layers), cloned per connection.
    pub server: tonic::transport::Server<L>,
    /// The routes, cloned per connection.
    pub routes: S,
    /// How long connections live.
    pub age: ConnectionAge,
    /// Becomes true when the drain is over: stop accepting, GOAWAY everyone.
    pub stop: watch::Receiver<bool>,
    /// The count the drain watches.
    pub open: OpenConnections,
}

impl<L, S> Acceptor<L, S>
where
    L: tower::Layer<EndStreamsOnClose<S>> + Clone + Send + 'static,
    L::Service: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
            Future: Send,
        > + Clone
        + Send
        + 'static,
    S: Clone + Send + 'static,
{
    /// Accepts until told to stop, then closes the listener (new clients
    /// are refused at once rather than left waiting) and returns; the
    /// connections carry on until they finish.
    pub async fn run(self, listener: TcpListener) {
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => self.spawn_connection(stream),
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    }

    fn spawn_connection(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ =
            socket2::SockRef::from(&stream).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE));
        let age = self.age.pick();
        let (io, dropped) = AgedIo::new(stream, age.map(|age| Instant::now() + age + self.age.grace));
        let (server, routes, mut stop) = (self.server.clone(), self.routes.clone(), self.stop.clone());
        let guard = self.open.open();
        tokio::spawn(async move {
            let (closing, closing_rx) = watch::channel(false);
            let service = EndStreamsOnClose::new(routes, closing_rx);
            // One connection, then nothing: ending the stream would read as
            // the server's shutdown.
            let incoming = tokio_stream::once(Ok::<_, io::Error>(io)).chain(tokio_stream::pending());
            let shutdown = async move {
                let aged = async {
                    match age {
                        Some(age) => tokio::time::sleep(age).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = aged => tracing::debug!("connection aged out: GOAWAY"),
                    _ = stop.wait_for(|stop| *stop) => {}
                    // The client closed it: nothing to shut down, but the
                    // server of this one connection must end too.
                    _ = dropped => {}
                }
                closing.send_replace(true);
            };
            if let Err(error) = server.serve_with_incoming_shutdown(service, incoming, shutdown).await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(guard);
        });
    }
}

/// A TCP connection that fails every read and write once its deadline
/// (age + grace) has passed, which makes hyper drop it: the bound on how
/// long a client can hold an aged-out connection open.
pub(crate) struct AgedIo {
    stream: TcpStream,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Dropped with the connection: tells its server that it is over.
    _dropped: oneshot::Sender<()>,
}

impl AgedIo {
    /// The connection, and what resolves once hyper has dropped it.
    fn new(stream: TcpStream, deadline: Option<Instant>) -> (Self, oneshot::Receiver<()>) {
        let (dropped_tx, dropped) = oneshot::channel();
        let io =
            Self { stream, deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))), _dropped: dropped_tx };
        (io, dropped)
    }

    fn past_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
    }
}

fn outlived() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection outlived its age and grace")
}

impl AsyncRead for AgedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.past_deadline(cx) {
            return Poll::Ready(Err(outlived()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.past_deadline(cx) {
            return Poll::Ready(Err(outlived()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.past_deadline(cx) {
            return Poll::Ready(Err(outlived()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connected for AgedIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

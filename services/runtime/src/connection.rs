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
    ///
    /// Connections the kernel has already completed but this loop has not
    /// accepted yet (a client that reconnected just before the stop, while
    /// the server was busy) are accepted first: closing the listener would
    /// reset them, and their calls would fail with a broken pipe that no
    /// client may safely retry. Accepted after the stop, each gets GOAWAY
    /// once its handshake is done, which every gRPC client retries.
    pub async fn run(self, listener: TcpListener) {
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => self.spawn_connection(stream),
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
            }
        }
        // Asked of the socket itself: the reactor may not have reported
        // them yet.
        let mut waiting = 0;
        if let Ok(listener) = listener.into_std() {
            while let Ok((stream, _)) = listener.accept() {
                let accepted = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream));
                match accepted {
                    Ok(stream) => self.spawn_connection(stream),
                    Err(error) => tracing::warn!(%error, "cannot take a connection waiting at the stop"),
                }
                waiting += 1;
            }
        }
        if waiting > 0 {
            tracing::info!(connections = waiting, "accepted the connections waiting at the stop, to GOAWAY them");
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
            // the server's shutdown. Its shutdown waits until the server has
            // taken it: a server told to stop first would drop it unserved,
            // and the client would get a reset instead of GOAWAY.
            let (taken_tx, taken) = oneshot::channel::<()>();
            let mut taken_tx = Some(taken_tx);
            let incoming = tokio_stream::once(io)
                .map(move |io| {
                    if let Some(taken_tx) = taken_tx.take() {
                        let _ = taken_tx.send(());
                    }
                    Ok::<_, io::Error>(io)
                })
                .chain(tokio_stream::pending());
            let shutdown = async move {
                let _ = taken.await;
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The client connection preface and an empty SETTINGS frame.
    const CLIENT_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    const GOAWAY: u8 = 0x7;

    /// The frame types in `bytes`, read as HTTP/2 frames.
    fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        while bytes.len() >= 9 {
            let length = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
            types.push(bytes[3]);
            bytes = &bytes[(9 + length).min(bytes.len())..];
        }
        types
    }

    #[tokio::test]
    async fn connections_waiting_to_be_accepted_at_the_stop_get_goaway_not_a_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Clients that connected while the server was not accepting: in the
        // kernel's backlog when the stop comes.
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(CLIENT_PREFACE).await.unwrap();
            clients.push(client);
        }
        let (_, health) = tonic_health::server::health_reporter();
        let routes = tonic::service::Routes::new(health).prepare();
        let (_stop_tx, stop) = watch::channel(true);
        let acceptor = Acceptor {
            server: tonic::transport::Server::builder(),
            routes,
            age: ConnectionAge::from_secs(0, 1),
            stop,
            open: OpenConnections::default(),
        };
        acceptor.run(listener).await;
        for mut client in clients {
            // Until GOAWAY (the rest of a graceful close needs a client that
            // answers PINGs); a reset before it fails the test.
            let mut answer = Vec::new();
            let mut chunk = [0u8; 1024];
            while !frame_types(&answer).contains(&GOAWAY) {
                let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
                    .await
                    .expect("the server answers within 5 s");
                match read {
                    Ok(0) => panic!("closed without GOAWAY; frames {:?}", frame_types(&answer)),
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                    Err(error) => panic!("{error} before GOAWAY; frames {:?}", frame_types(&answer)),
                }
            }
        }
    }
}

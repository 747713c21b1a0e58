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

use crate::{age::ConnectionAge, ignored_streams::IgnoredStreams, stream_end::EndStreamsOnClose};

/// TCP keepalive for connections whose peer vanished without a word.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// The longest a finished connection is kept half-closed, reading what the
/// client still sends, before its socket is closed (see [`linger`]).
const LINGER: Duration = Duration::from_secs(3);
/// How much is read from the socket at a time, to pass through
/// [`IgnoredStreams`]: hyper's own read size.
const READ_CHUNK: usize = 8192;

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
        // Both instants from the accept: a connection task that starts late
        // (a busy server) still gives its calls the whole grace after GOAWAY.
        let goaway_at = self.age.pick().map(|age| Instant::now() + age);
        // Counted until its socket is closed, lingering included.
        let (io, dropped) = AgedIo::new(stream, goaway_at.map(|at| at + self.age.grace), self.open.open());
        let (server, routes, mut stop) = (self.server.clone(), self.routes.clone(), self.stop.clone());
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
                    match goaway_at {
                        Some(at) => tokio::time::sleep_until(at).await,
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
        });
    }
}

/// A TCP connection that fails every read and write once its deadline
/// (age + grace) has passed, which makes hyper drop it: the bound on how
/// long a client can hold an aged-out connection open. What the client
/// sends reaches hyper through [`IgnoredStreams`].
pub(crate) struct AgedIo {
    /// Taken only when dropped, to linger.
    stream: Option<TcpStream>,
    /// The client's bytes, as h2 is to read them.
    filter: IgnoredStreams,
    /// Filtered bytes not yet handed to hyper, from `unread` on.
    ready: Vec<u8>,
    unread: usize,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Dropped with the connection: tells its server that it is over.
    _dropped: oneshot::Sender<()>,
    /// Its place in the open count, handed on to the linger.
    guard: Option<OpenGuard>,
}

impl AgedIo {
    /// The connection, and what resolves once hyper has dropped it.
    fn new(stream: TcpStream, deadline: Option<Instant>, guard: OpenGuard) -> (Self, oneshot::Receiver<()>) {
        let (dropped_tx, dropped) = oneshot::channel();
        let io = Self {
            stream: Some(stream),
            filter: IgnoredStreams::new(),
            ready: Vec::new(),
            unread: 0,
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            _dropped: dropped_tx,
            guard: Some(guard),
        };
        (io, dropped)
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("taken only when dropped"))
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
        let this = &mut *self;
        loop {
            if this.unread < this.ready.len() {
                let take = buf.remaining().min(this.ready.len() - this.unread);
                buf.put_slice(&this.ready[this.unread..this.unread + take]);
                this.unread += take;
                if this.unread == this.ready.len() {
                    this.ready.clear();
                    this.unread = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            std::task::ready!(
                Pin::new(this.stream.as_mut().expect("taken only when dropped")).poll_read(cx, &mut read)
            )?;
            if read.filled().is_empty() {
                // The end: a frame cut short goes to h2 as it is, to judge.
                this.ready = this.filter.take_held();
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // All of it may be held or dropped: then read on.
            this.filter.feed(read.filled(), &mut this.ready);
        }
    }
}

impl AsyncWrite for AgedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.past_deadline(cx) {
            return Poll::Ready(Err(outlived()));
        }
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.past_deadline(cx) {
            return Poll::Ready(Err(outlived()));
        }
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

impl Drop for AgedIo {
    fn drop(&mut self) {
        let (Some(stream), guard) = (self.stream.take(), self.guard.take()) else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(linger(stream, guard));
            }
            Err(_) => drop((stream, guard)),
        }
    }
}

/// Closes a finished connection without losing what it sent last. Closing
/// a socket while the client's bytes are still unread makes the kernel
/// answer with a reset, and a reset makes the client's kernel discard what
/// the client had not read yet: the answers to its last calls, served here
/// but lost there (`broken pipe`). A busy client is often still sending
/// (window updates, PING acks) when hyper drops a gracefully closed
/// connection. So: send FIN, read and discard until the client closes too,
/// for at most [`LINGER`], then close; the connection stays counted as
/// open until then, so a draining process does not exit under it.
async fn linger(mut stream: TcpStream, guard: Option<OpenGuard>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
    drop(guard);
}

impl Connected for AgedIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.as_ref().expect("taken only when dropped").connect_info()
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

    /// A server that answered and closed while its client's last bytes were
    /// unread: the client must still read the answer, then a clean end.
    async fn answer_then_close(lingering: bool) -> io::Result<Vec<u8>> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // What a busy client still sends (window updates, PING acks), unread.
        client.write_all(&[0u8; 64]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.write_all(b"the answer").await.unwrap();
        if lingering {
            let open = OpenConnections::default();
            tokio::spawn(linger(server, Some(open.open())));
        } else {
            drop(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.map(|_| answer)
    }

    #[tokio::test]
    async fn a_lingering_close_delivers_the_last_answer_where_a_plain_close_resets_it() {
        assert_eq!(answer_then_close(true).await.unwrap(), b"the answer");
        let plain = answer_then_close(false).await;
        assert_eq!(
            plain.map_err(|error| error.kind()),
            Err(io::ErrorKind::ConnectionReset),
            "the kernel resets a socket closed with unread bytes, and the client loses the answer"
        );
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

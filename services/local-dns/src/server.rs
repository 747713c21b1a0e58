//! The DNS server: UDP and TCP on one address, answering from a [`Registry`].

use std::{io, net::SocketAddr, sync::Arc};

use hickory_proto::op::{Message, ResponseCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinHandle,
};

use crate::{answer::respond, registry::Registry};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not local.
    #[error("cannot serve DNS on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `registry` on `addr` over UDP and TCP. Port 0 picks a free port
    /// (the same for both).
    pub async fn start(addr: SocketAddr, registry: Registry) -> Result<Self, ServeError> {
        let (udp, tcp) = bind_both(addr).await?;
        let addr = udp.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        let udp = Arc::new(udp);
        let tasks = vec![tokio::spawn(serve_udp(udp, registry.clone())), tokio::spawn(serve_tcp(tcp, registry))];
        tracing::info!(%addr, "serving DNS");
        Ok(Self { addr, tasks })
    }

    /// Where it serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds UDP and TCP on the same address. With port 0 the port UDP got may
/// be taken for TCP by someone else: then it tries other ports.
async fn bind_both(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServeError> {
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        let bound = udp.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) => last_error = Some(ServeError::Bind { addr: bound, source }),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// The largest UDP answer without EDNS (RFC 1035).
const UDP_LIMIT: usize = 512;

async fn serve_udp(socket: Arc<UdpSocket>, registry: Registry) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "DNS UDP receive failed");
                continue;
            }
        };
        let Some(mut reply) = reply_to(&buffer[..len], &registry) else { continue };
        if reply.len() > UDP_LIMIT {
            // Too big for plain UDP: say so, and the client retries on TCP.
            if let Ok(request) = Message::from_vec(&buffer[..len]) {
                let mut truncated = respond(&registry, &request).truncate();
                truncated.metadata.truncation = true;
                reply = truncated.to_vec().unwrap_or_default();
            }
        }
        if let Err(error) = socket.send_to(&reply, peer).await {
            tracing::debug!(%error, %peer, "DNS UDP send failed");
        }
    }
}

async fn serve_tcp(listener: TcpListener, registry: Registry) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_tcp_connection(stream, registry.clone()));
            }
            Err(error) => tracing::debug!(%error, "DNS TCP accept failed"),
        }
    }
}

async fn serve_tcp_connection(mut stream: TcpStream, registry: Registry) {
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let mut request = vec![0u8; u16::from_be_bytes(length) as usize];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let Some(reply) = reply_to(&request, &registry) else { return };
        let Ok(reply_length) = u16::try_from(reply.len()) else { return };
        if stream.write_all(&reply_length.to_be_bytes()).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The encoded reply to an encoded request; a request that does not parse
/// gets FORMERR when its id can be read, and nothing otherwise.
fn reply_to(request: &[u8], registry: &Registry) -> Option<Vec<u8>> {
    match Message::from_vec(request) {
        Ok(request) => respond(registry, &request).to_vec().ok(),
        Err(_) if request.len() >= 2 => {
            let id = u16::from_be_bytes([request[0], request[1]]);
            Message::error_msg(id, hickory_proto::op::OpCode::Query, ResponseCode::FormErr).to_vec().ok()
        }
        Err(_) => None,
    }
}

//! A light gRPC load generator: unary calls as prebuilt HTTP/2 requests on
//! the h2 crate, on one thread, as h2load sends them, but with a body of its
//! own per call (h2load sends one body for every request, and a ranking
//! loaded with one user measures a cache, not a board).
//!
//! A tonic client spends several times the CPU per call this does, and on a
//! 2-core machine that CPU comes out of the server's and Redis's share.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use prost::Message;

/// `message` as one uncompressed gRPC frame.
pub fn frame(message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0);
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    framed.into()
}

/// Sends every one of `bodies` as a unary call to `path` on `addr`,
/// `in_flight` at a time spread over `connections` connections, from one
/// thread; returns calls/s and the sorted latencies. Panics on a call that
/// fails (a transport error or a grpc-status other than 0).
pub fn run(
    addr: SocketAddr,
    path: &str,
    bodies: Vec<Bytes>,
    connections: usize,
    in_flight: usize,
) -> (f64, Vec<Duration>) {
    let uri: http::Uri = format!("http://{addr}{path}").parse().expect("a URI");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    std::thread::scope(|scope| {
        scope.spawn(|| runtime.block_on(calls(addr, uri, bodies, connections, in_flight))).join().expect("the load ran")
    })
}

async fn calls(
    addr: SocketAddr,
    uri: http::Uri,
    bodies: Vec<Bytes>,
    connections: usize,
    in_flight: usize,
) -> (f64, Vec<Duration>) {
    let mut senders = Vec::new();
    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
        tokio::spawn(async move { connection.await.expect("the connection stays up") });
        senders.push(sender);
    }
    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|worker| {
            let (sender, queue, uri) = (senders[worker % connections].clone(), Arc::clone(&queue), uri.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some(body) = queue.lock().expect("queue").next() else { return latencies };
                    let begun = Instant::now();
                    call(sender.clone(), &uri, body).await;
                    latencies.push(begun.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("a worker"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

async fn call(sender: h2::client::SendRequest<Bytes>, uri: &http::Uri, body: Bytes) {
    let request = http::Request::post(uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let mut sender = sender.ready().await.expect("a stream");
    let (response, mut stream) = sender.send_request(request, false).expect("sent");
    stream.send_data(body, true).expect("body sent");
    let response = response.await.expect("an answer");
    if let Some(status) = response.headers().get("grpc-status") {
        panic!("the call failed at once: grpc-status {status:?}");
    }
    let mut answer = response.into_body();
    while let Some(data) = answer.data().await {
        let data = data.expect("answer data");
        answer.flow_control().release_capacity(data.len()).expect("flow control");
    }
    let trailers = answer.trailers().await.expect("trailers").expect("gRPC trailers");
    let status = trailers.get("grpc-status").expect("a grpc-status");
    assert_eq!(status, "0", "the call failed: {:?}", trailers.get("grpc-message"));
}

//! Connection age: every client connection gets GOAWAY after a jittered age,
//! so that clients of any gRPC library resolve DNS again; calls in flight
//! get a grace, and a stopping server keeps answering until its clients'
//! connections have moved on.

mod common;

use std::time::{Duration, Instant};

use common::GameServer;
use contracts::rpc::GetChampionRequest;
use test_support::GrpcioClient;
use tokio_stream::StreamExt;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

const AGE_1S: [&str; 4] = ["--max-connection-age-secs", "1", "--max-connection-age-grace-secs", "1"];

#[tokio::test]
async fn a_grpcio_client_is_moved_to_new_connections_and_loses_no_call() {
    let server = GameServer::start(&AGE_1S).await;
    let client = GrpcioClient::start(&format!("ipv4:{}", server.addr), &["--every", "0.25"]);
    client.wait_calling(1).await;
    // Ages of 0.9 to 1.1 s: four seconds see at least three connections.
    let moved = client.wait_for(Duration::from_secs(5), |report| report.connections_seen >= 4).await;
    let summary = client.stop().await;
    assert!(moved.is_some(), "the client kept one connection: the server never aged it out");
    assert!(summary.ok > 100, "calls flowed: {summary:?}");
    assert_eq!(summary.failed, 0, "no call failed across the GOAWAYs: {:?}", summary.failures);
}

#[tokio::test]
async fn a_health_watch_ends_with_ok_when_its_connection_ages_out() {
    let server = GameServer::start(&["--max-connection-age-secs", "2", "--max-connection-age-grace-secs", "10"]).await;
    let mut health = HealthClient::new(server.channel().await);
    let connected = Instant::now();
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let end = tokio::time::timeout(Duration::from_secs(9), watch.next()).await.expect("the watch ends");
    let elapsed = connected.elapsed();
    assert!(end.is_none(), "ended cleanly, so a watcher reconnects at once: {end:?}");
    assert!(
        elapsed >= Duration::from_millis(1700) && elapsed < Duration::from_secs(9),
        "at the connection's age (1.8 to 2.2 s), not at its grace (11.8 s on): {elapsed:?}"
    );
}

#[tokio::test]
async fn a_stream_held_past_the_grace_is_cut_and_the_connection_closed() {
    let server = GameServer::start(&AGE_1S).await;
    let connected = Instant::now();
    let (requests, mut responses) = common::hold_open_stream(&server).await;
    let end = tokio::time::timeout(Duration::from_secs(15), responses.next()).await.expect("the stream is cut");
    let elapsed = connected.elapsed();
    assert!(matches!(end, Some(Err(_))), "cut with an error, not ended by the server: {end:?}");
    assert!(
        elapsed >= Duration::from_millis(1700) && elapsed < Duration::from_secs(15),
        "at age + grace (1.9 to 2.1 s), not never: {elapsed:?}"
    );
    drop(requests);
}

#[tokio::test]
async fn a_stopping_server_answers_while_a_client_stays_connected_and_exits_once_it_leaves() {
    // Drain at most 1 + 33 + 1 = 35 s; at least the 1 s TTL.
    let mut server = GameServer::start(&["--dns-ttl-secs", "1"]).await;
    let mut client = server.client().await;
    client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("serves");

    let signalled = Instant::now();
    server.process.terminate();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(server.process.wait_exit(Duration::ZERO).await.is_none(), "still draining: a client is connected");
    client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("a stopping server still answers");

    drop(client);
    let status = server.process.wait_exit(Duration::from_secs(5)).await.expect("exits once the client has left");
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "long before the drain's bound (35 s): {:?}",
        signalled.elapsed()
    );
    let output = server.process.output();
    assert!(output.contains("every client connection has closed"), "{output}");
}

#[tokio::test]
async fn with_no_client_connected_a_stopping_server_waits_out_the_ttl_only() {
    let mut server = GameServer::start(&["--dns-ttl-secs", "2"]).await;
    let signalled = Instant::now();
    server.process.terminate();
    let status = server.process.wait_exit(Duration::from_secs(20)).await.expect("exits");
    let elapsed = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "answers for the TTL (clients may still have the address), then leaves: {elapsed:?}"
    );
}

/// One HTTP/2 frame as read off the wire.
struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len();
    let mut bytes = vec![(length >> 16) as u8, (length >> 8) as u8, length as u8, kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The next frame, or `None` at the end of the connection.
async fn read_frame(stream: &mut tokio::net::TcpStream) -> Option<Frame> {
    use tokio::io::AsyncReadExt as _;
    let mut header = [0u8; 9];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header)).await.expect("a frame");
    read.ok()?;
    let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Frame { kind: header[3], flags: header[4], payload })
}

/// A client that wrote a new call just after acking the server's shutdown
/// PING, as grpc-core does when its write of that call was queued behind
/// the ack: the call's HEADERS and the WINDOW_UPDATE grpc-core sends on
/// every new stream arrive after the server's final GOAWAY. h2 ignores the
/// HEADERS but took the WINDOW_UPDATE for one on an idle stream and failed
/// the connection with GOAWAY(PROTOCOL_ERROR) (see the runtime's
/// `ignored_streams`): the client must see only NO_ERROR.
#[tokio::test]
async fn a_call_sent_after_the_final_goaway_does_not_fail_the_connection() {
    use tokio::io::AsyncWriteExt as _;
    const GOAWAY: u8 = 0x7;
    const PING: u8 = 0x6;
    let server = GameServer::start(&AGE_1S).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame_bytes(0x4, 0, 0, &[]));
    stream.write_all(&hello).await.unwrap();

    // At its age the server says GOAWAY and PINGs to learn what is in flight.
    let mut goaways = Vec::new();
    let shutdown_ping = loop {
        let frame = read_frame(&mut stream).await.expect("the server ages the connection out");
        match frame.kind {
            GOAWAY => goaways.push(frame.payload[4..8].to_vec()),
            PING if frame.flags & 0x1 == 0 && !goaways.is_empty() => break frame.payload,
            _ => {}
        }
    };
    let mut reply = frame_bytes(0x4, 0x1, 0, &[]);
    reply.extend(frame_bytes(PING, 0x1, 0, &shutdown_ping));
    // A call's HEADERS (POST http / :authority localhost, application/grpc)
    // and its WINDOW_UPDATE, right behind the ack.
    let mut block = vec![0x83, 0x86, 0x84, 0x41, 9];
    block.extend_from_slice(b"localhost");
    block.extend_from_slice(&[0x5f, 16]);
    block.extend_from_slice(b"application/grpc");
    reply.extend(frame_bytes(0x1, 0x4, 1, &block));
    reply.extend(frame_bytes(0x8, 0, 1, &5u32.to_be_bytes()));
    stream.write_all(&reply).await.unwrap();

    while let Some(frame) = read_frame(&mut stream).await {
        if frame.kind == GOAWAY {
            goaways.push(frame.payload[4..8].to_vec());
        }
    }
    assert!(goaways.len() >= 2, "the first GOAWAY and the final one: {goaways:?}");
    assert!(goaways.iter().all(|code| code == &[0, 0, 0, 0]), "every GOAWAY NO_ERROR: {goaways:?}");
}

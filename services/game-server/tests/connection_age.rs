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
    let end = tokio::time::timeout(Duration::from_secs(6), watch.next()).await.expect("the watch ends");
    let elapsed = connected.elapsed();
    assert!(end.is_none(), "ended cleanly, so a watcher reconnects at once: {end:?}");
    assert!(
        elapsed >= Duration::from_millis(1700) && elapsed < Duration::from_secs(4),
        "at the connection's age (1.8 to 2.2 s), not at its grace: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_stream_held_past_the_grace_is_cut_and_the_connection_closed() {
    let server = GameServer::start(&AGE_1S).await;
    let connected = Instant::now();
    let (requests, mut responses) = common::hold_open_stream(&server).await;
    let end = tokio::time::timeout(Duration::from_secs(6), responses.next()).await.expect("the stream is cut");
    let elapsed = connected.elapsed();
    assert!(matches!(end, Some(Err(_))), "cut with an error, not ended by the server: {end:?}");
    assert!(
        elapsed >= Duration::from_millis(1700) && elapsed < Duration::from_secs(4),
        "at age + grace (1.9 to 2.1 s): {elapsed:?}"
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
    assert!(signalled.elapsed() < Duration::from_secs(10), "long before the drain's bound: {:?}", signalled.elapsed());
    let output = server.process.output();
    assert!(output.contains("every client connection has closed"), "{output}");
}

#[tokio::test]
async fn with_no_client_connected_a_stopping_server_waits_out_the_ttl_only() {
    let mut server = GameServer::start(&["--dns-ttl-secs", "2"]).await;
    let signalled = Instant::now();
    server.process.terminate();
    let status = server.process.wait_exit(Duration::from_secs(10)).await.expect("exits");
    let elapsed = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(5),
        "answers for the TTL (clients may still have the address), then leaves: {elapsed:?}"
    );
}

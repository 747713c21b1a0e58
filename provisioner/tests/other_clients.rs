//! The stack's promise to clients this project did not write: Python grpcio
//! (grpc-core: its own c-ares resolver, `round_robin`, default settings,
//! which resolves DNS again only when a connection is lost and at most every
//! 30 s) calling `game-server.local` through the stack's DNS, beside this
//! project's discovery channel. The stack runs with its real drain and
//! connection age (30 s), only the TTL shortened to 1 s.

mod common;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{LocalStack, addresses, call_in_loop, collect, healthy_count, stack_file_draining};
use test_support::GrpcioClient;

/// The longest a replica waits before ageing a connection out (30 s + 10%),
/// plus the TTL, plus a margin for the reconnect and the report interval.
const MOVE_BOUND: Duration = Duration::from_secs(33 + 1 + 4);

/// A stack with the real drain, the game-server replicas it started with,
/// and both clients: grpcio already calling, discovery ready.
async fn stack_and_clients() -> (LocalStack, BTreeSet<String>, GrpcioClient, discovery::DiscoveryChannel) {
    let stack = LocalStack::start_from(|game, ranking| stack_file_draining(game, ranking, "", ""), &[], &[], 2).await;
    let before = addresses(&stack.status(), "game-server").into_iter().collect();
    let grpcio =
        GrpcioClient::start(&stack.target("game-server", stack.game_port), &["--method", "/rpc.Rpc/ListChampions"]);
    grpcio.wait_calling(50).await;
    let channel = stack.game_channel().await;
    (stack, before, grpcio, channel)
}

#[tokio::test]
async fn through_a_rolling_restart_neither_grpcio_nor_discovery_loses_a_call() {
    let (stack, before, grpcio, channel) = stack_and_clients().await;
    let stop = Arc::new(AtomicBool::new(false));
    let ours = call_in_loop(&channel, 2, &stop);

    let answer = stack.control("restart game-server");
    assert_eq!(answer, "ok\ngame-server: every replica replaced\n");
    let replaced = Instant::now();
    let status = stack.wait_for(|status| healthy_count(status, "game-server") == 3).await;
    let after: BTreeSet<String> =
        addresses(&status, "game-server").into_iter().filter(|addr| !before.contains(addr)).collect();
    assert_eq!(after.len(), 3, "three new replicas: {status}");
    // The old replicas keep answering while they drain: the client moves
    // when their connections age out, not when they vanish.
    assert!(status.matches("draining").count() == 3, "the old replicas drain side by side: {status}");

    let moved = grpcio
        .wait_for(MOVE_BOUND, |report| !report.peers.is_empty() && report.peers.iter().all(|peer| after.contains(peer)))
        .await;
    let moved_after = replaced.elapsed();
    // Every old replica has stopped: their drains ended once this client had left.
    let stopped = stack.wait_for(|status| !status.contains("draining")).await;
    stop.store(true, Ordering::SeqCst);
    let our_failures = collect(ours).await;
    let summary = grpcio.stop().await;

    assert!(moved.is_some(), "grpcio moved onto the new replicas {after:?} within {MOVE_BOUND:?}");
    eprintln!("grpcio moved after {moved_after:?}: {summary:?}\n{stopped}");
    assert_eq!(summary.failed, 0, "grpcio lost no call: {:?}", summary.failures);
    assert!(summary.ok > 1000, "grpcio called all along: {summary:?}");
    assert!(our_failures.is_empty(), "discovery lost no call: {our_failures:?}");
}

#[tokio::test]
async fn after_a_replica_is_killed_grpcio_and_discovery_call_its_replacement_within_age_and_ttl() {
    let (stack, before, grpcio, channel) = stack_and_clients().await;

    let answer = stack.control("kill game-server");
    assert!(answer.starts_with("ok\nkilled game-server/"), "{answer}");
    let status = stack
        .wait_for(|status| {
            healthy_count(status, "game-server") == 3
                && addresses(status, "game-server").iter().any(|addr| !before.contains(addr))
        })
        .await;
    let in_dns = Instant::now();
    let replacement =
        addresses(&status, "game-server").into_iter().find(|addr| !before.contains(addr)).expect("a new address");

    let found = grpcio.wait_for(MOVE_BOUND, |report| report.peers.contains(&replacement)).await;
    let took = in_dns.elapsed();
    let summary = grpcio.stop().await;
    assert!(found.is_some(), "grpcio calls the replacement {replacement} within {MOVE_BOUND:?} of it joining DNS");
    eprintln!("grpcio reached the replacement after {took:?}: {summary:?}");

    // Discovery re-resolves within a TTL: its next calls reach it too.
    let mut client = contracts::rpc::rpc_client::RpcClient::new(channel.clone());
    let started = Instant::now();
    let picks = |channel: &discovery::DiscoveryChannel| {
        channel
            .endpoints()
            .iter()
            .find(|status| status.addr.to_string() == replacement)
            .map_or(0, |status| status.picks)
    };
    while picks(&channel) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "discovery never called {replacement}: {:?}",
            channel.endpoints()
        );
        client.get_champion(contracts::rpc::GetChampionRequest { champion_id: 1 }).await.expect("GetChampion");
    }
}

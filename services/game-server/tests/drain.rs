//! The ECS stop sequence: SIGTERM -> NOT_SERVING at once -> keep serving for
//! the drain period -> stop accepting, finish in-flight calls -> exit before
//! the hard deadline, whatever clients do.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{GameServer, health_command};
use contracts::rpc::GetChampionRequest;
use tokio_stream::StreamExt;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[tokio::test]
async fn sigterm_reports_not_serving_keeps_serving_through_the_drain_and_exits() {
    let mut server = GameServer::start(&["--drain-secs", "5", "--shutdown-timeout-secs", "20"]).await;
    let addr = server.addr.to_string();

    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health.watch(HealthCheckRequest { service: "rpc.Rpc".into() }).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status(), ServingStatus::Serving);

    // Four callers in a loop, as clients in other tasks would be, until the
    // health watch says to move away.
    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let mut client = server.client().await;
        let (stop, succeeded) = (Arc::clone(&stop), Arc::clone(&succeeded));
        callers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match client.get_champion(GetChampionRequest { champion_id: 1 }).await {
                    Ok(_) => {
                        succeeded.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(status) => failures.push(status),
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_signal = succeeded.load(Ordering::SeqCst);
    assert!(before_signal > 0, "calls flow before the signal");

    let signalled = Instant::now();
    server.process.terminate();
    let update = tokio::time::timeout(Duration::from_secs(2), watch.next())
        .await
        .expect("the watch hears about the drain at once")
        .unwrap()
        .unwrap();
    assert_eq!(update.status(), ServingStatus::NotServing);

    // The ECS health check run now fails: the task is on its way out.
    let (code, output) = health_command(&["--addr", &addr]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("NOT_SERVING"), "{output}");

    // Calls still succeed during the drain period (DNS may still send them).
    let at_not_serving = succeeded.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(succeeded.load(Ordering::SeqCst) > at_not_serving, "the server keeps serving while draining");
    assert!(signalled.elapsed() < Duration::from_secs(5), "still inside the drain period");

    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        let failures = caller.await.unwrap();
        assert!(failures.is_empty(), "no call failed: {failures:?}");
    }

    let status = server.process.wait_exit(Duration::from_secs(25)).await.expect("exits before the deadline");
    assert!(status.success(), "clean exit: {status:?}");
    let elapsed = signalled.elapsed();
    assert!(elapsed >= Duration::from_secs(5), "served the whole drain period, exited after {elapsed:?}");
    // The only stream left was the health watch, which the drain ends, so
    // the exit does not wait for the hard deadline.
    assert!(elapsed < Duration::from_secs(18), "exited at the drain's end, not the deadline: {elapsed:?}");
    let output = server.process.output();
    assert!(output.contains("all calls finished"), "{output}");
}

#[tokio::test]
async fn a_client_holding_a_stream_open_cannot_delay_exit_past_the_deadline() {
    let mut server = GameServer::start(&["--drain-secs", "1", "--shutdown-timeout-secs", "3"]).await;

    let (requests, _responses) = common::hold_open_stream(&server).await;

    let signalled = Instant::now();
    server.process.terminate();
    let status = server.process.wait_exit(Duration::from_secs(15)).await.expect("exits by the deadline");
    let elapsed = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(elapsed >= Duration::from_secs(3), "waited for the open stream until the deadline: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "but not much longer: {elapsed:?}");
    let output = server.process.output();
    assert!(output.contains("deadline reached"), "{output}");
    drop(requests);
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_early() {
    let mut server = GameServer::start(&["--drain-secs", "20", "--shutdown-timeout-secs", "25"]).await;
    let signalled = Instant::now();
    server.process.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.process.interrupt();
    let status = server.process.wait_exit(Duration::from_secs(10)).await.expect("exits soon after the second signal");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn drain_longer_than_the_deadline_is_refused_at_start() {
    let addr = test_support::free_addr().to_string();
    let mut process = test_support::Process::start(
        common::GAME_SERVER,
        &["--grpc-addr", &addr, "--drain-secs", "30", "--shutdown-timeout-secs", "25"],
        &[],
    );
    let status = process.wait_exit(Duration::from_secs(10)).await.expect("exits at once");
    assert_eq!(status.code(), Some(1));
    assert!(process.output().contains("--drain-secs (30) must be less than --shutdown-timeout-secs (25)"));
}

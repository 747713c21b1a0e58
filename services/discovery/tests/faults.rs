//! Endpoints dying, draining and coming back, and names that do not exist.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Fleet, call, picks_of, wait_ready};
use discovery::{BackoffConfig, Builder, Error, LookupError};
use tonic::Code;

/// Callers in a loop until told to stop; every call's start and outcome.
async fn call_in_loop(
    channel: &discovery::DiscoveryChannel,
    callers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, Instant, Result<(), tonic::Status>)>>> {
    (0..callers)
        .map(|_| {
            let channel = channel.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut calls = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let result = call(&channel).await;
                    calls.push((started, Instant::now(), result));
                }
                calls
            })
        })
        .collect()
}

#[tokio::test]
async fn a_killed_endpoint_fails_at_most_its_calls_in_flight_and_none_after() {
    let mut fleet = Fleet::start(3, 0, Duration::from_secs(10)).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 3).await;

    let callers = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = call_in_loop(&channel, callers, Arc::clone(&stop)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.replica(1).kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);

    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await.unwrap());
    }
    let after_kill = calls.iter().filter(|(started, _, _)| *started >= killed_at).count();
    assert!(after_kill > 100, "calls went on after the kill: {after_kill}");
    let failures: Vec<_> = calls.iter().filter(|(_, _, result)| result.is_err()).collect();
    eprintln!("{} calls, {after_kill} after the kill, {} failed: {failures:?}", calls.len(), failures.len());
    eprintln!("endpoints: {:?}", channel.endpoints());
    assert!(failures.len() <= callers, "at most one in-flight call per caller fails: {failures:?}");
    if let Some(first_seen) = failures.iter().map(|(_, ended, _)| *ended).min() {
        for (started, _, result) in &failures {
            assert!(*started <= first_seen, "a call started after the first failure was seen failed: {result:?}");
        }
    }
    let dead = channel.endpoints().into_iter().find(|status| status.addr == fleet.addr(1)).unwrap();
    assert_ne!(dead.state, discovery::EndpointState::Ready, "{dead:?}");
}

#[tokio::test]
async fn a_draining_endpoint_gets_no_new_calls_while_dns_still_names_it() {
    let mut fleet = Fleet::start(3, 0, Duration::from_secs(10)).await;
    // Restart replica 2 with a long drain, as ECS would stop it.
    fleet.replica(2).kill();
    fleet.start_replica(2, &["--drain-secs", "20", "--shutdown-timeout-secs", "25"]).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 3).await;

    fleet.replica(2).terminate();
    wait_ready(&channel, 2).await;
    let draining = fleet.addr(2);
    let before = picks_of(&channel, draining);
    for _ in 0..300 {
        call(&channel).await.expect("the other endpoints serve every call");
    }
    assert_eq!(picks_of(&channel, draining), before, "the draining endpoint got calls");
    let status = channel.endpoints().into_iter().find(|status| status.addr == draining).unwrap();
    assert_eq!(status.state, discovery::EndpointState::NotServing);
}

#[tokio::test]
async fn with_every_endpoint_down_calls_fail_within_the_deadline_then_recover() {
    let mut fleet = Fleet::start(2, 0, Duration::from_secs(10)).await;
    let fast_retry = BackoffConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.1,
    };
    let channel = Builder::new(&fleet.target())
        .unwrap()
        .deadline(Duration::from_secs(1))
        .reconnect_backoff(fast_retry)
        .connect()
        .await
        .unwrap();
    wait_ready(&channel, 2).await;
    call(&channel).await.expect("up");

    fleet.replica(0).kill();
    fleet.replica(1).kill();
    wait_ready(&channel, 0).await;
    let started = Instant::now();
    let error = call(&channel).await.expect_err("no endpoint");
    let waited = started.elapsed();
    assert_eq!(error.code(), Code::Unavailable);
    assert!(error.message().contains("svc.local"), "names the target: {}", error.message());
    assert!(waited >= Duration::from_millis(900), "waited for the deadline: {waited:?}");
    assert!(waited < Duration::from_secs(8), "but not for long: {waited:?}");

    // The tasks come back on the same addresses: the same channel recovers.
    fleet.start_replica(0, &[]).await;
    fleet.start_replica(1, &[]).await;
    wait_ready(&channel, 2).await;
    call(&channel).await.expect("recovered");
}

#[tokio::test]
async fn a_call_deadline_shorter_than_the_default_is_honoured() {
    let fleet = Fleet::start(1, 0, Duration::from_secs(10)).await;
    fleet.set_registered(&[]);
    // The name now has no instance, as when every task is gone.
    let channel = Builder::new(&fleet.target()).unwrap().deadline(Duration::from_secs(30)).connect_lazy().unwrap();
    let mut client = contracts::rpc::rpc_client::RpcClient::new(channel);
    let mut request = tonic::Request::new(contracts::rpc::GetChampionRequest { champion_id: 1 });
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = client.get_champion(request).await.expect_err("nothing to call");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "long before the 30 s default: {:?}", started.elapsed());
}

/// Waits until the channel reports a failed lookup.
async fn wait_lookup_problem(channel: &discovery::DiscoveryChannel) -> String {
    let started = Instant::now();
    loop {
        if let Some(problem) = channel.lookup_problem() {
            return problem;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no lookup failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_empty_answer_or_a_dead_dns_server_keeps_the_last_good_endpoints() {
    let mut fleet = Fleet::start(2, 0, Duration::from_secs(1)).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 2).await;

    // Cloud Map answers NXDOMAIN when it has no healthy instance.
    fleet.set_registered(&[]);
    let problem = wait_lookup_problem(&channel).await;
    assert!(problem.contains("NXDOMAIN"), "{problem}");
    for _ in 0..20 {
        call(&channel).await.expect("calls go on with the last good set");
    }
    assert_eq!(channel.endpoints().len(), 2);

    // The instances come back, then the DNS server itself goes away.
    fleet.set_registered(&[0, 1]);
    let registered = Instant::now();
    while channel.lookup_problem().is_some() {
        assert!(registered.elapsed() < Duration::from_secs(15), "a good answer clears the problem");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.dns = local_dns::DnsServer::start("127.0.0.1:0".parse().unwrap(), local_dns::Registry::new()).await.unwrap();
    let problem = wait_lookup_problem(&channel).await;
    assert!(problem.contains("failed"), "{problem}");
    for _ in 0..20 {
        call(&channel).await.expect("calls go on with the last good set");
    }
    assert_eq!(channel.endpoints().len(), 2);
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_a_clear_error_at_start() {
    let fleet = Fleet::start(1, 0, Duration::from_secs(10)).await;
    let target = format!("dns://{}/nobody.local:5000", fleet.dns.addr());
    match discovery::connect(&target).await {
        Err(Error::Lookup(LookupError::NxDomain { name, .. })) => assert_eq!(name, "nobody.local"),
        other => panic!("expected NXDOMAIN, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_targets_are_rejected_before_any_lookup() {
    for target in ["dns:///", "dns://nohost/x:1", "gopher://x:1", "dns:///svc.local"] {
        let error = discovery::connect(target).await.expect_err(target);
        assert!(matches!(error, Error::Target(_)), "{target}: {error}");
        assert!(error.to_string().contains(target), "the message quotes the target: {error}");
    }
}

#[tokio::test]
async fn connections_the_server_ages_out_fail_no_call() {
    // One endpoint and two: with one, every call must ride the reconnect.
    for replicas in [1u8, 2] {
        let mut fleet = Fleet::start(0, replicas, Duration::from_secs(10)).await;
        for index in 0..usize::from(replicas) {
            fleet
                .start_replica(index, &["--max-connection-age-secs", "1", "--max-connection-age-grace-secs", "1"])
                .await;
            fleet.register(index);
        }
        let channel = discovery::connect(&fleet.target()).await.expect("connect");
        wait_ready(&channel, usize::from(replicas)).await;

        let stop = Arc::new(AtomicBool::new(false));
        let tasks = call_in_loop(&channel, 4, Arc::clone(&stop)).await;
        // Several ages (0.9 to 1.1 s each) of every connection.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        stop.store(true, Ordering::SeqCst);
        let mut calls = Vec::new();
        for task in tasks {
            calls.extend(task.await.unwrap());
        }
        let failures: Vec<_> = calls.iter().filter_map(|(_, _, result)| result.as_ref().err()).collect();
        let slowest = calls.iter().map(|(started, ended, _)| *ended - *started).max().unwrap_or_default();
        eprintln!("{replicas} replica(s): {} calls, {} failed, slowest {slowest:?}", calls.len(), failures.len());
        assert!(calls.len() > 1000, "calls flowed: {}", calls.len());
        assert!(failures.is_empty(), "{replicas} replica(s): no call failed: {failures:?}");
    }
}

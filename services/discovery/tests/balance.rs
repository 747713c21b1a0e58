//! Calls spread over every endpoint, and follow DNS as it changes.

mod common;

use std::time::{Duration, Instant};

use common::{Fleet, call, picks, picks_of, wait_ready};
use discovery::{Balance, Builder};

#[tokio::test]
async fn three_thousand_calls_spread_evenly_over_three_endpoints() {
    let fleet = Fleet::start(3, 0, Duration::from_secs(10)).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 3).await;

    // Eight callers at once, as a busy service would call.
    let mut callers = Vec::new();
    for _ in 0..8 {
        let channel = channel.clone();
        callers.push(tokio::spawn(async move {
            for _ in 0..375 {
                call(&channel).await.expect("call succeeds");
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }

    let counts = picks(&channel);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert_eq!(counts.iter().map(|(_, picks)| picks).sum::<u64>(), 3000);
    for (addr, picks) in &counts {
        assert!((900..=1100).contains(picks), "{addr} got {picks} of 3000: {counts:?}");
    }
}

#[tokio::test]
async fn least_requests_also_uses_every_endpoint() {
    let fleet = Fleet::start(3, 0, Duration::from_secs(10)).await;
    let channel = Builder::new(&fleet.target()).unwrap().balance(Balance::LeastRequests).connect().await.unwrap();
    wait_ready(&channel, 3).await;
    for _ in 0..300 {
        call(&channel).await.expect("call succeeds");
    }
    for (addr, picks) in picks(&channel) {
        assert!(picks >= 50, "{addr} got {picks} of 300");
    }
}

#[tokio::test]
async fn a_new_address_in_dns_gets_calls_within_ttl_and_a_removed_one_stops() {
    let ttl = Duration::from_secs(1);
    let mut fleet = Fleet::start(3, 1, ttl).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 3).await;

    // A fourth task starts and Cloud Map registers it.
    fleet.start_replica(3, &[]).await;
    fleet.register(3);
    let registered = Instant::now();
    let newcomer = fleet.addr(3);
    loop {
        call(&channel).await.expect("call succeeds");
        if picks_of(&channel, newcomer) > 0 {
            break;
        }
        assert!(registered.elapsed() < ttl + Duration::from_secs(4), "no call reached {newcomer} within TTL + 4 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // One task leaves DNS (its server still runs): once the channel has
    // resolved again (bounded as the newcomer was), no call reaches it.
    let leaving = fleet.addr(0);
    fleet.deregister(0);
    let deregistered = Instant::now();
    while channel.endpoints().iter().any(|status| status.addr == leaving) {
        assert!(
            deregistered.elapsed() < ttl + Duration::from_secs(4),
            "{leaving} still called TTL + 4 s after leaving"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = picks_of(&channel, leaving);
    for _ in 0..200 {
        call(&channel).await.expect("call succeeds");
    }
    assert_eq!(picks_of(&channel, leaving), before, "{leaving} left DNS but still got calls");
    assert!(channel.endpoints().iter().all(|status| status.addr != leaving));
}

#[tokio::test]
async fn srv_records_name_instances_on_different_ports() {
    use discovery::RecordKind;
    use local_dns::{DnsServer, Instance, Registry};
    use test_support::{Process, free_addr_on, loopback_ips, wait_serving, workspace_binary};

    let ips = loopback_ips(2);
    let addrs: Vec<_> = ips.iter().map(|ip| free_addr_on(*ip)).collect();
    let _servers: Vec<Process> = addrs
        .iter()
        .map(|addr| {
            let addr = addr.to_string();
            Process::start(workspace_binary("game-server", "game-server"), &["--grpc-addr", &addr], &[])
        })
        .collect();
    for addr in &addrs {
        wait_serving(*addr).await;
    }
    let registry = Registry::new();
    registry.define("srv.local", Duration::from_secs(5));
    registry.set_instances(
        "srv.local",
        addrs.iter().enumerate().map(|(index, addr)| Instance { id: format!("i{index}"), addr: *addr }).collect(),
    );
    let dns = DnsServer::start("127.0.0.1:0".parse().unwrap(), registry).await.unwrap();

    // The port in the target is overridden by each SRV record's port.
    let target = format!("dns://{}/srv.local:1", dns.addr());
    let channel = Builder::new(&target).unwrap().records(RecordKind::Srv).connect().await.unwrap();
    wait_ready(&channel, 2).await;
    for _ in 0..20 {
        call(&channel).await.expect("call succeeds");
    }
    let mut seen: Vec<_> = picks(&channel).into_iter().map(|(addr, picks)| (addr, picks > 0)).collect();
    seen.sort();
    let mut expected: Vec<_> = addrs.iter().map(|addr| (*addr, true)).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn every_answer_names_the_endpoint_that_served_it() {
    use contracts::rpc::{GetChampionRequest, rpc_client::RpcClient};

    let fleet = Fleet::start(2, 0, Duration::from_secs(10)).await;
    let channel = discovery::connect(&fleet.target()).await.expect("connect");
    wait_ready(&channel, 2).await;
    let mut client = RpcClient::new(channel.clone());
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    for id in [1, 1, 1, 1, 99, 99] {
        let served_by = match client.get_champion(GetChampionRequest { champion_id: id }).await {
            Ok(response) => response.metadata().get(discovery::SERVED_BY_HEADER).cloned(),
            Err(status) => status.metadata().get(discovery::SERVED_BY_HEADER).cloned(),
        };
        let served_by = served_by.expect("every answer names its endpoint").to_str().unwrap().to_owned();
        *seen.entry(served_by).or_default() += 1;
    }
    let from_picks: std::collections::BTreeMap<String, u64> =
        picks(&channel).into_iter().map(|(addr, picks)| (addr.to_string(), picks)).collect();
    assert_eq!(seen, from_picks, "the header agrees with the channel's own counts");
}

//! Autoscaling in `provision local`: `provision bench` loads game-server
//! from its minimum to more replicas, then goes on lightly while it scales
//! back in; `dig` follows the replicas in DNS and no call fails.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{LocalStack, PROVISION, healthy_count};

/// game-server from 1 replica up to 3, aiming at 25% of its 256 CPU units
/// (the load below takes a replica well past that; the light phase far
/// below), with its real drain (the default connection age).
fn stack_file(game_port: u16, ranking_port: u16) -> String {
    format!(
        r#"
app = "test-autoscaling"
namespace = "local"

[[service]]
name = "game-server"
port = {game_port}
count = 1
dns_ttl_secs = 1
max_connection_age_secs = 3
max_connection_age_grace_secs = 2
depends_on = ["ranking"]
[service.autoscaling]
min = 1
max = 3
cpu_percent = 25
[service.health_check]
interval_secs = 1
timeout_secs = 1
start_period_secs = 5

[[service]]
name = "ranking"
port = {ranking_port}
count = 1
dns_ttl_secs = 1
[service.health_check]
interval_secs = 1
timeout_secs = 1
start_period_secs = 5
"#
    )
}

/// `N wanted` on game-server's autoscaling line of the status.
fn wanted(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("game-server: autoscaling 1..=3, "))?;
    line.split(", ").nth(1)?.strip_suffix(" wanted")?.parse().ok()
}

#[tokio::test]
async fn load_scales_game_server_out_and_its_end_scales_it_back_in_failing_no_call() {
    // Windows and cooldowns ten times faster: 3 s / 6 s and 6 s / 12 s.
    let stack = LocalStack::start_until(stack_file, &["--autoscale-speedup", "10"], &[], |status| {
        healthy_count(status, "game-server") == 1 && healthy_count(status, "ranking") == 1
    })
    .await;
    assert_eq!(wanted(&stack.status()), Some(1), "{}", stack.status());
    assert_eq!(stack.dig("game-server").len(), 1);

    // 15 s of load, then 35 s of a trickle that sees the scale-in through.
    let bench = tokio::process::Command::new(PROVISION)
        .args(["bench", "game-server", "rpc.Rpc/GetChampion", "--data", r#"{"champion_id": 1}"#])
        .args(["--rate", "1000:15,20:35", "--concurrency", "64", "--output", "json"])
        .args(["--stack", stack.stack.to_str().unwrap(), "--dns-addr", &stack.dns.to_string()])
        .kill_on_drop(true)
        .output();
    let bench = tokio::spawn(bench);

    // DNS names more replicas while the load lasts.
    let mut most_in_dns = 0;
    let mut seen_in_dns = BTreeSet::new();
    while !bench.is_finished() {
        let addresses = stack.dig("game-server");
        most_in_dns = most_in_dns.max(addresses.len());
        seen_in_dns.extend(addresses);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let output = bench.await.unwrap().expect("provision bench runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let log = stack.process.output();

    assert!(most_in_dns >= 2, "dig saw at most {most_in_dns} replica(s) under load; runner:\n{log}");
    assert!(log.contains("game-server: scaled out 1 -> "), "{log}");
    assert_eq!(report["status"].as_object().unwrap().keys().collect::<Vec<_>>(), ["OK"], "no call failed: {report}");
    let errors_of_answering: Vec<u64> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|endpoint| endpoint["calls"].as_u64() > Some(0))
        .map(|endpoint| endpoint["errors"].as_u64().unwrap())
        .collect();
    assert!(errors_of_answering.len() >= 2, "new replicas took calls: {report}");
    assert!(errors_of_answering.iter().all(|errors| *errors == 0), "{report}");
    // Every address DNS named answered calls.
    let endpoints: BTreeSet<String> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| endpoint["address"].as_str().unwrap().split(':').next().unwrap().to_owned())
        .collect();
    assert!(seen_in_dns.is_subset(&endpoints), "DNS named {seen_in_dns:?}; calls reached {endpoints:?}");

    // And back to the minimum: one replica in DNS, the others drained.
    let status = stack
        .wait_for(|status| {
            wanted(status) == Some(1) && healthy_count(status, "game-server") == 1 && !status.contains("draining")
        })
        .await;
    assert!(stack.process.output().contains("game-server: scaled in "), "{}", stack.process.output());
    assert_eq!(stack.dig("game-server").len(), 1, "{status}");
}

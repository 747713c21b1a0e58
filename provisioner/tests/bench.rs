//! `provision bench` against a running local stack.

mod common;

use std::time::{Duration, Instant};

use common::{LocalStack, PROVISION};

fn bench(stack: &LocalStack, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(PROVISION)
        .arg("bench")
        .args(args)
        .args(["--stack", stack.stack.to_str().unwrap(), "--dns-addr", &stack.dns.to_string()])
        .args(["--control-socket", stack.control.to_str().unwrap()])
        .output()
        .expect("run provision bench");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn per_endpoint_counts_add_up_and_json_output_parses() {
    let stack = LocalStack::start("").await;
    let (code, stdout, stderr) = bench(
        &stack,
        &[
            "game-server",
            "rpc.Rpc/GetChampion",
            "--data",
            r#"{"champion_id": 1}"#,
            "--requests",
            "600",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    test_support::assert_matches_schema("bench", &report);
    assert_eq!(report["calls"], 600);
    assert_eq!(report["status"]["OK"], 600);
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3, "{report}");
    let sum: u64 = endpoints.iter().map(|endpoint| endpoint["calls"].as_u64().unwrap()).sum();
    assert_eq!(sum, 600, "per-endpoint calls add up to the total");
    let spread = report["spread"].as_f64().unwrap();
    assert!(spread < 1.2, "round robin spreads evenly: {spread}");
}

#[tokio::test]
async fn the_status_table_counts_not_found() {
    let stack = LocalStack::start("").await;
    let (code, stdout, stderr) =
        bench(&stack, &["game-server", "rpc.Rpc/GetChampion", "--data", r#"{"champion_id": 99}"#, "--requests", "90"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("status    NOT_FOUND 90"), "{stdout}");
    assert!(stdout.lines().filter(|line| line.starts_with("127.0.")).count() == 3, "{stdout}");
}

#[tokio::test]
async fn a_killed_replica_is_reported_before_and_after() {
    let stack = LocalStack::start("").await;
    let (code, stdout, stderr) = bench(
        &stack,
        &[
            "game-server",
            "rpc.Rpc/GetChampion",
            "-d",
            r#"{"champion_id": 1}"#,
            "--duration",
            "3s",
            "--concurrency",
            "4",
        ]
        .into_iter()
        .chain(["--chaos", "kill:game-server@1", "--output", "json"])
        .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    test_support::assert_matches_schema("bench", &report);
    let chaos = &report["chaos"];
    assert!(chaos["result"].as_str().unwrap().starts_with("killed game-server/"), "{chaos}");
    assert_eq!(chaos["failed_before"], 0);
    assert!(chaos["failed_after"].as_u64().unwrap() <= 4, "at most the calls in flight fail: {chaos}");
}

#[tokio::test]
async fn bad_methods_and_empty_targets_fail_clearly_within_the_deadline() {
    let stack = LocalStack::start("").await;
    let (code, _, stderr) = bench(&stack, &["game-server", "rpc.Rpc/Nope", "--requests", "1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("rpc.Rpc has no method \"Nope\""), "{stderr}");

    let (code, _, stderr) = bench(&stack, &["dns:///", "rpc.Rpc/GetChampion"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no host name"), "{stderr}");

    let nobody = format!("dns://{}/nobody.local:5000", stack.dns);
    let (code, _, stderr) = bench(&stack, &[&nobody, "rpc.Rpc/GetChampion"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("NXDOMAIN"), "{stderr}");

    // An address nobody serves: no endpoint ever gets ready.
    let dead = test_support::free_addr().to_string();
    let started = Instant::now();
    let (code, _, stderr) = bench(&stack, &[&dead, "rpc.Rpc/GetChampion", "--timeout-ms", "1000"]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&dead) && stderr.contains("no ready endpoint"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn open_loop_keeps_its_rate_and_direct_runs_compare() {
    let stack = LocalStack::start("").await;
    let replica = common::addresses(&stack.status(), "game-server").remove(0);
    let (code, stdout, stderr) = bench(
        &stack,
        &[
            "game-server",
            "rpc.Rpc/GetChampion",
            "--data",
            r#"{"champion_id": 1}"#,
            "--rate",
            "200",
            "--duration",
            "2",
            "--connections",
            "2",
            "--against-direct",
            &replica,
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    // 200 calls/s for 2 s: the schedule, not the answers, sets the count.
    let calls = report["calls"].as_u64().unwrap();
    assert!((380..=400).contains(&calls), "{calls} calls at 200/s for 2 s");
    assert_eq!(report["status"]["OK"], calls);
    let direct = &report["direct"];
    assert_eq!(direct["address"], replica.as_str());
    assert!(direct["calls_per_second"].as_f64().unwrap() > 0.0, "{direct}");
    assert!(direct["discovery_over_direct"].as_f64().unwrap() > 0.0, "{direct}");
}

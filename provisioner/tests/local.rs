//! `provision local` for real: the runner, its DNS server, the replicas and
//! the control endpoint, checked from the outside with a discovery client
//! (a real DNS client) and plain TCP.

mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{LocalStack, PROVISION, TlsFront, addresses, call_in_loop, collect, healthy_count};
use contracts::rpc::{GetChampionRequest, ReportMatchRequest, rpc_client::RpcClient};
use test_support::{Process, free_addr};

#[tokio::test]
async fn the_stack_answers_in_dns_and_serves_report_match_through_discovery() {
    // (ranking, the last service, with an ingress: the runner says how a
    // client of its load balancer is played locally.)
    let ingress = "[service.ingress]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/0abc\"\n";
    let stack = LocalStack::start(ingress).await;
    let status = stack.status();
    assert!(status.starts_with("ok\nSERVICE"), "{status}");
    let game_addresses = addresses(&status, "game-server");
    assert_eq!(game_addresses.len(), 3);
    assert!(game_addresses.iter().all(|addr| addr.ends_with(&format!(":{}", stack.game_port))), "{game_addresses:?}");

    let channel = stack.game_channel().await;
    let mut resolved: Vec<String> = channel.endpoints().iter().map(|status| status.addr.to_string()).collect();
    let mut expected = game_addresses.clone();
    resolved.sort();
    expected.sort();
    assert_eq!(resolved, expected, "DNS names exactly the healthy replicas");

    let mut client = RpcClient::new(channel.clone());
    for _ in 0..30 {
        client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("GetChampion");
    }
    assert!(
        channel.endpoints().iter().all(|status| status.picks > 0),
        "every replica served: {:?}",
        channel.endpoints()
    );

    // game-server -> ranking.local, found through the stack's DNS.
    let reported = client
        .report_match(ReportMatchRequest { user_id: "alice".into(), champion_id: 1, score: 42, ..Default::default() })
        .await
        .expect("ReportMatch end to end")
        .into_inner();
    assert_eq!((reported.daily_rank, reported.daily_score), (1, 42));

    // `provision call` shows the answer and the replica that gave it.
    let output = std::process::Command::new(PROVISION)
        .args(["call", "game-server", "rpc.Rpc/GetChampion", r#"{"champion_id": 1}"#])
        .args(["--stack", stack.stack.to_str().unwrap(), "--dns-addr", &stack.dns.to_string()])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(r#""name": "Akali""#), "{stdout}");
    let served_by =
        stderr.trim().strip_prefix("served by ").and_then(|rest| rest.split(' ').next()).unwrap_or_default();
    assert!(game_addresses.iter().any(|addr| addr == served_by), "{stderr}");

    let unknown = discovery::connect(&stack.target("nobody", 1)).await.expect_err("NXDOMAIN");
    assert!(unknown.to_string().contains("NXDOMAIN"), "{unknown}");

    // One replica's address, as the runner suggests for the ingress, answers
    // `provision call` directly.
    let log = stack.process.output();
    let line = log.lines().find(|line| line.contains("ranking: on AWS an internet-facing ALB")).expect(&log);
    let addr = line.split("provision call ").nth(1).and_then(|rest| rest.split(' ').next()).expect(line);
    assert!(addr.starts_with("127.0.2.2:"), "{line}");
    let output =
        std::process::Command::new(PROVISION).args(["call", addr, "ranking.v1.Ranking/GetTop", "{}"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Behind a TLS-terminating HTTP/2 proxy, as behind an ALB's HTTPS
    // listener: `provision call https://...` verifies the certificate's name
    // (a name other than the host called, as an ALB's DNS name is) and
    // calls through it; a wrong name is refused with TLS's reason.
    let front = TlsFront::start(addr, "ranking.test");
    let url = format!("https://{}", front.addr);
    let through = |server_name: &str| {
        std::process::Command::new(PROVISION)
            .args(["call", &url, "ranking.v1.Ranking/GetTop", r#"{"limit": 3}"#, "--server-name", server_name])
            .arg("--ca-cert")
            .arg(&front.ca)
            .output()
            .unwrap()
    };
    let output = through("ranking.test");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("served through {url}, TLS for ranking.test")), "{stderr}");
    let output = through("other.test");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("TLS, server name other.test") && stderr.contains("certificate"), "{stderr}");
}

#[tokio::test]
async fn a_killed_replica_leaves_dns_and_is_replaced_while_calls_go_on() {
    let stack = LocalStack::start("").await;
    let before = addresses(&stack.status(), "game-server");
    let channel = stack.game_channel().await;
    let stop = Arc::new(AtomicBool::new(false));
    let callers = 4;
    let tasks = call_in_loop(&channel, callers, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let answer = stack.control("kill game-server");
    assert!(answer.starts_with("ok\nkilled game-server/"), "{answer}");
    let killed = answer.split('(').nth(1).and_then(|rest| rest.split(',').next()).unwrap().to_owned();
    let status = stack.wait_for(|status| !addresses(status, "game-server").contains(&killed)).await;
    assert!(!addresses(&status, "game-server").contains(&killed));
    let status = stack.wait_for(|status| healthy_count(status, "game-server") == 3).await;
    assert!(status.contains("game-server: 1 replacement(s)"), "{status}");

    // The replacement has a new address, and takes calls.
    let new_addr =
        addresses(&status, "game-server").into_iter().find(|addr| !before.contains(addr)).expect("a new address");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let failures = collect(tasks).await;
    assert!(failures.len() <= callers, "at most the calls in flight on the killed replica fail: {failures:?}");
    let picks = channel.endpoints().iter().find(|e| e.addr.to_string() == new_addr).map_or(0, |e| e.picks);
    assert!(picks > 0, "the replacement {new_addr} takes calls: {:?}", channel.endpoints());
}

#[tokio::test]
async fn a_rolling_restart_under_steady_calls_fails_none() {
    let stack = LocalStack::start("").await;
    let before = addresses(&stack.status(), "game-server");
    let channel = stack.game_channel().await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = call_in_loop(&channel, 4, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let answer = stack.control("restart game-server");
    assert_eq!(answer, "ok\ngame-server: every replica replaced\n");
    let status =
        stack.wait_for(|status| healthy_count(status, "game-server") == 3 && !status.contains("draining")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let failures = collect(tasks).await;
    assert!(failures.is_empty(), "no call failed during the rolling restart: {failures:?}");
    let after = addresses(&status, "game-server");
    assert!(after.iter().all(|addr| !before.contains(addr)), "every replica is new: {before:?} -> {after:?}");
}

#[tokio::test]
async fn a_replica_failing_its_health_check_never_enters_dns() {
    let broken = r#"
[[service]]
name = "broken"
binary = "game-server"
port = PORT
count = 1
[service.health_check]
command = ["sh", "-c", "exit 1"]
interval_secs = 0.3
timeout_secs = 0.3
retries = 1
start_period_secs = 0
"#;
    // The replicas serve, but their health command always fails.
    let stack = LocalStack::start(&broken.replace("PORT", &free_addr().port().to_string())).await;
    let status = stack
        .wait_for(|status| status.contains("broken: 2 replacement(s)") || status.contains("broken: 3 replacement(s)"))
        .await;
    assert!(!status.lines().any(|line| line.starts_with("broken ") && line.contains(" yes ")), "{status}");
    let error = discovery::connect(&stack.target("broken", 1)).await.expect_err("never in DNS");
    assert!(error.to_string().contains("NXDOMAIN"), "{error}");
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind() {
    let mut stack = LocalStack::start("").await;
    let status = stack.status();
    let pids: Vec<u32> = status
        .lines()
        .filter(|line| line.starts_with("game-server ") || line.starts_with("ranking "))
        .filter_map(|line| line.split_whitespace().nth(5)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 5, "{status}");

    stack.process.terminate();
    let exit = stack.process.wait_exit(Duration::from_secs(40)).await.expect("provision exits");
    assert!(exit.success(), "{exit:?}");
    for pid in pids {
        assert!(!PathBuf::from(format!("/proc/{pid}")).exists(), "replica pid {pid} outlived the runner");
    }
    let output = stack.process.output();
    assert!(output.contains("deregistering every replica"), "{output}");
}

#[tokio::test]
async fn a_bad_stack_file_fails_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("provision-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = dir.join("stack.toml");
    std::fs::write(&stack, "[[service]]\nname = \"game\"\nport = 99999\n").unwrap();
    let mut process = Process::start(PROVISION, &["local", "--stack", stack.to_str().unwrap(), "--no-build"], &[]);
    let exit = process.wait_exit(Duration::from_secs(10)).await.expect("exits");
    assert_eq!(exit.code(), Some(1));
    let expected = format!("{}:3: service \"game\": port 99999 is outside 1..=65535", stack.display());
    assert!(process.output().contains(&expected), "{}", process.output());
    let _ = std::fs::remove_dir_all(dir);
}

/// A second `provision local` of an app that runs already refuses at once,
/// naming the first (its pid and control address), and the first goes on
/// serving untouched.
#[tokio::test]
async fn a_second_local_run_of_the_same_app_refuses_naming_the_first() {
    let stack = LocalStack::start("").await;
    let runtime = stack.stack.parent().unwrap().join("run");
    let (mut second, _, _) = common::launch_local(&stack.stack, &[], &[]);
    let exit = second.wait_exit(Duration::from_secs(10)).await.expect("the second run exits");
    assert_eq!(exit.code(), Some(1));
    let expected = format!(
        "app test-stack already runs here (provision local pid {}, control {})",
        stack.process.pid(),
        stack.control
    );
    assert!(second.output().contains(&expected), "{}", second.output());
    let lock = runtime.join("provision").join("test-stack.lock");
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
    };
    assert_eq!((mode(lock.parent().unwrap()), mode(&lock)), (0o700, 0o600));
    let status = stack.status();
    assert_eq!((healthy_count(&status, "game-server"), healthy_count(&status, "ranking")), (3, 2), "{status}");
}

/// A replica whose health check starts failing while its process lives
/// (here: its check command finds a flag for its address) is taken out of
/// DNS after `retries` failed checks, as dig sees, and replaced; the other
/// replica is not touched.
#[tokio::test]
async fn a_replica_that_turns_unhealthy_while_running_leaves_dns_and_is_replaced() {
    let flags = std::env::temp_dir().join(format!("provision-sick-{}-{}", std::process::id(), free_addr().port()));
    std::fs::create_dir_all(&flags).unwrap();
    let check = format!("command = [\"sh\", \"-c\", \"test ! -e {}/sick-$GRPC_ADDR\"]\n", flags.display());
    let stack = LocalStack::start_from(
        |game, ranking| {
            common::stack_file(game, ranking, "").replacen(
                "dns_ttl_secs = 1\n[service.health_check]\n",
                &format!("dns_ttl_secs = 1\n[service.health_check]\n{check}"),
                2,
            )
        },
        &[],
        &[],
        2,
    )
    .await;
    let before = stack.dig("ranking");
    assert_eq!(before.len(), 2, "{before:?}");
    let sick = addresses(&stack.status(), "ranking")[0].clone();
    let healthy_one = addresses(&stack.status(), "ranking")[1].clone();
    std::fs::write(flags.join(format!("sick-{sick}")), "").unwrap();

    let ip = sick.rsplit_once(':').unwrap().0.to_owned();
    let started = std::time::Instant::now();
    while stack.dig("ranking").contains(&ip) {
        assert!(started.elapsed() < Duration::from_secs(20), "{sick} still in DNS: {}", stack.process.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = stack.process.output();
    assert!(output.contains("health check failed (2/2)") && output.contains("unhealthy: removed from DNS"), "{output}");
    assert!(stack.dig("ranking").contains(&healthy_one.rsplit_once(':').unwrap().0.to_owned()));
    std::fs::remove_dir_all(&flags).unwrap();
    stack.wait_for(|status| healthy_count(status, "ranking") == 2).await;
    let started = std::time::Instant::now();
    while stack.dig("ranking").len() != 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "no replacement in DNS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

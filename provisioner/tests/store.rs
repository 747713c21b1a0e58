//! The stack's store in `provision local`: a real `redis-server` that every
//! ranking replica shares, kept across a replica's crash, the store's own
//! crash and a restart of the whole stack; `--fresh` empties it; without
//! `redis-server` the stack still starts, with one ranking replica.

mod common;

use std::{os::unix::fs::PermissionsExt as _, path::PathBuf, time::Duration};

use common::{LocalStack, TempDir, addresses};
use contracts::{
    ranking::v1::{Board, GetTopRequest, Period, ranking_client::RankingClient},
    rpc::{ReportMatchRequest, rpc_client::RpcClient},
};
use test_support::free_addr;

/// A store on a free port, used by the ranking service.
fn with_store(port: u16) -> String {
    format!("[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\nport = {port}\n")
}

fn data_dir() -> (TempDir, String) {
    let dir = std::env::temp_dir().join(format!("provision-store-{}-{}", std::process::id(), free_addr().port()));
    (TempDir::new(dir.clone()), dir.to_str().unwrap().to_owned())
}

/// The daily board as every ranking replica answers it: (user, score) in
/// rank order, one list per replica.
async fn boards(stack: &LocalStack) -> Vec<Vec<(String, i64)>> {
    try_boards(stack).await.expect("GetTop")
}

async fn try_boards(stack: &LocalStack) -> Result<Vec<Vec<(String, i64)>>, tonic::Status> {
    let mut boards = Vec::new();
    for addr in addresses(&stack.status(), "ranking") {
        let mut client = RankingClient::connect(format!("http://{addr}")).await.expect("ranking replica");
        let board = Some(Board { period: Period::Daily as i32, date: String::new() });
        let top = client.get_top(GetTopRequest { board, limit: 10 }).await?.into_inner();
        boards.push(top.entries.into_iter().map(|entry| (entry.user_id, entry.score)).collect());
    }
    Ok(boards)
}

fn store_line(status: &str) -> String {
    status.lines().find(|line| line.starts_with("board ")).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_ranking_replica_shares_one_store_that_outlives_crashes_and_restarts() {
    let port = free_addr().port();
    let (_data, data) = data_dir();
    let extra = with_store(port);
    let mut stack = LocalStack::start_with(&extra, &["--data-dir", &data], &[], 2).await;
    let line = store_line(&stack.status());
    assert!(line.contains(&format!("127.0.3.2:{port}")) && line.contains(" healthy "), "{line}");
    // Only its user reaches its data and its password; without the password
    // it answers nothing but NOAUTH; the password is printed nowhere.
    let store_dir = PathBuf::from(&data).join("test-stack").join("board");
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store_dir), 0o700, "{}", store_dir.display());
    assert_eq!(mode(&store_dir.join("provision.conf")), 0o600);
    let config = std::fs::read_to_string(store_dir.join("provision.conf")).unwrap();
    let password = config.trim().strip_prefix("requirepass ").expect("a password").to_owned();
    let refused = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut anonymous = tokio::net::TcpStream::connect(format!("127.0.3.2:{port}")).await.unwrap();
        anonymous.write_all(b"PING\r\n").await.unwrap();
        let mut answer = [0u8; 128];
        let read = anonymous.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..read]).into_owned()
    };
    assert!(refused.starts_with("-NOAUTH"), "{refused}");
    assert!(!stack.process.output().contains(&password) && !stack.status().contains(&password));

    // Two scores, each through a different game-server replica.
    let game = addresses(&stack.status(), "game-server");
    for (addr, user, score) in [(&game[0], "alice", 300), (&game[1], "bob", 500)] {
        let mut client = RpcClient::connect(format!("http://{addr}")).await.unwrap();
        client
            .report_match(ReportMatchRequest { user_id: user.into(), champion_id: 1, score, ..Default::default() })
            .await
            .expect("ReportMatch");
    }
    let expected = vec![("bob".to_owned(), 500), ("alice".to_owned(), 300)];
    assert_eq!(boards(&stack).await, vec![expected.clone(); 2], "one board, in order, on every replica");

    // A ranking replica's crash loses nothing.
    let killed = stack.control("kill ranking");
    assert!(killed.starts_with("ok\nkilled"), "{killed}");
    let gone = killed.split(['(', ',']).nth(1).expect("the killed replica's address").to_owned();
    stack.wait_for(|status| common::healthy_count(status, "ranking") == 2 && !status.contains(&gone)).await;
    assert_eq!(boards(&stack).await, vec![expected.clone(); 2]);

    // Nor does the store's own: it is restarted with its append-only file.
    let before = store_line(&stack.status());
    let killed = stack.control("kill board");
    assert!(killed.starts_with("ok\nkilled board/redis"), "{killed}");
    stack
        .wait_for(|status| {
            let line = store_line(status);
            line.contains(" healthy ") && line != before && status.contains("board: 1 replacement(s)")
        })
        .await;
    let started = std::time::Instant::now();
    loop {
        // The replicas' connections find the new process by themselves (a
        // call on a connection that broke fails UNAVAILABLE meanwhile).
        let answers = try_boards(&stack).await;
        if answers.as_ref().is_ok_and(|answers| *answers == vec![expected.clone(); 2]) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "after the store restarted: {answers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Ctrl-C stops the store last, and a new run finds the boards.
    stack.process.interrupt();
    assert!(stack.process.wait_exit(Duration::from_secs(40)).await.expect("provision exits").success());
    let output = stack.process.output();
    let (ranking_stopped, store_stopped) =
        (output.find("provision | ranking stopped"), output.find("provision | board stopped"));
    assert!(ranking_stopped.is_some() && store_stopped > ranking_stopped, "{output}");
    let stack = LocalStack::start_with(&extra, &["--data-dir", &data], &[], 2).await;
    assert_eq!(boards(&stack).await, vec![expected; 2], "kept across runs");
    drop(stack);

    let stack = LocalStack::start_with(&extra, &["--data-dir", &data, "--fresh"], &[], 2).await;
    assert_eq!(boards(&stack).await, vec![Vec::<(String, i64)>::new(); 2], "--fresh starts empty");
}

#[tokio::test]
async fn without_redis_server_the_stack_starts_with_one_ranking_replica_and_says_so() {
    let (_data, data) = data_dir();
    let empty_path = std::env::temp_dir().join("provision-no-redis-here");
    let extra = with_store(free_addr().port());
    let stack =
        LocalStack::start_with(&extra, &["--data-dir", &data], &[("PATH", empty_path.to_str().unwrap())], 1).await;
    let output = stack.process.output();
    assert!(output.contains("redis-server is not on PATH"), "{output}");
    assert!(output.contains("ranking: runs as 1 replica instead of 2"), "{output}");
    assert_eq!(addresses(&stack.status(), "ranking").len(), 1);
    assert!(store_line(&stack.status()).is_empty(), "no store member");
    let mut client =
        RpcClient::connect(format!("http://{}", addresses(&stack.status(), "game-server")[0])).await.unwrap();
    let reported = client
        .report_match(ReportMatchRequest { user_id: "alice".into(), champion_id: 1, score: 7, ..Default::default() })
        .await
        .expect("ReportMatch on the memory store")
        .into_inner();
    assert_eq!(reported.daily_rank, 1);
    assert!(!PathBuf::from(&data).join("test-stack").exists(), "no data directory without a store");
}

/// A store whose address another process holds is not started and not
/// taken for this stack's: one line names the address and that process.
#[tokio::test]
async fn a_store_whose_address_is_taken_names_the_process_holding_it() {
    let port = free_addr().port();
    let taken = std::net::TcpListener::bind(("127.0.3.2", port)).unwrap();
    let (_data, data) = data_dir();
    let dir = PathBuf::from(&data);
    std::fs::create_dir_all(&dir).unwrap();
    let stack = dir.join("stack.toml");
    std::fs::write(&stack, common::stack_file(free_addr().port(), free_addr().port(), &with_store(port))).unwrap();
    let (mut process, _, _) = common::launch_local(&stack, &["--data-dir", &data], &[]);
    let expected = format!("127.0.3.2:{port} is already in use by pid {} (", std::process::id());
    let started = std::time::Instant::now();
    while !process.output().contains(&expected) {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", process.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!process.output().contains("board/redis healthy"), "{}", process.output());
    process.interrupt();
    let _ = process.wait_exit(Duration::from_secs(40)).await;
    drop(taken);
}

//! A failover as ElastiCache makes one, with real Redis servers: a primary
//! and its replica behind one address (a forwarder standing in for the
//! primary endpoint's DNS name), then Redis's own `FAILOVER`: the primary
//! pauses writes, its replica catches up and takes over, the old primary
//! becomes its replica; the address moves to the new primary. The store's
//! connection made before still reaches the old primary, which answers
//! every write with READONLY: the store must reconnect and run the write
//! again. Every submission is retried by its caller with its id until it
//! is acknowledged, so each user's SUM ends at exactly the number of their
//! submissions: none lost, none counted twice.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ranking::{
    board::{BoardId, Period, Policy},
    date::Date,
    store::{BoardWrite, RankOn, Store},
};
use test_support::RedisServer;
use tokio::net::{TcpListener, TcpStream};

const USERS: usize = 8;
const SUBMISSIONS: usize = 60;

/// Forwards every connection to the address it holds when the connection
/// is made; moving it leaves earlier connections where they were, as a
/// DNS change does.
async fn forwarder(target: Arc<Mutex<SocketAddr>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let to = *target.lock().unwrap();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

async fn command(server: &RedisServer, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

async fn info(server: &RedisServer, section: &str) -> String {
    match command(server, &["INFO", section]).await {
        redis::Value::VerbatimString { text, .. } => text,
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        other => panic!("INFO answered {other:?}"),
    }
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_loses_no_acknowledged_submission_and_counts_none_twice() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let primary_port = primary.addr().port().to_string();
    command(&replica, &["REPLICAOF", "127.0.0.1", &primary_port]).await;
    until("the replica in sync", async || info(&replica, "replication").await.contains("master_link_status:up")).await;

    let target = Arc::new(Mutex::new(primary.addr()));
    let endpoint = forwarder(Arc::clone(&target)).await;
    let store = Store::open(&format!("redis://{endpoint}"), Duration::from_secs(2)).await.unwrap();
    let now = std::time::SystemTime::now();
    let board = BoardId::containing(Period::AllTime, Date::at(now));
    let writes = vec![BoardWrite::new(board, Policy::Sum, now, Duration::from_secs(3600))];

    let submitting: Vec<_> = (0..USERS)
        .map(|user| {
            let (store, writes) = (store.clone(), writes.clone());
            tokio::spawn(async move {
                let user_id = format!("user{user}");
                for index in 0..SUBMISSIONS {
                    let id = format!("{user_id}-{index}");
                    let mut tries = 0;
                    // The caller retries what it got no answer for, with its id.
                    while store.submit_once(&writes, &user_id, 1, RankOn::NONE, &id).await.is_err() {
                        tries += 1;
                        assert!(tries < 200, "{id} never acknowledged");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    // Part way through: Redis's own failover, then the address moves.
    until("submissions under way", async || {
        let client = redis::Client::open(primary.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let total: u64 = redis::cmd("ZCARD").arg(board.key()).query_async(&mut connection).await.unwrap();
        total as usize >= USERS
    })
    .await;
    command(&primary, &["FAILOVER"]).await;
    until("the old primary a replica", async || info(&primary, "replication").await.contains("role:slave")).await;
    *target.lock().unwrap() = replica.addr();

    for task in submitting {
        task.await.unwrap();
    }
    let client = redis::Client::open(replica.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(board.key())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(scores.len(), USERS, "{scores:?}");
    for (user, composite) in scores {
        assert_eq!(ranking::score::decode(composite), SUBMISSIONS as i64, "{user}: every submission once");
    }
    // The old connection met READONLY: the path under test was taken.
    let errors = info(&primary, "errorstats").await;
    assert!(errors.contains("errorstat_READONLY"), "{errors}");
}

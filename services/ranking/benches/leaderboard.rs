//! The ranking service on Redis with a large board: submits/s through gRPC,
//! GetTop(100) and GetRank latency, beside `redis-benchmark` ZADD on the same
//! Redis in the same run.
//!
//! Run: `cargo build --release -p ranking && cargo bench -p ranking`
//! Env: BENCH_USERS (default 1000000), BENCH_CONCURRENCY (default 32),
//! BENCH_SECS (per measurement, default 5).

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use contracts::ranking::v1::{
    Board, GetRankRequest, GetTopRequest, Score, SubmitScoreRequest, SubmitScoresRequest, ranking_client::RankingClient,
};
use test_support::{Process, RedisServer, free_addr, wait_serving, workspace_binary};
use tonic::transport::Channel;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A cheap deterministic spread of scores and user ids.
fn mix(index: u64) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

/// Runs `call` from `concurrency` tasks for `duration`; returns calls/s and
/// the sorted latencies.
async fn load<F, Fut>(concurrency: u64, duration: Duration, call: F) -> (f64, Vec<Duration>)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (stop, counter, call) = (Arc::clone(&stop), Arc::clone(&counter), call.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let index = counter.fetch_add(1, Ordering::Relaxed);
                    let begun = Instant::now();
                    call(index).await;
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn redis_benchmark_zadd(redis: &RedisServer, requests: u64, concurrency: u64) -> Option<f64> {
    let output = Command::new("redis-benchmark")
        .args(["-h", &redis.addr().ip().to_string(), "-p", &redis.addr().port().to_string()])
        .args(["-n", &requests.to_string(), "-c", &concurrency.to_string(), "-t", "zadd", "--csv", "-r", "1000000"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps",...: the first data line's second field.
    let line = text.lines().find(|line| line.starts_with("\"ZADD"))?;
    line.split(',').nth(1)?.trim_matches('"').parse().ok()
}

#[tokio::main]
async fn main() {
    let users = env_or("BENCH_USERS", 1_000_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let duration = Duration::from_secs(env_or("BENCH_SECS", 5));

    let redis = RedisServer::start();
    let addr = free_addr();
    let addr_flag = addr.to_string();
    let store = redis.url();
    let _server = Process::start(
        workspace_binary("ranking", "ranking"),
        &["--grpc-addr", &addr_flag, "--store", &store, "--log-level", "warn", "--store-timeout-ms", "5000"],
        &[],
    );
    wait_serving(addr).await;
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let client = RankingClient::new(channel);

    // Load the board with SubmitScores batches.
    let started = Instant::now();
    let batches = users.div_ceil(1000);
    let next = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..8)
        .map(|_| {
            let (mut client, next) = (client.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let batch = next.fetch_add(1, Ordering::Relaxed);
                    if batch >= batches {
                        break;
                    }
                    let scores = (batch * 1000..((batch + 1) * 1000).min(users))
                        .map(|user| Score { user_id: format!("user{user}"), score: (mix(user) % 1_000_000) as i64 })
                        .collect();
                    client.submit_scores(SubmitScoresRequest { scores }).await.expect("batch accepted");
                }
            })
        })
        .collect();
    for loader in loaders {
        loader.await.unwrap();
    }
    let load_rate = users as f64 / started.elapsed().as_secs_f64();
    println!(
        "loaded {users} users in {:.1} s: {load_rate:.0} submits/s (SubmitScores, batches of 1000)",
        started.elapsed().as_secs_f64()
    );

    let submit_client = client.clone();
    let (submit_rate, submit_latencies) = load(concurrency, duration, move |index| {
        let mut client = submit_client.clone();
        async move {
            let user = mix(index) % users;
            client
                .submit_score(SubmitScoreRequest {
                    user_id: format!("user{user}"),
                    score: (mix(index + 7) % 1_000_000) as i64,
                })
                .await
                .expect("submit");
        }
    })
    .await;

    let top_client = client.clone();
    let (top_rate, top_latencies) = load(concurrency, duration, move |_| {
        let mut client = top_client.clone();
        async move {
            let top = client
                .get_top(GetTopRequest { board: Some(Board { period: 1, date: String::new() }), limit: 100 })
                .await
                .expect("top");
            assert_eq!(top.into_inner().entries.len(), 100);
        }
    })
    .await;

    let rank_client = client.clone();
    let (rank_rate, rank_latencies) = load(concurrency, duration, move |index| {
        let mut client = rank_client.clone();
        async move {
            let user = mix(index + 13) % users;
            client
                .get_rank(GetRankRequest {
                    board: Some(Board { period: 1, date: String::new() }),
                    user_id: format!("user{user}"),
                })
                .await
                .expect("rank");
        }
    })
    .await;

    let zadd = redis_benchmark_zadd(&redis, 200_000, concurrency);

    println!(
        "\n{users} users on the daily board, {concurrency} concurrent callers, {} s per measurement",
        duration.as_secs()
    );
    for (name, rate, latencies) in [
        ("SubmitScore", submit_rate, &submit_latencies),
        ("GetTop(100)", top_rate, &top_latencies),
        ("GetRank", rank_rate, &rank_latencies),
    ] {
        println!(
            "{name:<12} {rate:>9.0} calls/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            percentile(latencies, 0.50).as_secs_f64() * 1e3,
            percentile(latencies, 0.99).as_secs_f64() * 1e3
        );
    }
    match zadd {
        Some(zadd) => {
            println!("redis-benchmark ZADD {zadd:>9.0} requests/s (same Redis, -c {concurrency})");
            println!(
                "SubmitScore / ZADD = {:.3}   (one SubmitScore updates 4 boards in one script)",
                submit_rate / zadd
            );
        }
        None => println!("redis-benchmark not found or gave no ZADD figure"),
    }
}

//! The ranking service on Redis with a large board: submits/s through gRPC,
//! GetTop(100) and GetRank latency, what Redis did per call (INFO
//! commandstats), beside `redis-benchmark` and the original backend's ioredis
//! loop on the same Redis in the same run.
//!
//! SubmitScore is loaded twice: through the `discovery` channel, as
//! game-server calls the ranking, and from a light client ([`raw_h2`]: the
//! seed loop's 200,000 random users and 50 in flight, as prebuilt HTTP/2
//! requests), which leaves the server and Redis the CPU a tonic client would
//! take on this 2-core machine.
//!
//! Run: `cargo bench -p ranking --bench leaderboard`
//! Env: BENCH_USERS (default 1000000), BENCH_CONCURRENCY (default 32),
//! BENCH_SECS (per measurement, default 5), IOREDIS_NODE_PATH (a
//! node_modules with ioredis, for the seed loop: `npm install --prefix DIR
//! ioredis`), RANKING_BIN (another build of the `ranking` binary to measure,
//! e.g. an earlier commit's, for a before and after in one session).

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use contracts::ranking::v1::{
    Board, GetRankRequest, GetTopRequest, Periods, Profile, Score, SetProfileRequest, SubmitScoreRequest,
    SubmitScoresRequest, ranking_client::RankingClient,
};
use test_support::{Process, RedisServer, free_addr, wait_serving, workspace_binary};

mod raw_h2;

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

/// Runs `redis-cli` against `redis` with `args`; its output, or `None`
/// when redis-cli is missing.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", &redis.addr().ip().to_string(), "-p", &redis.addr().port().to_string()])
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What Redis did per call of a phase: `INFO commandstats` read after a
/// `CONFIG RESETSTAT`, each command's calls and microseconds divided by the
/// phase's calls, busiest first.
fn commandstats_per_call(redis: &RedisServer, calls: usize) -> Vec<(String, f64, f64)> {
    let Some(info) = redis_cli(redis, &["INFO", "commandstats"]) else { return Vec::new() };
    let mut stats: Vec<(String, f64, f64)> = info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields.split(',').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('=')?.parse::<f64>().ok())
            };
            let per_call = |value: f64| value / calls.max(1) as f64;
            Some((name.to_owned(), per_call(field("calls")?), per_call(field("usec")?)))
        })
        .filter(|(name, _, _)| !matches!(name.as_str(), "config" | "info" | "slowlog"))
        .collect();
    stats.sort_by(|a, b| b.2.total_cmp(&a.2));
    stats
}

/// The CPU seconds Redis has used (`INFO cpu`, user and system): what a
/// call costs Redis in all, reading and writing its sockets included, which
/// `INFO commandstats` leaves out.
fn redis_cpu_secs(redis: &RedisServer) -> f64 {
    let info = redis_cli(redis, &["INFO", "cpu"]).unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| *name == "used_cpu_user" || *name == "used_cpu_sys")
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// The CPU seconds process `pid` has used, user and system, from
/// `/proc/PID/stat` (in USER_HZ, 100 per second on Linux); `None` elsewhere.
fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Prints what the ranking server spent per call of a phase of `calls`
/// calls that began when it had used `before` CPU seconds.
fn print_server_cpu(pid: u32, phase: &str, calls: usize, before: Option<f64>) {
    if let (Some(before), Some(after)) = (before, process_cpu_secs(pid)) {
        println!("  ranking server per {phase}: {:.1} us of CPU", (after - before) * 1e6 / calls.max(1) as f64);
    }
}

/// Clears Redis's command statistics and slow log before a phase; the CPU
/// Redis has used so far, for [`print_redis_profile`].
fn reset_redis_stats(redis: &RedisServer) -> f64 {
    redis_cli(redis, &["CONFIG", "RESETSTAT"]);
    redis_cli(redis, &["SLOWLOG", "RESET"]);
    redis_cpu_secs(redis)
}

/// Prints the Redis profile of a phase of `calls` calls that began when
/// Redis had used `cpu_before` CPU seconds.
fn print_redis_profile(redis: &RedisServer, phase: &str, calls: usize, cpu_before: f64) {
    let cpu_per_call = (redis_cpu_secs(redis) - cpu_before) * 1e6 / calls.max(1) as f64;
    let stats = commandstats_per_call(redis, calls);
    // A script's or a transaction's time includes the commands run inside it.
    let wrapper = |name: &str| name.starts_with("eval") || name == "exec";
    let total: f64 = stats.iter().filter(|(name, _, _)| !wrapper(name)).map(|(_, _, usec)| usec).sum();
    println!("  Redis per {phase}: {cpu_per_call:.1} us of CPU (INFO cpu)");
    println!(
        "  Redis per {phase} (INFO commandstats): {total:.1} us in the commands themselves, in scripts and transactions too"
    );
    for (name, per_call, usec) in &stats {
        println!("    {name:<12} {per_call:>6.2} calls   {usec:>6.2} us");
    }
    let slow = redis_cli(redis, &["SLOWLOG", "LEN"]).unwrap_or_default();
    println!("  SLOWLOG entries over 1 ms: {}", slow.trim());
}

/// The original backend's loop (`benches/seed_loop.js`, ioredis, one ZADD
/// per update and board, 200,000 users, 50 in flight) on the same Redis; its
/// updates/s, or why not.
fn seed_loop(redis: &RedisServer, boards: u32) -> Result<f64, String> {
    let Ok(modules) = std::env::var("IOREDIS_NODE_PATH") else {
        return Err("set IOREDIS_NODE_PATH to a node_modules holding ioredis to run it".into());
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/seed_loop.js");
    let output = Command::new("node")
        .arg(&script)
        .args([redis.addr().ip().to_string(), redis.addr().port().to_string()])
        .args(["200000", "200000", "50", &boards.to_string()])
        .env("NODE_PATH", modules)
        .output()
        .map_err(|error| format!("node: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split("\"rate\":")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches(|c: char| c == '}' || c.is_whitespace()).parse().ok())
        .ok_or_else(|| format!("seed loop said: {text}{}", String::from_utf8_lossy(&output.stderr)))
}

/// What redis-benchmark reported for one test.
struct BenchmarkFigures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `redis-benchmark --csv` with `args` on `redis`; the figures of the
/// test whose name starts with `test`.
fn redis_benchmark(redis: &RedisServer, args: &[&str], test: &str) -> Option<BenchmarkFigures> {
    let output = Command::new("redis-benchmark")
        .args(["-h", &redis.addr().ip().to_string(), "-p", &redis.addr().port().to_string(), "--csv"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",...
    let line = text.lines().find(|line| line.trim_start_matches('"').starts_with(test))?;
    let fields: Vec<f64> = line.split(',').skip(1).filter_map(|field| field.trim_matches('"').parse().ok()).collect();
    Some(BenchmarkFigures { rate: *fields.first()?, p50_ms: *fields.get(3)?, p99_ms: *fields.get(5)? })
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
    let binary = std::env::var_os("RANKING_BIN").map_or_else(|| workspace_binary("ranking", "ranking"), Into::into);
    let server = Process::start(
        binary,
        &["--grpc-addr", &addr_flag, "--store", &store, "--log-level", "warn", "--store-timeout-ms", "5000"],
        &[],
    );
    wait_serving(addr).await;
    // The discovery channel, as game-server calls the ranking: it re-sends a
    // call that raced a connection's age-out GOAWAY, where a plain tonic
    // Channel fails it (`Cancelled: connection closed`).
    let channel = discovery::connect(&format!("http://{addr}")).await.expect("connect");
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

    let daily = || Some(Board { period: 1, date: String::new() });
    redis_cli(&redis, &["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);

    // SubmitScore as a caller that shows every rank, and as ReportMatch
    // calls it (the daily rank only).
    let mut submits = Vec::new();
    for (name, rank_periods) in
        [("SubmitScore", None), ("SubmitScore (daily rank)", Some(Periods { periods: vec![1] }))]
    {
        let cpu_before = reset_redis_stats(&redis);
        let server_before = process_cpu_secs(server.pid());
        let submit_client = client.clone();
        let (rate, latencies) = load(concurrency, duration, move |index| {
            let mut client = submit_client.clone();
            let rank_periods = rank_periods.clone();
            async move {
                let user = mix(index) % users;
                client
                    .submit_score(SubmitScoreRequest {
                        user_id: format!("user{user}"),
                        score: (mix(index + 7) % 1_000_000) as i64,
                        rank_periods,
                        ..Default::default()
                    })
                    .await
                    .expect("submit");
            }
        })
        .await;
        print_server_cpu(server.pid(), name, latencies.len(), server_before);
        print_redis_profile(&redis, name, latencies.len(), cpu_before);
        submits.push((name, rate, latencies));
    }

    // The seed loop's shape from a light client: 200,000 random users, 50
    // in flight, each call asking for the daily rank as ReportMatch does.
    let bodies = (0..200_000u64)
        .map(|index| {
            raw_h2::frame(&SubmitScoreRequest {
                user_id: format!("user{}", mix(index + 1_000_003) % users),
                score: (mix(index + 29) % 1_000_000) as i64,
                rank_periods: Some(Periods { periods: vec![1] }),
                // ReportMatch names every submission.
                submission_id: format!("m{index}"),
            })
        })
        .collect();
    let cpu_before = reset_redis_stats(&redis);
    let server_before = process_cpu_secs(server.pid());
    let light = "SubmitScore (daily rank), light client";
    let (rate, latencies) =
        tokio::task::block_in_place(|| raw_h2::run(addr, "/ranking.v1.Ranking/SubmitScore", bodies, 1, 50));
    print_server_cpu(server.pid(), light, latencies.len(), server_before);
    print_redis_profile(&redis, light, latencies.len(), cpu_before);
    submits.push((light, rate, latencies));

    // Profiles for everyone GetTop can show, so its answers carry them.
    let mut setter = client.clone();
    let top = setter.get_top(GetTopRequest { board: daily(), limit: 1000 }).await.expect("top").into_inner();
    for entry in &top.entries {
        let profile = Profile { name: format!("Player {}", entry.user_id), grade: (entry.rank % 10) as i32 };
        setter
            .set_profile(SetProfileRequest { user_id: entry.user_id.clone(), profile: Some(profile) })
            .await
            .expect("profile");
    }

    let cpu_before = reset_redis_stats(&redis);
    let top_client = client.clone();
    let (top_rate, top_latencies) = load(concurrency, duration, move |_| {
        let mut client = top_client.clone();
        async move {
            let top = client.get_top(GetTopRequest { board: daily(), limit: 100 }).await.expect("top");
            let entries = top.into_inner().entries;
            assert_eq!(entries.len(), 100);
            assert!(entries.iter().all(|entry| entry.profile.is_some()), "every entry has its profile");
        }
    })
    .await;
    print_redis_profile(&redis, "GetTop(100)", top_latencies.len(), cpu_before);

    let unloaded_client = client.clone();
    let (_, unloaded_top_latencies) = load(1, duration, move |_| {
        let mut client = unloaded_client.clone();
        async move {
            client.get_top(GetTopRequest { board: daily(), limit: 100 }).await.expect("top");
        }
    })
    .await;

    let rank_client = client.clone();
    let (rank_rate, rank_latencies) = load(concurrency, duration, move |index| {
        let mut client = rank_client.clone();
        async move {
            let user = mix(index + 13) % users;
            client.get_rank(GetRankRequest { board: daily(), user_id: format!("user{user}") }).await.expect("rank");
        }
    })
    .await;

    let board_key = redis_cli(&redis, &["--scan", "--pattern", "{ranking}:daily:*"]).unwrap_or_default();
    let zrevrange = redis_benchmark(
        &redis,
        &["-n", "5000", "-c", "1", "ZREVRANGE", board_key.trim(), "0", "99", "WITHSCORES"],
        "ZREVRANGE",
    );
    let zadd = redis_benchmark(&redis, &["-n", "200000", "-c", "50", "-t", "zadd", "-r", "1000000"], "ZADD");
    let seed = seed_loop(&redis, 1);
    let seed_four_boards = seed_loop(&redis, 4);

    println!(
        "\n{users} users on the daily board, {concurrency} concurrent callers, {} s per measurement",
        duration.as_secs()
    );
    let reads = [("GetTop(100)", top_rate, top_latencies), ("GetRank", rank_rate, rank_latencies)];
    for (name, rate, latencies) in submits.iter().chain(reads.iter()) {
        println!(
            "{name:<25} {rate:>9.0} calls/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            percentile(latencies, 0.50).as_secs_f64() * 1e3,
            percentile(latencies, 0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "GetTop(100) with profiles, one call at a time: p50 {:.2} ms   p99 {:.2} ms   ({} calls)",
        percentile(&unloaded_top_latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&unloaded_top_latencies, 0.99).as_secs_f64() * 1e3,
        unloaded_top_latencies.len()
    );
    match zrevrange {
        Some(figures) => println!(
            "redis-benchmark ZREVRANGE 0 99 WITHSCORES, one at a time: p50 {:.2} ms   p99 {:.2} ms",
            figures.p50_ms, figures.p99_ms
        ),
        None => println!("redis-benchmark not found or gave no ZREVRANGE figure"),
    }
    match zadd {
        Some(figures) => println!("redis-benchmark ZADD {:>9.0} requests/s (same Redis, -c 50)", figures.rate),
        None => println!("redis-benchmark not found or gave no ZADD figure"),
    }
    for (boards, seed) in [(1, seed), (4, seed_four_boards)] {
        match seed {
            Ok(rate) => {
                println!("seed loop (ioredis, {boards} board(s): a ZADD each per update) {rate:>9.0} updates/s");
                for (name, submit_rate, _) in &submits {
                    println!("  {name} / seed loop = {:.2}", submit_rate / rate);
                }
            }
            Err(why) => println!("seed loop not run: {why}"),
        }
    }
}

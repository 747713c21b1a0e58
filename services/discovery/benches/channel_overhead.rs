//! What discovery costs per call: unary GetChampion calls/s through a plain
//! tonic `Channel` to one server against a `DiscoveryChannel` to the same
//! server, alternating in one run so that both see the same machine.
//!
//! Run: `cargo build --release -p game-server && cargo bench -p discovery`
//! Options (env): BENCH_SECS (per round, default 3), BENCH_ROUNDS (default
//! 3), BENCH_CONCURRENCY (default 32).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use contracts::rpc::{GetChampionRequest, rpc_client::RpcClient};
use test_support::{Process, free_addr, wait_serving, workspace_binary};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// CPU time this process has used (user + system), all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Calls per second from `concurrency` callers for `duration`, and the
/// client's CPU time per call.
async fn measure<T>(client: RpcClient<T>, concurrency: u64, duration: Duration) -> (f64, Duration)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = cpu_time();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = client.clone();
            let (stop, calls) = (Arc::clone(&stop), Arc::clone(&calls));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("call succeeds");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let calls = calls.load(Ordering::Relaxed);
    let cpu_per_call = (cpu_time() - cpu_before) / calls.max(1) as u32;
    (calls as f64 / started.elapsed().as_secs_f64(), cpu_per_call)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; there is nothing to filter.
    let secs = env_or("BENCH_SECS", 3);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let duration = Duration::from_secs(secs);

    let addr = free_addr();
    let addr_flag = addr.to_string();
    let _server = Process::start(
        workspace_binary("game-server", "game-server"),
        &["--grpc-addr", &addr_flag, "--log-level", "warn"],
        &[],
    );
    wait_serving(addr).await;

    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let discovered = discovery::Builder::new(&format!("ipv4:{addr}"))
        .unwrap()
        .health_check(std::env::var_os("NO_HEALTH").is_none())
        .connect()
        .await
        .unwrap();
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        // One kind alone, for a profiler.
        let (rate, _) = match only.as_str() {
            "plain" => measure(RpcClient::new(plain.clone()), concurrency, duration).await,
            _ => measure(RpcClient::new(discovered.clone()), concurrency, duration).await,
        };
        println!("{only}: {rate:.0} calls/s, {} calls", (rate * duration.as_secs_f64()).round());
        return;
    }
    // Warm both up.
    measure(RpcClient::new(plain.clone()), concurrency, Duration::from_millis(500)).await;
    measure(RpcClient::new(discovered.clone()), concurrency, Duration::from_millis(500)).await;

    let (mut plain_rates, mut discovery_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate which goes first, so neither always gets a warmer machine.
        let ((plain_rate, plain_cpu), (discovery_rate, discovery_cpu)) = if round % 2 == 1 {
            let plain = measure(RpcClient::new(plain.clone()), concurrency, duration).await;
            (plain, measure(RpcClient::new(discovered.clone()), concurrency, duration).await)
        } else {
            let discovery = measure(RpcClient::new(discovered.clone()), concurrency, duration).await;
            (measure(RpcClient::new(plain.clone()), concurrency, duration).await, discovery)
        };
        println!(
            "round {round}: plain {plain_rate:.0} calls/s ({:.1} us client CPU/call), discovery {discovery_rate:.0} calls/s ({:.1} us)",
            plain_cpu.as_secs_f64() * 1e6,
            discovery_cpu.as_secs_f64() * 1e6
        );
        plain_rates.push(plain_rate);
        discovery_rates.push(discovery_rate);
    }
    let (plain, discovery) = (median(plain_rates), median(discovery_rates));
    println!(
        "median of {rounds} rounds x {secs} s, {concurrency} callers: plain {plain:.0} calls/s, discovery {discovery:.0} calls/s, discovery/plain = {:.3} (cost {:.1}%)",
        discovery / plain,
        (1.0 - discovery / plain) * 100.0
    );
}

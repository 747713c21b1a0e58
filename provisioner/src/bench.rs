//! `provision bench`: load through discovery, measured per endpoint, like
//! ghz or h2load but aware of which task answered each call, with optional
//! faults injected into a running `provision local`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use prost::{Message, bytes::Buf};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tonic::{
    Status,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Bytes, http::uri::PathAndQuery},
};

use crate::{
    call::resolve_target,
    local::{DEFAULT_CONTROL_ADDR, DEFAULT_DNS_ADDR, control},
    rate::RateSchedule,
    reflect,
};

/// Flags of `provision bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A service of the stack file (`game-server`) or a discovery target
    /// (`dns:///game-server.local:5000`, `dns://127.0.0.1:8600/...`, `ADDR`).
    pub target: String,
    /// The method, e.g. `rpc.Rpc/GetChampion`; its messages come from the
    /// server's reflection.
    pub method: String,
    /// The request as JSON.
    #[arg(long, default_value = "{}")]
    pub data: String,
    /// Calls to make at most (default 10000, or no limit with --duration).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seconds to run at most (default 60).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Calls in flight at once (closed loop), or at most (with --rate).
    #[arg(long, default_value_t = 16)]
    pub concurrency: u64,
    /// Independent channels (each with one HTTP/2 connection per endpoint).
    #[arg(long, default_value_t = 1)]
    pub connections: u64,
    /// Open loop: start this many calls per second whatever the answers do,
    /// and measure latency from when each call should have started (no
    /// coordinated omission). Phases as RATE:SECS,...: `2000:40,50:60` loads
    /// for 40 s, then goes on lightly for 60 s (the run lasts as long).
    #[arg(long)]
    pub rate: Option<RateSchedule>,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Run the same load against this one address with a plain tonic
    /// channel afterwards, and print the ratio.
    #[arg(long)]
    pub against_direct: Option<SocketAddr>,
    /// A fault in a running `provision local`: `kill:SERVICE@SECS` SIGKILLs one
    /// replica, `restart:SERVICE@SECS` rolls them all, SECS into the run.
    #[arg(long)]
    pub chaos: Option<Chaos>,
    /// Treat METHOD as idempotent: retry it up to this many attempts in all
    /// on another endpoint when one fails (default: only the transparent
    /// retry of calls that never reached a server).
    #[arg(long)]
    pub retry: Option<u32>,
    /// Deadline of each call, waiting for an endpoint included.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// The stack file, for a service named by itself.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
    /// The local stack's DNS server, for a service named by itself.
    #[arg(long, env = "PROVISION_DNS_ADDR", default_value = DEFAULT_DNS_ADDR)]
    pub dns_addr: SocketAddr,
    /// The local stack's control endpoint, for --chaos.
    #[arg(long, env = "PROVISION_CONTROL_ADDR", default_value = DEFAULT_CONTROL_ADDR)]
    pub control_addr: SocketAddr,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables.
    Text,
    /// One JSON object.
    Json,
}

/// A fault to inject during the run.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// `kill` or `restart`.
    pub action: String,
    /// The stack service.
    pub service: String,
    /// When, from the start of the run.
    pub at: Duration,
}

impl FromStr for Chaos {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("--chaos {text:?}: expected kill:SERVICE@SECS or restart:SERVICE@SECS");
        let (action, rest) = text.split_once(':').ok_or_else(usage)?;
        let (service, at) = rest.split_once('@').ok_or_else(usage)?;
        if !matches!(action, "kill" | "restart") || service.is_empty() {
            return Err(usage());
        }
        let at: f64 = at.parse().map_err(|_| usage())?;
        if !(0.0..86_400.0).contains(&at) {
            return Err(usage());
        }
        Ok(Self { action: action.to_owned(), service: service.to_owned(), at: Duration::from_secs_f64(at) })
    }
}

/// One finished call.
struct Record {
    started: Duration,
    latency: Duration,
    code: tonic::Code,
    /// The status message of a failed call.
    message: Option<String>,
    endpoint: Option<String>,
}

/// Everything measured in one run.
#[derive(Default)]
struct Measured {
    elapsed: Duration,
    latencies: Vec<Duration>,
    codes: BTreeMap<String, u64>,
    endpoints: BTreeMap<String, (u64, u64)>,
    first_seen: BTreeMap<String, Duration>,
    last_seen: BTreeMap<String, Duration>,
    /// The endpoints that answered OK in each second of the run.
    answering: BTreeMap<u64, BTreeSet<String>>,
    failures: Vec<Duration>,
    /// Failed calls by `CODE: message`, the first distinct ones only.
    error_messages: BTreeMap<String, u64>,
    interrupted: bool,
}

/// How many distinct failure messages a report keeps.
const ERROR_MESSAGES_KEPT: usize = 10;

impl Measured {
    fn calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    fn rate(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// How many endpoints answered in each second, as runs of equal counts:
    /// (first second, last second, endpoints).
    fn answering_over_time(&self) -> Vec<(u64, u64, usize)> {
        let mut runs: Vec<(u64, u64, usize)> = Vec::new();
        for (second, endpoints) in &self.answering {
            match runs.last_mut() {
                Some((_, last, count)) if *count == endpoints.len() && *last + 1 == *second => *last = *second,
                _ => runs.push((*second, *second, endpoints.len())),
            }
        }
        runs
    }

    fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[((self.latencies.len() as f64 * fraction) as usize).min(self.latencies.len() - 1)]
    }
}

/// How a run is shaped.
struct Plan {
    requests: u64,
    duration: Duration,
    concurrency: u64,
    rate: Option<RateSchedule>,
    timeout: Duration,
}

/// Runs `provision bench`.
pub async fn main(args: BenchArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    let target = resolve_target(&args.target, &args.stack, args.dns_addr)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let mut builder = discovery::Builder::new(&target)?.deadline(timeout);
        if let Some(attempts) = args.retry {
            builder = builder.retry_policy(discovery::RetryPolicy::idempotent([args.method.clone()], attempts));
        }
        channels.push(builder.connect().await?);
    }
    // A little past the channel's own deadline, whose error says more.
    let method =
        tokio::time::timeout(timeout + Duration::from_millis(500), reflect::method(channels[0].clone(), &args.method))
            .await
            .map_err(|_| anyhow!("{target}: no endpoint answered reflection within {timeout:?}"))??;
    let request = DynamicMessage::deserialize(method.input(), &mut serde_json::Deserializer::from_str(&args.data))
        .with_context(|| format!("--data is not a valid {} in JSON", method.input().full_name()))?;
    // A schedule of phases that all have a length is the run's length.
    let scheduled = args.rate.as_ref().and_then(RateSchedule::length);
    let duration = args.duration.map(|secs| Duration::from_secs_f64(secs.max(0.0)));
    let plan = Plan {
        requests: args.requests.unwrap_or(if duration.or(scheduled).is_some() { u64::MAX } else { 10_000 }),
        duration: duration.or(scheduled).unwrap_or(Duration::from_secs(60)),
        concurrency: args.concurrency,
        rate: args.rate.clone(),
        timeout,
    };

    let chaos = args.chaos.clone().map(|chaos| (chaos, args.control_addr));
    let clients: Vec<_> = channels.iter().map(|channel| Grpc::new(channel.clone())).collect();
    let (measured, chaos_at) = run(clients, &method, &request, &plan, chaos, args.output == Output::Text).await?;

    let direct = match args.against_direct {
        Some(addr) => {
            let mut clients = Vec::new();
            for _ in 0..args.connections {
                let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
                    .connect()
                    .await
                    .with_context(|| format!("--against-direct {addr}: cannot connect"))?;
                clients.push(Grpc::new(channel));
            }
            Some((addr, run(clients, &method, &request, &plan, None, args.output == Output::Text).await?.0))
        }
        None => None,
    };

    match args.output {
        Output::Text => print_text(&target, &args, &plan, &measured, chaos_at.as_ref(), direct.as_ref()),
        Output::Json => print_json(&target, &args, &measured, chaos_at.as_ref(), direct.as_ref()),
    }
    if measured.calls() == 0 {
        bail!("no call finished");
    }
    Ok(())
}

type ChaosOutcome = (Chaos, Duration, Result<String, String>);

async fn run<T>(
    clients: Vec<Grpc<T>>,
    method: &MethodDescriptor,
    request: &DynamicMessage,
    plan: &Plan,
    chaos: Option<(Chaos, SocketAddr)>,
    live: bool,
) -> anyhow::Result<(Measured, Option<ChaosOutcome>)>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError> + Send,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse()?;
    let started = Instant::now();
    let deadline = started + plan.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (records, mut collected) = mpsc::unbounded_channel::<Record>();

    // Ctrl-C ends the run early; what was measured is still reported.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, interrupted) = (Arc::clone(&stop), Arc::clone(&interrupted));
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let chaos_task = chaos.map(|(chaos, control_addr)| {
        tokio::spawn(async move {
            tokio::time::sleep(chaos.at).await;
            let at = started.elapsed();
            let outcome = control::request(control_addr, &format!("{} {}", chaos.action, chaos.service)).await;
            (chaos, at, outcome)
        })
    });

    // The request is encoded once; answers are counted, not decoded, so the
    // bench spends its CPU on calls rather than on JSON or reflection.
    let encoded = Bytes::from(request.encode_to_vec());
    let one_call = {
        let (path, timeout) = (path.clone(), plan.timeout);
        move |mut client: Grpc<T>, intended: Instant| {
            let (path, encoded) = (path.clone(), encoded.clone());
            async move {
                let mut call = tonic::Request::new(encoded);
                call.set_timeout(timeout);
                let outcome = match client.ready().await {
                    Ok(()) => client.unary(call, path, RawCodec).await,
                    Err(error) => Err(tonic::Status::unavailable(error.into().to_string())),
                };
                let (code, message, metadata) = match &outcome {
                    Ok(response) => (tonic::Code::Ok, None, response.metadata()),
                    Err(status) => (status.code(), Some(status.message().to_owned()), status.metadata()),
                };
                let endpoint =
                    metadata.get(discovery::SERVED_BY_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
                Record {
                    started: intended.duration_since(started),
                    latency: intended.elapsed(),
                    code,
                    message,
                    endpoint,
                }
            }
        }
    };

    let mut workers = Vec::new();
    match &plan.rate {
        None => {
            for worker in 0..plan.concurrency {
                let client = clients[worker as usize % clients.len()].clone();
                let (issued, stop, records, one_call, requests) =
                    (Arc::clone(&issued), Arc::clone(&stop), records.clone(), one_call.clone(), plan.requests);
                workers.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed)
                        && Instant::now() < deadline
                        && issued.fetch_add(1, Ordering::Relaxed) < requests
                    {
                        let _ = records.send(one_call(client.clone(), Instant::now()).await);
                    }
                }));
            }
        }
        Some(schedule) => {
            let permits = Arc::new(Semaphore::new(plan.concurrency as usize));
            let (stop, records, requests, clients, schedule) =
                (Arc::clone(&stop), records.clone(), plan.requests, clients.clone(), schedule.clone());
            workers.push(tokio::spawn(async move {
                let mut calls = Vec::new();
                for (index, offset) in
                    schedule.offsets().take(usize::try_from(requests).unwrap_or(usize::MAX)).enumerate()
                {
                    let intended = started + offset;
                    if intended >= deadline || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep_until(intended.into()).await;
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { break };
                    let (client, records, one_call) =
                        (clients[index % clients.len()].clone(), records.clone(), one_call.clone());
                    calls.push(tokio::spawn(async move {
                        let _ = records.send(one_call(client, intended).await);
                        drop(permit);
                    }));
                }
                for call in calls {
                    let _ = call.await;
                }
            }));
        }
    }
    drop(records);

    let mut measured = Measured::default();
    let mut last_report = Instant::now();
    let mut since_report = 0u64;
    while let Some(record) = collected.recv().await {
        since_report += 1;
        if live && last_report.elapsed() >= Duration::from_secs(1) {
            let second = started.elapsed().as_secs().saturating_sub(1);
            eprintln!(
                "[{:>5.1}s] {} calls, {:.0} calls/s, {} failed, {} endpoint(s) answering",
                started.elapsed().as_secs_f64(),
                measured.calls() + 1,
                since_report as f64 / last_report.elapsed().as_secs_f64(),
                measured.failures.len(),
                measured.answering.get(&second).map_or(0, BTreeSet::len)
            );
            last_report = Instant::now();
            since_report = 0;
        }
        measured.latencies.push(record.latency);
        *measured.codes.entry(code_name(record.code)).or_default() += 1;
        let endpoint = record.endpoint.unwrap_or_else(|| "(no endpoint)".to_owned());
        let entry = measured.endpoints.entry(endpoint.clone()).or_default();
        entry.0 += 1;
        if record.code != tonic::Code::Ok {
            entry.1 += 1;
            let key = format!("{}: {}", code_name(record.code), record.message.unwrap_or_default());
            if measured.error_messages.len() < ERROR_MESSAGES_KEPT || measured.error_messages.contains_key(&key) {
                *measured.error_messages.entry(key).or_default() += 1;
            }
            // When it failed, so that a call in flight at the fault counts
            // after it.
            measured.failures.push(record.started + record.latency);
        }
        if record.code == tonic::Code::Ok {
            let answered = record.started + record.latency;
            measured.answering.entry(answered.as_secs()).or_default().insert(endpoint.clone());
            let last = measured.last_seen.entry(endpoint.clone()).or_insert(answered);
            *last = (*last).max(answered);
        }
        let first = measured.first_seen.entry(endpoint).or_insert(record.started);
        *first = (*first).min(record.started);
    }
    for worker in workers {
        let _ = worker.await;
    }
    measured.elapsed = started.elapsed();
    measured.latencies.sort();
    measured.interrupted = interrupted.load(Ordering::SeqCst);
    watcher.abort();
    let chaos = match chaos_task {
        Some(task) if task.is_finished() => task.await.ok(),
        Some(task) => {
            task.abort();
            None
        }
        None => None,
    };
    Ok((measured, chaos))
}

/// Sends pre-encoded request bytes; skips the answer's bytes.
struct RawCodec;
struct RawEncoder;
struct SkipDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = SkipDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        SkipDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for SkipDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        let remaining = src.remaining();
        src.advance(remaining);
        Ok(Some(()))
    }
}

fn code_name(code: tonic::Code) -> String {
    match code {
        tonic::Code::Ok => "OK".into(),
        other => format!("{other:?}").chars().fold(String::new(), |mut name, c| {
            if c.is_uppercase() && !name.is_empty() {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
            name
        }),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Max share / min share over the endpoints that answered.
fn spread(measured: &Measured) -> Option<f64> {
    let calls: Vec<u64> =
        measured.endpoints.iter().filter(|(name, _)| !name.starts_with('(')).map(|(_, (calls, _))| *calls).collect();
    let (max, min) = (calls.iter().max()?, calls.iter().min()?);
    (*min > 0).then(|| *max as f64 / *min as f64)
}

/// Calls that failed before and after the fault, and when a replica not
/// seen before the fault first answered.
fn chaos_report(measured: &Measured, at: Duration) -> (u64, u64, Option<Duration>) {
    let before = measured.failures.iter().filter(|failed| **failed < at).count() as u64;
    let after = measured.failures.len() as u64 - before;
    let newcomer = measured
        .first_seen
        .iter()
        .filter(|(name, first)| !name.starts_with('(') && **first >= at)
        .map(|(_, first)| *first - at)
        .min();
    (before, after, newcomer)
}

fn print_text(
    target: &str,
    args: &BenchArgs,
    plan: &Plan,
    measured: &Measured,
    chaos: Option<&ChaosOutcome>,
    direct: Option<&(SocketAddr, Measured)>,
) {
    let mode = match &plan.rate {
        Some(schedule) => format!("open loop at {schedule}, up to {} in flight", plan.concurrency),
        None => format!("closed loop, {} callers", plan.concurrency),
    };
    println!("target    {target}");
    println!("method    {}", args.method);
    println!(
        "calls     {} in {:.2} s: {:.0} calls/s ({mode}, {} connection(s)){}",
        measured.calls(),
        measured.elapsed.as_secs_f64(),
        measured.rate(),
        args.connections,
        if measured.interrupted { ", interrupted" } else { "" }
    );
    println!(
        "latency   p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   max {:.2} ms",
        millis(measured.percentile(0.5)),
        millis(measured.percentile(0.9)),
        millis(measured.percentile(0.99)),
        millis(measured.percentile(0.999)),
        millis(measured.latencies.last().copied().unwrap_or_default())
    );
    let codes: Vec<String> = measured.codes.iter().map(|(code, count)| format!("{code} {count}")).collect();
    println!("status    {}", codes.join(", "));
    for (message, count) in &measured.error_messages {
        println!("error     {count} x {message}");
    }
    println!("\n{:<24} {:>10} {:>8} {:>8} {:>8} {:>8}", "ENDPOINT", "CALLS", "SHARE", "ERRORS", "FIRST", "LAST");
    let seconds = |at: Option<&Duration>| at.map_or_else(|| "-".to_owned(), |at| format!("{:.1}s", at.as_secs_f64()));
    for (endpoint, (calls, errors)) in &measured.endpoints {
        let share = *calls as f64 * 100.0 / measured.calls().max(1) as f64;
        let (first, last) = (seconds(measured.first_seen.get(endpoint)), seconds(measured.last_seen.get(endpoint)));
        println!("{endpoint:<24} {calls:>10} {share:>7.1}% {errors:>8} {first:>8} {last:>8}");
    }
    let over_time: Vec<String> =
        measured.answering_over_time().iter().map(|(from, to, count)| format!("{from}-{}s: {count}", to + 1)).collect();
    if over_time.len() > 1 {
        println!("answering {}", over_time.join(", "));
    }
    if let Some(spread) = spread(measured) {
        println!("spread    max/min share {spread:.3}");
    }
    if let Some((chaos, at, outcome)) = chaos {
        let (before, after, newcomer) = chaos_report(measured, *at);
        match outcome {
            Ok(text) => {
                println!("\nchaos     {} {} at {:.1} s: {}", chaos.action, chaos.service, at.as_secs_f64(), text.trim())
            }
            Err(error) => {
                println!("\nchaos     {} {} at {:.1} s failed: {error}", chaos.action, chaos.service, at.as_secs_f64())
            }
        }
        println!("failed    {before} before, {after} after");
        match newcomer {
            Some(delay) => println!("new       a new replica took its first call {:.2} s after", delay.as_secs_f64()),
            None => println!("new       no new replica took a call before the run ended"),
        }
    }
    if let Some((addr, direct)) = direct {
        println!(
            "\ndirect    {addr}: {:.0} calls/s, p99 {:.2} ms; discovery/direct = {:.3}",
            direct.rate(),
            millis(direct.percentile(0.99)),
            measured.rate() / direct.rate().max(1e-9)
        );
    }
}

fn print_json(
    target: &str,
    args: &BenchArgs,
    measured: &Measured,
    chaos: Option<&ChaosOutcome>,
    direct: Option<&(SocketAddr, Measured)>,
) {
    let endpoints: Vec<_> = measured
        .endpoints
        .iter()
        .map(|(endpoint, (calls, errors))| {
            json!({
                "address": endpoint,
                "calls": calls,
                "share": *calls as f64 / measured.calls().max(1) as f64,
                "errors": errors,
                "first_call_seconds": measured.first_seen.get(endpoint).map(Duration::as_secs_f64),
                "last_answer_seconds": measured.last_seen.get(endpoint).map(Duration::as_secs_f64),
            })
        })
        .collect();
    let mut report = json!({
        "target": target,
        "method": args.method,
        "calls": measured.calls(),
        "seconds": measured.elapsed.as_secs_f64(),
        "calls_per_second": measured.rate(),
        "interrupted": measured.interrupted,
        "latency_ms": {
            "p50": millis(measured.percentile(0.5)),
            "p90": millis(measured.percentile(0.9)),
            "p99": millis(measured.percentile(0.99)),
            "p99_9": millis(measured.percentile(0.999)),
            "max": millis(measured.latencies.last().copied().unwrap_or_default()),
        },
        "status": measured.codes,
        "error_messages": measured.error_messages,
        "endpoints": endpoints,
        "spread": spread(measured),
        "answering_over_time": measured
            .answering_over_time()
            .iter()
            .map(|(from, to, count)| json!({"from_second": from, "to_second": to + 1, "endpoints": count}))
            .collect::<Vec<_>>(),
    });
    if let Some((chaos, at, outcome)) = chaos {
        let (before, after, newcomer) = chaos_report(measured, *at);
        report["chaos"] = json!({
            "action": chaos.action,
            "service": chaos.service,
            "at_seconds": at.as_secs_f64(),
            "result": outcome.as_ref().map_or_else(|error| format!("error: {error}"), |text| text.trim().to_owned()),
            "failed_before": before,
            "failed_after": after,
            "new_replica_first_call_after_seconds": newcomer.map(|delay| delay.as_secs_f64()),
        });
    }
    if let Some((addr, direct)) = direct {
        report["direct"] = json!({
            "address": addr.to_string(),
            "calls_per_second": direct.rate(),
            "p99_ms": millis(direct.percentile(0.99)),
            "discovery_over_direct": measured.rate() / direct.rate().max(1e-9),
        });
    }
    println!("{}", serde_json::to_string_pretty(&report).expect("a JSON value serializes"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_specs_parse_or_say_what_is_expected() {
        let chaos: Chaos = "kill:game-server@2.5".parse().unwrap();
        assert_eq!(
            (chaos.action.as_str(), chaos.service.as_str(), chaos.at),
            ("kill", "game-server", Duration::from_millis(2500))
        );
        assert!("restart:ranking@0".parse::<Chaos>().is_ok());
        for bad in ["kill", "kill:svc", "boom:svc@1", "kill:@1", "kill:svc@soon"] {
            assert!(bad.parse::<Chaos>().unwrap_err().contains("expected kill:SERVICE@SECS"), "{bad}");
        }
    }

    #[test]
    fn status_codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }
}

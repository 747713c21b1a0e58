//! `provision bench`: load through discovery, measured per endpoint, like
//! ghz or h2load but aware of which task answered each call, with optional
//! faults injected into a running `provision local`.

mod chaos;
mod codec;
mod measured;
mod report;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use prost::Message;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tokio::sync::{Semaphore, mpsc};
use tonic::{
    client::Grpc,
    codegen::{Bytes, http::uri::PathAndQuery},
};

pub use chaos::Chaos;
use codec::RawCodec;
use measured::{ERROR_MESSAGES_KEPT, Measured, Record, code_name};
use report::{print_json, print_text};

use crate::{
    call::resolve_target,
    local::{
        ControlTargetArgs,
        control::{Control, ControlTarget},
    },
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
    #[arg(short, long, default_value = "{}")]
    pub data: String,
    /// Calls to make at most (default 10000, or no limit with --duration).
    #[arg(long)]
    pub requests: Option<u64>,
    /// How long to run at most (`30s`, `2m`; a bare number is seconds;
    /// default 60s).
    #[arg(long, value_parser = provision_cli::duration::parse)]
    pub duration: Option<Duration>,
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
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
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
    /// Deadline of each call, waiting for an endpoint included (`500ms`,
    /// `5s`).
    #[arg(long, value_parser = provision_cli::duration::parse, default_value = "5s")]
    pub timeout: Duration,
    /// The old spelling of --timeout, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "timeout")]
    pub timeout_ms: Option<u64>,
    /// The stack file, for a service named by itself.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
    /// The local stack's DNS server, for a service named by itself.
    /// Default: the one the running stack of the stack file's app serves.
    #[arg(long, env = "PROVISION_DNS_ADDR")]
    pub dns_addr: Option<SocketAddr>,
    /// Where the local stack takes control requests, for --chaos.
    #[command(flatten)]
    pub control: ControlTargetArgs,
}

pub use crate::local::Output;

/// How a run is shaped.
struct RunShape {
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
    let target = resolve_target(&args.target, &args.stack, args.dns_addr).await?;
    let timeout = args.timeout_ms.map_or(args.timeout, Duration::from_millis);
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
    let duration = args.duration;
    let shape = RunShape {
        requests: args.requests.unwrap_or(if duration.or(scheduled).is_some() { u64::MAX } else { 10_000 }),
        duration: duration.or(scheduled).unwrap_or(Duration::from_secs(60)),
        concurrency: args.concurrency,
        rate: args.rate.clone(),
        timeout,
    };

    let chaos = match args.chaos.clone() {
        Some(chaos) => Some((chaos, args.control.target(&args.stack)?)),
        None => None,
    };
    let clients: Vec<_> = channels.iter().map(|channel| Grpc::new(channel.clone())).collect();
    let (measured, chaos_at) = run(clients, &method, &request, &shape, chaos, args.output == Output::Text).await?;

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
            Some((addr, run(clients, &method, &request, &shape, None, args.output == Output::Text).await?.0))
        }
        None => None,
    };

    match args.output {
        Output::Text => print_text(&target, &args, &shape, &measured, chaos_at.as_ref(), direct.as_ref()),
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
    shape: &RunShape,
    chaos: Option<(Chaos, ControlTarget)>,
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
    let deadline = started + shape.duration;
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
    let chaos_task = chaos.map(|(chaos, target)| {
        tokio::spawn(async move {
            tokio::time::sleep(chaos.at).await;
            let at = started.elapsed();
            let outcome = match Control::connect(&target).await {
                Ok(mut control) if chaos.action == "restart" => control.restart(&chaos.service).await,
                Ok(mut control) => control.kill(&chaos.service).await,
                Err(why) => Err(why),
            };
            (chaos, at, outcome)
        })
    });

    // The request is encoded once; answers are counted, not decoded, so the
    // bench spends its CPU on calls rather than on JSON or reflection.
    let encoded = Bytes::from(request.encode_to_vec());
    let one_call = {
        let (path, timeout) = (path.clone(), shape.timeout);
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
    match &shape.rate {
        None => {
            for worker in 0..shape.concurrency {
                let client = clients[worker as usize % clients.len()].clone();
                let (issued, stop, records, one_call, requests) =
                    (Arc::clone(&issued), Arc::clone(&stop), records.clone(), one_call.clone(), shape.requests);
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
            let permits = Arc::new(Semaphore::new(shape.concurrency as usize));
            let (stop, records, requests, clients, schedule) =
                (Arc::clone(&stop), records.clone(), shape.requests, clients.clone(), schedule.clone());
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

//! The bench's report: tables for people, one JSON object for machines.

use std::{net::SocketAddr, time::Duration};

use serde_json::json;

use super::{BenchArgs, ChaosOutcome, RunShape, chaos, measured::Measured};

pub(super) fn print_text(
    target: &str,
    args: &BenchArgs,
    shape: &RunShape,
    measured: &Measured,
    chaos: Option<&ChaosOutcome>,
    direct: Option<&(SocketAddr, Measured)>,
) {
    let mode = match &shape.rate {
        Some(schedule) => format!("open loop at {schedule}, up to {} in flight", shape.concurrency),
        None => format!("closed loop, {} callers", shape.concurrency),
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
        let (before, after, newcomer) = chaos::report(measured, *at);
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

pub(super) fn print_json(
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
        let (before, after, newcomer) = chaos::report(measured, *at);
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

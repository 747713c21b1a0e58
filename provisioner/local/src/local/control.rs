//! The control endpoint of a running `provision local`: a line protocol on
//! a loopback TCP port. A request is one line (`status`, `restart SERVICE`,
//! `kill SERVICE`); the answer is `ok` or `error: why` on the first line,
//! then the text to show, then the connection closes.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use crate::spec::autoscaling::Metric;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};

use super::supervisor::{Request, ServiceStatus};

/// The supervisors by service name, in stack order.
pub type Supervisors = Vec<(String, mpsc::Sender<Request>)>;

/// How long a client waits for an answer (a rolling restart takes a while).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves control requests on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, supervisors: Supervisors) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let supervisors = supervisors.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match answer(line.trim(), &supervisors).await {
                Ok(text) => format!("ok\n{text}"),
                Err(error) => format!("error: {error}\n"),
            };
            let _ = write.write_all(answer.as_bytes()).await;
        });
    }
}

async fn answer(request: &str, supervisors: &Supervisors) -> Result<String, String> {
    let mut words = request.split_whitespace();
    match (words.next(), words.next()) {
        (Some("status"), None) => {
            let mut statuses = Vec::new();
            for (_, supervisor) in supervisors {
                let (tx, rx) = oneshot::channel();
                supervisor.send(Request::Status(tx)).await.map_err(|_| "the runner is stopping".to_owned())?;
                statuses.push(rx.await.map_err(|_| "the runner is stopping".to_owned())?);
            }
            Ok(table(&statuses))
        }
        (Some(verb @ ("restart" | "kill")), Some(service)) => {
            let supervisor =
                supervisors.iter().find(|(name, _)| name == service).map(|(_, supervisor)| supervisor).ok_or_else(
                    || {
                        let names: Vec<&str> = supervisors.iter().map(|(name, _)| name.as_str()).collect();
                        format!("no service {service:?} in the stack (services: {})", names.join(", "))
                    },
                )?;
            let (tx, rx) = oneshot::channel();
            let request = if verb == "restart" { Request::Restart(tx) } else { Request::Kill(tx) };
            supervisor.send(request).await.map_err(|_| "the runner is stopping".to_owned())?;
            rx.await.map_err(|_| "the runner is stopping".to_owned())?.map(|text| format!("{text}\n"))
        }
        _ => Err(format!("unknown request {request:?}: use status, restart SERVICE or kill SERVICE")),
    }
}

/// The status table, a line per replica (CPU and memory in percent of the
/// service's `aws.cpu` and `aws.memory`), then a line per service on its
/// replacements and its scaling.
pub fn table(services: &[ServiceStatus]) -> String {
    let mut restarts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut text = format!(
        "{:<14} {:<12} {:<20} {:<10} {:<7} {:>8} {:>8} {:>6} {:>6}\n",
        "SERVICE", "REPLICA", "ADDRESS", "STATE", "IN DNS", "PID", "UPTIME", "CPU", "MEM"
    );
    let percent = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.0}%"));
    for status in services.iter().flat_map(|service| &service.replicas) {
        restarts.insert(&status.service, status.restarts);
        text.push_str(&format!(
            "{:<14} {:<12} {:<20} {:<10} {:<7} {:>8} {:>7}s {:>6} {:>6}\n",
            status.service,
            status.replica,
            status.addr.to_string(),
            status.state,
            match status.in_dns {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            status.pid,
            status.uptime_secs,
            percent(status.utilization.map(|utilization| utilization.cpu)),
            percent(status.utilization.map(|utilization| utilization.memory)),
        ));
    }
    for (service, count) in restarts {
        text.push_str(&format!("{service}: {count} replacement(s) so far\n"));
    }
    for scaling in services.iter().filter_map(|service| service.scaling.as_ref()) {
        let measured: Vec<String> = scaling
            .targets
            .iter()
            .map(|(metric, target)| {
                let value = scaling.utilization.map(|utilization| match metric {
                    Metric::Cpu => utilization.cpu,
                    Metric::Memory => utilization.memory,
                });
                format!("{metric} {} (target {target}%)", percent(value))
            })
            .collect();
        text.push_str(&format!(
            "{}: autoscaling {}..={}, {} wanted, {}",
            scaling.service,
            scaling.min,
            scaling.max,
            scaling.desired,
            measured.join(", ")
        ));
        if let Some((change, ago)) = &scaling.last_change {
            text.push_str(&format!("; {change} {} s ago", ago.as_secs()));
        }
        text.push('\n');
    }
    text
}

/// Sends one request to the runner at `addr` and returns its text, or the
/// runner's error.
pub async fn request(addr: SocketAddr, request: &str) -> Result<String, String> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no answer from {addr}"))?
        .map_err(|error| format!("cannot reach `provision local` at {addr} ({error}): is it running?"))?;
    stream.write_all(format!("{request}\n").as_bytes()).await.map_err(|error| error.to_string())?;
    let mut answer = String::new();
    tokio::time::timeout(ANSWER_TIMEOUT, stream.read_to_string(&mut answer))
        .await
        .map_err(|_| format!("no answer from {addr} within {ANSWER_TIMEOUT:?}"))?
        .map_err(|error| error.to_string())?;
    match answer.split_once('\n') {
        Some(("ok", text)) => Ok(text.to_owned()),
        Some((error, _)) => Err(error.trim_start_matches("error: ").to_owned()),
        None => Err(format!("unexpected answer from {addr}: {answer:?}")),
    }
}

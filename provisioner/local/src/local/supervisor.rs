//! One service's replicas, kept at the desired count the way an ECS service
//! keeps its tasks: start, health-check, register in DNS once healthy,
//! deregister and replace when unhealthy or gone, roll on request.

use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::{Duration, Instant},
};

use local_dns::Registry;
use tokio::sync::{mpsc, oneshot};

use super::{
    autoscaler::Autoscaler,
    block::Block,
    health::{self, HealthCommand},
    replica::{Replica, ReplicaState},
    usage::{self, Utilization},
};
use crate::spec::{Service, autoscaling::Metric};

/// How long after the first signal of a whole-stack shutdown the second one
/// comes, cutting the drain short: long enough for health watchers to hear
/// NOT_SERVING.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(1);
/// How often the supervisor looks at its processes.
const TICK: Duration = Duration::from_millis(100);
/// The longest wait before starting a replacement for a failing replica.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often replicas' CPU and memory are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// A line of `provision local status`.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// The service.
    pub service: String,
    /// `replica-N`.
    pub replica: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its state.
    pub state: String,
    /// Whether DNS names it now (`None`: a member that is not in DNS, such
    /// as a store, which its clients reach by address).
    pub in_dns: Option<bool>,
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Replacements this service has needed so far.
    pub restarts: u32,
    /// Its CPU and memory over its reservation, once measured.
    pub utilization: Option<Utilization>,
}

/// A service's lines of `provision local status`.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    /// Every replica (draining ones included).
    pub replicas: Vec<ReplicaStatus>,
    /// How it scales, if it does.
    pub scaling: Option<ScalingStatus>,
}

/// Where an autoscaled service stands.
#[derive(Debug, Clone)]
pub struct ScalingStatus {
    /// The service.
    pub service: String,
    /// Its bounds.
    pub min: u32,
    /// Its bounds.
    pub max: u32,
    /// The count it keeps now.
    pub desired: u32,
    /// The average over the scale-out window, once measured.
    pub utilization: Option<Utilization>,
    /// What it tracks.
    pub targets: Vec<(Metric, f64)>,
    /// The last change: what, and how long ago.
    pub last_change: Option<(String, Duration)>,
}

/// What the control endpoint and the runner ask of a supervisor.
pub enum Request {
    /// Every replica's status, and the service's scaling.
    Status(oneshot::Sender<ServiceStatus>),
    /// Replace every replica, one at a time, keeping the count healthy.
    Restart(oneshot::Sender<Result<String, String>>),
    /// SIGKILL one healthy replica, as a crash would.
    Kill(oneshot::Sender<Result<String, String>>),
    /// Deregister, SIGTERM, then SIGTERM again to skip the drain; SIGKILL
    /// after the stop timeout.
    Shutdown(oneshot::Sender<()>),
}

/// Everything fixed about how one service runs.
pub struct ServiceSetup {
    /// The service as the stack file describes it.
    pub service: Service,
    /// `<name>.<namespace>`.
    pub dns_name: String,
    /// The binary.
    pub program: PathBuf,
    /// The health check.
    pub health: HealthCommand,
    /// Environment for every replica (stack env and dependencies' targets).
    pub env: Vec<(String, String)>,
    /// The third octet of this service's loopback addresses.
    pub subnet: u8,
    /// The stack's addresses: the replicas are `127.<block>.<subnet>.N`.
    pub block: Block,
    /// How much faster than configured autoscaling's windows and
    /// cooldowns run (1: as configured).
    pub autoscale_speedup: u32,
}

struct HealthResult {
    seq: u32,
    outcome: Result<(), String>,
}

/// Runs one service until asked to shut down.
pub struct Supervisor {
    setup: ServiceSetup,
    registry: Registry,
    replicas: Vec<Replica>,
    /// The count to keep: the stack's, or the autoscaler's.
    desired: u32,
    autoscaler: Option<Autoscaler>,
    last_change: Option<(String, Instant)>,
    next_sample_at: Instant,
    next_seq: u32,
    restarts: u32,
    failure_streak: u32,
    next_start_at: Instant,
    restart_queue: VecDeque<u32>,
    surge: Option<u32>,
    restart_done: Option<oneshot::Sender<Result<String, String>>>,
    health_tx: mpsc::Sender<HealthResult>,
    health_tasks: Vec<(u32, tokio::task::JoinHandle<()>)>,
}

impl Supervisor {
    /// Starts supervising `setup`'s service; returns the handle to ask it things.
    pub fn spawn(setup: ServiceSetup, registry: Registry) -> mpsc::Sender<Request> {
        let (requests_tx, requests) = mpsc::channel(16);
        let (health_tx, health_rx) = mpsc::channel(64);
        registry.define(&setup.dns_name, setup.service.dns_ttl);
        let autoscaler = setup
            .service
            .autoscaling
            .as_ref()
            .map(|rule| Autoscaler::new(rule, setup.autoscale_speedup, Instant::now()));
        if let Some(autoscaler) = &autoscaler {
            println!("provision | {}: {}", setup.service.name, autoscaler.describe());
        }
        let supervisor = Supervisor {
            desired: setup.service.count,
            autoscaler,
            last_change: None,
            next_sample_at: Instant::now(),
            setup,
            registry,
            replicas: Vec::new(),
            next_seq: 1,
            restarts: 0,
            failure_streak: 0,
            next_start_at: Instant::now(),
            restart_queue: VecDeque::new(),
            surge: None,
            restart_done: None,
            health_tx,
            health_tasks: Vec::new(),
        };
        tokio::spawn(supervisor.run(requests, health_rx));
        requests_tx
    }

    fn name(&self) -> &str {
        &self.setup.service.name
    }

    async fn run(mut self, mut requests: mpsc::Receiver<Request>, mut health: mpsc::Receiver<HealthResult>) {
        loop {
            self.reap();
            self.sample_and_scale();
            self.keep_count();
            self.shed_excess();
            self.advance_restart();
            tokio::select! {
                Some(result) = health.recv() => self.on_health(result),
                request = requests.recv() => match request {
                    Some(Request::Status(reply)) => {
                        let _ = reply.send(self.status());
                    }
                    Some(Request::Restart(reply)) => self.start_restart(reply),
                    Some(Request::Kill(reply)) => {
                        let _ = reply.send(self.kill_one());
                    }
                    Some(Request::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn active(&self) -> usize {
        self.replicas.iter().filter(|replica| replica.state != ReplicaState::Draining).count()
    }

    /// Starts replicas until the desired count is met, with backoff while
    /// replicas keep failing.
    fn keep_count(&mut self) {
        while self.active() < self.desired as usize && Instant::now() >= self.next_start_at {
            if self.start_replica().is_none() {
                break;
            }
        }
    }

    /// Reads every replica's CPU and memory once a [`SAMPLE_EVERY`], and
    /// lets the autoscaler (if any) move the desired count.
    fn sample_and_scale(&mut self) {
        let now = Instant::now();
        if now < self.next_sample_at {
            return;
        }
        self.next_sample_at = now + SAMPLE_EVERY;
        let (cpu_units, memory_mib) = (self.setup.service.aws.cpu, self.setup.service.aws.memory);
        let mut measured = Vec::new();
        // As ECS averages over the service's running tasks: not the ones
        // already stopping.
        for replica in self.replicas.iter_mut().filter(|replica| replica.state != ReplicaState::Draining) {
            let Some(reading) = usage::read(replica.pid) else { continue };
            if let Some(previous) = &replica.last_reading {
                replica.utilization = Utilization::between(previous, &reading, cpu_units, memory_mib);
                measured.extend(replica.utilization);
            }
            replica.last_reading = Some(reading);
        }
        let Some(autoscaler) = &mut self.autoscaler else { return };
        if let Some(mean) = Utilization::mean(&measured) {
            autoscaler.record(now, mean);
        }
        // ECS suspends scale-in while a deployment runs; so does a restart.
        let scale_in_allowed = self.restart_done.is_none();
        if let Some(decision) = autoscaler.decide(now, self.desired, scale_in_allowed) {
            let direction = if decision.to > decision.from { "out" } else { "in" };
            let line = format!("scaled {direction} {} -> {} ({})", decision.from, decision.to, decision.reason);
            println!("provision | {}: {line}", self.setup.service.name);
            self.desired = decision.to;
            self.last_change = Some((line, now));
        }
    }

    /// Stops replicas beyond the desired count after a scale-in, newest
    /// first (one not yet in DNS before any that is), exactly as a rolling
    /// restart stops one: out of DNS, then drained.
    fn shed_excess(&mut self) {
        if self.restart_done.is_some() {
            return;
        }
        while self.active() > self.desired as usize {
            let newest = self
                .replicas
                .iter()
                .enumerate()
                .filter(|(_, replica)| replica.state != ReplicaState::Draining)
                .max_by_key(|(_, replica)| (replica.state == ReplicaState::Starting, replica.seq))
                .map(|(index, _)| index);
            let Some(index) = newest else { return };
            println!("provision | {}/{} scaled in: removed from DNS, draining", self.name(), self.replicas[index].name);
            self.deregister(index);
            self.stop_replica(index);
        }
    }

    fn start_replica(&mut self) -> Option<u32> {
        let seq = self.next_seq;
        self.next_seq += 1;
        // A new replica gets a new address, as a new task gets a new IP.
        let host = 2 + ((seq - 1) % 250) as u8;
        let addr = SocketAddr::new(IpAddr::V4(self.setup.block.host(self.setup.subnet, host)), self.setup.service.port);
        match Replica::start(self.name(), seq, addr, &self.setup.program, &self.setup.env) {
            Ok(replica) => {
                println!("provision | {}/{} starting on {addr} (pid {})", self.name(), replica.name, replica.pid);
                self.spawn_health_task(seq, addr);
                self.replicas.push(replica);
                Some(seq)
            }
            Err(error) => {
                eprintln!("provision | {}: cannot start {}: {error}", self.name(), self.setup.program.display());
                self.note_failure();
                None
            }
        }
    }

    fn spawn_health_task(&mut self, seq: u32, addr: SocketAddr) {
        let (health, env, interval, tx) = (
            self.setup.health.clone(),
            self.setup.env.clone(),
            self.setup.service.health_check.interval,
            self.health_tx.clone(),
        );
        let task = tokio::spawn(async move {
            // The first check soon after start, so a healthy replica joins DNS
            // quickly; then one per interval, as ECS does.
            let mut wait = Duration::from_millis(300).min(interval);
            loop {
                tokio::time::sleep(wait).await;
                let outcome = health::check(&health, addr, &env).await;
                if tx.send(HealthResult { seq, outcome }).await.is_err() {
                    return;
                }
                wait = interval;
            }
        });
        self.health_tasks.push((seq, task));
    }

    fn stop_health_task(&mut self, seq: u32) {
        self.health_tasks.retain(|(task_seq, task)| {
            if *task_seq == seq {
                task.abort();
            }
            *task_seq != seq
        });
    }

    /// A replica failed: wait longer before the next start while failures
    /// keep coming, as ECS throttles a crash-looping service.
    fn note_failure(&mut self) {
        self.restarts += 1;
        self.failure_streak += 1;
        let backoff = Duration::from_millis(500 * (1u64 << self.failure_streak.min(6))).min(MAX_BACKOFF);
        self.next_start_at = Instant::now() + if self.failure_streak <= 1 { Duration::ZERO } else { backoff };
    }

    fn deregister(&mut self, index: usize) {
        let (dns_name, name) = (self.setup.dns_name.clone(), self.replicas[index].name.clone());
        self.registry.deregister(&dns_name, &name);
    }

    /// Notices replicas that exited, and SIGKILLs drains past their deadline.
    fn reap(&mut self) {
        let mut index = 0;
        while index < self.replicas.len() {
            let exited = self.replicas[index].child.try_wait().ok().flatten();
            if let Some(status) = exited {
                let replica = self.replicas.remove(index);
                self.registry.deregister(&self.setup.dns_name, &replica.name);
                self.stop_health_task(replica.seq);
                if replica.state == ReplicaState::Draining {
                    println!("provision | {}/{} stopped ({status})", self.name(), replica.name);
                } else {
                    println!(
                        "provision | {}/{} exited ({status}): removed from DNS, replacing it",
                        self.name(),
                        replica.name
                    );
                    self.note_failure();
                }
                if self.surge == Some(replica.seq) {
                    self.surge = None;
                }
                continue;
            }
            let replica = &mut self.replicas[index];
            if replica.kill_at.is_some_and(|at| Instant::now() >= at) {
                replica.signal(libc::SIGKILL);
                replica.kill_at = None;
            }
            index += 1;
        }
    }

    fn on_health(&mut self, result: HealthResult) {
        let Some(index) = self.replicas.iter().position(|replica| replica.seq == result.seq) else { return };
        let start_period = self.setup.service.health_check.start_period;
        let retries = self.setup.service.health_check.retries;
        let (dns_name, service) = (self.setup.dns_name.clone(), self.setup.service.name.clone());
        let replica = &mut self.replicas[index];
        if replica.state == ReplicaState::Draining {
            return;
        }
        match result.outcome {
            Ok(()) => {
                replica.failures = 0;
                if replica.state == ReplicaState::Starting {
                    replica.state = ReplicaState::Healthy;
                    self.registry.register(&dns_name, &replica.name, replica.addr);
                    println!("provision | {service}/{} healthy: {dns_name} now names {}", replica.name, replica.addr);
                    self.failure_streak = 0;
                }
            }
            Err(reason) => {
                let in_start_period =
                    replica.started.elapsed() < start_period && replica.state == ReplicaState::Starting;
                if in_start_period {
                    return;
                }
                replica.failures += 1;
                println!(
                    "provision | {service}/{} health check failed ({}/{retries}): {reason}",
                    replica.name, replica.failures
                );
                if replica.failures >= retries {
                    println!(
                        "provision | {service}/{} unhealthy: removed from DNS, stopping and replacing it",
                        replica.name
                    );
                    self.deregister(index);
                    self.stop_replica(index);
                    self.note_failure();
                }
            }
        }
    }

    /// SIGTERM and let it drain (it keeps serving until its clients have
    /// moved, see `service_runtime::drain`); SIGKILL after the stop timeout.
    /// Several replicas drain at once, so a rolling restart takes one drain,
    /// not one per replica.
    fn stop_replica(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        replica.state = ReplicaState::Draining;
        replica.kill_at = Some(Instant::now() + self.setup.service.aws.stop_timeout);
        replica.signal(libc::SIGTERM);
        let seq = replica.seq;
        self.stop_health_task(seq);
    }

    fn start_restart(&mut self, reply: oneshot::Sender<Result<String, String>>) {
        if self.restart_done.is_some() {
            let _ = reply.send(Err(format!("{} is already restarting", self.name())));
            return;
        }
        self.restart_queue = self
            .replicas
            .iter()
            .filter(|replica| replica.state != ReplicaState::Draining)
            .map(|replica| replica.seq)
            .collect();
        println!("provision | {}: rolling restart of {} replicas", self.name(), self.restart_queue.len());
        self.restart_done = Some(reply);
    }

    /// One step of a rolling restart: start a new replica; once it is
    /// healthy (in DNS), take an old one out of DNS and drain it.
    fn advance_restart(&mut self) {
        if self.restart_done.is_none() {
            return;
        }
        self.restart_queue.retain(|seq| self.replicas.iter().any(|replica| replica.seq == *seq));
        match self.surge {
            None if !self.restart_queue.is_empty() => self.surge = self.start_replica(),
            Some(seq) => {
                let healthy =
                    self.replicas.iter().any(|replica| replica.seq == seq && replica.state == ReplicaState::Healthy);
                if healthy {
                    if let Some(old) = self.restart_queue.pop_front()
                        && let Some(index) = self.replicas.iter().position(|replica| replica.seq == old)
                    {
                        println!(
                            "provision | {}/{} replaced: removed from DNS, draining",
                            self.name(),
                            self.replicas[index].name
                        );
                        self.deregister(index);
                        self.stop_replica(index);
                    }
                    self.surge = None;
                }
            }
            None => {
                if let Some(reply) = self.restart_done.take() {
                    let _ = reply.send(Ok(format!("{}: every replica replaced", self.name())));
                }
            }
        }
    }

    fn kill_one(&mut self) -> Result<String, String> {
        let replica = self
            .replicas
            .iter()
            .find(|replica| replica.state == ReplicaState::Healthy)
            .ok_or_else(|| format!("{} has no healthy replica to kill", self.name()))?;
        replica.signal(libc::SIGKILL);
        Ok(format!("killed {}/{} ({}, pid {})", self.name(), replica.name, replica.addr, replica.pid))
    }

    fn status(&self) -> ServiceStatus {
        let in_dns = self.registry.service(&self.setup.dns_name).map(|records| records.instances).unwrap_or_default();
        let replicas = self
            .replicas
            .iter()
            .map(|replica| ReplicaStatus {
                service: self.name().to_owned(),
                replica: replica.name.clone(),
                addr: replica.addr,
                state: replica.state.to_string(),
                in_dns: Some(in_dns.iter().any(|instance| instance.id == replica.name)),
                pid: replica.pid,
                uptime_secs: replica.started.elapsed().as_secs(),
                restarts: self.restarts,
                utilization: replica.utilization.filter(|_| replica.state != ReplicaState::Draining),
            })
            .collect();
        let scaling = self.autoscaler.as_ref().map(|autoscaler| {
            let (min, max) = autoscaler.bounds();
            ScalingStatus {
                service: self.name().to_owned(),
                min,
                max,
                desired: self.desired,
                utilization: autoscaler.recent(Instant::now()),
                targets: autoscaler.targets(),
                last_change: self.last_change.as_ref().map(|(line, at)| (line.clone(), at.elapsed())),
            }
        });
        ServiceStatus { replicas, scaling }
    }

    async fn shutdown(&mut self) {
        // Out of DNS first, so clients stop choosing these replicas.
        self.registry.set_instances(&self.setup.dns_name, Vec::new());
        for (_, task) in self.health_tasks.drain(..) {
            task.abort();
        }
        for replica in &self.replicas {
            replica.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + self.setup.service.aws.stop_timeout;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
        for replica in &self.replicas {
            replica.signal(libc::SIGTERM);
        }
        for replica in &mut self.replicas {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(remaining, replica.child.wait()).await.is_err() {
                replica.signal(libc::SIGKILL);
                let _ = replica.child.wait().await;
            }
        }
        self.replicas.clear();
    }
}

//! `provision local`: the whole stack on one machine, the way ECS with Cloud
//! Map runs it. Every replica is a process on its own loopback address, all
//! on the service's port; a DNS server answers `<service>.<namespace>` with
//! the healthy replicas; unhealthy or dead replicas are replaced.

mod autoscaler;
mod block;
pub mod control;
mod health;
mod instance;
mod port_holder;
mod redis_log;
mod replica;
mod store;
mod supervisor;
mod usage;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use local_dns::{DnsServer, Registry};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::oneshot,
};

use self::{
    control::{Control, ControlTarget},
    health::HealthCommand,
    store::StoreSetup,
    supervisor::{Request, ServiceSetup, Supervisor},
};
use crate::spec::{self, Stack};

/// `provision local` and its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalArgs {
    /// Ask a running `provision local` something.
    #[command(subcommand)]
    pub command: Option<LocalCommand>,

    /// Run the stack (the default).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags of running the stack.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The stack file.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,

    /// Use the binaries already built instead of running `cargo build --release`.
    #[arg(long)]
    pub no_build: bool,

    /// Where the service binaries are. Default: cargo's release directory
    /// after building, or the directory of `provision` itself with --no-build.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Where to serve DNS for `<service>.<namespace>`. Default: port 8600
    /// on the first address of the stack's block, 127.0.0.1:8600 for the
    /// first stack running (127.1.0.1:8600 for a second app beside it).
    #[arg(long, env = "PROVISION_DNS_ADDR")]
    pub dns_addr: Option<SocketAddr>,

    /// Also take `status`, `restart` and `kill` requests on this TCP
    /// address (any local user can reach it). Without it, only on the Unix
    /// socket `<runtime dir>/<app>.sock`, which only this user can reach.
    #[arg(long, env = "PROVISION_CONTROL_ADDR")]
    pub control_addr: Option<SocketAddr>,

    /// Where the stores keep their data between runs (a directory per app
    /// and store). Default: $XDG_DATA_HOME/provision, else
    /// ~/.local/share/provision.
    #[arg(long, env = "PROVISION_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Start the stores empty: delete their data first.
    #[arg(long)]
    pub fresh: bool,

    /// Run autoscaling's windows and cooldowns this many times faster than
    /// the stack file says, so that a demo scales out and back in within a
    /// minute (e.g. 10: a 60 s cooldown lasts 6 s).
    #[arg(long, env = "PROVISION_AUTOSCALE_SPEEDUP", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub autoscale_speedup: u32,
}

/// Requests to a running `provision local`.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Print every replica (address, state, whether DNS names it, pid,
    /// uptime, CPU and memory in percent of its task's aws.cpu and
    /// aws.memory), then each service's replacements and autoscaling.
    Status(StatusArgs),
    /// Replace every replica of SERVICE one by one, keeping the count healthy.
    Restart(ServiceArgs),
    /// SIGKILL one healthy replica of SERVICE, as a crash would.
    Kill(ServiceArgs),
}

/// Which running stack to ask, and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// The stack file: its `app` names the running stack to ask.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,

    #[command(flatten)]
    pub target: ControlTargetArgs,
}

/// Where a running stack takes control requests, when not where its app
/// says.
#[derive(Debug, Clone, Default, Args)]
pub struct ControlTargetArgs {
    /// The running stack's control socket. Default: `<app>.sock` in
    /// $XDG_RUNTIME_DIR/provision, else /tmp/provision-<uid>.
    #[arg(long, env = "PROVISION_CONTROL_SOCKET", value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Ask over TCP instead, where `provision local --control-addr` serves.
    #[arg(long, env = "PROVISION_CONTROL_ADDR", conflicts_with = "control_socket")]
    pub control_addr: Option<SocketAddr>,
}

impl ControlTargetArgs {
    /// Where to ask: the address or socket given, else the socket of the
    /// app in `stack`.
    pub fn target(&self, stack: &Path) -> anyhow::Result<ControlTarget> {
        Ok(match (&self.control_addr, &self.control_socket) {
            (Some(addr), _) => ControlTarget::Tcp(*addr),
            (None, Some(path)) => ControlTarget::Socket(path.clone()),
            (None, None) => {
                let app = spec::load(stack)?.app;
                ControlTarget::Socket(control::client::socket_path(&app))
            }
        })
    }
}

/// Where the running stack of `app` answers DNS, as its control service
/// says: `call` and `bench` need no `--dns-addr`, whichever block the
/// stack took.
pub async fn running_dns(app: &str) -> anyhow::Result<SocketAddr> {
    let target = ControlTarget::Socket(control::client::socket_path(app));
    let status = match Control::connect(&target).await {
        Ok(mut control) => control.status().await,
        Err(why) => Err(why),
    }
    .map_err(|why| anyhow::anyhow!("{why} (or give --dns-addr, the DNS server of a stack)"))?;
    status
        .dns_addr
        .parse()
        .with_context(|| format!("the stack at {target} gave a bad DNS address {:?}", status.dns_addr))
}

/// `provision local status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub control: ControlArgs,

    /// `text`: a table; `json`: the control service's StatusResponse in
    /// proto3 JSON (field names as in proto/control/control.proto).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub use provision_cli::Output;

/// A request about one service.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service, as named in the stack file.
    pub service: String,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Runs `provision local` or one of its requests.
pub async fn main(args: LocalArgs) -> anyhow::Result<()> {
    let connect = |control: &ControlArgs| {
        let target = control.target.target(&control.stack);
        async move { Control::connect(&target?).await.map_err(anyhow::Error::msg) }
    };
    match args.command {
        None => run(args.run).await,
        Some(LocalCommand::Status(args)) => {
            let status = connect(&args.control).await?.status().await.map_err(anyhow::Error::msg)?;
            match args.output {
                Output::Text => print!("{}", control::render::table(&status)),
                Output::Json => println!("{}", control::render::json(&status)),
            }
            Ok(())
        }
        Some(LocalCommand::Restart(args)) => {
            let message = connect(&args.control).await?.restart(&args.service).await.map_err(anyhow::Error::msg)?;
            println!("{message}");
            Ok(())
        }
        Some(LocalCommand::Kill(args)) => {
            let message = connect(&args.control).await?.kill(&args.service).await.map_err(anyhow::Error::msg)?;
            println!("{message}");
            Ok(())
        }
    }
}

/// Builds the services' binaries with cargo and returns where they are.
fn build(stack: &Stack, root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(root).args(["build", "--release"]);
    // `cargo run` gives provision the variables of its own package; build
    // scripts that watch one of them (ring's watches CARGO_MANIFEST_DIR)
    // would see it change and rebuild everything above them.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            command.env_remove(name.as_ref());
        }
    }
    let mut packages: Vec<&str> = stack.services.iter().map(|service| service.package.as_str()).collect();
    packages.sort();
    packages.dedup();
    for package in &packages {
        command.args(["--package", package]);
    }
    println!("provision | building {} (cargo build --release)", packages.join(", "));
    let started = std::time::Instant::now();
    let status = command.status().context("cannot run cargo: is it installed and on PATH?")?;
    if !status.success() {
        bail!("cargo build failed ({status}); fix the build or run with --no-build");
    }
    // After `cargo run --release -p provisioner` this only links: the
    // workspace-hack crate gives both builds one feature set (README, "Building").
    println!("provision | built in {:.1} s", started.elapsed().as_secs_f64());
    let metadata = Command::new(&cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).context("cargo metadata did not answer with JSON")?;
    let target =
        metadata["target_directory"].as_str().context("cargo metadata did not say where the target directory is")?;
    Ok(PathBuf::from(target).join("release"))
}

/// The environment every replica of `service` gets: the runtime's timings,
/// the stack's, a discovery target for each dependency, and each store's URL.
fn environment(
    stack: &Stack,
    service: &spec::Service,
    dns_addr: SocketAddr,
    stores: &[StoreSetup],
) -> Vec<(String, String)> {
    // The same TTL, connection age, drain and deadline as on ECS, the
    // supervisor's stop timeout standing in for the task's stopTimeout.
    let mut env: Vec<(String, String)> = service.runtime_env(service.aws.stop_timeout).into_iter().collect();
    for (variable, name) in &service.stores {
        if let Some(store) = stores.iter().find(|store| &store.name == name) {
            env.push((variable.clone(), store.url()));
        }
    }
    for dependency in &service.depends_on {
        let Some(target) = stack.services.iter().find(|candidate| &candidate.name == dependency) else { continue };
        let value = format!("dns://{dns_addr}/{}:{}", target.dns_name(&stack.namespace), target.port);
        env.push((target.addr_variable(), value));
    }
    env
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let stack = spec::load(&args.stack)?;
    // Before building: a second run of the app refuses at once.
    let socket = control::client::socket_path(&stack.app);
    let instance = instance::claim(&stack.app, &socket)?;
    let block = instance.block;
    let dns_addr = args.dns_addr.unwrap_or_else(|| block.dns());
    let root = args.stack.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let bin_dir = match (&args.bin_dir, args.no_build) {
        (Some(dir), _) => dir.clone(),
        (None, false) => build(&stack, root)?,
        (None, true) => std::env::current_exe()?.parent().context("provision has no directory")?.to_path_buf(),
    };
    let stores = store_setups(&stack, &args, block)?;
    let mut setups = Vec::new();
    for (index, service) in stack.services.iter().enumerate() {
        let program = bin_dir.join(&service.binary);
        if !program.is_file() {
            bail!(
                "{}: no binary {} for service {:?}; build it (cargo build --release -p {}) or drop --no-build",
                args.stack.display(),
                program.display(),
                service.name,
                service.package
            );
        }
        let mut words = service.health_check.command.iter();
        let first = words.next().expect("validated: not empty");
        let candidate = bin_dir.join(first);
        let health = HealthCommand {
            program: if candidate.is_file() { candidate } else { PathBuf::from(first) },
            args: words.cloned().collect(),
            timeout: service.health_check.timeout,
        };
        let mut service = service.clone();
        let scales = service.autoscaling.as_ref().is_some_and(|scaling| scaling.max > 1);
        if !service.stores.is_empty() && stores.is_empty() && (service.count > 1 || scales) {
            println!(
                "provision | {}: runs as 1 replica instead of {}{}: without its store each replica would keep a \
                 board of its own",
                service.name,
                service.count,
                if scales { " and does not autoscale" } else { "" }
            );
            service.count = 1;
            service.autoscaling = None;
        }
        setups.push(ServiceSetup {
            env: environment(&stack, &service, dns_addr, &stores),
            dns_name: service.dns_name(&stack.namespace),
            service,
            program,
            health,
            subnet: u8::try_from(index + 1).context("at most 254 services")?,
            block,
            autoscale_speedup: args.autoscale_speedup,
        });
    }

    let started = std::time::Instant::now();
    let wanted: Vec<(String, u32)> =
        setups.iter().map(|setup| (setup.service.name.clone(), setup.service.count)).collect();
    let registry = Registry::new();
    let dns = DnsServer::start(dns_addr, registry.clone()).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;

    // Stores first (their clients connect at start), then dependencies
    // before their dependants, so that these find them in DNS.
    let mut members = Vec::new();
    for setup in &stores {
        let member = store::spawn(setup.clone());
        store::wait_healthy(&setup.name, &member).await;
        members.push((setup.name.clone(), member));
    }
    let mut supervisors = Vec::new();
    for setup in order_by_dependencies(setups) {
        let name = setup.service.name.clone();
        supervisors.push((name, Supervisor::spawn(setup, registry.clone())));
    }
    // Status lists services in the stack file's order, then the stores.
    supervisors.sort_by_key(|(name, _)| stack.services.iter().position(|service| &service.name == name));
    let service = control::server::ControlService::new(
        &stack.app,
        dns.addr(),
        supervisors.iter().chain(&members).cloned().collect(),
    );
    let control_endpoint = control::server::serve(&socket, args.control_addr, service).await?;
    println!(
        "provision | stack {:?} starting: DNS on {} (try: dig @{} -p {} {}), control on {}{}; Ctrl-C stops it",
        stack.app,
        dns.addr(),
        dns.addr().ip(),
        dns.addr().port(),
        stack.services[0].dns_name(&stack.namespace),
        socket.display(),
        args.control_addr.map(|addr| format!(" and {addr} (TCP, open to every local user)")).unwrap_or_default()
    );

    let ready = tokio::spawn(announce_ready(supervisors.clone(), wanted, started));

    for (index, service) in stack.services.iter().enumerate() {
        let Some(ingress) = &service.ingress else { continue };
        let first = SocketAddr::new(block.host(u8::try_from(index + 1)?, 2).into(), service.port);
        println!(
            "provision | {}: on AWS an {} ALB carries gRPC to it on 443 ([service.ingress]); locally there is no \
             load balancer: call one replica as a client of the ALB would, e.g. `provision call {first} METHOD` or \
             `grpcurl -plaintext {first} list`",
            service.name,
            ingress.scheme.as_str(),
        );
    }

    let signal = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    println!("provision | {signal}: deregistering every replica and stopping them");
    drop(control_endpoint);
    ready.abort();
    // Every service at once: each deregisters its replicas, tells them to
    // stop and then to skip the drain (no client outlives the stack), so
    // the whole stack stops as soon as calls in flight are done.
    let mut pending = Vec::new();
    for (name, supervisor) in &supervisors {
        let (tx, rx) = oneshot::channel();
        if supervisor.send(Request::Shutdown(tx)).await.is_ok() {
            pending.push((name, rx));
        }
    }
    for (name, stopped) in pending {
        let _ = stopped.await;
        println!("provision | {name} stopped");
    }
    // The stores last: every client has stopped.
    for (name, member) in &members {
        store::stop(member).await;
        println!("provision | {name} stopped");
    }
    drop(dns);
    Ok(())
}

/// Where each store runs: `redis-server` from PATH on its own address
/// (127.<block>.<after the services>.2), its data under the data directory.
/// Without `redis-server`, none: one line says so, and the services that
/// use a store run as one replica on their memory store.
fn store_setups(stack: &Stack, args: &RunArgs, block: block::Block) -> anyhow::Result<Vec<StoreSetup>> {
    if stack.stores.is_empty() {
        return Ok(Vec::new());
    }
    let Some(program) = store::find_redis_server() else {
        let users: Vec<&str> = stack
            .services
            .iter()
            .filter(|service| !service.stores.is_empty())
            .map(|service| service.name.as_str())
            .collect();
        println!(
            "provision | redis-server is not on PATH (install it: `apt-get install redis-server`, `brew install \
             redis`), so the stack has no store: {} run(s) on the memory store, one replica each (one board, lost \
             when it stops)",
            users.join(", ")
        );
        return Ok(Vec::new());
    };
    let root = args.data_dir.clone().unwrap_or_else(store::default_data_root).join(&stack.app);
    let mut setups = Vec::new();
    for (index, spec) in stack.stores.iter().enumerate() {
        let subnet = u8::try_from(stack.services.len() + 1 + index).context("at most 254 services and stores")?;
        let data_dir = root.join(&spec.name);
        if args.fresh && data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)
                .with_context(|| format!("--fresh: cannot delete {}", data_dir.display()))?;
            println!("provision | {}: --fresh: deleted {}", spec.name, data_dir.display());
        }
        setups.push(StoreSetup {
            name: spec.name.clone(),
            addr: SocketAddr::new(block.host(subnet, 2).into(), spec.port),
            program: program.clone(),
            data_dir,
            password: store::Password::generate().context("a password for the store: /dev/urandom")?,
        });
    }
    Ok(setups)
}

/// Says once, in one line, when every service has its wanted count of
/// healthy replicas in DNS (an autoscaled service: the count it wants now).
async fn announce_ready(
    supervisors: Vec<(String, tokio::sync::mpsc::Sender<Request>)>,
    wanted: Vec<(String, u32)>,
    started: std::time::Instant,
) {
    loop {
        let (mut healthy, mut total) = (0, 0);
        for (name, supervisor) in &supervisors {
            let (tx, rx) = oneshot::channel();
            if supervisor.send(Request::Status(tx)).await.is_err() {
                return;
            }
            let Ok(status) = rx.await else { return };
            let count = wanted.iter().find(|(service, _)| service == name).map_or(0, |(_, count)| *count);
            let want = status.scaling.as_ref().map_or(count, |scaling| scaling.desired) as usize;
            let ready =
                status.replicas.iter().filter(|replica| replica.state == "healthy" && replica.in_dns == Some(true));
            healthy += ready.count().min(want);
            total += want;
        }
        if healthy == total {
            println!(
                "provision | stack ready: {healthy}/{total} replicas healthy in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn order_by_dependencies(mut setups: Vec<ServiceSetup>) -> Vec<ServiceSetup> {
    let mut ordered: Vec<ServiceSetup> = Vec::new();
    while !setups.is_empty() {
        let ready = setups
            .iter()
            .position(|setup| {
                setup.service.depends_on.iter().all(|dep| ordered.iter().any(|done| &done.service.name == dep))
            })
            .unwrap_or(0);
        ordered.push(setups.remove(ready));
    }
    ordered
}

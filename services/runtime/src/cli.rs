//! The command line every service shares: `serve` (the default) and `health`.
//!
//! Every flag is also an environment variable, because that is how an ECS task
//! definition configures a container.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A service's whole command line. `A` holds the flags that only that service
/// has (its data file, its store, its dependencies' targets).
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true, version)]
pub struct Cli<A: Args> {
    /// What to do; `serve` when absent, so `docker run IMAGE` serves.
    #[command(subcommand)]
    pub command: Option<Command<A>>,

    /// The `serve` flags, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeCommand<A>,
}

impl<A: Args> Cli<A> {
    /// The command to run, with `serve` standing in for a missing subcommand.
    pub fn into_command(self) -> Command<A> {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// The subcommands every service binary has.
#[derive(Debug, Subcommand)]
pub enum Command<A: Args> {
    /// Serve gRPC until SIGTERM or Ctrl-C, then drain and exit.
    Serve(ServeCommand<A>),
    /// Ask a running server whether it is SERVING: exit 0 if so, 1 if not.
    /// This is what the ECS task definition's health check runs.
    Health(HealthArgs),
}

/// The flags of `serve`: the runtime's and the service's own.
#[derive(Debug, Args)]
pub struct ServeCommand<A: Args> {
    /// Flags every service has.
    #[command(flatten)]
    pub runtime: ServeArgs,
    /// Flags of this service only.
    #[command(flatten)]
    pub service: A,
}

/// How a service serves, drains and logs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve gRPC on. In awsvpc every task has its own IP, so every
    /// service uses the same port.
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:5000")]
    pub grpc_addr: SocketAddr,

    /// Seconds to keep serving after SIGTERM while reporting NOT_SERVING, so
    /// that clients' health watches and Cloud Map DNS move traffic away first.
    #[arg(long, env = "DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,

    /// Seconds after SIGTERM by which the process exits even if clients hold
    /// connections open. Keep it under the task's stopTimeout (30 s on Fargate
    /// by default) so that ECS never has to SIGKILL.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 25)]
    pub shutdown_timeout_secs: u64,

    /// Log format: `human` for a terminal, `json` (one object per line) for
    /// CloudWatch Logs.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `game_server=debug`.
    /// `RUST_LOG` is honoured as well when this is not given.
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
}

impl ServeArgs {
    /// How long to report NOT_SERVING before closing the listener.
    pub fn drain_period(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// The hard limit from the first signal to exit.
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The two log formats: one for people, one for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Coloured when on a terminal, one line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Flags of the `health` probe.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// Server to ask. Defaults to this container's own `GRPC_ADDR` with an
    /// unspecified IP (0.0.0.0) replaced by loopback, else 127.0.0.1:5000.
    #[arg(long, env = "HEALTH_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Service to ask about; empty means the whole server.
    #[arg(long, default_value = "")]
    pub service: String,

    /// Milliseconds to wait for connecting and answering together.
    #[arg(long, env = "HEALTH_TIMEOUT_MS", default_value_t = 1000)]
    pub timeout: u64,
}

impl HealthArgs {
    /// The address to probe: the flag, else where `serve` would listen.
    pub fn target(&self) -> SocketAddr {
        if let Some(addr) = self.addr {
            return addr;
        }
        let serving = std::env::var("GRPC_ADDR")
            .ok()
            .and_then(|value| value.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5000)));
        loopback_for(serving)
    }
}

/// The address a local client uses to reach a server listening on `addr`:
/// a wildcard listen address is reached through loopback.
pub fn loopback_for(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Args)]
    struct NoFlags {}

    fn parse(args: &[&str]) -> Command<NoFlags> {
        Cli::<NoFlags>::try_parse_from(args).expect("parses").into_command()
    }

    #[test]
    fn no_subcommand_means_serve_with_the_top_level_flags() {
        match parse(&["svc", "--grpc-addr", "127.0.0.1:7000", "--drain-secs", "1"]) {
            Command::Serve(serve) => {
                assert_eq!(serve.runtime.grpc_addr, "127.0.0.1:7000".parse().unwrap());
                assert_eq!(serve.runtime.drain_secs, 1);
            }
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn health_takes_its_own_flags() {
        match parse(&["svc", "health", "--addr", "127.0.0.1:7001", "--service", "rpc.Rpc"]) {
            Command::Health(health) => {
                assert_eq!(health.target(), "127.0.0.1:7001".parse().unwrap());
                assert_eq!(health.service, "rpc.Rpc");
            }
            other => panic!("expected health, got {other:?}"),
        }
    }

    #[test]
    fn wildcard_listen_addresses_are_probed_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0:5000".parse().unwrap()), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(loopback_for("[::]:5000".parse().unwrap()), "[::1]:5000".parse().unwrap());
        assert_eq!(loopback_for("127.0.3.4:5000".parse().unwrap()), "127.0.3.4:5000".parse().unwrap());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::<NoFlags>::command().debug_assert();
    }
}

//! The command line every service shares: `serve` (the default) and `health`.
//!
//! Every flag is also an environment variable, because that is how an ECS task
//! definition configures a container.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::age::{ConnectionAge, drain_bound, shutdown_deadline};

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

    /// Seconds a client connection may live before the server sends it
    /// GOAWAY (±10% jitter), so that clients of any gRPC library resolve DNS
    /// again and spread onto new tasks. 0: connections live as long as their
    /// clients keep them.
    #[arg(long, env = "MAX_CONNECTION_AGE_SECS", default_value_t = 30)]
    pub max_connection_age_secs: u64,

    /// Seconds an aged-out connection's calls in flight have to finish
    /// before the connection is closed under them.
    #[arg(long, env = "MAX_CONNECTION_AGE_GRACE_SECS", default_value_t = 10)]
    pub max_connection_age_grace_secs: u64,

    /// TTL of the DNS records clients find this server by (Cloud Map's, or
    /// the local stack's). A stopping server keeps accepting connections
    /// for at least this long: clients may still hold its address.
    #[arg(long, env = "DNS_TTL_SECS", default_value_t = 10)]
    pub dns_ttl_secs: u64,

    /// The longest drain: seconds after SIGTERM during which the server
    /// reports NOT_SERVING but keeps answering, until every client
    /// connection has been aged out or closed. Default: the DNS TTL plus the
    /// longest connection age plus 1, so that every client has resolved DNS
    /// again before the listener closes.
    #[arg(long, env = "DRAIN_SECS")]
    pub drain_secs: Option<u64>,

    /// Seconds after SIGTERM by which the process exits even if clients hold
    /// connections open. Default: the drain plus the connection age grace.
    /// Keep it under the task's stopTimeout so that ECS never has to SIGKILL.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,

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
    /// How long connections live.
    pub fn connection_age(&self) -> ConnectionAge {
        ConnectionAge::from_secs(self.max_connection_age_secs, self.max_connection_age_grace_secs)
    }

    /// The TTL clients cache this server's address for.
    pub fn dns_ttl(&self) -> Duration {
        Duration::from_secs(self.dns_ttl_secs)
    }

    /// The longest time to report NOT_SERVING and keep answering.
    pub fn drain_period(&self) -> Duration {
        self.drain_secs.map_or_else(|| drain_bound(self.dns_ttl(), &self.connection_age()), Duration::from_secs)
    }

    /// The hard limit from the first signal to exit.
    pub fn shutdown_deadline(&self) -> Duration {
        self.shutdown_timeout_secs
            .map_or_else(|| shutdown_deadline(self.drain_period(), &self.connection_age()), Duration::from_secs)
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
                assert_eq!(serve.runtime.drain_period(), Duration::from_secs(1));
                assert_eq!(serve.runtime.shutdown_deadline(), Duration::from_secs(11), "drain + grace");
            }
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn the_drain_and_deadline_follow_the_ttl_and_the_connection_age() {
        match parse(&[
            "svc",
            "--dns-ttl-secs",
            "5",
            "--max-connection-age-secs",
            "40",
            "--max-connection-age-grace-secs",
            "3",
        ]) {
            Command::Serve(serve) => {
                assert_eq!(serve.runtime.drain_period(), Duration::from_secs(5 + 44 + 1));
                assert_eq!(serve.runtime.shutdown_deadline(), Duration::from_secs(50 + 3));
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

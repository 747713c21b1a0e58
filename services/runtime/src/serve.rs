//! Serving: bind, add health and reflection, serve until drained.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::server::health_reporter;

use crate::{
    ServeArgs, Services,
    connection::{Acceptor, OpenConnections},
    drain::{Drain, StopSignals, hard_deadline},
    request_log::RequestLogLayer,
};

/// The services every server has besides its own.
const ALWAYS_SERVED: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// HTTP/2 pings on idle connections find dead peers (a task gone without a
/// FIN) and keep NAT and load-balancer state alive.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent streams one client connection may open.
const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The drain must end before the deadline, or there is no time to finish.
    #[error("--drain-secs ({drain}) must be less than --shutdown-timeout-secs ({deadline})")]
    DrainLongerThanDeadline {
        /// The drain period in seconds.
        drain: u64,
        /// The deadline in seconds.
        deadline: u64,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The address is taken, or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set given to reflection did not decode.
    #[error("reflection cannot use the service descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server stopped with a transport error.
    #[error("server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `services` on `args.grpc_addr` with health and reflection, until a
/// signal and the drain sequence end it (see [`crate::drain`]).
pub async fn serve(args: &ServeArgs, services: Services) -> Result<(), ServeError> {
    let (drain_period, deadline, age) = (args.drain_period(), args.shutdown_deadline(), args.connection_age());
    if drain_period >= deadline {
        return Err(ServeError::DrainLongerThanDeadline {
            drain: drain_period.as_secs(),
            deadline: deadline.as_secs(),
        });
    }
    let signals = StopSignals::register().map_err(ServeError::Signals)?;
    let listener =
        TcpListener::bind(args.grpc_addr).await.map_err(|source| ServeError::Bind { addr: args.grpc_addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: args.grpc_addr, source })?;

    let (routes, names, descriptor_sets) = services.into_parts();
    let (reporter, health_service) = health_reporter();
    for name in &names {
        reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }

    // Each reflection version describes itself; registering the other one
    // too makes both list every service the server really has.
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET);
    for set in &descriptor_sets {
        reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
        reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
    }
    // A descriptor set may describe more services than this server has (the
    // contracts crate holds them all): list only the ones served.
    for name in names.iter().copied().chain(ALWAYS_SERVED) {
        reflection_v1 = reflection_v1.with_service_name(name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(name);
    }

    let open = OpenConnections::default();
    let handles = Drain {
        reporter,
        service_names: names.clone(),
        dns_ttl: args.dns_ttl(),
        drain_period,
        deadline,
        open: open.clone(),
    }
    .spawn(signals);

    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1.build_v1()?)
        .add_service(reflection_v1alpha.build_v1alpha()?)
        .prepare();
    let server = Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .layer(RequestLogLayer);

    tracing::info!(
        addr = %local_addr,
        services = ?names,
        max_connection_age_secs = age.max.map(|max| max.as_secs()),
        connection_age_jitter_percent = crate::age::JITTER_PERCENT,
        max_connection_age_grace_secs = age.grace.as_secs(),
        max_drain_secs = drain_period.as_secs(),
        shutdown_timeout_secs = deadline.as_secs(),
        "serving gRPC"
    );
    let acceptor = Acceptor { server, routes, age, stop: handles.stop, open: open.clone() };
    let serving = async {
        acceptor.run(listener).await;
        open.none_left().await;
    };
    tokio::select! {
        () = serving => tracing::info!("all calls finished; exiting"),
        _ = hard_deadline(handles.hard_deadline) => {
            tracing::warn!(
                open_connections = open.count(),
                "shutdown deadline reached with connections still open; exiting anyway"
            );
        }
    }
    Ok(())
}

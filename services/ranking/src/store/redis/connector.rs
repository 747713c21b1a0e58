//! What every Redis operation goes through: a connection of the configured
//! kind, the store's timeout, and errors sorted into worth-a-retry or not.
//!
//! A failover is where a long-lived connection goes wrong: ElastiCache
//! promotes a replica and points the primary endpoint's name at it, but a
//! connection made before still reaches the old primary, now a replica,
//! which answers every write with READONLY. redis-rs's connection manager
//! reconnects only when the connection breaks, which that one does not
//! (redis-rb and StackExchange.Redis document the same trap). So READONLY
//! makes the store drop its connection for a new one, which resolves the
//! endpoint again, and run the operation once more: a write refused with
//! READONLY was not applied, so running it again counts it once.

use std::{sync::Arc, time::Duration};

use redis::{
    Cmd, Pipeline, RedisError, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use super::super::StoreError;

/// A connection to Redis or Redis Cluster, and how long an operation may
/// take. Shared by the reads and the submission batches.
pub(super) struct Connector {
    pub(super) backend: Backend,
    pub(super) timeout: Duration,
    /// The store URL without its password, for errors and logs.
    pub(super) description: String,
}

pub(super) enum Backend {
    /// Reconnects by itself after Redis restarts; replaced by a new one
    /// after a failover (see the module's doc).
    Single(Box<Single>),
    /// Connected on first use, so the service starts while Redis is down.
    Cluster(Box<ClusterClient>, Arc<OnceCell<ClusterConnection>>),
}

/// A connection manager that can be replaced by a fresh one.
pub(super) struct Single {
    manager: std::sync::RwLock<ConnectionManager>,
    client: redis::Client,
    config: redis::aio::ConnectionManagerConfig,
}

impl Single {
    /// A manager for `client` that connects on first use.
    pub(super) fn new(client: redis::Client, config: redis::aio::ConnectionManagerConfig) -> Result<Self, RedisError> {
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(Self { manager: std::sync::RwLock::new(manager), client, config })
    }

    fn current(&self) -> ConnectionManager {
        self.manager.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Drops the connection for a new one, made on its next use.
    fn reconnect(&self) {
        if let Ok(fresh) = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            *self.manager.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        }
    }
}

/// Whether Redis refused a write as a replica: a failover moved the
/// primary away from under this connection.
pub(super) fn is_read_only(error: &RedisError) -> bool {
    matches!(error.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
}

/// One connection handle for one operation.
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

pub(super) fn classify(error: RedisError) -> StoreError {
    // A store that refuses our credentials is as unusable as one that is
    // down, and may accept them later (a rotated token).
    let refused = error.kind() == redis::ErrorKind::AuthenticationFailed;
    if refused
        || is_read_only(&error)
        || error.is_io_error()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_connection_dropped()
    {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Internal(error.to_string())
    }
}

/// A BEST submission refused as a syntax error comes from a Redis older
/// than 7.0, which lacks `ZADD ... GT` or `EXPIREAT ... NX`: say so.
pub(super) fn needs_redis_7(error: StoreError) -> StoreError {
    match error {
        StoreError::Internal(message) if message.contains("syntax error") => StoreError::Internal(format!(
            "{message} (BEST boards are written with ZADD GT and EXPIREAT NX: the store needs Redis 7.0 or later, or Valkey)"
        )),
        other => other,
    }
}

impl Connector {
    async fn connection(&self) -> Result<Connection, StoreError> {
        match &self.backend {
            Backend::Single(single) => Ok(Connection::Single(single.current())),
            Backend::Cluster(client, connection) => {
                let connection = connection
                    .get_or_try_init(|| async { client.get_async_connection().await.map_err(classify) })
                    .await?;
                Ok(Connection::Cluster(connection.clone()))
            }
        }
    }

    /// Runs `operation` on a connection within the store's timeout; after
    /// READONLY, once more on a new connection.
    pub(super) async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let work = async {
            match operation(self.connection().await?).await {
                Err(error) if is_read_only(&error) => {
                    if let Backend::Single(single) = &self.backend {
                        tracing::warn!(store = %self.description, "the store answered READONLY (a failover): reconnecting");
                        single.reconnect();
                    }
                    operation(self.connection().await?).await.map_err(classify)
                }
                result => result.map_err(classify),
            }
        };
        tokio::time::timeout(self.timeout, work).await.unwrap_or_else(|_| Err(self.timed_out()))
    }

    /// The error of an operation that ran out of the store's time.
    pub(super) fn timed_out(&self) -> StoreError {
        StoreError::Unavailable(format!("{} did not answer within {:?}", self.description, self.timeout))
    }
}

//! What every Redis operation goes through: a connection of the configured
//! kind, the store's timeout, and errors sorted into worth-a-retry or not.

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

#[derive(Clone)]
pub(super) enum Backend {
    /// Reconnects by itself after Redis restarts.
    Single(ConnectionManager),
    /// Connected on first use, so the service starts while Redis is down.
    Cluster(Box<ClusterClient>, Arc<OnceCell<ClusterConnection>>),
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
            Backend::Single(manager) => Ok(Connection::Single(manager.clone())),
            Backend::Cluster(client, connection) => {
                let connection = connection
                    .get_or_try_init(|| async { client.get_async_connection().await.map_err(classify) })
                    .await?;
                Ok(Connection::Cluster(connection.clone()))
            }
        }
    }

    /// Runs `operation` on a connection within the store's timeout.
    pub(super) async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let work = async {
            let connection = self.connection().await?;
            operation(connection).await.map_err(classify)
        };
        tokio::time::timeout(self.timeout, work).await.unwrap_or_else(|_| Err(self.timed_out()))
    }

    /// The error of an operation that ran out of the store's time.
    pub(super) fn timed_out(&self) -> StoreError {
        StoreError::Unavailable(format!("{} did not answer within {:?}", self.description, self.timeout))
    }
}

//! The Redis layout:
//!
//! - one sorted set per board and period, e.g. `{ranking}:daily:20261127`,
//!   member = user id, score = the composite of [`crate::score`], expiring a
//!   grace period after its period ends (ALL_TIME never);
//! - one hash `{ranking}:profiles`, field = user id, value = the encoded
//!   `Profile`, written only when a profile is set.
//!
//! The `{ranking}` hash tag puts every key in one cluster slot, so a
//! submission can touch all four boards atomically (one `MULTI`, or the
//! script) on Redis Cluster too. Reads use ZREVRANK / ZREVRANGE:
//! O(log N + M), never a scan. Submissions made at the same time share a
//! round trip ([`batch`]).

mod batch;
mod best;
mod connector;
mod submission;

use std::{path::Path, sync::Arc, time::Duration};

use contracts::ranking::v1::Profile;
use prost::Message;
use redis::{RedisError, aio::ConnectionManagerConfig, cluster::ClusterClient};
use tokio::sync::OnceCell;

use self::{
    batch::Queue,
    connector::{Backend, Connector, needs_redis_7},
    submission::Submission,
};
use super::{BoardWrite, Once, RankOn, Ranked, Standing, StoreError};
use crate::{board::BoardId, score::decode};

/// The hash of profiles.
const PROFILES_KEY: &str = "{ranking}:profiles";

/// The scheme that selects Redis Cluster.
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A Redis or Redis Cluster store. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    connector: Arc<Connector>,
    submissions: Queue,
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

impl RedisStore {
    /// Prepares a store for `url`; connects lazily, so a Redis that is down
    /// at start-up only makes calls fail until it is back.
    pub async fn open(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Self, StoreError> {
        // rediss:// needs a TLS crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let description = redact(url);
        let bad_url = |error: RedisError| StoreError::Config(format!("bad --store URL {description}: {error}"));
        let backend = if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            let nodes: Vec<String> = rest.split(',').map(|node| format!("redis://{node}")).collect();
            let client = ClusterClient::builder(nodes)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .map_err(bad_url)?;
            Backend::Cluster(Box::new(client), Arc::new(OnceCell::new()))
        } else if url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://") {
            let client = match ca_file {
                None => redis::Client::open(url).map_err(bad_url)?,
                Some(ca_file) if url.starts_with("rediss://") => {
                    let root_cert = std::fs::read(ca_file).map_err(|error| {
                        StoreError::Config(format!("--store-ca-file {}: {error}", ca_file.display()))
                    })?;
                    let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                    redis::Client::build_with_tls(url, certificates).map_err(|error| {
                        StoreError::Config(format!("--store-ca-file {}: {error}", ca_file.display()))
                    })?
                }
                Some(ca_file) => {
                    return Err(StoreError::Config(format!(
                        "--store-ca-file {} is for a rediss:// store, not {description}",
                        ca_file.display()
                    )));
                }
            };
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            Backend::Single(Box::new(connector::Single::new(client, config).map_err(bad_url)?))
        } else {
            return Err(StoreError::Config(format!(
                "unknown --store {description}: use memory, redis://HOST:PORT, rediss://HOST:PORT or redis+cluster://HOST:PORT,..."
            )));
        };
        let connector = Arc::new(Connector { backend, timeout, description });
        Ok(Self { submissions: Queue::start(Arc::clone(&connector)), connector })
    }

    /// One PING, within the store's timeout.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let pong: String =
            self.run(|mut connection| async move { redis::cmd("PING").query_async(&mut connection).await }).await?;
        if pong == "PONG" { Ok(()) } else { Err(StoreError::Internal(format!("PING answered {pong:?}"))) }
    }

    pub(crate) fn describe(&self) -> String {
        self.connector.description.clone()
    }

    pub(crate) async fn submit(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
        rank_on: RankOn,
    ) -> Result<Vec<Standing>, StoreError> {
        let submission =
            Submission { writes: writes.to_vec(), user_id: user_id.to_owned(), score, rank_on, once: None };
        // The wait for a batch counts against the store's time too.
        tokio::time::timeout(self.connector.timeout, self.submissions.submit(submission))
            .await
            .unwrap_or_else(|_| Err(self.connector.timed_out()))
    }

    /// [`Self::submit`] once per `once.key`: the submit script checks and
    /// records the id with the boards, atomically.
    pub(crate) async fn submit_once(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
        rank_on: RankOn,
        once: Once,
    ) -> Result<Vec<Standing>, StoreError> {
        let submission =
            Submission { writes: writes.to_vec(), user_id: user_id.to_owned(), score, rank_on, once: Some(once) };
        tokio::time::timeout(self.connector.timeout, self.submissions.submit(submission))
            .await
            .unwrap_or_else(|_| Err(self.connector.timed_out()))
    }

    /// Many submissions in one pipeline: one round trip for the batch, each
    /// submission still atomic on its own.
    pub(crate) async fn submit_many(&self, writes: &[BoardWrite], scores: &[(&str, i64)]) -> Result<(), StoreError> {
        if scores.is_empty() {
            return Ok(());
        }
        let submissions: Vec<Submission> = scores
            .iter()
            .map(|(user_id, score)| Submission {
                writes: writes.to_vec(),
                user_id: (*user_id).to_owned(),
                score: *score,
                rank_on: RankOn::NONE,
                once: None,
            })
            .collect();
        let pipeline = &submission::pipeline(&submissions.iter().collect::<Vec<_>>(), false);
        self.run(|mut connection| async move { pipeline.query_async::<()>(&mut connection).await })
            .await
            .map_err(needs_redis_7)
    }

    /// Runs `operation` on a connection within the store's timeout.
    async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        F: Fn(connector::Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.connector.run(operation).await
    }

    pub(crate) async fn top(&self, board: &BoardId, limit: u64) -> Result<(Vec<Ranked>, u64), StoreError> {
        let key = &board.key();
        let stop = limit as isize - 1;
        let (entries, total): (Vec<(String, f64)>, u64) = self
            .run(|mut connection| async move {
                redis::pipe()
                    .cmd("ZREVRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(stop)
                    .arg("WITHSCORES")
                    .cmd("ZCARD")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok((ranked_from(entries, 1), total))
    }

    pub(crate) async fn rank(&self, board: &BoardId, user_id: &str) -> Result<(Option<Ranked>, u64), StoreError> {
        let key = &board.key();
        let (rank, composite, total): (Option<u64>, Option<f64>, u64) = self
            .run(|mut connection| async move {
                redis::pipe()
                    .cmd("ZREVRANK")
                    .arg(key)
                    .arg(user_id)
                    .cmd("ZSCORE")
                    .arg(key)
                    .arg(user_id)
                    .cmd("ZCARD")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        let ranked = match (rank, composite) {
            (Some(rank), Some(composite)) => {
                Some(Ranked { user_id: user_id.to_owned(), score: decode(composite), rank: rank + 1 })
            }
            _ => None,
        };
        Ok((ranked, total))
    }

    pub(crate) async fn around(
        &self,
        board: &BoardId,
        user_id: &str,
        radius: u64,
    ) -> Result<(Option<Vec<Ranked>>, u64), StoreError> {
        let (ranked, total) = self.rank(board, user_id).await?;
        let Some(ranked) = ranked else { return Ok((None, total)) };
        let key = &board.key();
        let first = (ranked.rank - 1).saturating_sub(radius);
        let last = ranked.rank - 1 + radius;
        let entries: Vec<(String, f64)> = self
            .run(|mut connection| async move {
                redis::cmd("ZREVRANGE")
                    .arg(key)
                    .arg(first)
                    .arg(last)
                    .arg("WITHSCORES")
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok((Some(ranked_from(entries, first + 1)), total))
    }

    pub(crate) async fn set_profile(&self, user_id: &str, profile: &Profile) -> Result<(), StoreError> {
        let encoded = &profile.encode_to_vec();
        self.run(|mut connection| async move {
            redis::cmd("HSET").arg(PROFILES_KEY).arg(user_id).arg(encoded).query_async::<()>(&mut connection).await
        })
        .await
    }

    pub(crate) async fn profiles(&self, user_ids: &[String]) -> Result<Vec<Option<Profile>>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .run(|mut connection| async move {
                redis::cmd("HMGET").arg(PROFILES_KEY).arg(user_ids).query_async(&mut connection).await
            })
            .await?;
        values.into_iter().map(decode_profile).collect()
    }

    pub(crate) async fn expires_in(&self, board: &BoardId) -> Result<Option<i64>, StoreError> {
        let key = &board.key();
        let ttl: i64 = self
            .run(|mut connection| async move { redis::cmd("TTL").arg(key).query_async(&mut connection).await })
            .await?;
        Ok((ttl >= 0).then_some(ttl))
    }
}

/// A stored profile, if any.
fn decode_profile(value: Option<Vec<u8>>) -> Result<Option<Profile>, StoreError> {
    value
        .map(|bytes| Profile::decode(bytes.as_slice()))
        .transpose()
        .map_err(|error| StoreError::Internal(format!("a stored profile does not decode: {error}")))
}

fn ranked_from(entries: Vec<(String, f64)>, first_rank: u64) -> Vec<Ranked> {
    entries
        .into_iter()
        .enumerate()
        .map(|(index, (user_id, composite))| Ranked {
            user_id,
            score: decode(composite),
            rank: first_rank + index as u64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redact("rediss://default:s3cret@cache.example:6379"), "rediss://***@cache.example:6379");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}

//! Where boards and profiles live: Redis in production, memory for a stack
//! with no server. Both give the same answers; the conformance tests hold
//! them to it.

mod memory;
mod redis;

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use contracts::ranking::v1::Profile;

pub use self::{memory::MemoryStore, redis::RedisStore};
use crate::board::{BoardId, Policy};

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backing server cannot be reached or did not answer in time; the
    /// call may succeed later.
    #[error("ranking store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something unexpected.
    #[error("ranking store error: {0}")]
    Internal(String),
    /// The store URL is not usable.
    #[error("{0}")]
    Config(String),
}

/// A user's place on one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// The user.
    pub user_id: String,
    /// Their score on the board.
    pub score: i64,
    /// 1-based position.
    pub rank: u64,
}

/// One board to update in a submission, with what it needs.
#[derive(Debug, Clone, Copy)]
pub struct BoardWrite {
    /// The board.
    pub board: BoardId,
    /// How it combines scores.
    pub policy: Policy,
    /// The tie-break tick of this submission.
    pub tick: u64,
    /// Unix seconds when the board's key expires, if it does.
    pub expires_at: Option<i64>,
}

impl BoardWrite {
    /// The write for `board` at `now`.
    pub fn new(board: BoardId, policy: Policy, now: SystemTime, grace: Duration) -> Self {
        Self { board, policy, tick: board.tick_at(now), expires_at: board.expires_at(grace) }
    }
}

/// Which boards of a submission to rank, by their place in its writes. A
/// rank costs Redis an O(log N) lookup per board, and most callers show one
/// rank at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankOn(u32);

impl RankOn {
    /// Every board.
    pub const ALL: Self = Self(u32::MAX);
    /// No board.
    pub const NONE: Self = Self(0);

    /// The boards at `indexes` (at most 32 boards per submission).
    pub fn boards(indexes: impl IntoIterator<Item = usize>) -> Self {
        Self(indexes.into_iter().filter(|index| *index < 32).fold(0, |mask, index| mask | 1 << index))
    }

    /// Whether the board at `index` is ranked.
    pub fn includes(self, index: usize) -> bool {
        index < 32 && self.0 & (1 << index) != 0
    }
}

/// How long a submission id is remembered when one of its boards never
/// expires.
pub const ONCE_FALLBACK: Duration = Duration::from_secs(35 * 86_400);

/// A submission's id as the store keeps it: its key and when it is
/// forgotten (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    pub key: String,
    pub expires_at: i64,
}

/// When a submission id made at `now` for `writes` is forgotten: with the
/// last of its boards, or [`ONCE_FALLBACK`] after `now` if one never goes.
pub fn once_expiry(writes: &[BoardWrite], now: SystemTime) -> i64 {
    let fallback =
        now.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| (since + ONCE_FALLBACK).as_secs() as i64);
    writes.iter().map(|write| write.expires_at.unwrap_or(fallback)).max().unwrap_or(fallback)
}

/// Where a submission left the user on one board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Their score on the board after it.
    pub score: i64,
    /// Their 1-based rank, when it was asked for.
    pub rank: Option<u64>,
}

/// The configured store.
#[derive(Clone)]
pub enum Store {
    /// In this process; lost on exit.
    Memory(MemoryStore),
    /// Redis or Redis Cluster.
    Redis(RedisStore),
}

impl Store {
    /// Opens the store named by `url`: `memory`, `redis://...`,
    /// `rediss://...` or `redis+cluster://...`. Redis calls fail after
    /// `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::open_with_ca(url, timeout, None).await
    }

    /// [`Store::open`], trusting the CA in `ca_file` (PEM) for a
    /// `rediss://` store's certificate instead of the system's roots.
    pub async fn open_with_ca(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Self, StoreError> {
        if url.is_empty() || url == "memory" {
            if let Some(ca_file) = ca_file {
                return Err(StoreError::Config(format!(
                    "--store-ca-file {} is for a rediss:// store, and the store is memory",
                    ca_file.display()
                )));
            }
            return Ok(Store::Memory(MemoryStore::new()));
        }
        Ok(Store::Redis(RedisStore::open(url, timeout, ca_file).await?))
    }

    /// Whether the store answers now (PING); the reason when it does not,
    /// for one clear line at start-up.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(redis) => redis.ping().await,
        }
    }

    /// A short description for logs, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Store::Memory(_) => "memory".into(),
            Store::Redis(redis) => redis.describe(),
        }
    }

    /// Adds `score` for `user_id` to every board in `writes`; returns the
    /// user's score and rank on each, in order.
    pub async fn submit(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let standings = self.submit_ranking(writes, user_id, score, RankOn::ALL).await?;
        Ok(standings.into_iter().map(|standing| (standing.score, standing.rank.unwrap_or(0))).collect())
    }

    /// Adds `score` for `user_id` to every board in `writes`; returns the
    /// user's score on each, in order, and their rank on the boards in
    /// `rank_on`.
    pub async fn submit_ranking(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
        rank_on: RankOn,
    ) -> Result<Vec<Standing>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.submit(writes, user_id, score, rank_on)),
            Store::Redis(store) => store.submit(writes, user_id, score, rank_on).await,
        }
    }

    /// [`Self::submit_ranking`] once per `submission_id`: a submission of
    /// `user_id` with an id seen before is answered with its first result
    /// and not applied again, for as long as its boards live (35 days where
    /// one never expires), so a caller may retry a submission whose answer
    /// it did not get. Only a submission with a SUM board is recorded: one
    /// to BEST boards alone is idempotent by itself.
    pub async fn submit_once(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
        rank_on: RankOn,
        submission_id: &str,
    ) -> Result<Vec<Standing>, StoreError> {
        let once = Once {
            key: format!("{{ranking}}:submission:{user_id}:{submission_id}"),
            expires_at: once_expiry(writes, SystemTime::now()),
        };
        match self {
            Store::Memory(store) => Ok(store.submit_once(writes, user_id, score, rank_on, &once)),
            Store::Redis(store) => store.submit_once(writes, user_id, score, rank_on, once).await,
        }
    }

    /// Adds each of `scores` (user, score) to every board in `writes`, in
    /// order; each submission is atomic, the batch is not.
    pub async fn submit_many(&self, writes: &[BoardWrite], scores: &[(&str, i64)]) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                for (user_id, score) in scores {
                    store.submit(writes, user_id, *score, RankOn::NONE);
                }
                Ok(())
            }
            Store::Redis(store) => store.submit_many(writes, scores).await,
        }
    }

    /// The first `limit` entries of `board`, and how many users it has.
    pub async fn top(&self, board: &BoardId, limit: u64) -> Result<(Vec<Ranked>, u64), StoreError> {
        match self {
            Store::Memory(store) => Ok(store.top(board, limit)),
            Store::Redis(store) => store.top(board, limit).await,
        }
    }

    /// `user_id`'s place on `board` (if ranked), and how many users it has.
    pub async fn rank(&self, board: &BoardId, user_id: &str) -> Result<(Option<Ranked>, u64), StoreError> {
        match self {
            Store::Memory(store) => Ok(store.rank(board, user_id)),
            Store::Redis(store) => store.rank(board, user_id).await,
        }
    }

    /// The entries from `radius` places above `user_id` to `radius` below,
    /// `None` when the user is not ranked; and how many users it has.
    pub async fn around(
        &self,
        board: &BoardId,
        user_id: &str,
        radius: u64,
    ) -> Result<(Option<Vec<Ranked>>, u64), StoreError> {
        match self {
            Store::Memory(store) => Ok(store.around(board, user_id, radius)),
            Store::Redis(store) => store.around(board, user_id, radius).await,
        }
    }

    /// Sets a user's profile.
    pub async fn set_profile(&self, user_id: &str, profile: &Profile) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                store.set_profile(user_id, profile);
                Ok(())
            }
            Store::Redis(store) => store.set_profile(user_id, profile).await,
        }
    }

    /// The profiles of `user_ids`, in order.
    pub async fn profiles(&self, user_ids: &[String]) -> Result<Vec<Option<Profile>>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.profiles(user_ids)),
            Store::Redis(store) => store.profiles(user_ids).await,
        }
    }

    /// Seconds until `board`'s key expires (`None` when it never does or
    /// does not exist), for tests and operators.
    pub async fn expires_in(&self, board: &BoardId) -> Result<Option<i64>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.expires_in(board)),
            Store::Redis(store) => store.expires_in(board).await,
        }
    }
}

/// The composite after one submission of `score` at `tick` by a user whose
/// composite was `old`, and whether it changes the board. BEST keeps the
/// higher composite: the higher score, and of equal scores the one reached
/// first (as `ZADD ... GT` does in Redis). SUM adds the score up, stamped
/// with this tick, unless it adds nothing.
pub(crate) fn combine(policy: Policy, old: Option<u64>, score: i64, tick: u64) -> (u64, bool) {
    use crate::score::{MAX_SCORE, decode, encode};
    let submitted = encode(score, tick) as u64;
    match (policy, old) {
        (_, None) => (submitted, true),
        (Policy::Best, Some(old)) if submitted > old => (submitted, true),
        (Policy::Best, Some(old)) => (old, false),
        (Policy::Sum, Some(old)) if score > 0 => {
            (encode((decode(old as f64) + score).min(MAX_SCORE), tick) as u64, true)
        }
        (Policy::Sum, Some(old)) => (old, false),
    }
}

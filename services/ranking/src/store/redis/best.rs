//! Submissions to BEST boards without Lua.
//!
//! A BEST board keeps the highest composite of [`crate::score`]: a higher
//! score is a higher composite, and an equal score reached later has a later
//! tick and so a lower one. `ZADD key GT composite user` is that rule in one
//! native command, so a submission whose boards are all BEST needs no script:
//! per board `ZADD ... GT`, `ZSCORE` for the standing and `ZREVRANK` where
//! the rank is asked for, the whole submission in one `MULTI`/`EXEC`; and
//! once per batch and board `EXPIREAT ... NX`, which sets the board's expiry
//! when it has none (after the write that creates it) and costs nothing
//! otherwise. Redis spends about 30 us of every script call converting
//! arguments and replies between Lua and C, more than these commands cost
//! together (measured in `benches/leaderboard.rs`; see the README's
//! Performance section). `GT` needs Redis 6.2 and `EXPIREAT ... NX` Redis 7.0
//! (or any Valkey).

use redis::{Cmd, Pipeline, Value};

use super::super::{BoardWrite, RankOn, Standing, StoreError};
use crate::{
    board::{BoardId, Policy},
    score::{decode, encode},
};

/// Whether every board of a submission keeps the best score, so that
/// [`add_submission`] can write it.
pub(super) fn applies_to(writes: &[BoardWrite]) -> bool {
    writes.iter().all(|write| write.policy == Policy::Best)
}

/// Appends one submission, atomic on its own, to `pipeline`; `keys` are the
/// writes' boards' keys, in order. The pipeline answers one value for it
/// (the `EXEC`), which [`standings`] reads; with `answer` false it reads
/// nothing back, for a batch. The boards' expiry is [`add_expiries`]'s.
pub(super) fn add_submission(
    pipeline: &mut Pipeline,
    (writes, keys): (&[BoardWrite], &[&str]),
    user_id: &str,
    score: i64,
    rank_on: RankOn,
    answer: bool,
) {
    // Sized up front: a batch builds thousands of these (perf showed the
    // growing and the key formatting as a tenth of the server's CPU).
    let command = |name: &str, key: &str, extra: usize| {
        let mut command = Cmd::with_capacity(3 + extra, name.len() + key.len() + user_id.len() + 24);
        command.arg(name).arg(key);
        command
    };
    pipeline.cmd("MULTI").ignore();
    for (index, (write, key)) in writes.iter().zip(keys).enumerate() {
        // An exact integer below 2^53: written as one, Redis parses it exactly.
        let composite = encode(score, write.tick) as u64;
        let mut zadd = command("ZADD", key, 2);
        zadd.arg("GT").arg(composite).arg(user_id);
        pipeline.add_command(zadd).ignore();
        if answer {
            let mut zscore = command("ZSCORE", key, 0);
            zscore.arg(user_id);
            pipeline.add_command(zscore).ignore();
            if rank_on.includes(index) {
                let mut zrevrank = command("ZREVRANK", key, 0);
                zrevrank.arg(user_id);
                pipeline.add_command(zrevrank).ignore();
            }
        }
    }
    pipeline.cmd("EXEC");
    if !answer {
        pipeline.ignore();
    }
}

/// The standings in the `EXEC` answer of one [`add_submission`] with `answer`.
pub(super) fn standings(exec: Value, writes: &[BoardWrite], rank_on: RankOn) -> Result<Vec<Standing>, StoreError> {
    let unexpected = |what: &str| StoreError::Internal(format!("a BEST submission's EXEC answered {what}"));
    let replies = match exec {
        Value::Array(replies) => replies,
        Value::Nil => return Err(unexpected("nil (the transaction was aborted)")),
        other => return Err(unexpected(&format!("{other:?}"))),
    };
    let mut replies = replies.into_iter();
    let mut next = |command: &str| replies.next().ok_or_else(|| unexpected(&format!("no reply for {command}")));
    let mut standings = Vec::with_capacity(writes.len());
    for index in 0..writes.len() {
        next("ZADD")?.extract_error().map_err(|error| StoreError::Internal(error.to_string()))?;
        let composite: f64 = redis::from_redis_value(next("ZSCORE")?)
            .map_err(|error| unexpected(&format!("a ZSCORE that is not a score: {error}")))?;
        let rank = if rank_on.includes(index) {
            let rank: u64 = redis::from_redis_value(next("ZREVRANK")?)
                .map_err(|error| unexpected(&format!("a ZREVRANK that is not a rank: {error}")))?;
            Some(rank + 1)
        } else {
            None
        };
        standings.push(Standing { score: decode(composite), rank });
    }
    Ok(standings)
}

/// Appends, after the submissions of a batch, one `EXPIREAT ... NX` for each
/// board among `writes` that expires: a board has one expiry, so once per
/// batch is enough, and the write that created a board is in the same batch.
pub(super) fn add_expiries<'a>(pipeline: &mut Pipeline, writes: impl IntoIterator<Item = &'a BoardWrite>) {
    let mut done: Vec<(BoardId, i64)> = Vec::new();
    for write in writes {
        let Some(expires_at) = write.expires_at else { continue };
        if !done.contains(&(write.board, expires_at)) {
            pipeline.cmd("EXPIREAT").arg(write.board.key()).arg(expires_at).arg("NX").ignore();
            done.push((write.board, expires_at));
        }
    }
}

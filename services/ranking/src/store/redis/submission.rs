//! One submission's commands and answer, whichever way its boards are
//! written: native commands when they are all BEST ([`super::best`]), the
//! submit script (`submit.lua`) when a SUM board is among them.

use std::sync::LazyLock;

use redis::{Pipeline, Script, Value};

use super::{
    super::{BoardWrite, Once, RankOn, Standing, StoreError},
    best,
};
use crate::{
    board::BoardId,
    score::{LUA_TICK_SPAN, MAX_SCORE},
};

/// The script for submissions with a SUM board; Redis keeps it by its hash.
static SUBMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("submit.lua")));

/// One user's score for some boards, and the ranks wanted back.
pub(super) struct Submission {
    /// The boards, each with its policy, tick and expiry.
    pub(super) writes: Vec<BoardWrite>,
    /// The member on every board.
    pub(super) user_id: String,
    /// The score before the boards' policies combine it.
    pub(super) score: i64,
    /// The boards whose rank the answer carries.
    pub(super) rank_on: RankOn,
    /// Its id, when it is to be applied once only.
    pub(super) once: Option<Once>,
}

/// The commands of `submissions` in one pipeline, each submission atomic on
/// its own. With `answer`, the pipeline answers one value per submission, in
/// order, which [`Submission::standings`] reads; without, nothing.
pub(super) fn pipeline(submissions: &[&Submission], answer: bool) -> Pipeline {
    let mut pipeline = redis::pipe();
    if submissions.iter().any(|submission| submission.scripted()) {
        // Loading first makes the EVALSHAs after it safe on a Redis that
        // restarted or failed over and lost its scripts.
        pipeline.load_script(&SUBMIT_SCRIPT).ignore();
    }
    // Submissions made at the same moment share their boards: each key is
    // formatted once per batch.
    let mut keys: Vec<(BoardId, String)> = Vec::new();
    let mut key_of = |board: BoardId| match keys.iter().position(|(known, _)| *known == board) {
        Some(index) => index,
        None => {
            keys.push((board, board.key()));
            keys.len() - 1
        }
    };
    let indexes: Vec<Vec<usize>> = submissions
        .iter()
        .map(|submission| submission.writes.iter().map(|write| key_of(write.board)).collect())
        .collect();
    for (submission, indexes) in submissions.iter().zip(indexes) {
        let board_keys: Vec<&str> = indexes.into_iter().map(|index| keys[index].1.as_str()).collect();
        submission.add_to(&mut pipeline, &board_keys, answer);
    }
    let native = submissions.iter().filter(|submission| !submission.scripted());
    best::add_expiries(&mut pipeline, native.flat_map(|submission| &submission.writes));
    pipeline
}

impl Submission {
    /// Whether it goes through the submit script: a SUM board is among its
    /// boards. Its id, if any, is checked and recorded there, atomically
    /// with the boards; a submission to BEST boards only is idempotent by
    /// itself (the same score twice is the same best) and keeps the native
    /// commands.
    fn scripted(&self) -> bool {
        !best::applies_to(&self.writes)
    }

    fn add_to(&self, pipeline: &mut Pipeline, keys: &[&str], answer: bool) {
        if !self.scripted() {
            best::add_submission(pipeline, (&self.writes, keys), &self.user_id, self.score, self.rank_on, answer);
            return;
        }
        let mut invocation = SUBMIT_SCRIPT.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        invocation.arg(&self.user_id).arg(self.score).arg(MAX_SCORE).arg(LUA_TICK_SPAN);
        for (index, write) in self.writes.iter().enumerate() {
            invocation
                .arg(write.policy.name())
                .arg(write.tick)
                .arg(write.expires_at.unwrap_or(0))
                .arg(u8::from(self.rank_on.includes(index)));
        }
        if let Some(once) = &self.once {
            invocation.key(&once.key).arg(once.expires_at);
        }
        pipeline.invoke_script(&invocation);
        if !answer {
            pipeline.ignore();
        }
    }

    /// The standings in this submission's answer from [`pipeline`].
    pub(super) fn standings(&self, answer: Value) -> Result<Vec<Standing>, StoreError> {
        if !self.scripted() {
            return best::standings(answer, &self.writes, self.rank_on);
        }
        // The script answers score and rank (0 when not asked for) per board.
        let flat: Vec<i64> = redis::from_redis_value(answer)
            .map_err(|error| StoreError::Internal(format!("the submit script answered {error}")))?;
        if flat.len() != self.writes.len() * 2 {
            return Err(StoreError::Internal(format!("the submit script returned {} values", flat.len())));
        }
        Ok(flat
            .chunks(2)
            .map(|pair| Standing { score: pair[0], rank: (pair[1] > 0).then_some(pair[1] as u64) })
            .collect())
    }
}

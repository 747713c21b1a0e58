//! The embedded store: the same semantics as the Redis layout, in a mutex.
//! For the local stack and tests; ranks cost O(N) here, which is fine at
//! local sizes (Redis is O(log N)).

use std::{
    cmp::Reverse,
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use contracts::ranking::v1::Profile;

use super::{BoardWrite, Once, RankOn, Ranked, Standing, combine};
use crate::{board::BoardId, score::decode};

/// The ordering Redis uses for ZREVRANGE: composite descending, then member
/// descending.
type OrderKey = (Reverse<u64>, Reverse<String>);

#[derive(Default)]
struct Board {
    composites: HashMap<String, u64>,
    order: BTreeSet<OrderKey>,
    expires_at: Option<i64>,
}

#[derive(Default)]
struct State {
    boards: HashMap<String, Board>,
    profiles: HashMap<String, Profile>,
    /// Submission ids seen, with their first answer and when they go.
    seen: HashMap<String, (Vec<Standing>, i64)>,
}

/// Boards and profiles in this process.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() as i64)
}

impl State {
    /// The board, dropping it first if its time is up, as Redis expiry would.
    fn board(&mut self, key: &str) -> Option<&Board> {
        if self.boards.get(key).is_some_and(|board| board.expires_at.is_some_and(|at| at <= now_secs())) {
            self.boards.remove(key);
        }
        self.boards.get(key)
    }
}

impl Board {
    fn rank_of(&self, user_id: &str) -> Option<u64> {
        let composite = *self.composites.get(user_id)?;
        let key = (Reverse(composite), Reverse(user_id.to_owned()));
        Some(self.order.range(..key).count() as u64 + 1)
    }

    fn entries(&self, skip: u64, take: u64) -> Vec<Ranked> {
        self.order
            .iter()
            .enumerate()
            .skip(skip as usize)
            .take(take as usize)
            .map(|(index, (Reverse(composite), Reverse(user_id)))| Ranked {
                user_id: user_id.clone(),
                score: decode(*composite as f64),
                rank: index as u64 + 1,
            })
            .collect()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn submit(&self, writes: &[BoardWrite], user_id: &str, score: i64, rank_on: RankOn) -> Vec<Standing> {
        let mut state = self.state.lock().expect("store lock");
        Self::apply(&mut state, writes, user_id, score, rank_on)
    }

    /// [`Self::submit`] once per `once.key`, atomically with the check.
    pub(crate) fn submit_once(
        &self,
        writes: &[BoardWrite],
        user_id: &str,
        score: i64,
        rank_on: RankOn,
        once: &Once,
    ) -> Vec<Standing> {
        let mut state = self.state.lock().expect("store lock");
        // As in Redis: BEST boards alone are idempotent, and not recorded.
        if writes.iter().all(|write| write.policy == crate::board::Policy::Best) {
            return Self::apply(&mut state, writes, user_id, score, rank_on);
        }
        let now = now_secs();
        state.seen.retain(|_, (_, expires_at)| *expires_at > now);
        if let Some((first, _)) = state.seen.get(&once.key) {
            return first.clone();
        }
        let standings = Self::apply(&mut state, writes, user_id, score, rank_on);
        state.seen.insert(once.key.clone(), (standings.clone(), once.expires_at));
        standings
    }

    fn apply(state: &mut State, writes: &[BoardWrite], user_id: &str, score: i64, rank_on: RankOn) -> Vec<Standing> {
        let mut standings = Vec::with_capacity(writes.len());
        for (index, write) in writes.iter().enumerate() {
            let key = write.board.key();
            let _ = state.board(&key);
            let board = state.boards.entry(key).or_default();
            let old = board.composites.get(user_id).copied();
            let (composite, changed) = combine(write.policy, old, score, write.tick);
            if changed {
                if let Some(previous) = board.composites.insert(user_id.to_owned(), composite) {
                    board.order.remove(&(Reverse(previous), Reverse(user_id.to_owned())));
                }
                board.order.insert((Reverse(composite), Reverse(user_id.to_owned())));
            }
            // As in Redis (EXPIREAT ... NX): a board's expiry is set once,
            // by the first write that finds it without one.
            if board.expires_at.is_none() {
                board.expires_at = write.expires_at;
            }
            let rank = rank_on.includes(index).then(|| board.rank_of(user_id).expect("just written"));
            standings.push(Standing { score: decode(composite as f64), rank });
        }
        standings
    }

    pub(crate) fn top(&self, board: &BoardId, limit: u64) -> (Vec<Ranked>, u64) {
        let mut state = self.state.lock().expect("store lock");
        match state.board(&board.key()) {
            Some(board) => (board.entries(0, limit), board.order.len() as u64),
            None => (Vec::new(), 0),
        }
    }

    pub(crate) fn rank(&self, board: &BoardId, user_id: &str) -> (Option<Ranked>, u64) {
        let mut state = self.state.lock().expect("store lock");
        let Some(board) = state.board(&board.key()) else { return (None, 0) };
        let ranked = board.rank_of(user_id).map(|rank| Ranked {
            user_id: user_id.to_owned(),
            score: decode(board.composites[user_id] as f64),
            rank,
        });
        (ranked, board.order.len() as u64)
    }

    pub(crate) fn around(&self, board: &BoardId, user_id: &str, radius: u64) -> (Option<Vec<Ranked>>, u64) {
        let mut state = self.state.lock().expect("store lock");
        let Some(board) = state.board(&board.key()) else { return (None, 0) };
        let total = board.order.len() as u64;
        let entries = board.rank_of(user_id).map(|rank| {
            let first = (rank - 1).saturating_sub(radius);
            board.entries(first, rank - 1 - first + 1 + radius)
        });
        (entries, total)
    }

    pub(crate) fn set_profile(&self, user_id: &str, profile: &Profile) {
        self.state.lock().expect("store lock").profiles.insert(user_id.to_owned(), profile.clone());
    }

    pub(crate) fn profiles(&self, user_ids: &[String]) -> Vec<Option<Profile>> {
        let state = self.state.lock().expect("store lock");
        user_ids.iter().map(|user_id| state.profiles.get(user_id).cloned()).collect()
    }

    pub(crate) fn expires_in(&self, board: &BoardId) -> Option<i64> {
        let mut state = self.state.lock().expect("store lock");
        state.board(&board.key())?.expires_at.map(|at| at - now_secs())
    }
}

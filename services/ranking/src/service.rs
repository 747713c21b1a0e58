//! The `ranking.v1.Ranking` gRPC service over a [`Store`].

use std::time::{Duration, SystemTime};

use contracts::ranking::v1::{self as pb, ranking_server::Ranking};
use tonic::{Request, Response, Status};

use crate::{
    board::{BoardId, Period, Policies},
    date::Date,
    store::{BoardWrite, Ranked, Store, StoreError},
    validate,
};

/// The ranking service. Cheap to clone.
#[derive(Clone)]
pub struct RankingService {
    store: Store,
    policies: Policies,
    grace: Duration,
}

impl RankingService {
    /// Serves `store`, scoring each period's boards by `policies`, keeping
    /// boards `grace` past the end of their period.
    pub fn new(store: Store, policies: Policies, grace: Duration) -> Self {
        Self { store, policies, grace }
    }

    /// The writes of one submission made now: one per period.
    fn writes(&self, now: SystemTime) -> Vec<BoardWrite> {
        let today = Date::at(now);
        Period::ALL
            .iter()
            .map(|&period| {
                BoardWrite::new(BoardId::containing(period, today), self.policies.of(period), now, self.grace)
            })
            .collect()
    }

    /// Entries with their profiles.
    async fn entries(&self, ranked: Vec<Ranked>) -> Result<Vec<pb::Entry>, Status> {
        let user_ids: Vec<String> = ranked.iter().map(|entry| entry.user_id.clone()).collect();
        let profiles = self.store.profiles(&user_ids).await.map_err(to_status)?;
        Ok(ranked
            .into_iter()
            .zip(profiles)
            .map(|(entry, profile)| pb::Entry { user_id: entry.user_id, score: entry.score, rank: entry.rank, profile })
            .collect())
    }
}

/// Store failures as gRPC codes: an unreachable Redis is UNAVAILABLE (worth
/// a retry), anything else INTERNAL.
/// The status a caller gets for a store failure: its kind, never its
/// detail, which names the store's internal host, port and commands (the
/// detail goes to this service's log).
fn to_status(error: StoreError) -> Status {
    tracing::warn!(%error, "a call failed in the ranking store");
    match error {
        StoreError::Unavailable(_) => Status::unavailable(
            "the ranking store is unavailable for now: retry later (a SubmitScore with a submission_id counts once)",
        ),
        StoreError::Internal(_) | StoreError::Config(_) => {
            Status::internal("the ranking store failed this call (the ranking service's log says why)")
        }
    }
}

fn period_of(board: &BoardId) -> pb::Period {
    match board.period {
        Period::Daily => pb::Period::Daily,
        Period::Weekly => pb::Period::Weekly,
        Period::Monthly => pb::Period::Monthly,
        Period::AllTime => pb::Period::AllTime,
    }
}

#[tonic::async_trait]
impl Ranking for RankingService {
    async fn submit_score(
        &self,
        request: Request<pb::SubmitScoreRequest>,
    ) -> Result<Response<pb::SubmitScoreResponse>, Status> {
        let request = request.into_inner();
        validate::user_id("user_id", &request.user_id)?;
        validate::score("score", request.score)?;
        let rank_on = validate::rank_on(request.rank_periods.as_ref())?;
        let writes = self.writes(SystemTime::now());
        let (user, score) = (&request.user_id, request.score);
        let standings = if request.submission_id.is_empty() {
            self.store.submit_ranking(&writes, user, score, rank_on).await
        } else {
            validate::submission_id("submission_id", &request.submission_id)?;
            self.store.submit_once(&writes, user, score, rank_on, &request.submission_id).await
        }
        .map_err(to_status)?;
        let standings = writes
            .iter()
            .zip(standings)
            .map(|(write, standing)| pb::Standing {
                period: period_of(&write.board) as i32,
                period_start: write.board.start_label(),
                score: standing.score,
                rank: standing.rank.unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::SubmitScoreResponse { standings }))
    }

    async fn submit_scores(
        &self,
        request: Request<pb::SubmitScoresRequest>,
    ) -> Result<Response<pb::SubmitScoresResponse>, Status> {
        let scores = request.into_inner().scores;
        if scores.len() > validate::MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "scores: {} entries is over the limit of {}",
                scores.len(),
                validate::MAX_BATCH
            )));
        }
        // Validate everything before writing anything.
        for (index, score) in scores.iter().enumerate() {
            validate::user_id(&format!("scores[{index}].user_id"), &score.user_id)?;
            validate::score(&format!("scores[{index}].score"), score.score)?;
        }
        let writes = self.writes(SystemTime::now());
        let batch: Vec<(&str, i64)> = scores.iter().map(|score| (score.user_id.as_str(), score.score)).collect();
        self.store.submit_many(&writes, &batch).await.map_err(to_status)?;
        Ok(Response::new(pb::SubmitScoresResponse { accepted: scores.len() as u32 }))
    }

    async fn get_top(&self, request: Request<pb::GetTopRequest>) -> Result<Response<pb::GetTopResponse>, Status> {
        let request = request.into_inner();
        let board = validate::board(request.board.as_ref(), Date::today())?;
        let limit = validate::count("limit", request.limit, validate::DEFAULT_LIMIT, validate::MAX_LIMIT)?;
        // Two round trips (the board and its size pipelined, then the
        // profiles): one Lua script doing both was measured slower, as Redis
        // spends more converting 100 entries into Lua and back than the
        // second round trip costs.
        let (ranked, total) = self.store.top(&board, limit).await.map_err(to_status)?;
        Ok(Response::new(pb::GetTopResponse { entries: self.entries(ranked).await?, total }))
    }

    async fn get_rank(&self, request: Request<pb::GetRankRequest>) -> Result<Response<pb::GetRankResponse>, Status> {
        let request = request.into_inner();
        let board = validate::board(request.board.as_ref(), Date::today())?;
        validate::user_id("user_id", &request.user_id)?;
        let (ranked, total) = self.store.rank(&board, &request.user_id).await.map_err(to_status)?;
        let entry = match ranked {
            Some(ranked) => self.entries(vec![ranked]).await?.pop(),
            None => None,
        };
        Ok(Response::new(pb::GetRankResponse { ranked: entry.is_some(), entry, total }))
    }

    async fn get_around(
        &self,
        request: Request<pb::GetAroundRequest>,
    ) -> Result<Response<pb::GetAroundResponse>, Status> {
        let request = request.into_inner();
        let board = validate::board(request.board.as_ref(), Date::today())?;
        validate::user_id("user_id", &request.user_id)?;
        let radius = validate::count("radius", request.radius, validate::DEFAULT_RADIUS, validate::MAX_RADIUS)?;
        let (around, total) = self.store.around(&board, &request.user_id, radius).await.map_err(to_status)?;
        let ranked = around.is_some();
        let entries = self.entries(around.unwrap_or_default()).await?;
        Ok(Response::new(pb::GetAroundResponse { ranked, entries, total }))
    }

    async fn set_profile(
        &self,
        request: Request<pb::SetProfileRequest>,
    ) -> Result<Response<pb::SetProfileResponse>, Status> {
        let request = request.into_inner();
        validate::user_id("user_id", &request.user_id)?;
        let profile = validate::profile(request.profile.as_ref())?;
        self.store.set_profile(&request.user_id, &profile).await.map_err(to_status)?;
        Ok(Response::new(pb::SetProfileResponse {}))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        let request = request.into_inner();
        validate::user_id("user_id", &request.user_id)?;
        let profile =
            self.store.profiles(std::slice::from_ref(&request.user_id)).await.map_err(to_status)?.pop().flatten();
        Ok(Response::new(pb::GetProfileResponse { found: profile.is_some(), profile }))
    }
}

//! The `rpc.Rpc` service over a [`Catalog`].

use std::{sync::Arc, time::Duration};

use contracts::{
    ranking::v1::{Period, Periods, SubmitScoreRequest, ranking_client::RankingClient},
    rpc::{
        Empty, GetBattleFieldResponse, GetChampionRequest, GetChampionResponse, ListChampionsResponse,
        ReportMatchRequest, ReportMatchResponse, rpc_server::Rpc,
    },
};
use discovery::DiscoveryChannel;
use tonic::{Code, Request, Response, Status};

use crate::catalog::Catalog;

/// How long ReportMatch waits for the ranking service.
const RANKING_DEADLINE: Duration = Duration::from_secs(2);

/// The game service. Cheap to clone: the catalog is shared and read-only.
#[derive(Debug, Clone)]
pub struct Game {
    catalog: Arc<Catalog>,
    ranking: Option<DiscoveryChannel>,
}

impl Game {
    /// Serves `catalog`; ReportMatch reaches the ranking service through
    /// `ranking` (none configured: ReportMatch answers UNAVAILABLE).
    pub fn new(catalog: Catalog, ranking: Option<DiscoveryChannel>) -> Self {
        Self { catalog: Arc::new(catalog), ranking }
    }
}

#[tonic::async_trait]
impl Rpc for Game {
    async fn get_champion(
        &self,
        request: Request<GetChampionRequest>,
    ) -> Result<Response<GetChampionResponse>, Status> {
        let id = request.into_inner().champion_id;
        if id <= 0 {
            return Err(Status::invalid_argument(format!("champion_id must be positive, got {id}")));
        }
        let champion = self
            .catalog
            .champion(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no champion with champion_id {id}")))?;
        Ok(Response::new(GetChampionResponse { champion: Some(champion) }))
    }

    async fn list_champions(&self, _request: Request<Empty>) -> Result<Response<ListChampionsResponse>, Status> {
        let champions = self.catalog.champions().cloned().collect();
        Ok(Response::new(ListChampionsResponse { champions }))
    }

    async fn get_battle_field(&self, _request: Request<Empty>) -> Result<Response<GetBattleFieldResponse>, Status> {
        let battle_fields = self.catalog.battle_fields().to_vec();
        Ok(Response::new(GetBattleFieldResponse { battle_fields }))
    }

    async fn report_match(
        &self,
        request: Request<ReportMatchRequest>,
    ) -> Result<Response<ReportMatchResponse>, Status> {
        let request = request.into_inner();
        let champion_id = request.champion_id;
        if champion_id <= 0 {
            return Err(Status::invalid_argument(format!("champion_id must be positive, got {champion_id}")));
        }
        if self.catalog.champion(champion_id).is_none() {
            return Err(Status::not_found(format!("no champion with champion_id {champion_id}")));
        }
        let Some(channel) = &self.ranking else {
            return Err(Status::unavailable("no ranking service configured: start game-server with --ranking-addr"));
        };
        // Only the daily rank is shown: asking for just it spares the
        // ranking store three rank lookups per match.
        // The match's id makes a retried report count once; one game-server
        // names keeps its own attempt from counting twice at least.
        let submission_id = if request.match_id.is_empty() {
            format!("gs-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
        } else {
            request.match_id
        };
        let mut submit = Request::new(SubmitScoreRequest {
            user_id: request.user_id,
            score: request.score,
            rank_periods: Some(Periods { periods: vec![Period::Daily as i32] }),
            submission_id,
        });
        submit.set_timeout(RANKING_DEADLINE);
        let standings = match RankingClient::new(channel.clone()).submit_score(submit).await {
            Ok(response) => response.into_inner().standings,
            // The ranking service judged the input: pass its verdict on
            // (a match_id it refuses among it).
            Err(status) if status.code() == Code::InvalidArgument => {
                return Err(Status::invalid_argument(status.message().replacen("submission_id", "match_id", 1)));
            }
            Err(status) => {
                return Err(Status::unavailable(format!("ranking service: {:?}: {}", status.code(), status.message())));
            }
        };
        let daily = standings
            .iter()
            .find(|standing| standing.period() == Period::Daily)
            .ok_or_else(|| Status::internal("the ranking service returned no daily standing"))?;
        Ok(Response::new(ReportMatchResponse { daily_rank: daily.rank, daily_score: daily.score }))
    }
}

//! The `rpc.Rpc` service over a [`Catalog`].

use std::sync::Arc;

use contracts::rpc::{
    Empty, GetBattleFieldResponse, GetChampionRequest, GetChampionResponse, ListChampionsResponse, rpc_server::Rpc,
};
use tonic::{Request, Response, Status};

use crate::catalog::Catalog;

/// The game service. Cheap to clone: the catalog is shared and read-only.
#[derive(Debug, Clone)]
pub struct Game {
    catalog: Arc<Catalog>,
}

impl Game {
    /// Serves `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog: Arc::new(catalog) }
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
}

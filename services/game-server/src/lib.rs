//! The game service `rpc.Rpc`: champions and battle fields from a data file.
//!
//! The binary (`game-server`) is a thin `main` over [`services`]; tests and
//! benches can build the same services in-process.

pub mod catalog;
pub mod game;

use std::path::PathBuf;

use clap::Args;
use contracts::rpc::rpc_server::RpcServer;
use discovery::DiscoveryChannel;
use service_runtime::Services;

pub use catalog::{Catalog, CatalogError};
pub use game::Game;

/// Largest request accepted. Game requests are a few bytes; a small limit
/// keeps a misbehaving client from making the server buffer megabytes.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest response sent (gRPC's customary default).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The game server's own flags.
#[derive(Debug, Clone, Args)]
pub struct GameFlags {
    /// Champion and battle-field data (TOML). Defaults to the file built into
    /// the binary, services/game-server/data/game.toml.
    #[arg(long, env = "GAME_DATA")]
    pub data: Option<PathBuf>,

    /// The ranking service, as a discovery target: `dns:///ranking.local:5000`
    /// on ECS, `dns://127.0.0.1:8600/ranking.local:5000` in the local stack.
    /// Without it ReportMatch answers UNAVAILABLE; the other RPCs work.
    #[arg(long, env = "RANKING_ADDR")]
    pub ranking_addr: Option<String>,
}

impl GameFlags {
    /// The catalog these flags name.
    pub fn catalog(&self) -> Result<Catalog, CatalogError> {
        match &self.data {
            Some(path) => Catalog::load(path),
            None => Catalog::built_in(),
        }
    }

    /// The channel to the ranking service, if one is configured. It starts
    /// lazily: the ranking service may come up after the game server.
    pub fn ranking_channel(&self) -> Result<Option<DiscoveryChannel>, discovery::Error> {
        self.ranking_addr.as_deref().map(|target| discovery::Builder::new(target)?.connect_lazy()).transpose()
    }
}

/// Everything `game-server serve` serves, ready for the runtime.
pub fn services(catalog: Catalog, ranking: Option<DiscoveryChannel>) -> Services {
    let rpc = RpcServer::new(Game::new(catalog, ranking))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    Services::new().add_service(rpc).describe(contracts::FILE_DESCRIPTOR_SET)
}

/// The `game-server` binary: the runtime's command line, the game data,
/// the ranking client, serving. Here rather than in `main.rs` so that its
/// generic code is compiled with the library, which the provisioner's build
/// compiles too: `provision local` then only links the binary.
pub fn main() -> std::process::ExitCode {
    service_runtime::main(
        "game-server",
        "The game's gRPC service (rpc.Rpc): champions and battle fields.",
        |flags: GameFlags| async move {
            let catalog = flags.catalog()?;
            tracing::info!(
                champions = catalog.champions().count(),
                battle_fields = catalog.battle_fields().len(),
                "game data loaded"
            );
            let ranking = flags.ranking_channel()?;
            match &ranking {
                Some(channel) => tracing::info!(target = channel.target(), "ranking service"),
                None => tracing::warn!("no --ranking-addr: ReportMatch will answer UNAVAILABLE"),
            }
            Ok(services(catalog, ranking))
        },
    )
}

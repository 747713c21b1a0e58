//! The game service `rpc.Rpc`: champions and battle fields from a data file.
//!
//! The binary (`game-server`) is a thin `main` over [`services`]; tests and
//! benches can build the same services in-process.

pub mod catalog;
pub mod game;

use std::path::PathBuf;

use clap::Args;
use contracts::rpc::rpc_server::RpcServer;
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
}

impl GameFlags {
    /// The catalog these flags name.
    pub fn catalog(&self) -> Result<Catalog, CatalogError> {
        match &self.data {
            Some(path) => Catalog::load(path),
            None => Catalog::built_in(),
        }
    }
}

/// Everything `game-server serve` serves, ready for the runtime.
pub fn services(catalog: Catalog) -> Services {
    let rpc = RpcServer::new(Game::new(catalog))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    Services::new().add(rpc).describe(contracts::FILE_DESCRIPTOR_SET)
}

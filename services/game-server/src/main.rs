//! `game-server`: serves `rpc.Rpc` with health, reflection and drain.

use std::process::ExitCode;

use game_server::GameFlags;

fn main() -> ExitCode {
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
            Ok(game_server::services(catalog))
        },
    )
}

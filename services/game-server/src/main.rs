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
            let ranking = flags.ranking_channel()?;
            match &ranking {
                Some(channel) => tracing::info!(target = channel.target(), "ranking service"),
                None => tracing::warn!("no --ranking-addr: ReportMatch will answer UNAVAILABLE"),
            }
            Ok(game_server::services(catalog, ranking))
        },
    )
}

//! `ranking`: serves `ranking.v1.Ranking` with health, reflection and drain.

use std::process::ExitCode;

use ranking::{RankingFlags, RankingService};

fn main() -> ExitCode {
    service_runtime::main(
        "ranking",
        "The ranking service (ranking.v1.Ranking): leaderboards in Redis or in memory.",
        |flags: RankingFlags| async move {
            let store = flags.open_store().await?;
            tracing::info!(store = %store.describe(), policy = ?flags.policy, "ranking store ready");
            Ok(ranking::services(RankingService::new(store, flags.policy, flags.grace())))
        },
    )
}

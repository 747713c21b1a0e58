//! `ranking`: serves `ranking.v1.Ranking` with health, reflection and drain.

use std::process::ExitCode;

use ranking::{RankingFlags, RankingService};

fn main() -> ExitCode {
    service_runtime::main(
        "ranking",
        "The ranking service (ranking.v1.Ranking): leaderboards in Redis or in memory.",
        |flags: RankingFlags| async move {
            let store = flags.open_store().await?;
            match store.ping().await {
                Ok(()) => tracing::info!(store = %store.describe(), policy = ?flags.policy, "ranking store ready"),
                // Served anyway: calls fail UNAVAILABLE until the store answers.
                Err(error) => tracing::error!(
                    store = %store.describe(),
                    "ranking store not answering ({error}): calls fail with UNAVAILABLE until it does"
                ),
            }
            if matches!(store, ranking::Store::Memory(_)) {
                tracing::warn!(
                    "memory store: boards live in this process only, so replicas do not share them and a restart loses them; \
                     give --store redis://... for one leaderboard"
                );
            }
            Ok(ranking::services(RankingService::new(store, flags.policy, flags.grace())))
        },
    )
}

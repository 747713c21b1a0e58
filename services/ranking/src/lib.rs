//! The ranking service `ranking.v1.Ranking`: daily, weekly, monthly and
//! all-time leaderboards in Redis sorted sets (or in memory), with profiles.
//!
//! The binary (`ranking`) is a thin `main` over [`services`].
//!
//! # Layout
//! - `service`: the gRPC service; `validate` its requests.
//! - `board`, `date`, `score`: which board a call names, UTC periods, and
//!   scores encoded with their tie order.
//! - `store/`: the `Store` trait, its memory store, and Redis (`store/redis/`:
//!   connection, submissions, the BEST path, batching).

pub mod board;
pub mod date;
pub mod score;
pub mod service;
pub mod store;
pub mod validate;

use std::time::Duration;

use clap::Args;
use contracts::ranking::v1::ranking_server::RankingServer;
use service_runtime::Services;

pub use board::{BoardId, Period, Policies, Policy};
pub use service::RankingService;
pub use store::{Store, StoreError};

/// The ranking service's own flags.
#[derive(Debug, Clone, Args)]
pub struct RankingFlags {
    /// Where boards live: `memory` (the default: nothing to run, lost on
    /// exit), `redis://[:PASSWORD@]HOST:PORT`, `rediss://...` (TLS, as
    /// ElastiCache in transit encryption uses) or
    /// `redis+cluster://HOST:PORT[,HOST:PORT...]`.
    #[arg(long, env = "RANKING_STORE", default_value = "memory", hide_env_values = true)]
    pub store: String,

    /// A PEM file of the CA that signed a `rediss://` store's certificate,
    /// trusted instead of the system's roots (ElastiCache's certificates
    /// chain to public roots and need none). The name in the URL is always
    /// checked against the certificate.
    #[arg(long, env = "RANKING_STORE_CA_FILE")]
    pub store_ca_file: Option<std::path::PathBuf>,

    /// Scoring per period: `best` keeps a user's best score, `sum` adds them
    /// up, e.g. `daily=best,weekly=best,monthly=best,all-time=sum`.
    #[arg(long, env = "RANKING_POLICY", default_value = "daily=best,weekly=best,monthly=best,all-time=best")]
    pub policy: Policies,

    /// Milliseconds a store call may take before the RPC fails with
    /// UNAVAILABLE.
    #[arg(long, env = "RANKING_STORE_TIMEOUT_MS", default_value_t = 1000)]
    pub store_timeout_ms: u64,

    /// Hours a board is kept after its period ends (its key's TTL).
    #[arg(long, env = "RANKING_KEY_GRACE_HOURS", default_value_t = 48)]
    pub key_grace_hours: u64,
}

impl RankingFlags {
    /// The store these flags name.
    pub async fn open_store(&self) -> Result<Store, StoreError> {
        Store::open_with_ca(&self.store, Duration::from_millis(self.store_timeout_ms), self.store_ca_file.as_deref())
            .await
    }

    /// How long boards outlive their period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.key_grace_hours * 3600)
    }
}

/// Everything `ranking serve` serves, ready for the runtime.
pub fn services(service: RankingService) -> Services {
    Services::new().add_service(RankingServer::new(service)).describe(contracts::FILE_DESCRIPTOR_SET)
}

/// The `ranking` binary: the runtime's command line, the store, serving.
/// Here rather than in `main.rs` so that its generic code is compiled with
/// the library, which the provisioner's build compiles too: `provision
/// local` then only links the binary.
pub fn main() -> std::process::ExitCode {
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
            if matches!(store, Store::Memory(_)) {
                tracing::warn!(
                    "memory store: boards live in this process only, so replicas do not share them and a restart loses them; \
                     give --store redis://... for one leaderboard"
                );
            }
            Ok(services(RankingService::new(store, flags.policy, flags.grace())))
        },
    )
}

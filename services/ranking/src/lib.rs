//! The ranking service `ranking.v1.Ranking`: daily, weekly, monthly and
//! all-time leaderboards in Redis sorted sets (or in memory), with profiles.
//!
//! The binary (`ranking`) is a thin `main` over [`services`].

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

//! A small authoritative DNS server that answers the way AWS Cloud Map's
//! private DNS namespaces do, so the local stack and the tests see what tasks
//! on ECS see: `<service>.<namespace>` answers with one A record per healthy
//! instance (at most eight, shuffled), SRV records with each instance's port,
//! and NXDOMAIN for names nobody registered.

mod answer;
mod registry;
mod server;

pub use answer::MAX_ANSWERS;
pub use registry::{Instance, Registry, ServiceRecords};
pub use server::{DnsServer, ServeError};

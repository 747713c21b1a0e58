//! DNS lookups for a target: A/AAAA records at the name, or SRV records with
//! the address of each SRV target, and how long the answer may be kept.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use hickory_resolver::{
    TokioResolver,
    config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts},
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::{Name, RData},
};

/// How long one DNS query may take, per attempt.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Which records name the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    /// A and AAAA records at the name; every instance uses the target's port.
    #[default]
    Address,
    /// SRV records at the name (Cloud Map publishes them with A records), so
    /// instances can listen on different ports.
    Srv,
}

/// One good answer: the instances and when the answer expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Sorted, without duplicates.
    pub addrs: Vec<SocketAddr>,
    /// When the records' TTL runs out.
    pub valid_until: Instant,
}

/// Why a lookup gave no instances.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN).
    #[error("{name} does not exist (NXDOMAIN from {server})")]
    NxDomain {
        /// The name asked for.
        name: String,
        /// Who said so.
        server: String,
    },
    /// The name exists but has no records of the kind asked for.
    #[error("{name} has no {kind} records (from {server})")]
    NoRecords {
        /// The name asked for.
        name: String,
        /// A/AAAA or SRV.
        kind: &'static str,
        /// Who said so.
        server: String,
    },
    /// The server did not answer, or the answer was bad.
    #[error("looking up {name} with {server} failed: {reason}")]
    Failed {
        /// The name asked for.
        name: String,
        /// The server asked.
        server: String,
        /// What went wrong.
        reason: String,
    },
}

/// A resolver for one name, with its own cache that a failure can clear.
pub struct DnsLookup {
    resolver: TokioResolver,
    name: Name,
    display_name: String,
    port: u16,
    kind: RecordKind,
    server: String,
}

impl DnsLookup {
    /// Builds a resolver that asks `server`, or the system's resolvers.
    pub fn new(server: Option<SocketAddr>, host: &str, port: u16, kind: RecordKind) -> Result<Self, LookupError> {
        let failed = |reason: String| LookupError::Failed {
            name: host.to_owned(),
            server: server.map_or_else(|| "the system resolver".into(), |s| s.to_string()),
            reason,
        };
        let mut options = ResolverOpts::default();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 2;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let (builder, name) = match server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                options.use_hosts_file = ResolveHosts::Never;
                let config = ResolverConfig::from_name_servers(vec![name_server]);
                // A name given to a specific server is absolute: no search list.
                let name = Name::from_ascii(format!("{}.", host.trim_end_matches('.')))
                    .map_err(|error| failed(error.to_string()))?;
                (TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()), name)
            }
            None => {
                let builder = TokioResolver::builder_tokio().map_err(|error| failed(error.to_string()))?;
                (builder, Name::from_ascii(host).map_err(|error| failed(error.to_string()))?)
            }
        };
        let resolver = builder.with_options(options).build().map_err(|error| failed(error.to_string()))?;
        Ok(Self {
            resolver,
            name,
            display_name: host.to_owned(),
            port,
            kind,
            server: server.map_or_else(|| "the system resolver".into(), |s| s.to_string()),
        })
    }

    /// Forgets cached answers, so the next lookup asks the server.
    pub fn clear_cache(&self) {
        self.resolver.clear_cache();
    }

    /// Looks the name up once.
    pub async fn lookup(&self) -> Result<Resolution, LookupError> {
        match self.kind {
            RecordKind::Address => self.lookup_addresses().await,
            RecordKind::Srv => self.lookup_srv().await,
        }
    }

    async fn lookup_addresses(&self) -> Result<Resolution, LookupError> {
        let lookup = self.resolver.lookup_ip(self.name.clone()).await.map_err(|error| self.error(error, "A/AAAA"))?;
        let addrs: BTreeSet<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, self.port)).collect();
        if addrs.is_empty() {
            return Err(self.no_records("A/AAAA"));
        }
        Ok(Resolution { addrs: addrs.into_iter().collect(), valid_until: lookup.valid_until() })
    }

    async fn lookup_srv(&self) -> Result<Resolution, LookupError> {
        let lookup = self.resolver.srv_lookup(self.name.clone()).await.map_err(|error| self.error(error, "SRV"))?;
        let mut valid_until = lookup.valid_until();
        let mut addrs = BTreeSet::new();
        for record in lookup.answers() {
            let RData::SRV(srv) = &record.data else { continue };
            // The server usually sends the targets' addresses along.
            let mut found = false;
            for extra in lookup.additionals().iter().filter(|extra| extra.name == srv.target) {
                if let Some(ip) = address_of(&extra.data) {
                    addrs.insert(SocketAddr::new(ip, srv.port));
                    found = true;
                }
            }
            if !found {
                let target =
                    self.resolver.lookup_ip(srv.target.clone()).await.map_err(|error| self.error(error, "A/AAAA"))?;
                valid_until = valid_until.min(target.valid_until());
                addrs.extend(target.iter().map(|ip| SocketAddr::new(ip, srv.port)));
            }
        }
        if addrs.is_empty() {
            return Err(self.no_records("SRV"));
        }
        Ok(Resolution { addrs: addrs.into_iter().collect(), valid_until })
    }

    fn error(&self, error: NetError, kind: &'static str) -> LookupError {
        if error.is_nx_domain() {
            LookupError::NxDomain { name: self.display_name.clone(), server: self.server.clone() }
        } else if error.is_no_records_found() {
            self.no_records(kind)
        } else {
            LookupError::Failed {
                name: self.display_name.clone(),
                server: self.server.clone(),
                reason: error.to_string(),
            }
        }
    }

    fn no_records(&self, kind: &'static str) -> LookupError {
        LookupError::NoRecords { name: self.display_name.clone(), kind, server: self.server.clone() }
    }
}

fn address_of(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
        _ => None,
    }
}

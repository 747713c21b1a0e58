//! Who answers to which name: the service instances registered, as Cloud Map
//! keeps them.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

/// One registered instance of a service (a task, or a local replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// A DNS label naming the instance; SRV answers point at `<id>.<service>`.
    pub id: String,
    /// Where the instance serves.
    pub addr: SocketAddr,
}

#[derive(Debug, Clone)]
struct Service {
    ttl: Duration,
    instances: Vec<Instance>,
}

/// The shared, mutable table of services and their healthy instances.
/// Cheap to clone: clones share the table.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    services: Arc<RwLock<HashMap<String, Service>>>,
}

/// A snapshot of one service, for answering a query.
#[derive(Debug, Clone)]
pub struct ServiceRecords {
    /// The record TTL.
    pub ttl: Duration,
    /// The instances registered now.
    pub instances: Vec<Instance>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `name` (e.g. `ranking.local`) known with record TTL `ttl`; its
    /// instances are kept if it was known already.
    pub fn define(&self, name: &str, ttl: Duration) {
        let mut services = self.services.write().expect("registry lock");
        services.entry(normalize(name)).or_insert_with(|| Service { ttl, instances: Vec::new() }).ttl = ttl;
    }

    /// Adds or moves an instance of `name`, defining the service with a 10 s
    /// TTL (Cloud Map's usual) if it was unknown.
    pub fn register(&self, name: &str, id: &str, addr: SocketAddr) {
        let mut services = self.services.write().expect("registry lock");
        let service = services
            .entry(normalize(name))
            .or_insert_with(|| Service { ttl: Duration::from_secs(10), instances: Vec::new() });
        service.instances.retain(|instance| instance.id != id);
        service.instances.push(Instance { id: id.to_owned(), addr });
    }

    /// Removes an instance; answers stop naming it at once.
    pub fn deregister(&self, name: &str, id: &str) {
        let mut services = self.services.write().expect("registry lock");
        if let Some(service) = services.get_mut(&normalize(name)) {
            service.instances.retain(|instance| instance.id != id);
        }
    }

    /// Replaces every instance of `name`.
    pub fn set_instances(&self, name: &str, instances: Vec<Instance>) {
        let mut services = self.services.write().expect("registry lock");
        let service = services
            .entry(normalize(name))
            .or_insert_with(|| Service { ttl: Duration::from_secs(10), instances: Vec::new() });
        service.instances = instances;
    }

    /// The service called `name`, if defined.
    pub fn service(&self, name: &str) -> Option<ServiceRecords> {
        let services = self.services.read().expect("registry lock");
        services
            .get(&normalize(name))
            .map(|service| ServiceRecords { ttl: service.ttl, instances: service.instances.clone() })
    }

    /// Every defined service name, sorted.
    pub fn names(&self) -> Vec<String> {
        let services = self.services.read().expect("registry lock");
        let mut names: Vec<_> = services.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Names compare without case and without the root dot.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

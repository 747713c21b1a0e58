//! The set of gRPC services one process serves, and what reflection needs to
//! describe them.

use std::convert::Infallible;

use tonic::{
    body::Body,
    codegen::http,
    server::NamedService,
    service::{Routes, RoutesBuilder},
};
use tower::Service;

/// The services a binary hands to [`crate::serve`]: each one is routed,
/// reported SERVING by health while up, and listed by reflection.
#[derive(Debug, Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated tonic server, e.g. `RpcServer::new(game)`.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Error = Infallible> + NamedService + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.names.push(S::NAME);
        self
    }

    /// Adds an encoded `FileDescriptorSet` describing the added services, so
    /// reflection can answer for them (e.g. `contracts::FILE_DESCRIPTOR_SET`).
    pub fn describe(mut self, encoded_descriptor_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded_descriptor_set);
        self
    }

    /// The full names of the added services, as health reports them.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub(crate) fn into_parts(self) -> (Routes, Vec<&'static str>, Vec<&'static [u8]>) {
        (self.routes.routes(), self.names, self.descriptor_sets)
    }
}

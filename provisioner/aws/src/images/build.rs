//! One service's image built without Docker: its binary checked, the base
//! pulled for its architecture, the two put together.

use std::path::Path;

use anyhow::Context as _;
use stack_spec::Service;

use super::{
    base::{self, BlobCache},
    check_binaries,
    image::{self, Base, Image, Runtime},
    registry::Registry,
};

/// The base of `service`'s image, pulled (or read from the cache).
pub async fn base_for(
    registry: &Registry,
    cache: &BlobCache,
    reference: &str,
    service: &Service,
) -> anyhow::Result<Base> {
    base::pull(registry, cache, reference, service.aws.architecture).await
}

/// `service`'s image: its binary from `binaries` (refused before anything
/// else when missing or of another architecture) on `base`.
pub fn build(binaries: &Path, base: &Base, service: &Service) -> anyhow::Result<Image> {
    check_binaries(binaries, &[service])?;
    let path = binaries.join(&service.binary);
    let binary = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    image::assemble(base, &binary, &Runtime { port: service.port })
}

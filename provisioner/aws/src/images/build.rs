//! One service's image built without Docker: its binary checked, the base
//! pulled for its architecture, the two put together.

use std::path::Path;

use anyhow::Context as _;
use stack_spec::Service;

use super::{
    base::{self, BlobCache},
    check_binaries,
    image::{self, Base, Image, Runtime},
    layer::{self, Layer},
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
pub fn build(binaries: &Path, base: &Base, service: &Service, cache: &BlobCache) -> anyhow::Result<Image> {
    check_binaries(binaries, &[service])?;
    let path = binaries.join(&service.binary);
    let binary = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    image::assemble(base, service_layer(&binary, cache)?, &Runtime { port: service.port })
}

/// The layer of `binary`: made once, then found by the binary's digest,
/// so that building an unchanged binary again hashes it and compresses
/// nothing. The version in the key retires notes of an older recipe.
fn service_layer(binary: &[u8], cache: &BlobCache) -> anyhow::Result<Layer> {
    let key = format!("layer-v1-{}", layer::sha256(binary).trim_start_matches("sha256:"));
    let noted = cache.note(&key);
    if let Some((digest, diff_id)) = noted.as_deref().and_then(|note| note.trim().split_once(' '))
        && let Some(compressed) = cache.get(digest)?
    {
        return Ok(Layer { compressed, digest: digest.to_owned(), diff_id: diff_id.to_owned() });
    }
    let made = layer::service_layer(binary)?;
    cache.put(&made.digest, &made.compressed)?;
    cache.remember(&key, &format!("{} {}", made.digest, made.diff_id))?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_built_before_gets_its_layer_from_the_cache_and_the_same_one() {
        let dir = std::env::temp_dir().join(format!("provision-layers-{}", std::process::id()));
        let cache = BlobCache::new(dir.clone());
        let made = service_layer(b"\x7fELF binary", &cache).unwrap();
        let found = service_layer(b"\x7fELF binary", &cache).unwrap();
        assert_eq!((&made.digest, &made.diff_id, &made.compressed), (&found.digest, &found.diff_id, &found.compressed));
        // A changed cached blob is refused, not pushed.
        std::fs::write(dir.join("sha256").join(made.digest.trim_start_matches("sha256:")), b"other").unwrap();
        assert!(service_layer(b"\x7fELF binary", &cache).unwrap_err().to_string().contains("delete it"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

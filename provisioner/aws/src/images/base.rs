//! The base image, pulled through the OCI distribution API: the index (a
//! multi-platform base) resolved to the service's platform, its config,
//! and its layers, kept on disk by digest so a second build pulls nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use oci_client::{Reference, manifest::OciImageIndex, manifest::OciImageManifest};
use serde_json::Value;
use stack_spec::aws::Architecture;

use super::{
    image::{Base, Blob},
    layer::sha256,
    registry::Registry,
};

/// The media types asked for a base: an image or an index, OCI's or Docker's.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The blobs pulled so far, one file per digest: `DIR/sha256/HEX`.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// The cache under `dir`; `$XDG_CACHE_HOME/provision/blobs` (else
    /// `~/.cache/provision/blobs`) by default.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The default place.
    pub fn default_dir() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("provision").join("blobs")
    }

    fn path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        let Some(hex) =
            digest.strip_prefix("sha256:").filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            bail!("blob digest {digest:?} is not sha256:<64 hex digits>");
        };
        Ok(self.dir.join("sha256").join(hex))
    }

    /// The blob's bytes if it is cached; a cached file whose content does
    /// not match its digest is an error naming it (it is left alone).
    pub fn get(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("cannot read the cached blob {}", path.display())),
        };
        let actual = sha256(&bytes);
        if actual != digest {
            bail!("the cached blob {} holds {actual}, not {digest}: delete it and build again", path.display());
        }
        Ok(Some(bytes))
    }

    /// What was remembered under `key` (a name of ours, not a digest):
    /// e.g. which layer a binary made. `None` when nothing was.
    pub fn note(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("notes").join(key)).ok()
    }

    /// Remembers `text` under `key` (as [`BlobCache::put`] writes).
    pub fn remember(&self, key: &str, text: &str) -> anyhow::Result<()> {
        write_whole(&self.dir.join("notes").join(key), text.as_bytes())
    }

    /// Keeps `bytes` under `digest` (written beside, then renamed: a
    /// crash leaves no half blob).
    pub fn put(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_whole(&self.path(digest)?, bytes)
    }
}

/// Writes `bytes` beside `path`, then renames: a reader never sees half.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the blob cache {}", dir.display()))?;
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The OCI platform name of a task architecture.
pub fn platform_architecture(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "amd64",
        Architecture::Arm64 => "arm64",
    }
}

/// Pulls `reference` for `architecture`: resolves an index to that
/// platform's manifest, fetches the config and every layer into `cache`
/// (verified against its digest), and returns the base pinned by digest.
pub async fn pull(
    registry: &Registry,
    cache: &BlobCache,
    reference: &str,
    architecture: Architecture,
) -> anyhow::Result<Base> {
    let parsed: Reference =
        reference.parse().with_context(|| format!("base image {reference:?} is not an image reference"))?;
    let (bytes, digest) = registry
        .manifest(&parsed, MANIFEST_TYPES)
        .await
        .with_context(|| format!("cannot pull the base image {reference}"))?;
    let wanted = platform_architecture(architecture);
    let (manifest, digest) = match media_type(&bytes)?.as_str() {
        "application/vnd.oci.image.index.v1+json" | "application/vnd.docker.distribution.manifest.list.v2+json" => {
            let index: OciImageIndex = serde_json::from_slice(&bytes)
                .with_context(|| format!("base image {reference}: its index is not valid JSON"))?;
            let entry = index
                .manifests
                .iter()
                .find(|entry| {
                    entry
                        .platform
                        .as_ref()
                        .is_some_and(|p| p.os.to_string() == "linux" && p.architecture.to_string() == wanted)
                })
                .with_context(|| {
                    let platforms: Vec<String> = index
                        .manifests
                        .iter()
                        .filter_map(|entry| entry.platform.as_ref().map(|p| format!("{}/{}", p.os, p.architecture)))
                        .collect();
                    format!("base image {reference} has no linux/{wanted} image (it has {})", platforms.join(", "))
                })?;
            let by_digest = Reference::with_digest(
                parsed.registry().to_owned(),
                parsed.repository().to_owned(),
                entry.digest.clone(),
            );
            let (bytes, digest) = registry
                .manifest(&by_digest, MANIFEST_TYPES)
                .await
                .with_context(|| format!("cannot pull the base image {reference} for linux/{wanted}"))?;
            (bytes, digest)
        }
        _ => (bytes, digest),
    };
    let manifest: OciImageManifest = serde_json::from_slice(&manifest)
        .with_context(|| format!("base image {reference}: its manifest is not an image manifest"))?;
    let pinned = Reference::with_digest(parsed.registry().to_owned(), parsed.repository().to_owned(), digest);

    let config = fetch(registry, cache, &pinned, &manifest.config.digest).await?;
    let config: Value =
        serde_json::from_slice(&config).with_context(|| format!("base image {reference}: its config is not JSON"))?;
    if let Some(built) = config.get("architecture").and_then(Value::as_str).filter(|built| *built != wanted) {
        bail!(
            "base image {reference} is for {built}, and the service's tasks run on {wanted}: name a {wanted} base or an index with one"
        );
    }
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        fetch(registry, cache, &pinned, &layer.digest).await?;
        layers.push(Blob {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size.max(0) as u64,
        });
    }
    Ok(Base { reference: pinned.whole(), config, layers })
}

/// A blob of the base, from the cache or else pulled, checked and cached.
pub async fn fetch(registry: &Registry, cache: &BlobCache, image: &Reference, digest: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(bytes) = cache.get(digest)? {
        return Ok(bytes);
    }
    let bytes = registry
        .blob(image, digest)
        .await
        .with_context(|| format!("cannot pull blob {digest} of {}", image.whole()))?;
    let actual = sha256(&bytes);
    if actual != digest {
        bail!("{} sent {actual} for blob {digest}: not cached, nothing built", image.whole());
    }
    cache.put(digest, &bytes)?;
    Ok(bytes)
}

fn media_type(manifest: &[u8]) -> anyhow::Result<String> {
    let value: Value = serde_json::from_slice(manifest).context("the base image's manifest is not JSON")?;
    if let Some(media_type) = value.get("mediaType").and_then(Value::as_str) {
        return Ok(media_type.to_owned());
    }
    // An OCI manifest may leave mediaType out: an index has `manifests`.
    Ok(if value.get("manifests").is_some() {
        "application/vnd.oci.image.index.v1+json"
    } else {
        "application/vnd.oci.image.manifest.v1+json"
    }
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_blob_is_given_back_only_when_it_matches_its_digest() {
        let dir = std::env::temp_dir().join(format!("provision-blobs-{}", std::process::id()));
        let cache = BlobCache::new(dir.clone());
        let digest = sha256(b"layer");
        assert!(cache.get(&digest).unwrap().is_none());
        cache.put(&digest, b"layer").unwrap();
        assert_eq!(cache.get(&digest).unwrap().as_deref(), Some(&b"layer"[..]));
        std::fs::write(cache.path(&digest).unwrap(), b"tampered").unwrap();
        let error = cache.get(&digest).unwrap_err().to_string();
        assert!(error.contains("delete it") && error.contains(&digest), "{error}");
        assert!(cache.get("sha256:../../etc").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}

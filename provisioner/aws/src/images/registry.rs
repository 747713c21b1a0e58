//! Any OCI registry, through `oci-client`: the base pulled from one, a
//! built image pushed to one. Blobs the registry has are not sent again.

use anyhow::Context as _;
use oci_client::{
    Client, Reference, RegistryOperation,
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};

use super::{base::BlobCache, image::Image, progress::Pushed};

/// A client for registries, with the ones reached over plain HTTP named.
pub struct Registry {
    client: Client,
}

impl Registry {
    /// `insecure`: registries (`HOST:PORT`) spoken to over plain HTTP, as
    /// asked with `--insecure-registry`; every other one over HTTPS.
    pub fn new(insecure: &[String]) -> Self {
        // reqwest's rustls brings no crypto of its own here: ring, as the
        // rest of the workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        Self { client: Client::new(config) }
    }

    /// The manifest `reference` names, raw, and its digest.
    pub async fn manifest(&self, reference: &Reference, accepted: &[&str]) -> anyhow::Result<(Vec<u8>, String)> {
        let (bytes, digest) =
            self.client.pull_manifest_raw(reference, &credentials(reference), accepted).await.map_err(explain)?;
        Ok((bytes.to_vec(), digest))
    }

    /// The blob `digest` of `reference`'s repository.
    pub async fn blob(&self, reference: &Reference, digest: &str) -> anyhow::Result<Vec<u8>> {
        self.client.store_auth_if_needed(reference.resolve_registry(), &credentials(reference)).await;
        let mut bytes = Vec::new();
        self.client.pull_blob(reference, digest, &mut bytes).await.map_err(explain)?;
        Ok(bytes)
    }

    /// Pushes `image` as `target` (a tag): each blob the registry lacks
    /// (base layers from `cache`), then the manifest.
    pub async fn push(&self, target: &Reference, image: &Image, cache: &BlobCache) -> anyhow::Result<Pushed> {
        let auth = credentials(target);
        self.client.auth(target, &auth, RegistryOperation::Push).await.map_err(explain)?;
        let mut pushed = Pushed::default();
        for blob in image.blobs() {
            if self.client.blob_exists(target, &blob.digest).await.map_err(explain)? {
                pushed.skipped += 1;
                super::progress::blob(&blob.digest, 0, false);
                continue;
            }
            let bytes = image.bytes_of(&blob.digest, cache)?;
            pushed.bytes += bytes.len() as u64;
            pushed.uploaded += 1;
            let size = bytes.len();
            self.client
                .push_blob(target, bytes, &blob.digest)
                .await
                .map_err(explain)
                .with_context(|| format!("{} refused blob {}", target.registry(), blob.digest))?;
            super::progress::blob(&blob.digest, size, true);
        }
        let content_type = super::image::MANIFEST_MEDIA_TYPE.parse().expect("a valid header value");
        self.client
            .push_manifest_raw(target, image.manifest.clone(), content_type)
            .await
            .map_err(explain)
            .with_context(|| format!("{} refused the manifest of {}", target.registry(), target.whole()))?;
        Ok(pushed)
    }
}

/// Credentials for `reference`'s registry from Docker's config file
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, its
/// `auths` entries), else none.
fn credentials(reference: &Reference) -> RegistryAuth {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".docker")));
    let Some(file) = dir.map(|dir| dir.join("config.json")) else { return RegistryAuth::Anonymous };
    let Ok(text) = std::fs::read_to_string(file) else { return RegistryAuth::Anonymous };
    docker_auth(&text, reference.resolve_registry()).unwrap_or(RegistryAuth::Anonymous)
}

/// The `auths` entry of a Docker config for `registry`: `auth` is
/// base64 of `user:password`.
fn docker_auth(config: &str, registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let config: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find(|(name, _)| {
        let name = name.trim_start_matches("https://").trim_start_matches("http://");
        name.split('/').next() == Some(registry)
    })?;
    let encoded = entry.1.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let (user, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some(RegistryAuth::Basic(user, password))
}

/// The registry's answer in one line (the error and its causes).
fn explain(error: oci_client::errors::OciDistributionError) -> anyhow::Error {
    anyhow::anyhow!("{}", service_runtime::causes(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_credentials_are_found_by_registry() {
        let config =
            r#"{"auths": {"https://ghcr.io": {"auth": "dXNlcjpzZWNyZXQ="}, "other.example": {"auth": "eDp5"}}}"#;
        match docker_auth(config, "ghcr.io") {
            Some(RegistryAuth::Basic(user, password)) => {
                assert_eq!((user.as_str(), password.as_str()), ("user", "secret"))
            }
            other => panic!("{other:?}"),
        }
        assert!(docker_auth(config, "quay.io").is_none());
        assert!(docker_auth("not json", "ghcr.io").is_none());
    }
}

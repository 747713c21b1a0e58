//! A service's image put together: the base's layers plus the service's,
//! and the base's config with what the Dockerfile's runtime stage sets
//! (user, environment, port, entrypoint, command). Only bytes and digests:
//! pulling the base and pushing the result are [`super::base`]'s and the
//! pushers' jobs.

use serde_json::{Value, json};

use anyhow::Context as _;

use super::{
    base::BlobCache,
    layer::{self, Layer, sha256},
};

/// The OCI media types the built image is written in.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config blob's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The user the services run as: distroless's `nonroot` (65532), as the
/// Dockerfile's `USER`.
pub const USER: &str = "65532:65532";

/// A blob an image names: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// What it holds (a gzip layer, a config), as the manifest says it.
    pub media_type: String,
    /// `sha256:HEX`: its name in the registry and in the cache.
    pub digest: String,
    /// Its length in bytes, which a registry checks against the upload.
    pub size: u64,
}

/// The base image for one platform, as pulled: its config (kept whole, so
/// nothing the base sets is lost) and its layers.
#[derive(Debug, Clone)]
pub struct Base {
    /// Where it came from, pinned (`REGISTRY/REPO@sha256:...`).
    pub reference: String,
    /// Its config as JSON, fields we do not know included.
    pub config: Value,
    /// Its layers, bottom first; their bytes are in the blob cache.
    pub layers: Vec<Blob>,
}

/// A built image: everything a registry needs, in push order (blobs, then
/// the manifest that names them).
#[derive(Debug, Clone)]
pub struct Image {
    /// The base's layers (the registry may have them already).
    pub base_layers: Vec<Blob>,
    /// Ours, on top: the service's binary.
    pub layer: Layer,
    /// The config blob, as pushed (its bytes are what its digest names).
    pub config: Vec<u8>,
    /// `sha256:` of `config`.
    pub config_digest: String,
    /// The manifest, as pushed: the base's layers, ours, the config.
    pub manifest: Vec<u8>,
    /// `sha256:` of the manifest: the image's name by content.
    pub digest: String,
}

impl Image {
    /// Every blob the manifest names, base layers first, config last.
    pub fn blobs(&self) -> Vec<Blob> {
        let mut blobs = self.base_layers.clone();
        blobs.push(Blob {
            media_type: layer::MEDIA_TYPE.into(),
            digest: self.layer.digest.clone(),
            size: self.layer.compressed.len() as u64,
        });
        blobs.push(Blob {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: self.config_digest.clone(),
            size: self.config.len() as u64,
        });
        blobs
    }

    /// The bytes of one of its blobs, to push: ours from memory, the
    /// base's from the cache the pull filled.
    pub fn bytes_of(&self, digest: &str, cache: &BlobCache) -> anyhow::Result<Vec<u8>> {
        if digest == self.layer.digest {
            return Ok(self.layer.compressed.clone());
        }
        if digest == self.config_digest {
            return Ok(self.config.clone());
        }
        cache.get(digest)?.with_context(|| format!("blob {digest} of the base is not in the cache: build again"))
    }
}

/// What the service's process gets, beside its binary.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The port it serves on (`GRPC_ADDR`, `EXPOSE`).
    pub port: u16,
}

/// The image of a service's layer (made, or found in the cache) on `base`.
/// The same inputs give the same bytes, so the same digest.
pub fn assemble(base: &Base, layer: Layer, runtime: &Runtime) -> anyhow::Result<Image> {
    let config = config(&base.config, &layer, runtime)?;
    let config = serde_json::to_vec(&config)?;
    let config_digest = sha256(&config);
    let mut layers: Vec<Value> = base.layers.iter().map(descriptor).collect();
    layers.push(descriptor(&Blob {
        media_type: layer::MEDIA_TYPE.into(),
        digest: layer.digest.clone(),
        size: layer.compressed.len() as u64,
    }));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(&Blob { media_type: CONFIG_MEDIA_TYPE.into(), digest: config_digest.clone(), size: config.len() as u64 }),
        "layers": layers,
        "annotations": { "org.opencontainers.image.base.name": base.reference },
    });
    let manifest = serde_json::to_vec(&manifest)?;
    Ok(Image { base_layers: base.layers.clone(), digest: sha256(&manifest), layer, config, config_digest, manifest })
}

fn descriptor(blob: &Blob) -> Value {
    json!({ "mediaType": blob.media_type, "digest": blob.digest, "size": blob.size })
}

/// The base's config with the runtime stage's settings: the Dockerfile's
/// `USER`, `ENV`, `EXPOSE`, `ENTRYPOINT` and `CMD`, and our layer in
/// `rootfs` and `history`. The health check stays in the task definition.
fn config(base: &Value, layer: &Layer, runtime: &Runtime) -> anyhow::Result<Value> {
    let mut config = base.clone();
    let Some(root) = config.as_object_mut() else {
        anyhow::bail!("the base image's config is not a JSON object");
    };
    let settings = root.entry("config").or_insert_with(|| json!({}));
    let Some(settings) = settings.as_object_mut() else {
        anyhow::bail!("the base image's config has a `config` that is not an object");
    };
    let ours = [format!("GRPC_ADDR=0.0.0.0:{}", runtime.port), "LOG_FORMAT=json".to_owned()];
    let mut env: Vec<String> = settings
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .filter(|entry| !ours.iter().any(|our| our.split('=').next() == entry.split('=').next()))
        .collect();
    env.extend(ours);
    settings.insert("User".into(), json!(USER));
    settings.insert("Env".into(), json!(env));
    settings.insert("ExposedPorts".into(), json!({ format!("{}/tcp", runtime.port): {} }));
    settings.insert("Entrypoint".into(), json!([format!("/{}", layer::BINARY_PATH)]));
    settings.insert("Cmd".into(), json!(["serve"]));
    settings.remove("Healthcheck");

    let rootfs = root.entry("rootfs").or_insert_with(|| json!({ "type": "layers", "diff_ids": [] }));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(diff_ids) => diff_ids.push(json!(layer.diff_id)),
        None => anyhow::bail!("the base image's config has no rootfs.diff_ids"),
    }
    let history = root.entry("history").or_insert_with(|| json!([]));
    if let Some(history) = history.as_array_mut() {
        history
            .push(json!({ "created_by": format!("provision image: the service binary at /{}", layer::BINARY_PATH) }));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        Base {
            reference: "registry.example/base@sha256:00".into(),
            config: json!({
                "architecture": "amd64",
                "os": "linux",
                "config": { "Env": ["PATH=/usr/bin", "LOG_FORMAT=text"], "User": "0", "Labels": { "b": "2", "a": "1" } },
                "rootfs": { "type": "layers", "diff_ids": ["sha256:aa"] },
                "history": [{ "created_by": "base" }],
            }),
            layers: vec![Blob {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: "sha256:bb".into(),
                size: 10,
            }],
        }
    }

    #[test]
    fn the_config_is_the_runtime_stages_on_top_of_the_bases() {
        let image = assemble(&base(), layer::service_layer(b"binary").unwrap(), &Runtime { port: 5000 }).unwrap();
        let config: Value = serde_json::from_slice(&image.config).unwrap();
        let settings = &config["config"];
        assert_eq!(settings["User"], "65532:65532");
        assert_eq!(settings["Env"], json!(["PATH=/usr/bin", "GRPC_ADDR=0.0.0.0:5000", "LOG_FORMAT=json"]));
        assert_eq!(settings["ExposedPorts"], json!({ "5000/tcp": {} }));
        assert_eq!(settings["Entrypoint"], json!(["/usr/local/bin/service"]));
        assert_eq!(settings["Cmd"], json!(["serve"]));
        assert_eq!(settings["Labels"], json!({ "a": "1", "b": "2" }));
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:aa", image.layer.diff_id]));
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_manifest_names_the_bases_layers_then_ours_and_the_config() {
        let image = assemble(&base(), layer::service_layer(b"binary").unwrap(), &Runtime { port: 5000 }).unwrap();
        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], json!(image.config_digest));
        let layers: Vec<&str> =
            manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
        assert_eq!(layers, vec!["sha256:bb", image.layer.digest.as_str()]);
        assert_eq!(image.digest, sha256(&image.manifest));
        assert_eq!(image.blobs().len(), 3);
    }

    #[test]
    fn the_same_inputs_give_the_same_digest() {
        let one = assemble(&base(), layer::service_layer(b"binary").unwrap(), &Runtime { port: 5000 }).unwrap();
        let two = assemble(&base(), layer::service_layer(b"binary").unwrap(), &Runtime { port: 5000 }).unwrap();
        assert_eq!(one.digest, two.digest);
        let other = assemble(&base(), layer::service_layer(b"binary 2").unwrap(), &Runtime { port: 5000 }).unwrap();
        assert_ne!(one.digest, other.digest);
    }
}

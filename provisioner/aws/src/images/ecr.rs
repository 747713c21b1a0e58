//! A built image pushed to the stack's ECR repositories through ECR's own
//! layer-upload calls (BatchCheckLayerAvailability, InitiateLayerUpload,
//! UploadLayerPart, CompleteLayerUpload, PutImage): signed like every other
//! call of provision, with the same credentials, no Docker login, and the
//! same in an emulator that serves ECR's API but no registry.

use anyhow::Context as _;
use aws_sdk_ecr::{primitives::Blob as SdkBlob, types::LayerAvailability};

use super::{base::BlobCache, image::Image, progress::Pushed};
use crate::clients::{Clients, error::classify};

/// Pushes `image` to `repository` as `tag`: each blob ECR lacks, then the
/// manifest. A tag that already names this very manifest is not an error:
/// nothing changed.
pub async fn push(
    clients: &Clients,
    repository: &str,
    tag: &str,
    image: &Image,
    cache: &BlobCache,
) -> anyhow::Result<Pushed> {
    let resource = format!("ECR repository {repository}");
    let blobs = image.blobs();
    let digests: Vec<String> = blobs.iter().map(|blob| blob.digest.clone()).collect();
    let answer = clients
        .ecr
        .batch_check_layer_availability()
        .repository_name(repository)
        .set_layer_digests(Some(digests))
        .send()
        .await
        .map_err(|error| classify(error, "ecr:BatchCheckLayerAvailability", &resource))?;
    let available: Vec<&str> = answer
        .layers()
        .iter()
        .filter(|layer| layer.layer_availability() == Some(&LayerAvailability::Available))
        .filter_map(|layer| layer.layer_digest())
        .collect();
    let mut pushed = Pushed::default();
    for blob in &blobs {
        if available.contains(&blob.digest.as_str()) {
            pushed.skipped += 1;
            super::progress::blob(&blob.digest, 0, false);
            continue;
        }
        let bytes = image.bytes_of(&blob.digest, cache)?;
        upload(clients, repository, &blob.digest, &bytes).await?;
        super::progress::blob(&blob.digest, bytes.len(), true);
        pushed.uploaded += 1;
        pushed.bytes += bytes.len() as u64;
    }
    let manifest = String::from_utf8(image.manifest.clone()).context("the manifest is not UTF-8")?;
    let put = clients
        .ecr
        .put_image()
        .repository_name(repository)
        .image_manifest(manifest)
        .image_manifest_media_type(super::image::MANIFEST_MEDIA_TYPE)
        .image_tag(tag)
        .send()
        .await;
    if let Err(error) = put {
        let error = classify(error, "ecr:PutImage", &resource);
        if error.code.as_deref() != Some("ImageAlreadyExistsException") {
            return Err(error.into());
        }
    }
    Ok(pushed)
}

/// One blob, in the parts ECR asks for.
async fn upload(clients: &Clients, repository: &str, digest: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let resource = format!("ECR repository {repository}");
    let started = clients
        .ecr
        .initiate_layer_upload()
        .repository_name(repository)
        .send()
        .await
        .map_err(|error| classify(error, "ecr:InitiateLayerUpload", &resource))?;
    let upload_id = started.upload_id().context("ECR started an upload without an id")?.to_owned();
    let part_size = started.part_size().filter(|size| *size > 0).unwrap_or(10 << 20) as usize;
    let mut first = 0;
    while first < bytes.len() {
        let last = (first + part_size).min(bytes.len());
        clients
            .ecr
            .upload_layer_part()
            .repository_name(repository)
            .upload_id(&upload_id)
            .part_first_byte(first as i64)
            .part_last_byte((last - 1) as i64)
            .layer_part_blob(SdkBlob::new(bytes[first..last].to_vec()))
            .send()
            .await
            .map_err(|error| classify(error, "ecr:UploadLayerPart", &resource))?;
        first = last;
    }
    let completed = clients
        .ecr
        .complete_layer_upload()
        .repository_name(repository)
        .upload_id(&upload_id)
        .layer_digests(digest)
        .send()
        .await;
    if let Err(error) = completed {
        let error = classify(error, "ecr:CompleteLayerUpload", &resource);
        // Uploaded meanwhile (another build of the same base): it is there.
        if error.code.as_deref() != Some("LayerAlreadyExistsException") {
            return Err(error.into());
        }
    }
    Ok(())
}

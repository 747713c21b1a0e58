//! Images pinned by digest: a tag in one of the app's ECR repositories is
//! resolved to the digest it names now, so a task definition always says
//! exactly which image its tasks run (a tag can move; a digest cannot).

use anyhow::{Context as _, bail};
use aws_sdk_ecr::types::ImageIdentifier;
use stack_spec::Stack;

use crate::{
    clients::{Clients, error::classify},
    engine::{names::Names, state::Live},
};

/// `image` pinned by digest: a tag in our repository is resolved (and must
/// exist); an image from elsewhere is taken as given.
pub async fn pin(clients: &Clients, repository: &str, uri: &str, image: &str) -> anyhow::Result<String> {
    let Some(reference) = image.strip_prefix(uri) else {
        if !image.contains("@sha256:") {
            eprintln!("warning: {image} is not pinned by digest: each task start may pull a different image");
        }
        return Ok(image.to_owned());
    };
    let id = match (reference.strip_prefix('@'), reference.strip_prefix(':')) {
        (Some(digest), _) => ImageIdentifier::builder().image_digest(digest).build(),
        (_, Some(tag)) => ImageIdentifier::builder().image_tag(tag).build(),
        _ => bail!("image {image}: expected {uri}:TAG or {uri}@sha256:DIGEST"),
    };
    let answer = clients.ecr.describe_images().repository_name(repository).image_ids(id).send().await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ecr:DescribeImages", &format!("ECR repository {repository}"));
            if error.code.as_deref() == Some("ImageNotFoundException") {
                bail!(
                    "image {image} is not in ECR repository {repository}: push it first, or deploy without --image to build it"
                );
            }
            return Err(error.into());
        }
    };
    let digest = answer
        .image_details()
        .first()
        .and_then(|detail| detail.image_digest())
        .with_context(|| format!("image {image} is not in ECR repository {repository}"))?;
    Ok(format!("{uri}@{digest}"))
}

/// The stack with each image that names one of the app's repositories
/// pinned by digest; an image that is not there (or whose repository
/// `repository_exists` says is not) is an error, so that nothing points a
/// service at an image that does not exist.
pub async fn pin_stack_images(
    clients: &Clients,
    stack: &Stack,
    live: &Live,
    repository_exists: impl Fn(&str) -> bool,
) -> anyhow::Result<Stack> {
    let names = Names::of(stack);
    let mut pinned = stack.clone();
    for service in &mut pinned.services {
        let Some(image) = service.aws.image.clone() else { continue };
        let repository = names.repository(&service.name);
        let uri = format!("{}.dkr.ecr.{}.amazonaws.com/{repository}", live.account, live.region);
        if !image.starts_with(&format!("{uri}:")) && !image.starts_with(&format!("{uri}@")) {
            continue;
        }
        if !repository_exists(&repository) {
            bail!(
                "service {}: image {image} is in ECR repository {repository}, which does not exist yet: leave \
                 `image` out of the stack file, apply, then `provision deploy`",
                service.name
            );
        }
        service.aws.image = Some(pin(clients, &repository, &uri, &image).await?);
    }
    Ok(pinned)
}

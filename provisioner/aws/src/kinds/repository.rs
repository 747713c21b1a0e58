//! Each service's ECR repository: images scanned on push, tags immutable,
//! a lifecycle that keeps the last [`KEEP_IMAGES`]. Destroy leaves a
//! repository that still holds images.

use std::collections::BTreeMap;

use anyhow::Context as _;

use serde_json::{Value, json};

use crate::{
    clients::error::{classify, explain, unless_gone},
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, read_each, render},
        state::Live,
    },
};
use stack_spec::Stack;

/// Images an ECR repository keeps before the lifecycle policy expires the
/// oldest: enough to roll back a few deploys.
pub const KEEP_IMAGES: u32 = 20;

/// A service's image repository.
pub struct Repository;

/// A repository as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySpec {
    pub name: String,
    /// Whether ECR scans each pushed image for vulnerabilities.
    pub scan_on_push: bool,
    /// Whether a tag, once pushed, always names the same image.
    pub immutable_tags: bool,
    /// The lifecycle policy keeps this many images.
    pub keep_images: u32,
    /// The newest image in it, pinned by digest (`uri@sha256:...`); live
    /// only, not compared.
    pub newest_image: Option<String>,
}

impl RepositorySpec {
    /// The lifecycle policy: expire all but the newest `keep_images`.
    pub fn lifecycle_policy(&self) -> Value {
        json!({
            "rules": [{
                "rulePriority": 1,
                "description": format!("keep the last {} images", self.keep_images),
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": self.keep_images
                },
                "action": { "type": "expire" }
            }]
        })
    }

    /// Reads `keep_images` back from a lifecycle policy this tool wrote.
    pub fn keep_images_of(policy: &Value) -> Option<u32> {
        policy["rules"][0]["selection"]["countNumber"].as_u64().and_then(|count| u32::try_from(count).ok())
    }
}

impl Kind for Repository {
    const LABEL: &'static str = "ecr repository";
    const KEY: &'static str = "repository";
    type Spec = RepositorySpec;

    fn desired(stack: &Stack, _live: &Live) -> Vec<RepositorySpec> {
        let names = Names::of(stack);
        stack
            .services
            .iter()
            .map(|service| RepositorySpec {
                name: names.repository(&service.name),
                scan_on_push: true,
                immutable_tags: true,
                keep_images: KEEP_IMAGES,
                newest_image: None,
            })
            .collect()
    }

    fn name(spec: &RepositorySpec) -> &str {
        &spec.name
    }

    fn fields(spec: &RepositorySpec) -> Fields {
        Fields::from([
            ("scan_on_push", render::on_off(spec.scan_on_push)),
            ("tag_mutability", if spec.immutable_tags { "IMMUTABLE" } else { "MUTABLE" }.to_owned()),
            ("lifecycle_keep_images", spec.keep_images.to_string()),
        ])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<RepositorySpec>>> {
        let wanted = cx.stack.services.iter().map(|service| cx.names.repository(&service.name)).collect();
        read_each(wanted, |name| async move { read_repository(cx, &name).await }).await
    }

    /// Creates the repository if missing (even without a step: a task
    /// definition names it); passes on its URI.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &RepositorySpec,
        have: Option<&Found<RepositorySpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
        let ecr = &cx.cx.clients.ecr;
        let resource = format!("ECR repository {}", spec.name);
        let scanning = ImageScanningConfiguration::builder().scan_on_push(spec.scan_on_push).build();
        let mutability = if spec.immutable_tags { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable };
        let uri = match have {
            Some(found) => {
                if matches!(action, Action::Update { .. }) {
                    ecr.put_image_scanning_configuration()
                        .repository_name(&spec.name)
                        .image_scanning_configuration(scanning)
                        .send()
                        .await
                        .map_err(|e| explain(e, "ecr:PutImageScanningConfiguration", &resource))?;
                    ecr.put_image_tag_mutability()
                        .repository_name(&spec.name)
                        .image_tag_mutability(mutability)
                        .send()
                        .await
                        .map_err(|e| explain(e, "ecr:PutImageTagMutability", &resource))?;
                }
                found.id.clone()
            }
            None => {
                let mut request = ecr
                    .create_repository()
                    .repository_name(&spec.name)
                    .image_scanning_configuration(scanning)
                    .image_tag_mutability(mutability);
                for (key, value) in cx.cx.names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                match request.send().await {
                    Ok(answer) => answer
                        .repository()
                        .and_then(|repository| repository.repository_uri())
                        .unwrap_or_default()
                        .to_owned(),
                    Err(error) => {
                        let error = classify(error, "ecr:CreateRepository", &resource);
                        if error.code.as_deref() != Some("RepositoryAlreadyExistsException") {
                            return Err(error.into());
                        }
                        let answer = ecr.describe_repositories().repository_names(&spec.name).send().await;
                        let answer = answer.map_err(|e| explain(e, "ecr:DescribeRepositories", &resource))?;
                        let repository = answer.repositories().first().context("the repository is not described")?;
                        let arn = repository.repository_arn().unwrap_or_default();
                        let tags = ecr.list_tags_for_resource().resource_arn(arn).send().await;
                        let tags = tags.map_err(|e| explain(e, "ecr:ListTagsForResource", &resource))?;
                        cx.cx
                            .names
                            .check_appeared(&resource, tags.tags().iter().map(|tag| (tag.key(), tag.value())))?;
                        repository.repository_uri().unwrap_or_default().to_owned()
                    }
                }
            }
        };
        if *action != Action::Unchanged {
            ecr.put_lifecycle_policy()
                .repository_name(&spec.name)
                .lifecycle_policy_text(spec.lifecycle_policy().to_string())
                .send()
                .await
                .map_err(|e| explain(e, "ecr:PutLifecyclePolicy", &resource))?;
            Self::done(if *action == Action::Create { "created" } else { "updated" }, &spec.name);
        }
        Ok(Output::id(uri))
    }

    fn teardown_line(found: &Found<RepositorySpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("ecr repository {} (only if it holds no image)", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<RepositorySpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        use aws_sdk_ecr::types::Tag;
        let what = format!("ECR repository {}", found.spec.name);
        if !set.is_empty() {
            let tags = set
                .iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect::<Result<_, _>>()?;
            let answer = cx.clients.ecr.tag_resource().resource_arn(&found.arn).set_tags(Some(tags)).send().await;
            answer.map_err(|error| explain(error, "ecr:TagResource", &what))?;
        }
        if !remove.is_empty() {
            let answer = cx
                .clients
                .ecr
                .untag_resource()
                .resource_arn(&found.arn)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await;
            answer.map_err(|error| explain(error, "ecr:UntagResource", &what))?;
        }
        Ok(())
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<RepositorySpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let name = &found.spec.name;
            if found.spec.newest_image.is_some() {
                crate::engine::journal::done(
                    "kept",
                    "ecr repository",
                    &format!("{name}: it holds images (delete them to remove it)"),
                );
                continue;
            }
            cx.clients
                .ecr
                .delete_repository()
                .repository_name(name)
                .send()
                .await
                .map_err(|e| explain(e, "ecr:DeleteRepository", &format!("ECR repository {name}")))?;
            crate::engine::journal::done("deleted", "ecr repository", name);
        }
        Ok(())
    }
}

/// The repository, with its newest image (`uri@digest`).
async fn read_repository(cx: Cx<'_>, name: &str) -> anyhow::Result<Option<Found<RepositorySpec>>> {
    let ecr = &cx.clients.ecr;
    let answer = ecr.describe_repositories().repository_names(name).send().await;
    let answer = answer.map_err(|error| classify(error, "ecr:DescribeRepositories", &format!("ECR repository {name}")));
    let Some(answer) = unless_gone(answer)? else { return Ok(None) };
    let Some(repository) = answer.repositories().first() else { return Ok(None) };
    let arn = repository.repository_arn().unwrap_or_default().to_owned();
    let uri = repository.repository_uri().unwrap_or_default().to_owned();
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|error| explain(error, "ecr:ListTagsForResource", &format!("ECR repository {name}")))?;
    let policy = ecr.get_lifecycle_policy().repository_name(name).send().await;
    let policy = policy.map_err(|error| classify(error, "ecr:GetLifecyclePolicy", &format!("ECR repository {name}")));
    let keep_images = unless_gone(policy)?
        .and_then(|policy| policy.lifecycle_policy_text().and_then(|text| serde_json::from_str(text).ok()))
        .and_then(|policy| RepositorySpec::keep_images_of(&policy))
        .unwrap_or(0);
    // The newest of every image, whatever page it is on.
    let mut images = Vec::new();
    let mut pages = ecr.describe_images().repository_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "ecr:DescribeImages", &format!("ECR repository {name}")))?;
        images.extend(page.image_details().iter().cloned());
    }
    let newest_image = images
        .iter()
        .filter(|image| image.image_digest().is_some())
        .max_by_key(|image| image.image_pushed_at().map(|at| (at.secs(), at.subsec_nanos())))
        .and_then(|image| image.image_digest())
        .map(|digest| format!("{uri}@{digest}"));
    let spec = RepositorySpec {
        name: name.to_owned(),
        scan_on_push: repository.image_scanning_configuration().is_some_and(|scan| scan.scan_on_push()),
        immutable_tags: repository.image_tag_mutability().map(|m| m.as_str()) == Some("IMMUTABLE"),
        keep_images,
        newest_image,
    };
    let owned = cx.names.owns(tags.tags().iter().map(|tag| (tag.key(), tag.value())));
    let tags = Some(tag_map(tags.tags().iter().map(|tag| (tag.key(), tag.value()))));
    Ok(Some(Found { id: uri, arn, owned, tags, spec }))
}

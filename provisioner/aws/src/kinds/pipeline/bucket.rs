//! The pipeline's artifact bucket: each commit's source on its way to the
//! build, and the build's cache. Encrypted (S3-managed keys), every kind of
//! public access blocked, objects expiring after [`ARTIFACT_DAYS`], tagged.
//! Destroy (or removing `[pipeline]`) empties it, then deletes it.

use std::collections::BTreeMap;

use anyhow::bail;
use stack_spec::Stack;

use super::ARTIFACT_DAYS;
use crate::engine::{
    names::{Names, Tags, retagged, tag_map},
    plan::Action,
    resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
    state::Live,
};

/// S3's limit on a bucket name.
const NAME_LIMIT: usize = 63;

/// The artifact bucket.
pub struct ArtifactBucket;

/// The bucket as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub name: String,
    /// The default encryption's algorithm.
    pub encryption: Option<String>,
    pub public_access_blocked: bool,
    pub expiration_days: Option<u32>,
    /// Its bucket policy: plain HTTP refused.
    pub policy: Option<serde_json::Value>,
}

impl Kind for ArtifactBucket {
    const LABEL: &'static str = "s3 bucket";
    const KEY: &'static str = "artifact-bucket";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = BucketSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<BucketSpec> {
        let names = Names::of(stack);
        stack
            .pipeline
            .iter()
            .map(|_| {
                let name = names.artifact_bucket(&live.account, &live.region);
                BucketSpec {
                    encryption: Some("AES256".to_owned()),
                    public_access_blocked: true,
                    expiration_days: Some(ARTIFACT_DAYS),
                    policy: Some(tls_only(&name)),
                    name,
                }
            })
            .collect()
    }

    fn name(spec: &BucketSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &BucketSpec) -> Fields {
        Fields::from([
            ("encryption", spec.encryption.clone().unwrap_or_else(|| "none".to_owned())),
            ("public_access", if spec.public_access_blocked { "blocked" } else { "not blocked" }.to_owned()),
            ("expire_after", spec.expiration_days.map_or_else(|| "never".to_owned(), |days| format!("{days} days"))),
            (
                "policy",
                spec.policy.as_ref().map_or_else(|| "none".to_owned(), |policy| policy["Statement"].to_string()),
            ),
        ])
    }

    /// The bucket named for this app, account and region, whether or not
    /// the stack has a pipeline now (one left over goes).
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<BucketSpec>>> {
        let s3 = &cx.clients.s3;
        let name = cx.names.artifact_bucket(&live.account, &live.region);
        let used = cx.stack.pipeline.is_some();
        let exists = match s3.bucket_exists(&name).await {
            // Without a pipeline, a bucket the caller may not read is left
            // to whoever made it.
            Err(error) if !used && error.code.as_deref() == Some("AccessDenied") => return Ok(BTreeMap::new()),
            exists => exists?,
        };
        let found = match exists {
            None => return Ok(BTreeMap::new()),
            Some(false) if !used => return Ok(BTreeMap::new()),
            // Someone else's: plan refuses to take it over.
            Some(false) => Found {
                id: name.clone(),
                arn: format!("arn:aws:s3:::{name}"),
                owned: false,
                tags: None,
                spec: BucketSpec {
                    name: name.clone(),
                    encryption: None,
                    public_access_blocked: false,
                    expiration_days: None,
                    policy: None,
                },
            },
            Some(true) => {
                let settings = s3.settings(&name).await?;
                Found {
                    id: name.clone(),
                    arn: format!("arn:aws:s3:::{name}"),
                    owned: cx.names.owns(settings.tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))),
                    tags: Some(tag_map(settings.tags.clone())),
                    spec: BucketSpec {
                        name: name.clone(),
                        encryption: settings.encryption,
                        public_access_blocked: settings.public_access_blocked,
                        expiration_days: settings.expiration_days,
                        policy: settings.policy,
                    },
                }
            }
        };
        Ok(BTreeMap::from([(name, found)]))
    }

    fn precondition(want: &BucketSpec, _have: Option<&Found<BucketSpec>>, _live: &Live) -> anyhow::Result<()> {
        if want.name.len() > NAME_LIMIT {
            bail!(
                "the pipeline's artifact bucket would be named {:?}, longer than S3's {NAME_LIMIT} characters: \
                 shorten the app's name",
                want.name
            );
        }
        Ok(())
    }

    /// Creates the bucket, tags it at once (S3 takes no tags at creation:
    /// a bucket an interrupted apply left untagged reads as not this app's,
    /// and plan says so), and brings its settings to the stack's.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &BucketSpec,
        have: Option<&Found<BucketSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let s3 = &cx.cx.clients.s3;
        if have.is_some() && *action == Action::Unchanged {
            return Ok(Output::id(&spec.name));
        }
        if have.is_none() {
            s3.create_bucket(&spec.name).await?;
            s3.put_tags(&spec.name, &cx.cx.names.tags()).await?;
        }
        let live = have.map(|found| &found.spec);
        if live.is_none_or(|live| live.encryption != spec.encryption) {
            s3.put_encryption(&spec.name).await?;
        }
        if live.is_none_or(|live| !live.public_access_blocked) {
            s3.block_public_access(&spec.name).await?;
        }
        if let Some(policy) =
            spec.policy.as_ref().filter(|policy| live.is_none_or(|live| live.policy.as_ref() != Some(*policy)))
        {
            s3.put_policy(&spec.name, policy).await?;
        }
        if live.is_none_or(|live| live.expiration_days != spec.expiration_days) {
            s3.expire_after(&spec.name, spec.expiration_days.unwrap_or(ARTIFACT_DAYS)).await?;
        }
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(&spec.name))
    }

    fn teardown_line(found: &Found<BucketSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("s3 bucket {} (emptied first: artifacts and build cache)", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<BucketSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        let tags: Vec<(String, String)> = retagged(found.tags.as_ref(), set, remove).into_iter().collect();
        Ok(cx.clients.s3.put_tags(&found.spec.name, &tags).await?)
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<BucketSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            cx.clients.s3.delete_bucket(&found.spec.name).await?;
            crate::engine::journal::done("deleted", "s3 bucket", &found.spec.name);
        }
        Ok(())
    }
}

/// The bucket's policy: every request over plain HTTP refused, whoever
/// makes it (the artifacts are the source and the build's cache).
fn tls_only(bucket: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
        }]
    })
}

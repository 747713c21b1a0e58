//! The S3 calls behind the pipeline's artifact bucket, through the SDK's
//! client (path-style addressing under an `--endpoint-url`, as emulators
//! serve it).

use std::collections::BTreeMap;

use aws_sdk_s3::{
    Client,
    error::SdkError,
    types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
        CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
        ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    },
};

use super::error::{AwsError, classify, unless_gone};

/// An S3 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct S3 {
    client: Client,
    region: String,
}

/// What the bucket looks like, as far as provision sets it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketSettings {
    pub tags: BTreeMap<String, String>,
    /// The default encryption's algorithm (`AES256`, `aws:kms`), if any.
    pub encryption: Option<String>,
    /// Whether all four public access blocks are on.
    pub public_access_blocked: bool,
    /// After how many days objects expire, if a rule says so.
    pub expiration_days: Option<u32>,
    /// The bucket policy, if it has one.
    pub policy: Option<serde_json::Value>,
}

impl S3 {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override; `path_style` addresses buckets as
    /// `ENDPOINT/BUCKET` (what an emulator behind `--endpoint-url` serves).
    pub fn new(config: &aws_types::SdkConfig, region: &str, path_style: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .interceptor(super::verbose::RetryNotes)
            .build();
        Self { client: Client::from_conf(config), region: region.to_owned() }
    }

    /// `HeadBucket`: whether the bucket exists and is this account's
    /// (`Some(false)`: it exists, owned by someone else). S3 answers 403
    /// both for another account's bucket and for one of this account's
    /// that the caller may not read: `ListBuckets` (this account's buckets)
    /// tells the two apart.
    pub async fn bucket_exists(&self, bucket: &str) -> Result<Option<bool>, AwsError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(Some(true)),
            Err(SdkError::ServiceError(error)) if error.raw().status().as_u16() == 403 => {
                let refused = |why: &str| AwsError {
                    code: Some("AccessDenied".to_owned()),
                    message: format!("s3:HeadBucket on bucket {bucket} was refused (403): {why}"),
                };
                match self.own_buckets().await {
                    Ok(own) if own.iter().any(|name| name == bucket) => Err(refused(&format!(
                        "the bucket is this account's, so the caller lacks s3:ListBucket on arn:aws:s3:::{bucket}"
                    ))),
                    Ok(_) => Ok(Some(false)),
                    Err(_) => Err(refused(
                        "either another account owns this name or the caller lacks s3:ListBucket on it; \
                         s3:ListAllMyBuckets, refused as well, would tell which",
                    )),
                }
            }
            Err(error) => match classify(error, "s3:HeadBucket", &format!("bucket {bucket}")) {
                error if error.is_not_found() => Ok(None),
                error => Err(error),
            },
        }
    }

    /// `ListBuckets`, every page: the names of this account's buckets.
    async fn own_buckets(&self) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut pages = self.client.list_buckets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| classify(error, "s3:ListBuckets", "this account's buckets"))?;
            names.extend(page.buckets().iter().filter_map(|bucket| bucket.name()).map(str::to_owned));
        }
        Ok(names)
    }

    /// The bucket's tags, encryption, public access block and expiry.
    pub async fn settings(&self, bucket: &str) -> Result<BucketSettings, AwsError> {
        let resource = format!("bucket {bucket}");
        let tags = self.client.get_bucket_tagging().bucket(bucket).send().await;
        let tags = unless_gone(tags.map_err(|error| classify(error, "s3:GetBucketTagging", &resource)))?;
        let encryption = self.client.get_bucket_encryption().bucket(bucket).send().await;
        let encryption = unless_gone(encryption.map_err(|error| classify(error, "s3:GetBucketEncryption", &resource)))?;
        let block = self.client.get_public_access_block().bucket(bucket).send().await;
        let block = unless_gone(block.map_err(|error| classify(error, "s3:GetPublicAccessBlock", &resource)))?;
        let lifecycle = self.client.get_bucket_lifecycle_configuration().bucket(bucket).send().await;
        let lifecycle =
            unless_gone(lifecycle.map_err(|error| classify(error, "s3:GetBucketLifecycleConfiguration", &resource)))?;
        let policy = self.client.get_bucket_policy().bucket(bucket).send().await;
        let policy = unless_gone(policy.map_err(|error| classify(error, "s3:GetBucketPolicy", &resource)))?;
        Ok(BucketSettings {
            tags: tags
                .iter()
                .flat_map(|answer| answer.tag_set())
                .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                .collect(),
            encryption: encryption.as_ref().and_then(|answer| {
                let rule = answer.server_side_encryption_configuration()?.rules().first()?;
                Some(rule.apply_server_side_encryption_by_default()?.sse_algorithm().as_str().to_owned())
            }),
            public_access_blocked: block
                .as_ref()
                .and_then(|answer| answer.public_access_block_configuration())
                .is_some_and(|flags| {
                    [
                        flags.block_public_acls(),
                        flags.ignore_public_acls(),
                        flags.block_public_policy(),
                        flags.restrict_public_buckets(),
                    ]
                    .iter()
                    .all(|flag| *flag == Some(true))
                }),
            policy: policy.as_ref().and_then(|answer| serde_json::from_str(answer.policy()?).ok()),
            expiration_days: lifecycle.as_ref().and_then(|answer| {
                answer
                    .rules()
                    .iter()
                    .filter(|rule| *rule.status() == ExpirationStatus::Enabled)
                    .find_map(|rule| u32::try_from(rule.expiration()?.days()?).ok())
            }),
        })
    }

    /// `CreateBucket` in the client's region.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        // us-east-1 is the one region that takes no location constraint.
        let location = (self.region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                .build()
        });
        self.client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(location)
            .send()
            .await
            .map_err(|error| classify(error, "s3:CreateBucket", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutBucketTagging`.
    pub async fn put_tags(&self, bucket: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        let invalid = AwsError::unsent("s3:PutBucketTagging", &format!("bucket {bucket}"));
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(&invalid)?;
        let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(&invalid)?;
        self.client
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|error| classify(error, "s3:PutBucketTagging", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutBucketEncryption`: S3-managed keys (SSE-S3) by default.
    pub async fn put_encryption(&self, bucket: &str) -> Result<(), AwsError> {
        let invalid = AwsError::unsent("s3:PutBucketEncryption", &format!("bucket {bucket}"));
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(&invalid)?;
        let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
        let configuration = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(&invalid)?;
        self.client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
            .map_err(|error| classify(error, "s3:PutBucketEncryption", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutPublicAccessBlock`: all four blocks on.
    pub async fn block_public_access(&self, bucket: &str) -> Result<(), AwsError> {
        let configuration = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        self.client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(configuration)
            .send()
            .await
            .map_err(|error| classify(error, "s3:PutPublicAccessBlock", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutBucketPolicy`.
    pub async fn put_policy(&self, bucket: &str, policy: &serde_json::Value) -> Result<(), AwsError> {
        self.client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|error| classify(error, "s3:PutBucketPolicy", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutBucketLifecycleConfiguration`: every object expires after `days`.
    pub async fn expire_after(&self, bucket: &str, days: u32) -> Result<(), AwsError> {
        let invalid = AwsError::unsent("s3:PutBucketLifecycleConfiguration", &format!("bucket {bucket}"));
        let rule = LifecycleRule::builder()
            .id("expire-old-artifacts")
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(i32::try_from(days).unwrap_or(i32::MAX)).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build(),
            )
            .build()
            .map_err(&invalid)?;
        let configuration = BucketLifecycleConfiguration::builder().rules(rule).build().map_err(&invalid)?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(|error| classify(error, "s3:PutBucketLifecycleConfiguration", &format!("bucket {bucket}")))?;
        Ok(())
    }

    /// `PutObject` with `If-None-Match: *`: writes `body` at `key` only if
    /// nothing is there (S3 decides atomically); its ETag, or `None` when
    /// an object was there first.
    pub async fn put_if_absent(&self, bucket: &str, key: &str, body: &str) -> Result<Option<String>, AwsError> {
        let answer = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await;
        match answer {
            Ok(put) => Ok(Some(put.e_tag().unwrap_or_default().to_owned())),
            // 409: a conditional write raced with another on the same key.
            Err(SdkError::ServiceError(error)) if matches!(error.raw().status().as_u16(), 412 | 409) => Ok(None),
            Err(error) => Err(classify(error, "s3:PutObject", &format!("s3://{bucket}/{key}"))),
        }
    }

    /// `GetObject`: the object's ETag and text, if there is one.
    pub async fn get_text(&self, bucket: &str, key: &str) -> Result<Option<(String, String)>, AwsError> {
        let resource = format!("s3://{bucket}/{key}");
        let answer = self.client.get_object().bucket(bucket).key(key).send().await;
        let Some(object) = unless_gone(answer.map_err(|error| classify(error, "s3:GetObject", &resource)))? else {
            return Ok(None);
        };
        let etag = object.e_tag().unwrap_or_default().to_owned();
        let body = object.body.collect().await.map_err(|error| AwsError {
            code: None,
            message: format!("s3:GetObject on {resource}: the answer broke off: {error}"),
        })?;
        Ok(Some((etag, String::from_utf8_lossy(&body.into_bytes()).into_owned())))
    }

    /// `DeleteObject` with `If-Match`: deletes the object only if it is
    /// still the one with `etag`; false when it was replaced meanwhile.
    pub async fn delete_if_match(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, AwsError> {
        let answer = self.client.delete_object().bucket(bucket).key(key).if_match(etag).send().await;
        match answer {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(error)) if error.raw().status().as_u16() == 412 => Ok(false),
            Err(error) => match classify(error, "s3:DeleteObject", &format!("s3://{bucket}/{key}")) {
                error if error.is_not_found() => Ok(true),
                error => Err(error),
            },
        }
    }

    /// Deletes every object (`ListObjectsV2`, `DeleteObject`), then the
    /// bucket; one already gone is fine.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        let resource = format!("bucket {bucket}");
        loop {
            let listed = self.client.list_objects_v2().bucket(bucket).send().await;
            let listed = listed.map_err(|error| classify(error, "s3:ListObjectsV2", &resource));
            let Some(listed) = unless_gone(listed)? else { return Ok(()) };
            let keys: Vec<&str> = listed.contents().iter().filter_map(|object| object.key()).collect();
            if keys.is_empty() {
                break;
            }
            for key in keys {
                self.client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|error| classify(error, "s3:DeleteObject", &resource))?;
            }
        }
        let deleted = self.client.delete_bucket().bucket(bucket).send().await;
        unless_gone(deleted.map_err(|error| classify(error, "s3:DeleteBucket", &resource)))?;
        Ok(())
    }
}

//! The S3 calls behind the pipeline's artifact bucket, in S3's REST
//! protocol (path-style `ENDPOINT/BUCKET?subresource`, XML bodies) over
//! [`super::signed`]: about a dozen calls on one bucket did not justify
//! the S3 SDK crate, one of the largest, in a two-core build.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::{
    error::{AwsError, Failure, unless_gone},
    query::Element,
    signed::{Request, SignedClient},
};

/// An S3 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct S3 {
    client: SignedClient,
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
}

impl S3 {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: SignedClient::s3(config, region)?, region: region.to_owned() })
    }

    /// `HeadBucket`: whether the bucket exists and is this account's
    /// (`Some(false)`: it exists, owned by someone else).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<Option<bool>, AwsError> {
        match self.send("HEAD", bucket, "", "", "HeadBucket").await {
            Ok(_) => Ok(Some(true)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) if error.code.as_deref() == Some("403") => Ok(Some(false)),
            Err(error) => Err(error),
        }
    }

    /// The bucket's tags, encryption, public access block and expiry.
    pub async fn settings(&self, bucket: &str) -> Result<BucketSettings, AwsError> {
        let missing = |answer: Result<Option<Element>, AwsError>| unless_gone(answer).map(Option::flatten);
        let tags = missing(self.send("GET", bucket, "?tagging", "", "GetBucketTagging").await)?;
        let encryption = missing(self.send("GET", bucket, "?encryption", "", "GetBucketEncryption").await)?;
        let block = missing(self.send("GET", bucket, "?publicAccessBlock", "", "GetPublicAccessBlock").await)?;
        let lifecycle = missing(self.send("GET", bucket, "?lifecycle", "", "GetBucketLifecycleConfiguration").await)?;
        Ok(BucketSettings {
            tags: tags
                .iter()
                .flat_map(|root| root.child("TagSet").map(|set| set.children("Tag")).unwrap_or_default())
                .filter_map(|tag| Some((tag.text("Key")?, tag.text("Value").unwrap_or_default())))
                .collect(),
            encryption: encryption
                .as_ref()
                .and_then(|root| root.child("Rule")?.child("ApplyServerSideEncryptionByDefault")?.text("SSEAlgorithm")),
            public_access_blocked: block.as_ref().is_some_and(|root| {
                ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]
                    .iter()
                    .all(|flag| root.text(flag).as_deref() == Some("true"))
            }),
            expiration_days: lifecycle.as_ref().and_then(|root| {
                root.children("Rule")
                    .into_iter()
                    .filter(|rule| rule.text("Status").as_deref() == Some("Enabled"))
                    .find_map(|rule| rule.child("Expiration")?.text("Days")?.parse().ok())
            }),
        })
    }

    /// `CreateBucket` in the client's region.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        // us-east-1 is the one region that takes no location constraint.
        let body = if self.region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"{XMLNS}\"><LocationConstraint>{}</LocationConstraint>\
                 </CreateBucketConfiguration>",
                self.region
            )
        };
        self.send("PUT", bucket, "", &body, "CreateBucket").await.map(drop)
    }

    /// `PutBucketTagging`.
    pub async fn put_tags(&self, bucket: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        let tags: String = tags
            .iter()
            .map(|(key, value)| format!("<Tag><Key>{}</Key><Value>{}</Value></Tag>", escape(key), escape(value)))
            .collect();
        let body = format!("<Tagging xmlns=\"{XMLNS}\"><TagSet>{tags}</TagSet></Tagging>");
        self.send("PUT", bucket, "?tagging", &body, "PutBucketTagging").await.map(drop)
    }

    /// `PutBucketEncryption`: S3-managed keys (SSE-S3) by default.
    pub async fn put_encryption(&self, bucket: &str) -> Result<(), AwsError> {
        let body = format!(
            "<ServerSideEncryptionConfiguration xmlns=\"{XMLNS}\"><Rule><ApplyServerSideEncryptionByDefault>\
             <SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>\
             </ServerSideEncryptionConfiguration>"
        );
        self.send("PUT", bucket, "?encryption", &body, "PutBucketEncryption").await.map(drop)
    }

    /// `PutPublicAccessBlock`: all four blocks on.
    pub async fn block_public_access(&self, bucket: &str) -> Result<(), AwsError> {
        let body = format!(
            "<PublicAccessBlockConfiguration xmlns=\"{XMLNS}\"><BlockPublicAcls>true</BlockPublicAcls>\
             <IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>\
             <RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
        );
        self.send("PUT", bucket, "?publicAccessBlock", &body, "PutPublicAccessBlock").await.map(drop)
    }

    /// `PutBucketLifecycleConfiguration`: every object expires after `days`.
    pub async fn expire_after(&self, bucket: &str, days: u32) -> Result<(), AwsError> {
        let body = format!(
            "<LifecycleConfiguration xmlns=\"{XMLNS}\"><Rule><ID>expire-old-artifacts</ID><Filter><Prefix></Prefix>\
             </Filter><Status>Enabled</Status><Expiration><Days>{days}</Days></Expiration>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>\
             </AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>"
        );
        self.send("PUT", bucket, "?lifecycle", &body, "PutBucketLifecycleConfiguration").await.map(drop)
    }

    /// Deletes every object (`ListObjectsV2`, `DeleteObject`), then the
    /// bucket; one already gone is fine.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        loop {
            let Some(listed) = unless_gone(self.send("GET", bucket, "?list-type=2", "", "ListObjectsV2").await)? else {
                return Ok(());
            };
            let keys: Vec<String> = listed
                .iter()
                .flat_map(|root| root.children("Contents"))
                .filter_map(|object| object.text("Key"))
                .collect();
            if keys.is_empty() {
                break;
            }
            for key in keys {
                let path = format!("/{}", percent_encoding::utf8_percent_encode(&key, KEY));
                self.send("DELETE", &format!("{bucket}{path}"), "", "", "DeleteObject").await?;
            }
        }
        unless_gone(self.send("DELETE", bucket, "", "", "DeleteBucket").await)?;
        Ok(())
    }

    /// One signed request; the answer's XML, if it has a body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &str,
        action: &str,
    ) -> Result<Option<Element>, AwsError> {
        let checksum = base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
        // S3 asks for an integrity check of configuration bodies: a SHA-256
        // checksum stands for Content-MD5.
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            Vec::new()
        } else {
            vec![("x-amz-sdk-checksum-algorithm", "SHA256"), ("x-amz-checksum-sha256", &checksum)]
        };
        let path = format!("{path}{query}");
        let request = Request { method, path: &path, content_type: "application/xml", headers: &headers, body };
        let bucket = path.split(['/', '?']).next().unwrap_or_default();
        self.client.send(&request, &format!("s3:{action}"), &format!("bucket {bucket}"), answer).await
    }
}

/// The namespace of S3's XML bodies.
const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// What an object key keeps unencoded in a path.
const KEY: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An answer's XML (none for an empty body), or the error in it: S3's
/// `<Error><Code>`, or the HTTP status of a bodiless HEAD.
fn answer(status: u16, text: &str) -> Result<Option<Element>, Failure> {
    let document = if text.trim().is_empty() {
        None
    } else {
        Some(Element::parse(text).map_err(|error| {
            Failure::Transport(format!("HTTP {status} with an answer that is not XML ({error}): {text:.200}"))
        })?)
    };
    if (200..300).contains(&status) {
        return Ok(document);
    }
    let code = document.as_ref().and_then(|error| error.text("Code")).or_else(|| {
        Some(match status {
            404 => "NotFound".to_owned(),
            other => other.to_string(),
        })
    });
    let message = document.as_ref().and_then(|error| error.text("Message")).unwrap_or_else(|| format!("HTTP {status}"));
    Err(Failure::Service { status, code, message })
}

/// XML's special characters in a tag's key or value.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_and_bodiless_answers_are_read() {
        let Err(Failure::Service { code, .. }) =
            answer(404, "<Error><Code>NoSuchTagSet</Code><Message>The TagSet does not exist</Message></Error>")
        else {
            panic!("an error")
        };
        assert_eq!(code.as_deref(), Some("NoSuchTagSet"));
        let Err(Failure::Service { code, .. }) = answer(404, "") else { panic!("an error") };
        assert_eq!(code.as_deref(), Some("NotFound"));
        let Err(Failure::Service { code, .. }) = answer(403, "") else { panic!("an error") };
        assert_eq!(code.as_deref(), Some("403"));
        assert_eq!(answer(200, "").unwrap(), None);
        assert_eq!(escape("a&b<c>"), "a&amp;b&lt;c&gt;");
    }
}

//! What IAM answers that several kinds read the same way: policy
//! documents (URL-encoded JSON in every answer) and a managed policy's
//! default version.

use anyhow::Context as _;
use serde_json::Value;

use super::error::{classify, explain, unless_gone};

/// A managed policy as read: its tags and its default version's document.
pub struct ManagedPolicy {
    pub tags: Vec<(String, String)>,
    pub document: Value,
}

/// A policy document as IAM returns it (URL-encoded JSON); `what` names it
/// in the error.
pub fn decode_document(text: &str, what: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    serde_json::from_str(&decoded).with_context(|| format!("{what}: the policy document is not JSON"))
}

/// The managed policy `arn` (`GetPolicy`, then `GetPolicyVersion` of its
/// default version), if it exists.
pub async fn managed_policy(iam: &aws_sdk_iam::Client, arn: &str) -> anyhow::Result<Option<ManagedPolicy>> {
    let resource = format!("IAM policy {arn}");
    let answer = iam.get_policy().policy_arn(arn).send().await;
    let Some(answer) = unless_gone(answer.map_err(|error| classify(error, "iam:GetPolicy", &resource)))? else {
        return Ok(None);
    };
    let Some(policy) = answer.policy() else { return Ok(None) };
    let version = policy.default_version_id().unwrap_or("v1");
    let answer = iam.get_policy_version().policy_arn(arn).version_id(version).send().await;
    let answer = answer.map_err(|error| explain(error, "iam:GetPolicyVersion", &resource))?;
    let document = answer.policy_version().and_then(|version| version.document()).unwrap_or_default();
    Ok(Some(ManagedPolicy {
        tags: policy.tags().iter().map(|tag| (tag.key().to_owned(), tag.value().to_owned())).collect(),
        document: decode_document(document, &resource)?,
    }))
}

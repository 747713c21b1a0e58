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

/// Puts an IAM role's or managed policy's tags back to `set` less
/// `remove` (`TagRole`/`UntagRole`, `TagPolicy`/`UntagPolicy`).
pub async fn retag(
    iam: &aws_sdk_iam::Client,
    target: Taggable<'_>,
    set: &crate::engine::names::Tags,
    remove: &[String],
) -> anyhow::Result<()> {
    use aws_sdk_iam::types::Tag;
    let tags =
        set.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect::<Result<Vec<_>, _>>()?;
    match target {
        Taggable::Role(name) => {
            let what = format!("IAM role {name}");
            if !tags.is_empty() {
                let answer = iam.tag_role().role_name(name).set_tags(Some(tags)).send().await;
                answer.map_err(|error| explain(error, "iam:TagRole", &what))?;
            }
            if !remove.is_empty() {
                let answer = iam.untag_role().role_name(name).set_tag_keys(Some(remove.to_vec())).send().await;
                answer.map_err(|error| explain(error, "iam:UntagRole", &what))?;
            }
        }
        Taggable::Policy(arn) => {
            let what = format!("IAM policy {arn}");
            if !tags.is_empty() {
                let answer = iam.tag_policy().policy_arn(arn).set_tags(Some(tags)).send().await;
                answer.map_err(|error| explain(error, "iam:TagPolicy", &what))?;
            }
            if !remove.is_empty() {
                let answer = iam.untag_policy().policy_arn(arn).set_tag_keys(Some(remove.to_vec())).send().await;
                answer.map_err(|error| explain(error, "iam:UntagPolicy", &what))?;
            }
        }
    }
    Ok(())
}

/// What [`retag`] tags: IAM has a pair of calls per kind of resource.
#[derive(Debug, Clone, Copy)]
pub enum Taggable<'a> {
    /// A role, by name.
    Role(&'a str),
    /// A managed policy, by ARN.
    Policy(&'a str),
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

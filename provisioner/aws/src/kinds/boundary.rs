//! The app's permissions boundaries: managed policies that cap what a role
//! may ever do, whatever policies it carries. A boundary is AWS's answer to
//! delegated role management: the build may change the task roles'
//! policies only while the role keeps the app's boundary, so a compromised
//! build (one commit, one dependency's `build.rs`) that puts `*:*` on a task
//! role gets no more than the services already had.
//!
//! Two per app, made and kept by `apply` (run by a person; the build may
//! not touch them):
//! - `<app>-boundary`, on the execution role and the task roles: what the
//!   services need (their images, their logs, their secrets) and what the
//!   managed policies the stack attaches to task roles grant.
//! - `<app>-delivery-boundary`, on the build's and the pipeline's roles,
//!   with a `[pipeline]`: the services delivery calls, and the guard rails
//!   (no role without the app's boundary, no trust policy written, no
//!   boundary changed, roles passed to ECS tasks only).

use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::{Value, json};

use crate::{
    clients::{
        error::{classify, explain},
        iam::managed_policy,
    },
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, read_each},
        state::Live,
    },
};
use stack_spec::Stack;

/// IAM's limit on a managed policy's document, whitespace not counted.
pub const MAX_POLICY_CHARACTERS: usize = 6_144;
/// IAM keeps at most five versions of a managed policy.
const MAX_VERSIONS: usize = 5;

/// A permissions boundary.
pub struct Boundary;

/// A boundary as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundarySpec {
    pub name: String,
    /// The policy document of its default version.
    pub document: Value,
}

/// The ARN of the app's managed policy `name` in `account`.
pub fn policy_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy/{name}")
}

impl Kind for Boundary {
    const LABEL: &'static str = "iam boundary";
    const KEY: &'static str = "boundary";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = BoundarySpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<BoundarySpec> {
        let names = Names::of(stack);
        let services = BoundarySpec { name: names.boundary(), document: services(stack, live) };
        let delivery = stack
            .pipeline
            .as_ref()
            .map(|_| BoundarySpec { name: names.delivery_boundary(), document: delivery(&names, live) });
        std::iter::once(services).chain(delivery).collect()
    }

    fn name(spec: &BoundarySpec) -> &str {
        &spec.name
    }

    fn fields(spec: &BoundarySpec) -> Fields {
        Fields::from([("allows", super::role::summarize_policy(&spec.document))])
    }

    fn precondition(want: &BoundarySpec, _have: Option<&Found<BoundarySpec>>, _live: &Live) -> anyhow::Result<()> {
        let size = characters(&want.document);
        if size > MAX_POLICY_CHARACTERS {
            bail!(
                "the permissions boundary {} would be {size} characters, over IAM's {MAX_POLICY_CHARACTERS} for a \
                 managed policy: it holds what the policies in aws.task_role_policies grant, so attach smaller \
                 ones (or fewer)",
                want.name
            );
        }
        Ok(())
    }

    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<BoundarySpec>>> {
        // Both, whether or not the stack has a pipeline now (one left over goes).
        let wanted = vec![cx.names.boundary(), cx.names.delivery_boundary()];
        read_each(wanted, |name| async move { read_boundary(cx, &live.account, &name).await }).await
    }

    /// Creates the policy, or makes the stack's document its default
    /// version (dropping the oldest version when IAM's five are in use).
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &BoundarySpec,
        live: Option<&Found<BoundarySpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_iam::types::Tag;
        let iam = &cx.cx.clients.iam;
        let arn = policy_arn(&cx.live.account, &spec.name);
        let resource = format!("IAM policy {}", spec.name);
        if *action == Action::Unchanged {
            return Ok(Output::id(arn));
        }
        let document = spec.document.to_string();
        if live.is_none() {
            let mut request = iam
                .create_policy()
                .policy_name(&spec.name)
                .policy_document(&document)
                .description(format!("the most a role of {} may do: made by provision", cx.cx.names.app()));
            for (key, value) in cx.cx.names.tags() {
                request = request.tags(Tag::builder().key(key).value(value).build()?);
            }
            match request.send().await {
                Ok(_) => {
                    Self::done("created", &spec.name);
                    return Ok(Output::id(arn));
                }
                Err(error) => {
                    let error = classify(error, "iam:CreatePolicy", &resource);
                    if error.code.as_deref() != Some("EntityAlreadyExists") {
                        return Err(error.into());
                    }
                    let appeared = managed_policy(iam, &arn).await?.map(|policy| policy.tags).unwrap_or_default();
                    let tags = appeared.iter().map(|(key, value)| (key.as_str(), value.as_str()));
                    cx.cx.names.check_appeared(&resource, tags)?;
                }
            }
        }
        let versions = iam.list_policy_versions().policy_arn(&arn).send().await;
        let versions = versions.map_err(|e| explain(e, "iam:ListPolicyVersions", &resource))?;
        let mut old: Vec<_> = versions.versions().iter().filter(|version| !version.is_default_version()).collect();
        if versions.versions().len() >= MAX_VERSIONS {
            old.sort_by_key(|version| version.create_date().map(|date| date.secs()));
            if let Some(oldest) = old.first().and_then(|version| version.version_id()) {
                iam.delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DeletePolicyVersion", &resource))?;
            }
        }
        iam.create_policy_version()
            .policy_arn(&arn)
            .policy_document(&document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| explain(e, "iam:CreatePolicyVersion", &resource))?;
        Self::done("updated", &spec.name);
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<BoundarySpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("iam boundary {}", found.spec.name))
    }

    /// Deletes the policy's other versions, then the policy (the roles
    /// that carried it are gone first: they need it).
    async fn retag(cx: Cx<'_>, found: &Found<BoundarySpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        crate::clients::iam::retag(&cx.clients.iam, crate::clients::iam::Taggable::Policy(&found.arn), set, remove)
            .await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<BoundarySpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        let iam = &cx.clients.iam;
        for found in owned {
            let resource = format!("IAM policy {}", found.spec.name);
            let versions = iam.list_policy_versions().policy_arn(&found.arn).send().await;
            let versions = versions.map_err(|e| explain(e, "iam:ListPolicyVersions", &resource))?;
            for version in versions.versions().iter().filter(|version| !version.is_default_version()) {
                iam.delete_policy_version()
                    .policy_arn(&found.arn)
                    .version_id(version.version_id().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DeletePolicyVersion", &resource))?;
            }
            iam.delete_policy()
                .policy_arn(&found.arn)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DeletePolicy", &resource))?;
            crate::engine::journal::done("deleted", "iam boundary", &found.spec.name);
        }
        Ok(())
    }
}

async fn read_boundary(cx: Cx<'_>, account: &str, name: &str) -> anyhow::Result<Option<Found<BoundarySpec>>> {
    let arn = policy_arn(account, name);
    let Some(policy) = managed_policy(&cx.clients.iam, &arn).await? else { return Ok(None) };
    Ok(Some(Found {
        id: arn.clone(),
        owned: cx.names.owns(policy.tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))),
        tags: Some(tag_map(policy.tags)),
        arn,
        spec: BoundarySpec { name: name.to_owned(), document: policy.document },
    }))
}

/// The app's boundary: what the execution role does (pull, log, read the
/// named secrets) and what the task roles' managed policies grant.
pub fn services(stack: &Stack, live: &Live) -> Value {
    let mut statements =
        super::role::execution_policy(stack, live)["Statement"].as_array().cloned().unwrap_or_default();
    let named: std::collections::BTreeSet<&String> =
        stack.services.iter().flat_map(|service| &service.aws.task_role_policies).collect();
    for (index, arn) in named.into_iter().enumerate() {
        let Some(document) = live.task_role_policies.get(arn) else { continue };
        let granted = match &document["Statement"] {
            Value::Array(statements) => statements.clone(),
            statement @ Value::Object(_) => vec![statement.clone()],
            _ => Vec::new(),
        };
        for (inner, mut statement) in granted.into_iter().enumerate() {
            // Sids must be unique in a policy: each says which policy it is from.
            statement["Sid"] = json!(format!("TaskRolePolicy{index}Statement{inner}"));
            statements.push(statement);
        }
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The IAM calls a build may make on a task role's policies, each only on a
/// role that keeps the app's boundary (`iam:PermissionsBoundary` is the
/// condition key IAM evaluates for exactly these).
pub const ROLE_POLICY_WRITES: [&str; 4] =
    ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"];

/// The delivery roles' boundary: the services deploy and the pipeline
/// call, and the guard rails no policy on those roles can lift.
pub fn delivery(names: &Names, live: &Live) -> Value {
    let account = &live.account;
    let boundary = policy_arn(account, &names.boundary());
    let boundaries = [boundary.clone(), policy_arn(account, &names.delivery_boundary())];
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                // A ceiling, not a grant: each role's own policy names the
                // resources; this only says which services can ever be called
                // (parliament: RESOURCE_STAR).
                "Sid": "WhatDeliveryCalls",
                "Effect": "Allow",
                "Action": [
                    "application-autoscaling:*", "cloudwatch:*", "codebuild:*", "codepipeline:*",
                    "codeconnections:UseConnection", "codestar-connections:UseConnection", "ec2:*", "ecr:*", "ecs:*",
                    "elasticache:*", "elasticloadbalancing:*", "logs:*", "route53:CreateHostedZone",
                    "route53:GetHostedZone", "route53:ListHostedZonesByName", "s3:*", "secretsmanager:*",
                    "servicediscovery:*", "sts:GetCallerIdentity", "iam:GetRole", "iam:GetRolePolicy",
                    "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion",
                    "iam:PassRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy"
                ],
                "Resource": "*"
            },
            {
                "Sid": "NoRoleChangedWithoutTheAppsBoundary",
                "Effect": "Deny",
                "Action": ROLE_POLICY_WRITES,
                "Resource": "*",
                "Condition": { "ArnNotEquals": { "iam:PermissionsBoundary": boundary } }
            },
            {
                // A trust policy's content has no condition key: whoever may
                // write one may trust any account. Roles are a person's.
                "Sid": "NoRoleMadeNorTrustWritten",
                "Effect": "Deny",
                "Action": [
                    "iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary",
                    "iam:DeleteRolePermissionsBoundary", "iam:CreateUser", "iam:CreateAccessKey"
                ],
                "Resource": "*"
            },
            {
                "Sid": "NoBoundaryChanged",
                "Effect": "Deny",
                "Action": [
                    "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion",
                    "iam:DeletePolicy"
                ],
                "Resource": boundaries
            },
            {
                "Sid": "PassOnlyToEcsTasks",
                "Effect": "Deny",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": { "StringNotEquals": { "iam:PassedToService": super::role::ECS_TASKS } }
            }
        ]
    })
}

/// A policy's size as IAM counts it: whitespace does not count.
pub fn characters(document: &Value) -> usize {
    document.to_string().chars().filter(|c| !c.is_whitespace()).count()
}

//! IAM roles: those ECS tasks assume (the app's execution role: pull from
//! the app's repositories, write to its log groups, read the secrets the
//! stack names, nothing more; and each service's task role, what its code
//! runs as: no policy unless the stack attaches some), and with a
//! `[pipeline]`, the build's role (what `provision deploy` calls, scoped
//! to the app) and the pipeline's (see [`super::pipeline`]). A pipeline
//! role left over once the table goes is deleted.
//!
//! Each carries one of the app's permissions boundaries
//! ([`super::boundary`]) and trusts its one service from this account only
//! (`aws:SourceAccount`). Plan compares the whole role: every trust
//! statement, every inline policy (one, named `provision`), every attached
//! managed policy and the boundary; apply takes back what the tool did not
//! put there.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::boundary::policy_arn;
use crate::{
    clients::{
        error::{classify, explain, unless_gone},
        iam::decode_document,
    },
    engine::{
        names::{INLINE_POLICY, Names, Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, read_each, render},
        state::Live,
    },
};
use stack_spec::Stack;

/// An IAM role.
pub struct Role;

/// A role as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    /// The inline policy, if the role needs one.
    pub policy: Option<Value>,
    /// Inline policies other than ours (none wanted: someone else's).
    pub other_policies: BTreeSet<String>,
    /// Managed policy ARNs attached to it.
    pub managed_policies: BTreeSet<String>,
    /// Its trust policy, whole.
    pub trust: Value,
    /// The ARN of its permissions boundary, if it has one.
    pub boundary: Option<String>,
}

/// The principal of the roles ECS tasks assume.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

impl RoleSpec {
    /// A role `service` assumes on behalf of `account` only, carrying the
    /// boundary `boundary` (an ARN).
    pub fn new(name: String, service: &str, account: &str, boundary: String) -> Self {
        Self {
            name,
            policy: None,
            other_policies: BTreeSet::new(),
            managed_policies: BTreeSet::new(),
            trust: trust_policy(service, account),
            boundary: Some(boundary),
        }
    }
}

/// Who may assume a role: the one service it is for, acting for this
/// account (so another account's resource cannot make the service assume
/// it: the confused deputy). A principal and no resource, as every trust
/// policy: parliament, which reads policies as identity policies, calls
/// that MALFORMED.
pub fn trust_policy(service: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "aws:SourceAccount": account } }
        }]
    })
}

impl Kind for Role {
    const LABEL: &'static str = "iam role";
    const KEY: &'static str = "role";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = RoleSpec;

    /// The execution role, each service's task role, then the pipeline's.
    fn desired(stack: &Stack, live: &Live) -> Vec<RoleSpec> {
        let names = Names::of(stack);
        let boundary = policy_arn(&live.account, &names.boundary());
        let execution = RoleSpec {
            policy: Some(execution_policy(stack, live)),
            ..RoleSpec::new(names.execution_role(), ECS_TASKS, &live.account, boundary.clone())
        };
        let task_roles = stack.services.iter().map(|service| RoleSpec {
            managed_policies: service.aws.task_role_policies.iter().cloned().collect(),
            ..RoleSpec::new(names.task_role(&service.name), ECS_TASKS, &live.account, boundary.clone())
        });
        let pipeline_roles = super::pipeline::roles(stack, live);
        std::iter::once(execution).chain(task_roles).chain(pipeline_roles).collect()
    }

    fn name(spec: &RoleSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &RoleSpec) -> Fields {
        Fields::from([
            ("inline_policy", spec.policy.as_ref().map_or_else(|| "none".to_owned(), summarize_policy)),
            ("other_inline_policies", render::join(&spec.other_policies)),
            ("managed_policies", render::join(&spec.managed_policies)),
            ("trust", spec.trust["Statement"].to_string()),
            ("boundary", spec.boundary.clone().unwrap_or_else(|| "none".to_owned())),
        ])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<RoleSpec>>> {
        let mut wanted = vec![cx.names.execution_role()];
        wanted.extend(cx.stack.services.iter().map(|service| cx.names.task_role(&service.name)));
        // Whether or not the stack has a pipeline now (one left over goes).
        wanted.extend([cx.names.build_role(), cx.names.pipeline_role()]);
        read_each(wanted, |name| async move { read_role(cx, &name).await }).await
    }

    /// Creates the role if missing and brings its policies to the stack's;
    /// passes on its ARN.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &RoleSpec,
        live: Option<&Found<RoleSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_iam::types::Tag;
        let (iam, names) = (&cx.cx.clients.iam, cx.cx.names);
        let resource = format!("IAM role {}", spec.name);
        let arn = match live {
            Some(found) => found.arn.clone(),
            None => {
                let mut request = iam
                    .create_role()
                    .role_name(&spec.name)
                    .assume_role_policy_document(spec.trust.to_string())
                    .set_permissions_boundary(spec.boundary.clone())
                    .description(format!("made by provision for {}", names.app()));
                for (key, value) in names.tags() {
                    request = request.tags(Tag::builder().key(key).value(value).build()?);
                }
                match request.send().await {
                    Ok(answer) => answer.role().map(|role| role.arn().to_owned()).unwrap_or_default(),
                    Err(error) => {
                        let error = classify(error, "iam:CreateRole", &resource);
                        if error.code.as_deref() != Some("EntityAlreadyExists") {
                            return Err(error.into());
                        }
                        let role = iam.get_role().role_name(&spec.name).send().await;
                        let role = role.map_err(|e| explain(e, "iam:GetRole", &resource))?;
                        let role = role.role().context("iam:GetRole returned no role")?;
                        names.check_appeared(&resource, role.tags().iter().map(|tag| (tag.key(), tag.value())))?;
                        role.arn().to_owned()
                    }
                }
            }
        };
        if *action == Action::Unchanged {
            return Ok(Output::id(arn));
        }
        if live.is_some_and(|found| found.spec.trust != spec.trust) {
            iam.update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust.to_string())
                .send()
                .await
                .map_err(|e| explain(e, "iam:UpdateAssumeRolePolicy", &resource))?;
        }
        let live_boundary = live.and_then(|found| found.spec.boundary.as_ref());
        if let Some(boundary) =
            spec.boundary.as_ref().filter(|boundary| live.is_some() && live_boundary != Some(boundary))
        {
            iam.put_role_permissions_boundary()
                .role_name(&spec.name)
                .permissions_boundary(boundary)
                .send()
                .await
                .map_err(|e| explain(e, "iam:PutRolePermissionsBoundary", &resource))?;
        }
        for stray in live.iter().flat_map(|found| &found.spec.other_policies) {
            iam.delete_role_policy()
                .role_name(&spec.name)
                .policy_name(stray)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DeleteRolePolicy", &resource))?;
        }
        let live_policy = live.and_then(|found| found.spec.policy.as_ref());
        match &spec.policy {
            Some(policy) if Some(policy) != live_policy => {
                iam.put_role_policy()
                    .role_name(&spec.name)
                    .policy_name(INLINE_POLICY)
                    .policy_document(policy.to_string())
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:PutRolePolicy", &resource))?;
            }
            None if live_policy.is_some() => {
                iam.delete_role_policy()
                    .role_name(&spec.name)
                    .policy_name(INLINE_POLICY)
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DeleteRolePolicy", &resource))?;
            }
            _ => {}
        }
        let attached = live.map(|found| found.spec.managed_policies.clone()).unwrap_or_default();
        for policy in spec.managed_policies.difference(&attached) {
            iam.attach_role_policy()
                .role_name(&spec.name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| explain(e, "iam:AttachRolePolicy", &resource))?;
        }
        for policy in attached.difference(&spec.managed_policies) {
            iam.detach_role_policy()
                .role_name(&spec.name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| explain(e, "iam:DetachRolePolicy", &resource))?;
        }
        Self::done(if live.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<RoleSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("iam role {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<RoleSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        crate::clients::iam::retag(&cx.clients.iam, crate::clients::iam::Taggable::Role(&found.id), set, remove).await
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<RoleSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        let iam = &cx.clients.iam;
        for found in owned {
            let name = &found.spec.name;
            let resource = format!("IAM role {name}");
            let ours = found.spec.policy.as_ref().map(|_| INLINE_POLICY.to_owned());
            for policy in ours.iter().chain(&found.spec.other_policies) {
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DeleteRolePolicy", &resource))?;
            }
            for policy in &found.spec.managed_policies {
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(policy)
                    .send()
                    .await
                    .map_err(|e| explain(e, "iam:DetachRolePolicy", &resource))?;
            }
            iam.delete_role().role_name(name).send().await.map_err(|e| explain(e, "iam:DeleteRole", &resource))?;
            crate::engine::journal::done("deleted", "iam role", name);
        }
        Ok(())
    }
}

async fn read_role(cx: Cx<'_>, name: &str) -> anyhow::Result<Option<Found<RoleSpec>>> {
    let iam = &cx.clients.iam;
    let answer = iam.get_role().role_name(name).send().await;
    let answer = answer.map_err(|error| classify(error, "iam:GetRole", &format!("IAM role {name}")));
    let Some(role) = unless_gone(answer)? else { return Ok(None) };
    let Some(role) = role.role() else { return Ok(None) };
    // URL-encoded JSON, compared whole: a statement added by hand shows.
    let trust = role.assume_role_policy_document().unwrap_or_default();
    let trust = decode_document(trust, &format!("IAM role {name}'s trust policy"))?;
    let mut other_policies = BTreeSet::new();
    let mut pages = iam.list_role_policies().role_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "iam:ListRolePolicies", &format!("IAM role {name}")))?;
        other_policies.extend(page.policy_names().iter().filter(|policy| policy.as_str() != INLINE_POLICY).cloned());
    }
    let answer = iam.get_role_policy().role_name(name).policy_name(INLINE_POLICY).send().await;
    let answer = answer.map_err(|error| classify(error, "iam:GetRolePolicy", &format!("IAM role {name}")));
    let policy = match unless_gone(answer)? {
        Some(answer) => Some(decode_document(answer.policy_document(), &format!("IAM role {name}'s inline policy"))?),
        None => None,
    };
    let mut managed_policies = BTreeSet::new();
    let mut pages = iam.list_attached_role_policies().role_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "iam:ListAttachedRolePolicies", &format!("IAM role {name}")))?;
        managed_policies.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn()).map(str::to_owned));
    }
    Ok(Some(Found {
        id: name.to_owned(),
        arn: role.arn().to_owned(),
        owned: cx.names.owns(role.tags().iter().map(|tag| (tag.key(), tag.value()))),
        tags: Some(tag_map(role.tags().iter().map(|tag| (tag.key(), tag.value())))),
        spec: RoleSpec {
            name: name.to_owned(),
            trust,
            boundary: role
                .permissions_boundary()
                .and_then(|boundary| boundary.permissions_boundary_arn())
                .map(str::to_owned),
            other_policies,
            policy,
            managed_policies,
        },
    }))
}

/// What ECS needs to start the app's tasks, and nothing more: pull from
/// the app's repositories, write to its log groups, read the named secrets.
/// IAM roles are global while the stack is regional, so the policy holds
/// for the app in any region: applying it in a second region does not take
/// the first one's permissions away.
pub fn execution_policy(stack: &Stack, live: &Live) -> Value {
    let names = Names::of(stack);
    let (app, account) = (names.app(), &live.account);
    let mut secrets: BTreeSet<String> =
        stack.services.iter().flat_map(|service| service.aws.secrets.values().cloned()).collect();
    // The stores' secrets, whatever suffix Secrets Manager gave their ARNs.
    secrets.extend(
        stack.stores.iter().map(|store| {
            format!("arn:aws:secretsmanager:*:{account}:secret:{}-??????", names.store_secret(&store.name))
        }),
    );
    let mut statements = vec![
        json!({ "Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"] }),
        json!({
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [format!("arn:aws:ecr:*:{account}:repository/{app}/*")]
        }),
        json!({
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [format!("arn:aws:logs:*:{account}:log-group:/ecs/{app}/*")]
        }),
    ];
    let secrets_manager: Vec<&String> = secrets.iter().filter(|arn| arn.contains(":secretsmanager:")).collect();
    if !secrets_manager.is_empty() {
        statements.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets_manager
        }));
    }
    let parameters: Vec<&String> = secrets.iter().filter(|arn| arn.contains(":ssm:")).collect();
    if !parameters.is_empty() {
        statements.push(json!({
            "Sid": "ReadParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": parameters
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// A policy in one line: its actions, so a change shows what it grants.
pub fn summarize_policy(policy: &Value) -> String {
    let mut actions = BTreeSet::new();
    let mut resources = BTreeSet::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        for field in ["Action", "Resource"] {
            let target = if field == "Action" { &mut actions } else { &mut resources };
            match &statement[field] {
                Value::String(value) => {
                    target.insert(value.clone());
                }
                Value::Array(values) => target.extend(values.iter().filter_map(Value::as_str).map(str::to_owned)),
                _ => {}
            }
        }
    }
    format!("{} on {}", render::join(&actions), render::join(&resources))
}

//! IAM roles: those ECS tasks assume (the app's execution role: pull from
//! the app's repositories, write to its log groups, read the secrets the
//! stack names, nothing more; and each service's task role, what its code
//! runs as: no policy unless the stack attaches some), and with a
//! `[pipeline]`, the build's role (what `provision deploy --apply` calls,
//! scoped to the app) and the pipeline's (see [`super::pipeline`]). A
//! pipeline role left over once the table goes is deleted.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    clients::error::{classify, explain, unless_gone},
    engine::{
        names::{INLINE_POLICY, Names},
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
    /// Managed policy ARNs attached to it.
    pub managed_policies: BTreeSet<String>,
    /// The AWS service that may assume it (`ecs-tasks.amazonaws.com`).
    pub trusted: String,
}

/// The principal of the roles ECS tasks assume.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

impl RoleSpec {
    /// Who may assume it: the one service it is for.
    pub fn trust_policy(&self) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": self.trusted },
                "Action": "sts:AssumeRole"
            }]
        })
    }
}

impl Kind for Role {
    const LABEL: &'static str = "iam role";
    const KEY: &'static str = "role";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = RoleSpec;

    /// The execution role, each service's task role, then the pipeline's.
    fn desired(stack: &Stack, live: &Live) -> Vec<RoleSpec> {
        let names = Names::new(&stack.app);
        let mut secrets: BTreeSet<String> =
            stack.services.iter().flat_map(|service| service.aws.secrets.values().cloned()).collect();
        // The stores' secrets, whatever suffix Secrets Manager gave their ARNs.
        secrets.extend(stack.stores.iter().map(|store| {
            format!("arn:aws:secretsmanager:*:{}:secret:{}-??????", live.account, names.store_secret(&store.name))
        }));
        let execution = RoleSpec {
            name: names.execution_role(),
            policy: Some(execution_policy(&names, &live.account, &secrets)),
            managed_policies: BTreeSet::new(),
            trusted: ECS_TASKS.to_owned(),
        };
        let task_roles = stack.services.iter().map(|service| RoleSpec {
            name: names.task_role(&service.name),
            policy: None,
            managed_policies: service.aws.task_role_policies.iter().cloned().collect(),
            trusted: ECS_TASKS.to_owned(),
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
            ("managed_policies", render::join(&spec.managed_policies)),
            ("trusted", spec.trusted.clone()),
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
                    .assume_role_policy_document(spec.trust_policy().to_string())
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
                        role.role().map(|role| role.arn().to_owned()).unwrap_or_default()
                    }
                }
            }
        };
        if *action == Action::Unchanged {
            return Ok(Output::id(arn));
        }
        if live.is_some_and(|found| found.spec.trusted != spec.trusted) {
            iam.update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust_policy().to_string())
                .send()
                .await
                .map_err(|e| explain(e, "iam:UpdateAssumeRolePolicy", &resource))?;
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

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<RoleSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        let iam = &cx.clients.iam;
        for found in owned {
            let name = &found.spec.name;
            let resource = format!("IAM role {name}");
            if found.spec.policy.is_some() {
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(INLINE_POLICY)
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
            println!("  deleted iam role {name}");
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
    // URL-encoded JSON; the one service principal of the statement.
    let trust = role.assume_role_policy_document().unwrap_or_default();
    let trust: Value =
        serde_json::from_str(&percent_encoding::percent_decode_str(trust).decode_utf8_lossy()).unwrap_or_default();
    let trusted = trust["Statement"][0]["Principal"]["Service"].as_str().unwrap_or_default().to_owned();
    let answer = iam.get_role_policy().role_name(name).policy_name(INLINE_POLICY).send().await;
    let answer = answer.map_err(|error| classify(error, "iam:GetRolePolicy", &format!("IAM role {name}")));
    let policy = match unless_gone(answer)? {
        Some(answer) => {
            let decoded = percent_encoding::percent_decode_str(answer.policy_document()).decode_utf8_lossy();
            Some(
                serde_json::from_str(&decoded)
                    .with_context(|| format!("IAM role {name}: inline policy is not JSON"))?,
            )
        }
        None => None,
    };
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|error| explain(error, "iam:ListAttachedRolePolicies", &format!("IAM role {name}")))?;
    Ok(Some(Found {
        id: name.to_owned(),
        arn: role.arn().to_owned(),
        owned: cx.names.owns(role.tags().iter().map(|tag| (tag.key(), tag.value()))),
        spec: RoleSpec {
            name: name.to_owned(),
            trusted,
            policy,
            managed_policies: attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_owned)
                .collect(),
        },
    }))
}

/// What ECS needs to start the app's tasks, and nothing more: pull from
/// the app's repositories, write to its log groups, read the named secrets.
/// IAM roles are global while the stack is regional, so the policy holds
/// for the app in any region: applying it in a second region does not take
/// the first one's permissions away.
fn execution_policy(names: &Names, account: &str, secrets: &BTreeSet<String>) -> Value {
    let app = names.app();
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
fn summarize_policy(policy: &Value) -> String {
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

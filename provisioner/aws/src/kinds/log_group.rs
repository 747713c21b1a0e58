//! Each service's CloudWatch log group, and the pipeline's build's, with the
//! stack's retention. Kept by destroy unless asked (`--delete-logs`): logs
//! outlive the stack.

use std::collections::BTreeMap;

use crate::{
    clients::error::{classify, explain},
    engine::{
        names::{Names, Tags},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, read_each},
        state::Live,
    },
};
use stack_spec::Stack;

/// A service's log group.
pub struct LogGroup;

/// A log group as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupSpec {
    pub name: String,
    /// Days CloudWatch keeps the logs.
    pub retention_days: u32,
}

impl Kind for LogGroup {
    const LABEL: &'static str = "log group";
    const KEY: &'static str = "log-group";
    type Spec = LogGroupSpec;

    fn desired(stack: &Stack, _live: &Live) -> Vec<LogGroupSpec> {
        let names = Names::of(stack);
        let build = stack.pipeline.as_ref().map(|_| names.build_log_group());
        stack
            .services
            .iter()
            .map(|service| names.log_group(&service.name))
            .chain(build)
            .map(|name| LogGroupSpec { name, retention_days: stack.aws.log_retention_days })
            .collect()
    }

    fn name(spec: &LogGroupSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &LogGroupSpec) -> Fields {
        Fields::from([("retention_days", spec.retention_days.to_string())])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<LogGroupSpec>>> {
        let build = cx.stack.pipeline.as_ref().map(|_| cx.names.build_log_group());
        let wanted = cx.stack.services.iter().map(|service| cx.names.log_group(&service.name)).chain(build).collect();
        read_each(wanted, |name| async move { read_log_group(cx, &name).await }).await
    }

    async fn apply(
        cx: ApplyCx<'_>,
        spec: &LogGroupSpec,
        _have: Option<&Found<LogGroupSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let logs = &cx.cx.clients.logs;
        let resource = format!("log group {}", spec.name);
        if *action == Action::Unchanged {
            return Ok(Output::id(&spec.name));
        }
        if *action == Action::Create {
            let tags = cx.cx.names.tags().into_iter().collect();
            if let Err(error) = logs.create_log_group().log_group_name(&spec.name).set_tags(Some(tags)).send().await {
                let error = classify(error, "logs:CreateLogGroup", &resource);
                if error.code.as_deref() != Some("ResourceAlreadyExistsException") {
                    return Err(error.into());
                }
                let Some(appeared) = read_log_group(cx.cx, &spec.name).await? else {
                    anyhow::bail!("{resource}: CloudWatch says it exists but does not describe it");
                };
                let tags = appeared.tags.iter().flatten().map(|(key, value)| (key.as_str(), value.as_str()));
                cx.cx.names.check_appeared(&resource, tags)?;
            }
        }
        logs.put_retention_policy()
            .log_group_name(&spec.name)
            .retention_in_days(i32::try_from(spec.retention_days).unwrap_or(3653))
            .send()
            .await
            .map_err(|e| explain(e, "logs:PutRetentionPolicy", &resource))?;
        Self::done(if *action == Action::Create { "created" } else { "updated" }, &spec.name);
        Ok(Output::id(&spec.name))
    }

    fn teardown_line(found: &Found<LogGroupSpec>, options: DestroyOptions) -> Option<String> {
        options.delete_logs.then(|| format!("log group {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<LogGroupSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        let what = format!("log group {}", found.spec.name);
        if !set.is_empty() {
            let tags = set.clone().into_iter().collect();
            let answer = cx.clients.logs.tag_resource().resource_arn(&found.arn).set_tags(Some(tags)).send().await;
            answer.map_err(|error| explain(error, "logs:TagResource", &what))?;
        }
        if !remove.is_empty() {
            let answer = cx
                .clients
                .logs
                .untag_resource()
                .resource_arn(&found.arn)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await;
            answer.map_err(|error| explain(error, "logs:UntagResource", &what))?;
        }
        Ok(())
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<LogGroupSpec>>, options: DestroyOptions) -> anyhow::Result<()> {
        if !options.delete_logs {
            if !owned.is_empty() {
                provision_cli::say!("  kept {} log group(s) (--delete-logs deletes them)", owned.len());
            }
            return Ok(());
        }
        for found in owned {
            let name = &found.spec.name;
            cx.clients
                .logs
                .delete_log_group()
                .log_group_name(name)
                .send()
                .await
                .map_err(|e| explain(e, "logs:DeleteLogGroup", &format!("log group {name}")))?;
            crate::engine::journal::done("deleted", "log group", name);
        }
        Ok(())
    }
}

async fn read_log_group(cx: Cx<'_>, name: &str) -> anyhow::Result<Option<Found<LogGroupSpec>>> {
    let logs = &cx.clients.logs;
    // Other groups may start with the name: every page until it is found.
    let mut pages = logs.describe_log_groups().log_group_name_prefix(name).into_paginator().send();
    let mut found = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "logs:DescribeLogGroups", &format!("log group {name}")))?;
        found = page.log_groups().iter().find(|group| group.log_group_name() == Some(name)).cloned();
        if found.is_some() {
            break;
        }
    }
    let Some(group) = found else { return Ok(None) };
    let arn = group.arn().unwrap_or_default().trim_end_matches(":*").to_owned();
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|error| explain(error, "logs:ListTagsForResource", &format!("log group {name}")))?;
    Ok(Some(Found {
        id: name.to_owned(),
        owned: cx.names.owns(tags.tags().into_iter().flatten().map(|(key, value)| (key.as_str(), value.as_str()))),
        tags: Some(tags.tags().cloned().unwrap_or_default().into_iter().collect()),
        arn,
        spec: LogGroupSpec {
            name: name.to_owned(),
            retention_days: group.retention_in_days().and_then(|days| u32::try_from(days).ok()).unwrap_or(0),
        },
    }))
}

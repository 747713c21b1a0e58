//! The CodePipeline calls behind the delivery pipeline and its commands,
//! through the SDK's client: the declaration is the SDK's own type, which
//! the pipeline kind builds and reads back.

use aws_sdk_codepipeline::{
    Client,
    types::{PipelineDeclaration, Tag},
};
use aws_smithy_types::DateTime;

use super::error::{AwsError, classify, unless_gone};

/// A CodePipeline client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct CodePipeline {
    client: Client,
}

/// Where one execution stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Execution {
    /// `InProgress`, `Succeeded`, `Failed`...
    pub status: String,
    /// Why, when it failed.
    pub summary: String,
}

/// One stage's latest state and its first action's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageView {
    pub name: String,
    /// The execution the stage last ran for.
    pub execution_id: String,
    pub status: String,
    pub action_name: String,
    /// The action's run elsewhere (a CodeBuild build id).
    pub external_id: String,
    /// The action's error, else its summary.
    pub detail: String,
}

/// One execution in the pipeline's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionSummary {
    pub id: String,
    pub status: String,
    pub started: Option<DateTime>,
    pub last_update: Option<DateTime>,
    /// The commit it ran, and its message.
    pub revision: Option<(String, String)>,
}

impl CodePipeline {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_codepipeline, config) }
    }

    /// `GetPipeline`: the declaration and its ARN, if it exists.
    pub async fn pipeline(&self, name: &str) -> Result<Option<(PipelineDeclaration, String)>, AwsError> {
        let answer = self.client.get_pipeline().name(name).send().await;
        let answer = answer.map_err(|error| classify(error, "codepipeline:GetPipeline", &format!("pipeline {name}")));
        Ok(unless_gone(answer)?.and_then(|answer| {
            let arn = answer.metadata().and_then(|metadata| metadata.pipeline_arn()).unwrap_or_default().to_owned();
            Some((answer.pipeline()?.clone(), arn))
        }))
    }

    /// `CreatePipeline` (tagged) or `UpdatePipeline` with `declaration`.
    pub async fn put_pipeline(
        &self,
        declaration: PipelineDeclaration,
        tags: &[(String, String)],
        update: bool,
    ) -> Result<(), AwsError> {
        let resource = format!("pipeline {}", declaration.name());
        if update {
            self.client
                .update_pipeline()
                .pipeline(declaration)
                .send()
                .await
                .map_err(|error| classify(error, "codepipeline:UpdatePipeline", &resource))?;
            return Ok(());
        }
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(AwsError::unsent("codepipeline:CreatePipeline", &resource))?;
        self.client
            .create_pipeline()
            .pipeline(declaration)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|error| classify(error, "codepipeline:CreatePipeline", &resource))?;
        Ok(())
    }

    /// `DeletePipeline`; one already gone is fine.
    pub async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError> {
        let answer = self.client.delete_pipeline().name(name).send().await;
        unless_gone(
            answer.map_err(|error| classify(error, "codepipeline:DeletePipeline", &format!("pipeline {name}"))),
        )?;
        Ok(())
    }

    /// `ListTagsForResource`, every page.
    pub async fn tags(&self, arn: &str, resource: &str) -> Result<Vec<(String, String)>, AwsError> {
        let mut tags = Vec::new();
        let mut pages = self.client.list_tags_for_resource().resource_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| classify(error, "codepipeline:ListTagsForResource", resource))?;
            tags.extend(page.tags().iter().map(|tag| (tag.key().to_owned(), tag.value().to_owned())));
        }
        Ok(tags)
    }

    /// `TagResource` with `set`, `UntagResource` with `remove`.
    pub async fn retag(&self, arn: &str, set: &crate::engine::names::Tags, remove: &[String]) -> Result<(), AwsError> {
        let resource = format!("pipeline {arn}");
        if !set.is_empty() {
            let invalid = AwsError::unsent("codepipeline:TagResource", &resource);
            let tags = set
                .iter()
                .map(|(key, value)| aws_sdk_codepipeline::types::Tag::builder().key(key).value(value).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(&invalid)?;
            let answer = self.client.tag_resource().resource_arn(arn).set_tags(Some(tags)).send().await;
            answer.map_err(|error| classify(error, "codepipeline:TagResource", &resource))?;
        }
        if !remove.is_empty() {
            let answer =
                self.client.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec())).send().await;
            answer.map_err(|error| classify(error, "codepipeline:UntagResource", &resource))?;
        }
        Ok(())
    }

    /// `StartPipelineExecution`: the new execution's id.
    pub async fn start_execution(&self, name: &str) -> Result<String, AwsError> {
        let answer = self
            .client
            .start_pipeline_execution()
            .name(name)
            .send()
            .await
            .map_err(|error| classify(error, "codepipeline:StartPipelineExecution", &format!("pipeline {name}")))?;
        Ok(answer.pipeline_execution_id().unwrap_or_default().to_owned())
    }

    /// `GetPipelineExecution`: one execution's status.
    pub async fn execution(&self, name: &str, id: &str) -> Result<Execution, AwsError> {
        let answer = self
            .client
            .get_pipeline_execution()
            .pipeline_name(name)
            .pipeline_execution_id(id)
            .send()
            .await
            .map_err(|error| classify(error, "codepipeline:GetPipelineExecution", &format!("pipeline {name}")))?;
        let execution = answer.pipeline_execution();
        Ok(Execution {
            status: execution
                .and_then(|execution| execution.status())
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            summary: execution.and_then(|execution| execution.status_summary()).unwrap_or_default().to_owned(),
        })
    }

    /// `GetPipelineState`: each stage's latest state.
    pub async fn stages(&self, name: &str) -> Result<Vec<StageView>, AwsError> {
        let answer = self
            .client
            .get_pipeline_state()
            .name(name)
            .send()
            .await
            .map_err(|error| classify(error, "codepipeline:GetPipelineState", &format!("pipeline {name}")))?;
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        Ok(answer
            .stage_states()
            .iter()
            .map(|stage| {
                let latest = stage.latest_execution();
                let action = stage.action_states().first();
                let action_run = action.and_then(|action| action.latest_execution());
                StageView {
                    name: text(stage.stage_name()),
                    execution_id: text(latest.map(|latest| latest.pipeline_execution_id())),
                    status: text(latest.map(|latest| latest.status().as_str())),
                    action_name: text(action.and_then(|action| action.action_name())),
                    external_id: text(action_run.and_then(|run| run.external_execution_id())),
                    detail: text(
                        action_run.and_then(|run| {
                            run.error_details().and_then(|details| details.message()).or(run.summary())
                        }),
                    ),
                }
            })
            .collect())
    }

    /// `ListPipelineExecutions`: the last `count`, newest first.
    pub async fn executions(&self, name: &str, count: u32) -> Result<Vec<ExecutionSummary>, AwsError> {
        let answer = self
            .client
            .list_pipeline_executions()
            .pipeline_name(name)
            .max_results(i32::try_from(count).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|error| classify(error, "codepipeline:ListPipelineExecutions", &format!("pipeline {name}")))?;
        Ok(answer
            .pipeline_execution_summaries()
            .iter()
            .map(|summary| ExecutionSummary {
                id: summary.pipeline_execution_id().unwrap_or_default().to_owned(),
                status: summary.status().map(|status| status.as_str().to_owned()).unwrap_or_default(),
                started: summary.start_time().copied(),
                last_update: summary.last_update_time().copied(),
                revision: summary.source_revisions().first().map(|revision| {
                    (
                        revision.revision_id().unwrap_or_default().to_owned(),
                        revision.revision_summary().unwrap_or_default().to_owned(),
                    )
                }),
            })
            .collect())
    }
}

//! The CodePipeline calls behind the delivery pipeline and its commands,
//! in its JSON 1.1 protocol (`CodePipeline_20150709.<Operation>`) over
//! [`super::json11`].

use serde_json::{Value, json};

use super::{
    error::{AwsError, unless_gone},
    json11::JsonClient,
};

/// A CodePipeline client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct CodePipeline {
    client: JsonClient,
}

impl CodePipeline {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: JsonClient::new(config, region, "codepipeline", "CodePipeline_20150709")? })
    }

    /// `GetPipeline`: the declaration and its ARN, if it exists.
    pub async fn pipeline(&self, name: &str) -> Result<Option<(Value, String)>, AwsError> {
        match unless_gone(self.client.call("GetPipeline", &json!({ "name": name }), &format!("pipeline {name}")).await)?
        {
            None => Ok(None),
            Some(mut answer) => {
                let arn = answer["metadata"]["pipelineArn"].as_str().unwrap_or_default().to_owned();
                Ok(Some((answer["pipeline"].take(), arn)))
            }
        }
    }

    /// `CreatePipeline` (tagged) or `UpdatePipeline` with `declaration`.
    pub async fn put_pipeline(
        &self,
        declaration: &Value,
        tags: &[(String, String)],
        update: bool,
    ) -> Result<(), AwsError> {
        let resource = format!("pipeline {}", declaration["name"].as_str().unwrap_or_default());
        if update {
            return self.client.call("UpdatePipeline", &json!({ "pipeline": declaration }), &resource).await.map(drop);
        }
        let tags: Vec<Value> = tags.iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
        let request = json!({ "pipeline": declaration, "tags": tags });
        self.client.call("CreatePipeline", &request, &resource).await.map(drop)
    }

    /// `DeletePipeline`; one already gone is fine.
    pub async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError> {
        unless_gone(self.client.call("DeletePipeline", &json!({ "name": name }), &format!("pipeline {name}")).await)?;
        Ok(())
    }

    /// `ListTagsForResource`.
    pub async fn tags(&self, arn: &str, resource: &str) -> Result<Vec<(String, String)>, AwsError> {
        let answer = self.client.call("ListTagsForResource", &json!({ "resourceArn": arn }), resource).await?;
        Ok(answer["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tag| {
                Some((tag["key"].as_str()?.to_owned(), tag["value"].as_str().unwrap_or_default().to_owned()))
            })
            .collect())
    }

    /// Any other call, for the pipeline commands (`StartPipelineExecution`,
    /// `GetPipelineState`, `ListPipelineExecutions`...).
    pub async fn call(&self, operation: &str, request: &Value, resource: &str) -> Result<Value, AwsError> {
        self.client.call(operation, request, resource).await
    }
}

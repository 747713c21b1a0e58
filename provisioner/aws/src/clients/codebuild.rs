//! The CodeBuild calls behind the pipeline's build project, in its JSON 1.1
//! protocol (`CodeBuild_20161006.<Operation>`) over [`super::json11`].

use serde_json::{Value, json};

use super::{
    error::{AwsError, unless_gone},
    json11::JsonClient,
};

/// A CodeBuild client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct CodeBuild {
    client: JsonClient,
}

impl CodeBuild {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: JsonClient::new(config, region, "codebuild", "CodeBuild_20161006")? })
    }

    /// `BatchGetProjects` of one: the project as CodeBuild describes it.
    pub async fn project(&self, name: &str) -> Result<Option<Value>, AwsError> {
        let answer =
            self.client.call("BatchGetProjects", &json!({ "names": [name] }), &format!("build project {name}")).await?;
        Ok(answer["projects"].as_array().and_then(|projects| projects.first()).cloned())
    }

    /// `CreateProject` (`update` false) or `UpdateProject` with `project`.
    pub async fn put_project(&self, project: &Value, update: bool) -> Result<(), AwsError> {
        let resource = format!("build project {}", project["name"].as_str().unwrap_or_default());
        let operation = if update { "UpdateProject" } else { "CreateProject" };
        self.client.call(operation, project, &resource).await.map(drop)
    }

    /// `DeleteProject`; one already gone is fine.
    pub async fn delete_project(&self, name: &str) -> Result<(), AwsError> {
        let resource = format!("build project {name}");
        unless_gone(self.client.call("DeleteProject", &json!({ "name": name }), &resource).await)?;
        Ok(())
    }

    /// `BatchGetBuilds`: the builds as CodeBuild describes them.
    pub async fn builds(&self, ids: &[String]) -> Result<Vec<Value>, AwsError> {
        let answer = self.client.call("BatchGetBuilds", &json!({ "ids": ids }), "the pipeline's builds").await?;
        Ok(answer["builds"].as_array().cloned().unwrap_or_default())
    }
}

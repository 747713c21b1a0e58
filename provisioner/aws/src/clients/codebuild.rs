//! The CodeBuild calls behind the pipeline's build project and the
//! following of its runs, through the SDK's client, in the shapes the
//! project kind compares.

use aws_sdk_codebuild::{
    Client,
    types::{
        ArtifactsType, CacheType, CloudWatchLogsConfig, ComputeType, EnvironmentType, EnvironmentVariable,
        EnvironmentVariableType, ImagePullCredentialsType, LogsConfig, LogsConfigStatusType, ProjectArtifacts,
        ProjectCache, ProjectEnvironment, ProjectSource, S3LogsConfig, SourceType, Tag,
    },
};

use super::error::{AwsError, classify, unless_gone};

/// A CodeBuild client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct CodeBuild {
    client: Client,
}

/// A project as CodeBuild describes it, as far as provision sets it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Project {
    pub arn: String,
    /// The buildspec's path in the source.
    pub buildspec: String,
    pub image: String,
    pub compute_type: String,
    pub privileged: bool,
    /// The environment variables every build gets.
    pub variables: Vec<(String, String)>,
    /// The service role's ARN.
    pub service_role: String,
    pub timeout_minutes: Option<u32>,
    pub log_group: String,
    /// The cache's location (`BUCKET/PREFIX`).
    pub cache: String,
    pub tags: Vec<(String, String)>,
}

/// What a project is made or updated with: a Linux container fed by
/// CodePipeline, logging to CloudWatch, with an S3 cache.
pub struct NewProject<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub buildspec: &'a str,
    /// CodePipeline gives the source and takes the artifacts; AWS ignores
    /// the location then, and emulators ask for one.
    pub pipeline: &'a str,
    pub image: &'a str,
    pub compute_type: &'a str,
    pub privileged: bool,
    /// Plain-text environment variables every build gets.
    pub variables: &'a [(String, String)],
    pub service_role: &'a str,
    pub timeout_minutes: u32,
    pub cache: &'a str,
    pub log_group: &'a str,
    pub tags: &'a [(String, String)],
}

/// A build's phase and where its logs are, as `pipeline run` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildView {
    pub phase: String,
    pub logs: String,
}

impl CodeBuild {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_codebuild, config) }
    }

    /// `BatchGetProjects` of one: the project, if it exists.
    pub async fn project(&self, name: &str) -> Result<Option<Project>, AwsError> {
        let answer = self
            .client
            .batch_get_projects()
            .names(name)
            .send()
            .await
            .map_err(|error| classify(error, "codebuild:BatchGetProjects", &format!("build project {name}")))?;
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        Ok(answer.projects().first().map(|project| {
            let environment = project.environment();
            Project {
                arn: text(project.arn()),
                buildspec: text(project.source().and_then(|source| source.buildspec())),
                image: text(environment.map(|environment| environment.image())),
                compute_type: text(environment.map(|environment| environment.compute_type().as_str())),
                privileged: environment.and_then(|environment| environment.privileged_mode()).unwrap_or(false),
                variables: environment
                    .map(|environment| environment.environment_variables())
                    .unwrap_or_default()
                    .iter()
                    .map(|variable| (variable.name().to_owned(), variable.value().to_owned()))
                    .collect(),
                service_role: text(project.service_role()),
                timeout_minutes: project.timeout_in_minutes().and_then(|minutes| u32::try_from(minutes).ok()),
                log_group: text(
                    project.logs_config().and_then(|logs| logs.cloud_watch_logs()).and_then(|logs| logs.group_name()),
                ),
                cache: text(project.cache().and_then(|cache| cache.location())),
                tags: project.tags().iter().map(|tag| (text(tag.key()), text(tag.value()))).collect(),
            }
        }))
    }

    /// `CreateProject` (`update` false) or `UpdateProject` with the whole
    /// definition.
    pub async fn put_project(&self, new: &NewProject<'_>, update: bool) -> Result<(), AwsError> {
        let resource = format!("build project {}", new.name);
        let action = if update { "codebuild:UpdateProject" } else { "codebuild:CreateProject" };
        let invalid = AwsError::unsent(action, &resource);
        let source = ProjectSource::builder()
            .r#type(SourceType::Codepipeline)
            .buildspec(new.buildspec)
            .location(new.pipeline)
            .build()
            .map_err(&invalid)?;
        let artifacts = ProjectArtifacts::builder()
            .r#type(ArtifactsType::Codepipeline)
            .location(new.pipeline)
            .build()
            .map_err(&invalid)?;
        let variables = new
            .variables
            .iter()
            .map(|(name, value)| {
                EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(&invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let environment = ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(new.image)
            .compute_type(ComputeType::from(new.compute_type))
            .privileged_mode(new.privileged)
            .set_environment_variables(Some(variables))
            .image_pull_credentials_type(ImagePullCredentialsType::Codebuild)
            .build()
            .map_err(&invalid)?;
        let cache = ProjectCache::builder().r#type(CacheType::S3).location(new.cache).build().map_err(&invalid)?;
        let logs = LogsConfig::builder()
            .cloud_watch_logs(
                CloudWatchLogsConfig::builder()
                    .status(LogsConfigStatusType::Enabled)
                    .group_name(new.log_group)
                    .build()
                    .map_err(&invalid)?,
            )
            .s3_logs(S3LogsConfig::builder().status(LogsConfigStatusType::Disabled).build().map_err(&invalid)?)
            .build();
        let tags: Vec<Tag> = new.tags.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
        let timeout = i32::try_from(new.timeout_minutes).unwrap_or(i32::MAX);
        // CreateProject and UpdateProject take the same members through
        // builders of two types.
        macro_rules! definition {
            ($builder:expr) => {
                $builder
                    .name(new.name)
                    .description(new.description)
                    .source(source)
                    .artifacts(artifacts)
                    .environment(environment)
                    .service_role(new.service_role)
                    .timeout_in_minutes(timeout)
                    .cache(cache)
                    .logs_config(logs)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|error| classify(error, action, &resource))
            };
        }
        if update { definition!(self.client.update_project()) } else { definition!(self.client.create_project()) }
    }

    /// `DeleteProject`; one already gone is fine.
    pub async fn delete_project(&self, name: &str) -> Result<(), AwsError> {
        let answer = self.client.delete_project().name(name).send().await;
        unless_gone(
            answer.map_err(|error| classify(error, "codebuild:DeleteProject", &format!("build project {name}"))),
        )?;
        Ok(())
    }

    /// `BatchGetBuilds`: each build's phase and logs link.
    pub async fn builds(&self, ids: &[String]) -> Result<Vec<BuildView>, AwsError> {
        let answer = self
            .client
            .batch_get_builds()
            .set_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|error| classify(error, "codebuild:BatchGetBuilds", "the pipeline's builds"))?;
        Ok(answer
            .builds()
            .iter()
            .map(|build| BuildView {
                phase: build.current_phase().unwrap_or_default().to_owned(),
                logs: build.logs().and_then(|logs| logs.deep_link()).unwrap_or_default().to_owned(),
            })
            .collect())
    }
}

//! The CodePipeline (V2): a source stage reading the repository's branch
//! through the stack's connection (`CodeStarSourceConnection`), a stage
//! running the build project on it, a trigger on pushes to the branch, the
//! artifact bucket as its store, the pipeline role.

use std::collections::BTreeMap;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType,
    GitBranchFilterCriteria, GitConfiguration, GitPushFilter, InputArtifact, OutputArtifact, PipelineDeclaration,
    PipelineTriggerDeclaration, PipelineTriggerProviderType, PipelineType, StageDeclaration,
};
use aws_smithy_types::error::operation::BuildError;
use stack_spec::Stack;

use super::{bucket::ArtifactBucket, project::BuildProject};
use crate::{
    clients::error::unless_unused,
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
        status::StatusReport,
    },
    kinds::role::Role,
};

/// The names of the source action and of its output.
const SOURCE: &str = "Source";
const SOURCE_OUTPUT: &str = "source";

/// The delivery pipeline.
pub struct DeliveryPipeline;

/// A pipeline as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSpec {
    pub name: String,
    /// `V2`.
    pub kind: String,
    /// Its role, by name.
    pub role: String,
    pub bucket: String,
    pub connection_arn: String,
    pub repository: String,
    pub branch: String,
    /// The branches whose pushes start it.
    pub trigger: Vec<String>,
    pub project: String,
}

impl Kind for DeliveryPipeline {
    const LABEL: &'static str = "pipeline";
    const KEY: &'static str = "pipeline";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = PipelineSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<PipelineSpec> {
        let names = Names::of(stack);
        stack
            .pipeline
            .iter()
            .map(|pipeline| PipelineSpec {
                name: names.pipeline(),
                kind: "V2".to_owned(),
                role: names.pipeline_role(),
                bucket: names.artifact_bucket(&live.account, &live.region),
                connection_arn: pipeline.connection_arn.clone(),
                repository: pipeline.repository.clone(),
                branch: pipeline.branch.clone(),
                trigger: vec![pipeline.branch.clone()],
                project: names.build_project(),
            })
            .collect()
    }

    fn name(spec: &PipelineSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &PipelineSpec) -> Fields {
        Fields::from([
            ("type", spec.kind.clone()),
            ("role", spec.role.clone()),
            ("artifact_store", format!("S3 {}", spec.bucket)),
            ("source", format!("{}@{} through {}", spec.repository, spec.branch, spec.connection_arn)),
            ("trigger", format!("push to {}", spec.trigger.join(", "))),
            ("build", spec.project.clone()),
        ])
    }

    /// The app's pipeline, whether or not the stack has one now (one left
    /// over goes).
    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<PipelineSpec>>> {
        let name = cx.names.pipeline();
        let codepipeline = &cx.clients.codepipeline;
        let answer = unless_unused(codepipeline.pipeline(&name).await, cx.stack.pipeline.is_some());
        let Some((declaration, arn)) = answer? else { return Ok(BTreeMap::new()) };
        let tags = codepipeline.tags(&arn, &format!("pipeline {name}")).await?;
        let owned = cx.names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
        let spec = read_declaration(&name, &declaration);
        Ok(BTreeMap::from([(name, Found { id: arn.clone(), arn, owned, tags: Some(tag_map(tags)), spec })]))
    }

    /// Creates or updates the pipeline with the whole declaration.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &PipelineSpec,
        have: Option<&Found<PipelineSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        if have.is_some() && *action == Action::Unchanged {
            return Ok(Output::id(&spec.name));
        }
        let declaration = declaration(
            spec,
            &cx.made.id::<Role>(&spec.role),
            &cx.made.id::<ArtifactBucket>(&spec.bucket),
            &cx.made.id::<BuildProject>(&spec.project),
        )
        .map_err(|error| anyhow::anyhow!("pipeline {}: its declaration is incomplete: {error}", spec.name))?;
        cx.cx.clients.codepipeline.put_pipeline(declaration, &cx.cx.names.tags(), have.is_some()).await?;
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(&spec.name))
    }

    /// The pipeline's last three executions; where they cannot be read,
    /// the report says why and status goes on.
    async fn status(cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        if live.get::<DeliveryPipeline>(&cx.names.pipeline()).is_some() {
            report.pipeline = Some(super::executions::executions(cx.clients, &cx.names.pipeline(), 3).await);
        }
        Ok(())
    }

    fn teardown_line(found: &Found<PipelineSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("pipeline {}", found.spec.name))
    }

    async fn retag(cx: Cx<'_>, found: &Found<PipelineSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        Ok(cx.clients.codepipeline.retag(&found.arn, set, remove).await?)
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<PipelineSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            cx.clients.codepipeline.delete_pipeline(&found.spec.name).await?;
            crate::engine::journal::done("deleted", "pipeline", &found.spec.name);
        }
        Ok(())
    }
}

/// The pipeline's declaration, as CreatePipeline and UpdatePipeline take it.
fn declaration(
    spec: &PipelineSpec,
    role_arn: &str,
    bucket: &str,
    project: &str,
) -> Result<PipelineDeclaration, BuildError> {
    let source = ActionDeclaration::builder()
        .name(SOURCE)
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Source)
                .owner(ActionOwner::Aws)
                .provider("CodeStarSourceConnection")
                .version("1")
                .build()?,
        )
        .configuration("ConnectionArn", &spec.connection_arn)
        .configuration("FullRepositoryId", &spec.repository)
        .configuration("BranchName", &spec.branch)
        .configuration("OutputArtifactFormat", "CODE_ZIP")
        .output_artifacts(OutputArtifact::builder().name(SOURCE_OUTPUT).build()?)
        .run_order(1)
        .build()?;
    let build = ActionDeclaration::builder()
        .name("TestBuildDeploy")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Build)
                .owner(ActionOwner::Aws)
                .provider("CodeBuild")
                .version("1")
                .build()?,
        )
        .configuration("ProjectName", project)
        .input_artifacts(InputArtifact::builder().name(SOURCE_OUTPUT).build()?)
        .run_order(1)
        .build()?;
    let push = GitPushFilter::builder()
        .branches(GitBranchFilterCriteria::builder().set_includes(Some(spec.trigger.clone())).build())
        .build();
    PipelineDeclaration::builder()
        .name(&spec.name)
        .pipeline_type(PipelineType::from(spec.kind.as_str()))
        .role_arn(role_arn)
        .artifact_store(ArtifactStore::builder().r#type(ArtifactStoreType::S3).location(bucket).build()?)
        .stages(StageDeclaration::builder().name(SOURCE).actions(source).build()?)
        .stages(StageDeclaration::builder().name("Deploy").actions(build).build()?)
        .triggers(
            PipelineTriggerDeclaration::builder()
                .provider_type(PipelineTriggerProviderType::CodeStarSourceConnection)
                .git_configuration(GitConfiguration::builder().source_action_name(SOURCE).push(push).build()?)
                .build()?,
        )
        .build()
}

/// A declaration read back into a spec (what is missing reads as empty,
/// and plan shows it as a change).
fn read_declaration(name: &str, declaration: &PipelineDeclaration) -> PipelineSpec {
    let action = |provider: &str| {
        declaration
            .stages()
            .iter()
            .flat_map(|stage| stage.actions())
            .find(|action| action.action_type_id().is_some_and(|id| id.provider() == provider))
    };
    let setting = |action: Option<&ActionDeclaration>, key: &str| {
        action.and_then(|action| action.configuration()?.get(key)).cloned().unwrap_or_default()
    };
    let source = action("CodeStarSourceConnection");
    let build = action("CodeBuild");
    let trigger = declaration
        .triggers()
        .first()
        .and_then(|trigger| trigger.git_configuration())
        .and_then(|git| git.push().first())
        .and_then(|push| push.branches())
        .map(|branches| branches.includes().to_vec())
        .unwrap_or_default();
    PipelineSpec {
        name: name.to_owned(),
        kind: declaration.pipeline_type().map_or("V1", PipelineType::as_str).to_owned(),
        role: declaration.role_arn().rsplit('/').next().unwrap_or_default().to_owned(),
        bucket: declaration.artifact_store().map(|store| store.location().to_owned()).unwrap_or_default(),
        connection_arn: setting(source, "ConnectionArn"),
        repository: setting(source, "FullRepositoryId"),
        branch: setting(source, "BranchName"),
        trigger,
        project: setting(build, "ProjectName"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_reads_back_into_its_spec() {
        let spec = PipelineSpec {
            name: "shop".into(),
            kind: "V2".into(),
            role: "shop-pipeline".into(),
            bucket: "shop-pipeline-123456789012-us-east-1".into(),
            connection_arn: "arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e".into(),
            repository: "org/shop".into(),
            branch: "main".into(),
            trigger: vec!["main".into()],
            project: "shop-deploy".into(),
        };
        let written =
            declaration(&spec, "arn:aws:iam::123456789012:role/shop-pipeline", &spec.bucket, "shop-deploy").unwrap();
        assert_eq!(read_declaration("shop", &written), spec);
        let bare =
            PipelineDeclaration::builder().name("shop").role_arn("").set_stages(Some(Vec::new())).build().unwrap();
        assert_eq!(read_declaration("shop", &bare).kind, "V1");
        assert_eq!(read_declaration("shop", &bare).connection_arn, "");
    }
}

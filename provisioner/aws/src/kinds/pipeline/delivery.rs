//! The CodePipeline (V2): a source stage reading the repository's branch
//! through the stack's connection (`CodeStarSourceConnection`), a stage
//! running the build project on it, a trigger on pushes to the branch, the
//! artifact bucket as its store, the pipeline role.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stack_spec::Stack;

use super::{bucket::ArtifactBucket, project::BuildProject};
use crate::{
    clients::error::unless_unused,
    engine::{
        names::Names,
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
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
        let names = Names::new(&stack.app);
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
        Ok(BTreeMap::from([(name, Found { id: arn.clone(), arn, owned, spec })]))
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
        );
        cx.cx.clients.codepipeline.put_pipeline(&declaration, &cx.cx.names.tag_pairs(), have.is_some()).await?;
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(&spec.name))
    }

    /// The pipeline's last three executions; where they cannot be read,
    /// one line says why and status goes on.
    async fn status(cx: Cx<'_>, live: &Live, out: &mut String) -> anyhow::Result<bool> {
        if live.get::<DeliveryPipeline>(&cx.names.pipeline()).is_none() {
            return Ok(true);
        }
        out.push('\n');
        match super::executions::executions(cx.clients, &cx.names.pipeline(), 3).await {
            Ok(text) => out.push_str(&text),
            Err(error) => {
                out.push_str(&format!("pipeline {}: cannot read its executions: {error:#}\n", cx.names.pipeline()))
            }
        }
        Ok(true)
    }

    fn teardown_line(found: &Found<PipelineSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("pipeline {}", found.spec.name))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<PipelineSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            cx.clients.codepipeline.delete_pipeline(&found.spec.name).await?;
            println!("  deleted pipeline {}", found.spec.name);
        }
        Ok(())
    }
}

/// The pipeline's declaration, as CreatePipeline and UpdatePipeline take it.
fn declaration(spec: &PipelineSpec, role_arn: &str, bucket: &str, project: &str) -> Value {
    json!({
        "name": spec.name,
        "pipelineType": spec.kind,
        "roleArn": role_arn,
        "artifactStore": { "type": "S3", "location": bucket },
        "stages": [
            {
                "name": SOURCE,
                "actions": [{
                    "name": SOURCE,
                    "actionTypeId": {
                        "category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"
                    },
                    "configuration": {
                        "ConnectionArn": spec.connection_arn,
                        "FullRepositoryId": spec.repository,
                        "BranchName": spec.branch,
                        "OutputArtifactFormat": "CODE_ZIP"
                    },
                    "outputArtifacts": [{ "name": SOURCE_OUTPUT }],
                    "runOrder": 1
                }]
            },
            {
                "name": "Deploy",
                "actions": [{
                    "name": "TestBuildDeploy",
                    "actionTypeId": { "category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1" },
                    "configuration": { "ProjectName": project },
                    "inputArtifacts": [{ "name": SOURCE_OUTPUT }],
                    "runOrder": 1
                }]
            }
        ],
        "triggers": [{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {
                "sourceActionName": SOURCE,
                "push": [{ "branches": { "includes": spec.trigger } }]
            }
        }]
    })
}

/// A declaration read back into a spec (what is missing reads as empty,
/// and plan shows it as a change).
fn read_declaration(name: &str, declaration: &Value) -> PipelineSpec {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let action = |provider: &str| {
        declaration["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|stage| stage["actions"].as_array().cloned().unwrap_or_default())
            .find(|action| action["actionTypeId"]["provider"] == provider)
            .unwrap_or_default()
    };
    let source = action("CodeStarSourceConnection");
    let build = action("CodeBuild");
    let trigger = declaration["triggers"][0]["gitConfiguration"]["push"][0]["branches"]["includes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    PipelineSpec {
        name: name.to_owned(),
        kind: declaration["pipelineType"].as_str().unwrap_or("V1").to_owned(),
        role: text(&declaration["roleArn"]).rsplit('/').next().unwrap_or_default().to_owned(),
        bucket: text(&declaration["artifactStore"]["location"]),
        connection_arn: text(&source["configuration"]["ConnectionArn"]),
        repository: text(&source["configuration"]["FullRepositoryId"]),
        branch: text(&source["configuration"]["BranchName"]),
        trigger,
        project: text(&build["configuration"]["ProjectName"]),
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
        let written = declaration(&spec, "arn:aws:iam::123456789012:role/shop-pipeline", &spec.bucket, "shop-deploy");
        assert_eq!(read_declaration("shop", &written), spec);
        assert_eq!(read_declaration("shop", &json!({})).kind, "V1");
    }
}

//! The CodeBuild project the pipeline runs: source and artifacts from
//! CodePipeline, the repository's `pipeline/buildspec.yml`, a Linux
//! container of the stack's compute type and image, not privileged (deploy
//! builds the images itself: no Docker daemon in the build), the build
//! role, logs to the app's build log group, and an S3 cache in the artifact
//! bucket (cargo's registry and the target directory, as the buildspec
//! lists them).

use std::collections::BTreeMap;

use stack_spec::{Stack, pipeline::Deploys};

use super::BUILDSPEC;
use crate::{
    clients::{codebuild::NewProject, error::unless_unused},
    engine::{
        names::Names,
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
    },
    kinds::role::Role,
};

/// The environment variable that tells `provision deploy` in the build
/// whether to apply the stack first (`deploy --apply`): `true` when the
/// table says `deploys = "stack"`, which the build role then allows.
pub const DEPLOYS_VARIABLE: &str = "PROVISION_DEPLOY_APPLY";

/// The build project.
pub struct BuildProject;

/// A build project as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSpec {
    pub name: String,
    /// The buildspec's path in the source.
    pub buildspec: String,
    pub image: String,
    pub compute_type: String,
    pub privileged: bool,
    /// What the build deploys (`images` or `stack`), handed to `provision
    /// deploy` as [`DEPLOYS_VARIABLE`].
    pub deploys: String,
    /// Its role, by name.
    pub role: String,
    pub timeout_minutes: u32,
    pub log_group: String,
    /// `BUCKET/PREFIX` of its S3 cache.
    pub cache: String,
}

impl Kind for BuildProject {
    const LABEL: &'static str = "build project";
    const KEY: &'static str = "build-project";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = ProjectSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<ProjectSpec> {
        let names = Names::of(stack);
        stack
            .pipeline
            .iter()
            .map(|pipeline| ProjectSpec {
                name: names.build_project(),
                buildspec: BUILDSPEC.to_owned(),
                image: pipeline.image.clone(),
                compute_type: pipeline.compute_type.clone(),
                // Privileged mode is root on the build host, which Docker in
                // Docker needs and our image builder does not.
                privileged: false,
                deploys: pipeline.deploys.as_str().to_owned(),
                role: names.build_role(),
                timeout_minutes: pipeline.timeout_minutes,
                log_group: names.build_log_group(),
                cache: format!("{}/cache", names.artifact_bucket(&live.account, &live.region)),
            })
            .collect()
    }

    fn name(spec: &ProjectSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &ProjectSpec) -> Fields {
        Fields::from([
            ("source", format!("CODEPIPELINE, buildspec {}", spec.buildspec)),
            (
                "environment",
                format!("{} on {}, privileged {}", spec.image, spec.compute_type, render::on_off(spec.privileged)),
            ),
            ("deploys", spec.deploys.clone()),
            ("role", spec.role.clone()),
            ("timeout", format!("{} min", spec.timeout_minutes)),
            ("logs", spec.log_group.clone()),
            ("cache", format!("S3 {}", spec.cache)),
        ])
    }

    /// The app's project, whether or not the stack has a pipeline now (one
    /// left over goes).
    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<ProjectSpec>>> {
        let name = cx.names.build_project();
        let answer = unless_unused(cx.clients.codebuild.project(&name).await, cx.stack.pipeline.is_some());
        let Some(project) = answer? else { return Ok(BTreeMap::new()) };
        let spec = ProjectSpec {
            name: name.clone(),
            buildspec: project.buildspec,
            image: project.image,
            compute_type: project.compute_type,
            privileged: project.privileged,
            deploys: match project.variables.iter().find(|(name, _)| name == DEPLOYS_VARIABLE) {
                Some((_, applies)) if applies == "true" => Deploys::Stack.as_str().to_owned(),
                Some(_) => Deploys::Images.as_str().to_owned(),
                None => "not set".to_owned(),
            },
            role: project.service_role.rsplit('/').next().unwrap_or_default().to_owned(),
            timeout_minutes: project.timeout_minutes.unwrap_or(60),
            log_group: project.log_group,
            cache: project.cache,
        };
        let owned = cx.names.owns(project.tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
        let arn = project.arn;
        // Not compared: CodeBuild retags a project only through
        // UpdateProject, which every change of the definition sends with the
        // stack's tags, and which the emulator the tests run has not.
        Ok(BTreeMap::from([(name, Found { id: arn.clone(), arn, owned, tags: None, spec })]))
    }

    /// Creates or updates the project with the whole definition; passes on
    /// its name.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &ProjectSpec,
        have: Option<&Found<ProjectSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        if have.is_some() && *action == Action::Unchanged {
            return Ok(Output::id(&spec.name));
        }
        let names = cx.cx.names;
        let role = cx.made.id::<Role>(&spec.role);
        let description = format!("tests, builds and deploys {} (made by provision)", names.app());
        let project = NewProject {
            name: &spec.name,
            description: &description,
            buildspec: &spec.buildspec,
            pipeline: &names.pipeline(),
            image: &spec.image,
            compute_type: &spec.compute_type,
            privileged: spec.privileged,
            variables: &[(DEPLOYS_VARIABLE.to_owned(), (spec.deploys == Deploys::Stack.as_str()).to_string())],
            service_role: &role,
            timeout_minutes: spec.timeout_minutes,
            cache: &spec.cache,
            log_group: &spec.log_group,
            tags: &names.tags(),
        };
        cx.cx.clients.codebuild.put_project(&project, have.is_some()).await?;
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(&spec.name))
    }

    fn teardown_line(found: &Found<ProjectSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("build project {}", found.spec.name))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<ProjectSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            cx.clients.codebuild.delete_project(&found.spec.name).await?;
            crate::engine::journal::done("deleted", "build project", &found.spec.name);
        }
        Ok(())
    }
}

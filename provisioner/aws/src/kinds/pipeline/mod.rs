//! The delivery pipeline (`[pipeline]`): an artifact bucket, a CodeBuild
//! project running `pipeline/buildspec.yml` (tests, one release build,
//! `provision deploy --apply`), a CodePipeline (V2) that hands it each push
//! to the branch through the stack's connection, and the two roles they
//! run as, each allowed what its calls need on this app's resources. All
//! of it goes when the table does.

pub mod bucket;
pub mod delivery;
#[cfg(test)]
mod escalation;
pub mod executions;
mod policy;
pub mod project;

use stack_spec::Stack;

use super::{boundary::policy_arn, role::RoleSpec};
use crate::engine::{names::Names, state::Live};

/// The buildspec the project runs, from the repository's root.
pub const BUILDSPEC: &str = "pipeline/buildspec.yml";
/// How long the bucket keeps an artifact (a commit's source, the cache).
pub const ARTIFACT_DAYS: u32 = 30;

/// The build's and the pipeline's roles, when the stack has a pipeline.
pub fn roles(stack: &Stack, live: &Live) -> Vec<RoleSpec> {
    let Some(pipeline) = &stack.pipeline else { return Vec::new() };
    let names = Names::of(stack);
    let bucket = names.artifact_bucket(&live.account, &live.region);
    let boundary = policy_arn(&live.account, &names.delivery_boundary());
    vec![
        RoleSpec {
            policy: Some(policy::build(stack, live, &bucket)),
            ..RoleSpec::new(names.build_role(), "codebuild.amazonaws.com", &live.account, boundary.clone())
        },
        RoleSpec {
            policy: Some(policy::pipeline(&names, live, &bucket, &pipeline.connection_arn)),
            ..RoleSpec::new(names.pipeline_role(), "codepipeline.amazonaws.com", &live.account, boundary)
        },
    ]
}

//! The stack's delivery pipeline (`[pipeline]`): on a push to a branch of
//! the repository, a CodePipeline (V2) hands the commit to a CodeBuild
//! project that runs `pipeline/buildspec.yml` (the tests, one release
//! build, `provision deploy`, with `--apply` when `deploys = "stack"`). The repository is reached through a
//! CodeConnections connection the user creates and approves once.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError};

/// CodeBuild's compute types for Linux containers, smallest first.
pub const COMPUTE_TYPES: [&str; 5] = [
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
];
/// 4 vCPUs and 7 GB: the build is a Rust workspace whose link steps want
/// the memory, and twice the cores of SMALL halve the compile.
pub const DEFAULT_COMPUTE_TYPE: &str = "BUILD_GENERAL1_MEDIUM";
/// CodeBuild's Ubuntu standard image (22.04): the buildspec's first step is
/// `.ci/run`, which installs its tools with apt-get from Ubuntu's (Debian's)
/// packages. Amazon Linux's images have dnf, and the build would stop there.
/// No Docker is needed: deploy builds the images itself.
pub const DEFAULT_IMAGE: &str = "aws/codebuild/standard:7.0";
/// What the build may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploys {
    /// New images of the stack's services (task definitions, services,
    /// their scaling, repositories): what a commit changes. The build role
    /// may not touch the rest of the infrastructure.
    Images,
    /// The whole stack (`provision deploy --apply`): the build role may also
    /// create and change the app's infrastructure (not its roles' trust).
    Stack,
}

impl Deploys {
    /// As the stack file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Images => "images",
            Self::Stack => "stack",
        }
    }
}

/// CodeBuild's own bounds of a build's timeout.
const TIMEOUT_MINUTES: Range<i64> = 5..2161;

/// The delivery pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// `owner/repo`.
    pub repository: String,
    /// The branch whose pushes are delivered.
    pub branch: String,
    /// The CodeConnections (or older CodeStar Connections) connection to
    /// the repository's host.
    pub connection_arn: String,
    /// CodeBuild's compute type.
    pub compute_type: String,
    /// CodeBuild's image.
    pub image: String,
    /// How long a build may take.
    pub timeout_minutes: u32,
    /// What the build may change: images only by default, so a commit that
    /// is compromised (or one dependency's `build.rs`) cannot rewrite the
    /// infrastructure with the build's role.
    pub deploys: Deploys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    repository: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    connection_arn: Option<Spanned<String>>,
    compute_type: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    timeout_minutes: Option<Spanned<i64>>,
    deploys: Option<Spanned<String>>,
}

/// The `[pipeline]` table; `raw`'s span locates what concerns it whole.
pub(super) fn parse(raw: &Spanned<RawPipeline>, error: &Locate<'_>) -> Result<Pipeline, SpecError> {
    let at = |span: Range<usize>, message: String| error(Some(span), format!("pipeline.{message}"));
    let table = raw.get_ref();
    let repository = match &table.repository {
        None => return Err(at(raw.span(), "repository is missing: the repository to deliver, as owner/repo".into())),
        Some(repository) if is_repository(repository.get_ref()) => repository.get_ref().clone(),
        Some(repository) => {
            return Err(at(
                repository.span(),
                format!("repository {:?} is not owner/repo (e.g. \"my-org/game-backend\")", repository.get_ref()),
            ));
        }
    };
    let branch = match &table.branch {
        None => "main".to_owned(),
        Some(branch) if is_branch(branch.get_ref()) => branch.get_ref().clone(),
        Some(branch) => return Err(at(branch.span(), format!("branch {:?} is not a branch name", branch.get_ref()))),
    };
    let connection_arn = match &table.connection_arn {
        None => {
            return Err(at(
                raw.span(),
                "connection_arn is missing: create a connection to the repository's host once (console: Developer \
                 Tools > Settings > Connections, or `aws codeconnections create-connection --provider-type GitHub \
                 --connection-name NAME`), approve it, and put its ARN here"
                    .into(),
            ));
        }
        Some(arn) if is_connection_arn(arn.get_ref()) => arn.get_ref().clone(),
        Some(arn) => {
            return Err(at(
                arn.span(),
                format!(
                    "connection_arn {:?} is not a connection ARN \
                     (arn:aws:codeconnections:REGION:ACCOUNT:connection/ID, or codestar-connections): copy it from \
                     the console or `aws codeconnections list-connections`",
                    arn.get_ref()
                ),
            ));
        }
    };
    let compute_type = match &table.compute_type {
        None => DEFAULT_COMPUTE_TYPE.to_owned(),
        Some(kind) if COMPUTE_TYPES.contains(&kind.get_ref().as_str()) => kind.get_ref().clone(),
        Some(kind) => {
            return Err(at(
                kind.span(),
                format!("compute_type {:?} is not one of {}", kind.get_ref(), COMPUTE_TYPES.join(", ")),
            ));
        }
    };
    let image = match &table.image {
        None => DEFAULT_IMAGE.to_owned(),
        Some(image) if !image.get_ref().trim().is_empty() => image.get_ref().clone(),
        Some(image) => return Err(at(image.span(), "image is empty".into())),
    };
    let timeout_minutes = match &table.timeout_minutes {
        None => 60,
        Some(minutes) if TIMEOUT_MINUTES.contains(minutes.get_ref()) => u32::try_from(*minutes.get_ref()).unwrap_or(60),
        Some(minutes) => {
            return Err(at(minutes.span(), format!("timeout_minutes {} is outside 5..=2160", minutes.get_ref())));
        }
    };
    let deploys = match table.deploys.as_ref().map(|deploys| (deploys, deploys.get_ref().as_str())) {
        None | Some((_, "images")) => Deploys::Images,
        Some((_, "stack")) => Deploys::Stack,
        Some((deploys, other)) => {
            return Err(at(
                deploys.span(),
                format!(
                    "deploys {other:?} is not \"images\" (new images of the services, the default) or \"stack\" (the \
                     whole stack, infrastructure included)"
                ),
            ));
        }
    };
    Ok(Pipeline { repository, branch, connection_arn, compute_type, image, timeout_minutes, deploys })
}

fn is_repository(text: &str) -> bool {
    let part = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(text.split('/').collect::<Vec<_>>().as_slice(), [owner, repo] if part(owner) && part(repo))
}

fn is_branch(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['/', '-'])
        && !text.ends_with(['/', '.'])
        && !text.contains("..")
        && text.chars().all(|c| !c.is_whitespace() && !matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
}

/// Whether `arn` is a connection of CodeConnections or of the older
/// CodeStar Connections (both are still issued and used).
pub fn is_connection_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, service, region, account, resource]
        if partition.starts_with("aws")
            && matches!(*service, "codeconnections" | "codestar-connections")
            && !region.is_empty()
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource
                .strip_prefix("connection/")
                .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_branches_and_connections_are_recognised() {
        assert!(is_repository("my-org/game_backend.rs") && !is_repository("game-backend") && !is_repository("a/b/c"));
        assert!(is_branch("main") && is_branch("release/1.2") && !is_branch("a..b") && !is_branch("bad name"));
        assert!(is_connection_arn("arn:aws:codeconnections:us-east-1:123456789012:connection/abc-123"));
        assert!(is_connection_arn("arn:aws:codestar-connections:eu-west-1:123456789012:connection/abc"));
        assert!(!is_connection_arn("arn:aws:codeconnections:us-east-1:123456789012:connection/..."));
        assert!(!is_connection_arn("arn:aws:codeconnections:us-east-1:123456789012:host/abc"));
        assert!(!is_connection_arn("arn:aws:s3:::bucket"));
    }
}

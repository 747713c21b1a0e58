//! Turns SDK errors into one line that names the call, the resource and
//! what to do, instead of the SDK's debug dump.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::{metadata::ProvideErrorMetadata, operation::BuildError};

/// A failed AWS call, explained.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    /// The error code AWS returned (`AccessDenied`, `ThrottlingException`...).
    pub code: Option<String>,
    /// The explanation shown to the user.
    pub message: String,
}

impl AwsError {
    /// Whether AWS said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code.as_deref().is_some_and(|code| {
            code.contains("NotFound")
                || code.contains("NoSuch")
                || code.ends_with(".NotFound")
                || code == "ResourceNotFoundException"
        })
    }

    /// Whether AWS throttled the call (after the client's own retries).
    pub fn is_throttled(&self) -> bool {
        self.code.as_deref().is_some_and(is_throttling)
    }

    /// A request the SDK's builders refused before sending it (a required
    /// member left empty), said as the call's error: one per service would
    /// otherwise spell it.
    pub fn unsent(action: &str, resource: &str) -> impl Fn(BuildError) -> Self + use<> {
        let context = format!("{action} on {resource}");
        move |error| Self { code: None, message: format!("{context}: {error}") }
    }

    /// Whether AWS refused the call for want of permission.
    pub fn is_access_denied(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| code.contains("AccessDenied") || code == "UnauthorizedOperation" || code == "403")
    }
}

/// `answer`, with AWS saying the resource does not exist as `None`: for a
/// read that looks a resource up, and a delete that finds it gone already
/// (a rerun after an interrupted apply or destroy). One rule for every
/// service, whose codes differ (see [`AwsError::is_not_found`]).
pub fn unless_gone<T>(answer: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// The answer of a read that looks for a resource the stack may no longer
/// ask for (to delete it): when the stack does not use that kind, a caller
/// without permission for its service has none of it, and the read says
/// so instead of failing the plan.
pub fn unless_unused<T: Default>(answer: Result<T, AwsError>, used: bool) -> Result<T, AwsError> {
    match answer {
        Err(error) if !used && error.is_access_denied() => Ok(T::default()),
        answer => answer,
    }
}

/// `action` is the API call (`ecs:CreateService`), `resource` what it was
/// about (`ECS service game-server`).
pub fn explain<E, R>(error: SdkError<E, R>, action: &str, resource: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::Error::new(classify(error, action, resource))
}

/// Like [`explain`], keeping the code so callers can branch on it.
pub fn classify<E, R>(error: SdkError<E, R>, action: &str, resource: &str) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let context = causes(&error);
    let failure = match &error {
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_) if is_missing_credentials(&context) => {
            Failure::Credentials(context)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Failure::Transport(context),
        _ => Failure::Service {
            status: status_of(error.raw_response()),
            code: error.code().map(str::to_owned),
            message: error.message().map_or(context, str::to_owned),
        },
    };
    describe(failure, action, resource)
}

/// The HTTP status of a raw response, when it is one (0 otherwise): what a
/// message says when AWS's body could not be read.
fn status_of<R: std::fmt::Debug + 'static>(raw: Option<&R>) -> u16 {
    let Some(raw) = raw else { return 0 };
    let any: &dyn std::any::Any = raw as &dyn std::any::Any;
    any.downcast_ref::<aws_smithy_runtime_api::http::Response>().map_or(0, |response| response.status().as_u16())
}

/// Whether the SDK's error is its credentials chain finding nothing, which
/// it reports as a failure to send (and which is no network problem).
fn is_missing_credentials(context: &str) -> bool {
    [
        "no credentials found",
        "no providers in chain provided credentials",
        "the credential provider was not enabled",
        "an error occurred while loading credentials",
        "the credentials provider was not properly configured",
        "credentials provider timed out",
    ]
    .iter()
    .any(|phrase| context.contains(phrase))
}

/// Where the SDK's default chain looks for credentials, in its order, each
/// with what this process has there: so that "no credentials" says which
/// one was meant to have them.
pub fn credential_sources() -> String {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let said = |name: &str| if set(name) { format!("{name} set") } else { format!("{name} not set") };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let file = |variable: &str, default: &str| {
        let path = std::env::var_os(variable).map_or_else(|| home.join(".aws").join(default), std::path::PathBuf::from);
        let exists = if path.exists() { "exists" } else { "missing" };
        format!("{} ({exists})", path.display())
    };
    format!(
        "1. the environment: {} and {}; 2. profile `{profile}` in {} and {}; 3. web identity: {}; 4. ECS \
         container credentials: {}; 5. the EC2 instance metadata service (none answered)",
        said("AWS_ACCESS_KEY_ID"),
        said("AWS_SECRET_ACCESS_KEY"),
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        file("AWS_CONFIG_FILE", "config"),
        said("AWS_WEB_IDENTITY_TOKEN_FILE"),
        said("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
    )
}

/// Why a call failed, before it is put into words: what [`describe`] needs
/// from the SDK's errors and from this crate's own EC2 client alike.
#[derive(Debug)]
pub enum Failure {
    /// No credentials could be found.
    Credentials(String),
    /// The endpoint could not be reached, or did not answer in time.
    Transport(String),
    /// AWS answered with an error.
    Service {
        /// The HTTP status (0 when not known).
        status: u16,
        /// The error code, e.g. `InvalidGroup.NotFound`.
        code: Option<String>,
        /// AWS's message.
        message: String,
    },
}

fn is_throttling(code: &str) -> bool {
    code.contains("Throttl") || code == "RequestLimitExceeded" || code == "TooManyRequests"
}

/// The one line for a failed `action` on `resource`: what went wrong and
/// what to do.
pub fn describe(failure: Failure, action: &str, resource: &str) -> AwsError {
    let (code, detail) = match failure {
        Failure::Credentials(context) => {
            return AwsError {
                code: None,
                message: format!(
                    "{action} on {resource}: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, or run where a role is available (CodeBuild, ECS, EC2). Looked in: {} \
                     ({context})",
                    credential_sources()
                ),
            };
        }
        Failure::Transport(context) => {
            return AwsError {
                code: None,
                message: format!(
                    "{action} on {resource}: cannot reach the AWS endpoint (network, region or --endpoint-url?): \
                     {context}"
                ),
            };
        }
        Failure::Service { status, code, message } => {
            // No code: AWS's body was not an error document it could read
            // (an empty 500, a proxy's page); its status says the most.
            let message = if code.is_none() && status != 0 { format!("HTTP {status}: {message}") } else { message };
            (code, message)
        }
    };
    let message = match code.as_deref() {
        Some(
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "AuthFailure"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException",
        ) => format!(
            "{action} on {resource}: AWS rejected the credentials ({}): refresh them or check the profile and \
             region: {detail}",
            code.as_deref().unwrap_or_default()
        ),
        Some(code) if code.contains("AccessDenied") || code == "UnauthorizedOperation" => format!(
            "{action} on {resource}: access denied: the caller needs permission for {action} (see the README's \
             AWS permissions): {detail}"
        ),
        Some(code) if is_throttling(code) => {
            format!("{action} on {resource}: still throttled after retries with backoff; try again later: {detail}")
        }
        Some(code) => format!("{action} on {resource}: {code}: {detail}"),
        None => format!("{action} on {resource}: {detail}"),
    };
    AwsError { code, message }
}

pub use service_runtime::causes;

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::operation::describe_clusters::DescribeClustersError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::{body::SdkBody, error::ErrorMetadata};

    use super::*;

    fn service_error(code: &str, message: &str) -> SdkError<DescribeClustersError, Response> {
        let error = DescribeClustersError::generic(ErrorMetadata::builder().code(code).message(message).build());
        SdkError::service_error(error, Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()))
    }

    #[test]
    fn access_denied_names_the_call_and_the_resource() {
        let error =
            classify(service_error("AccessDeniedException", "not allowed"), "ecs:DescribeClusters", "cluster shop");
        assert_eq!(
            error.message,
            "ecs:DescribeClusters on cluster shop: access denied: the caller needs permission for \
             ecs:DescribeClusters (see the README's AWS permissions): not allowed"
        );
    }

    #[test]
    fn throttling_after_retries_says_to_try_later() {
        let error =
            classify(service_error("ThrottlingException", "Rate exceeded"), "ecs:DescribeClusters", "cluster shop");
        assert!(error.message.contains("still throttled after retries with backoff"), "{}", error.message);
    }

    #[test]
    fn an_unreadable_error_body_is_shown_with_its_http_status() {
        let error = DescribeClustersError::unhandled("error parsing XML: no root element");
        let answer =
            SdkError::service_error(error, Response::new(StatusCode::try_from(500).unwrap(), SdkBody::empty()));
        let error = classify(answer, "elasticache:DeleteCacheSubnetGroup", "cache subnet group shop");
        assert!(error.message.contains("HTTP 500: "), "{}", error.message);
    }

    #[test]
    fn missing_credentials_say_where_they_were_looked_for() {
        let error = describe(
            Failure::Credentials("no providers in chain provided credentials".into()),
            "sts:GetCallerIdentity",
            "the caller's identity",
        );
        for place in
            ["AWS_ACCESS_KEY_ID", "profile `", ".aws/credentials", "web identity", "ECS container", "EC2 instance"]
        {
            assert!(error.message.contains(place), "{place}: {}", error.message);
        }
        assert!(is_missing_credentials("dispatch failure: the credential provider was not enabled"));
        assert!(!is_missing_credentials("dispatch failure: connection refused"));
    }

    #[test]
    fn rejected_credentials_say_so() {
        let error = classify(service_error("UnrecognizedClientException", "bad token"), "sts:GetCallerIdentity", "x");
        assert!(error.message.contains("AWS rejected the credentials"), "{}", error.message);
    }

    #[test]
    fn a_kind_the_stack_does_not_use_reads_as_none_when_access_is_denied() {
        let denied = || Err::<Option<u8>, _>(AwsError { code: Some("AccessDenied".into()), message: String::new() });
        assert_eq!(unless_unused(denied(), false).unwrap(), None);
        assert!(unless_unused(denied(), true).is_err(), "a kind the stack uses must be readable");
        let throttled = Err::<Option<u8>, _>(AwsError { code: Some("Throttling".into()), message: String::new() });
        assert!(unless_unused(throttled, false).is_err());
    }

    #[test]
    fn not_found_codes_are_recognised() {
        for code in
            ["ResourceNotFoundException", "NoSuchEntity", "InvalidVpcID.NotFound", "RepositoryNotFoundException"]
        {
            assert!(classify(service_error(code, ""), "a", "b").is_not_found(), "{code}");
        }
        assert!(!classify(service_error("AccessDenied", ""), "a", "b").is_not_found());
    }
}

//! `--verbose`: a line on stderr for every AWS call that failed and is
//! tried again, from the hand-written clients and the SDK's alike, so that
//! a slow apply shows AWS throttling it; nothing without the flag.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef},
        },
        orchestrator::Metadata,
        retries::RequestAttempts,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use super::error::Failure;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns the retry lines on (for the whole process: one command runs).
pub fn enable() {
    VERBOSE.store(true, Ordering::Relaxed);
}

/// Whether `--verbose` was given: the plan then lists unchanged resources
/// too.
pub fn enabled() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// The line of a hand-written client's retry of `action` on `resource`
/// after `failure`; `attempt` is the attempt about to be made.
pub fn retrying(attempt: u32, action: &str, resource: &str, failure: &Failure) {
    if enabled() {
        let answer = match failure {
            Failure::Credentials(context) | Failure::Transport(context) => context.clone(),
            Failure::Service { status, code, message } => {
                format!("HTTP {status}: {}: {message}", code.as_deref().unwrap_or("no code"))
            }
        };
        eprintln!("  retry {attempt}: {action} on {resource} failed: {answer}");
    }
}

/// The SDK clients' side: the failure of each attempt is kept, and said
/// when the SDK's retry strategy starts the next attempt (a failure it
/// does not retry is the command's error, not a retry line).
#[derive(Debug, Clone, Copy)]
pub struct RetryNotes;

/// The last failed attempt's call and answer, in the operation's bag.
#[derive(Debug, Clone)]
struct LastFailure(String);

impl Storable for LastFailure {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RetryNotes {
    fn name(&self) -> &'static str {
        "RetryNotes"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !enabled() {
            return Ok(());
        }
        if let Some(Err(error)) = context.output_or_error() {
            let call = cfg.load::<Metadata>().map_or_else(String::new, |m| format!("{}:{}", m.service(), m.name()));
            let status = context.response().map(|response| format!("HTTP {}: ", response.status().as_u16()));
            let answer = match error.as_operation_error() {
                Some(error) => error.to_string(),
                None => super::error::causes(error),
            };
            let line = format!("{call} failed: {}{answer}", status.unwrap_or_default());
            cfg.interceptor_state().store_put(LastFailure(line));
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |attempts| attempts.attempts());
        if enabled()
            && attempt > 1
            && let Some(LastFailure(line)) = cfg.load::<LastFailure>()
        {
            eprintln!("  retry {attempt}: {line}");
        }
        Ok(())
    }
}

/// An SDK client from the shared configuration, with [`RetryNotes`].
macro_rules! sdk_client {
    ($krate:ident, $config:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($config).interceptor($crate::clients::verbose::RetryNotes).build(),
        )
    };
}
pub(crate) use sdk_client;

//! Log set-up: human lines on a terminal, JSON lines for CloudWatch.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

use crate::cli::LogFormat;

/// The filter used when neither `--log-level` nor `RUST_LOG` says otherwise:
/// info for everything, so one request never makes an info line.
const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber, writing to stderr. `filter` wins over
/// `RUST_LOG`; a bad filter falls back to the default and says so, because a
/// typo in a log setting must not stop a service from starting.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let (filter, rejected) = match filter.map(str::to_owned).or_else(|| std::env::var("RUST_LOG").ok()) {
        Some(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(DEFAULT_FILTER), Some((spec, error))),
        },
        None => (EnvFilter::new(DEFAULT_FILTER), None),
    };

    // Colours only for a person at a terminal, never in files or CloudWatch.
    let ansi = std::io::stderr().is_terminal();
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // try_init: a test harness may have installed a subscriber already.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };

    if let Some((spec, error)) = rejected {
        tracing::warn!(filter = %spec, %error, "ignoring invalid log filter; logging at {DEFAULT_FILTER}");
    }
}

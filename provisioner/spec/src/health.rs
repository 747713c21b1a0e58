//! A service's health check (`[service.health_check]`): the command the
//! local runner and ECS run, and its timing, as ECS defines them.

use std::{collections::BTreeMap, ops::Range, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError};

/// A container health check, as ECS defines one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The command; its first word may name a workspace binary.
    pub command: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive failures that make a replica unhealthy.
    pub retries: u32,
    /// Grace after start during which failures do not count.
    pub start_period: Duration,
    /// The line of each field the stack file gives (`interval_secs`...):
    /// where a check made later (AWS's limits) points.
    pub lines: BTreeMap<&'static str, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    command: Option<Vec<String>>,
    interval_secs: Option<Spanned<f64>>,
    timeout_secs: Option<Spanned<f64>>,
    retries: Option<Spanned<i64>>,
    start_period_secs: Option<Spanned<f64>>,
}

/// The health check of service `name` (run as `binary`), defaults filled
/// in; `service_span` locates problems that concern the whole table.
pub(super) fn parse(
    health: Option<&RawHealthCheck>,
    binary: &str,
    name: &str,
    service_span: Range<usize>,
    error: &Locate<'_>,
) -> Result<HealthCheck, SpecError> {
    let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
    let seconds = |value: Option<&Spanned<f64>>, field: &str, default: f64, min: f64| -> Result<Duration, SpecError> {
        match value {
            None => Ok(Duration::from_secs_f64(default)),
            Some(value) if *value.get_ref() >= min && value.get_ref().is_finite() => {
                Ok(Duration::from_secs_f64(*value.get_ref()))
            }
            Some(value) => {
                Err(at(value.span(), format!("health_check.{field} {} must be at least {min}", value.get_ref())))
            }
        }
    };
    let health_check = HealthCheck {
        command: health
            .and_then(|health| health.command.clone())
            .unwrap_or_else(|| vec![binary.to_owned(), "health".to_owned()]),
        interval: seconds(health.and_then(|h| h.interval_secs.as_ref()), "interval_secs", 5.0, 0.1)?,
        timeout: seconds(health.and_then(|h| h.timeout_secs.as_ref()), "timeout_secs", 2.0, 0.1)?,
        retries: match health.and_then(|h| h.retries.as_ref()) {
            None => 3,
            Some(retries) => match u32::try_from(*retries.get_ref()) {
                Ok(retries) if (1..=10).contains(&retries) => retries,
                _ => {
                    return Err(at(
                        retries.span(),
                        format!("health_check.retries {} is outside 1..=10", retries.get_ref()),
                    ));
                }
            },
        },
        start_period: seconds(health.and_then(|h| h.start_period_secs.as_ref()), "start_period_secs", 10.0, 0.0)?,
        lines: health.map_or_else(BTreeMap::new, |health| {
            [
                ("interval_secs", &health.interval_secs),
                ("timeout_secs", &health.timeout_secs),
                ("start_period_secs", &health.start_period_secs),
            ]
            .into_iter()
            .filter_map(|(field, value)| Some((field, error(Some(value.as_ref()?.span()), String::new()).line)))
            .collect()
        }),
    };
    if health_check.command.is_empty() {
        return Err(error(Some(service_span.clone()), format!("service {name:?}: health_check.command is empty")));
    }
    if health_check.timeout > health_check.interval {
        let timeout = health.and_then(|health| health.timeout_secs.as_ref()).map(Spanned::span);
        return Err(error(
            Some(timeout.unwrap_or(service_span.clone())),
            format!("service {name:?}: health_check.timeout_secs must not exceed interval_secs"),
        ));
    }
    Ok(health_check)
}

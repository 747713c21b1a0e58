//! A service's autoscaling (`[service.autoscaling]`): the bounds and the
//! target-tracking rule shared by the local run and Application Auto
//! Scaling on AWS. With it, `count` is only where the service starts.

use std::{ops::Range, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError};

/// AWS Copilot's defaults, which follow Application Auto Scaling's advice:
/// add capacity quickly, remove it slowly.
const DEFAULT_SCALE_OUT_COOLDOWN_SECS: u64 = 60;
const DEFAULT_SCALE_IN_COOLDOWN_SECS: u64 = 120;
/// The most tasks a service may be scaled to here (as `count`).
const MAX_TASKS: i64 = 250;

/// Target tracking between `min` and `max` replicas on the service's average
/// CPU and/or memory utilization, measured against its Fargate reservation.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    /// Never fewer replicas than this.
    pub min: u32,
    /// Never more replicas than this.
    pub max: u32,
    /// The average CPU utilization to hold, in percent of `aws.cpu`.
    pub cpu_percent: Option<f64>,
    /// The average memory utilization to hold, in percent of `aws.memory`.
    pub memory_percent: Option<f64>,
    /// After a scale-out, how long before the next one counts from the new
    /// capacity (and before any scale-in).
    pub scale_out_cooldown: Duration,
    /// After a scale-in, how long before the next scale-in.
    pub scale_in_cooldown: Duration,
}

impl Eq for Autoscaling {}

impl Autoscaling {
    /// The targets that are set, by metric name, for logs and plans.
    pub fn targets(&self) -> Vec<(Metric, f64)> {
        [(Metric::Cpu, self.cpu_percent), (Metric::Memory, self.memory_percent)]
            .into_iter()
            .filter_map(|(metric, target)| target.map(|target| (metric, target)))
            .collect()
    }
}

/// What a target tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// CPU time over the reserved CPU.
    Cpu,
    /// Resident memory over the reserved memory.
    Memory,
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoscaling {
    min: Spanned<i64>,
    max: Spanned<i64>,
    cpu_percent: Option<Spanned<f64>>,
    memory_percent: Option<Spanned<f64>>,
    scale_out_cooldown_secs: Option<Spanned<i64>>,
    scale_in_cooldown_secs: Option<Spanned<i64>>,
}

/// The autoscaling of service `name`, whose `count` (at `count_span`, or
/// the default 1 when absent) must lie within its bounds.
pub(super) fn parse(
    raw: &Spanned<RawAutoscaling>,
    name: &str,
    count: u32,
    count_span: Option<Range<usize>>,
    error: &Locate<'_>,
) -> Result<Autoscaling, SpecError> {
    let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
    let table = raw.get_ref();
    let bound = |value: &Spanned<i64>, field: &str, low: i64| {
        u32::try_from(*value.get_ref()).ok().filter(|bound| (low..=MAX_TASKS).contains(&i64::from(*bound))).ok_or_else(
            || at(value.span(), format!("autoscaling.{field} {} is outside {low}..={MAX_TASKS}", value.get_ref())),
        )
    };
    let min = bound(&table.min, "min", 0)?;
    let max = bound(&table.max, "max", 1)?;
    if min > max {
        return Err(at(table.max.span(), format!("autoscaling.max {max} is below autoscaling.min {min}")));
    }
    if !(min..=max).contains(&count) {
        let default = if count_span.is_none() { " (the default)" } else { "" };
        return Err(at(
            count_span.unwrap_or_else(|| raw.span()),
            format!(
                "count {count}{default} is outside autoscaling.min..=max ({min}..={max}): count is where the service \
                 starts"
            ),
        ));
    }
    let target = |value: &Option<Spanned<f64>>, field: &str| match value {
        None => Ok(None),
        Some(value) if value.get_ref().is_finite() && (1.0..=100.0).contains(value.get_ref()) => {
            Ok(Some(*value.get_ref()))
        }
        Some(value) => Err(at(value.span(), format!("autoscaling.{field} {} is outside 1..=100", value.get_ref()))),
    };
    let cpu_percent = target(&table.cpu_percent, "cpu_percent")?;
    let memory_percent = target(&table.memory_percent, "memory_percent")?;
    if cpu_percent.is_none() && memory_percent.is_none() {
        return Err(at(
            raw.span(),
            "autoscaling needs a target to track: cpu_percent and/or memory_percent (e.g. cpu_percent = 50)".into(),
        ));
    }
    let cooldown = |value: &Option<Spanned<i64>>, field: &str, default: u64| match value {
        None => Ok(Duration::from_secs(default)),
        Some(value) => u64::try_from(*value.get_ref())
            .ok()
            .filter(|secs| *secs <= 3600)
            .map(Duration::from_secs)
            .ok_or_else(|| at(value.span(), format!("autoscaling.{field} {} is outside 0..=3600", value.get_ref()))),
    };
    Ok(Autoscaling {
        min,
        max,
        cpu_percent,
        memory_percent,
        scale_out_cooldown: cooldown(
            &table.scale_out_cooldown_secs,
            "scale_out_cooldown_secs",
            DEFAULT_SCALE_OUT_COOLDOWN_SECS,
        )?,
        scale_in_cooldown: cooldown(
            &table.scale_in_cooldown_secs,
            "scale_in_cooldown_secs",
            DEFAULT_SCALE_IN_COOLDOWN_SECS,
        )?,
    })
}

//! What a run measured: every call's latency, status and endpoint, summed
//! per endpoint, per second and per failure message.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

/// One finished call.
pub(super) struct Record {
    pub(super) started: Duration,
    pub(super) latency: Duration,
    pub(super) code: tonic::Code,
    /// The status message of a failed call.
    pub(super) message: Option<String>,
    pub(super) endpoint: Option<String>,
}

/// Everything measured in one run.
#[derive(Default)]
pub(super) struct Measured {
    pub(super) elapsed: Duration,
    pub(super) latencies: Vec<Duration>,
    pub(super) codes: BTreeMap<String, u64>,
    pub(super) endpoints: BTreeMap<String, (u64, u64)>,
    pub(super) first_seen: BTreeMap<String, Duration>,
    pub(super) last_seen: BTreeMap<String, Duration>,
    /// The endpoints that answered OK in each second of the run.
    pub(super) answering: BTreeMap<u64, BTreeSet<String>>,
    pub(super) failures: Vec<Duration>,
    /// Failed calls by `CODE: message`, the first distinct ones only.
    pub(super) error_messages: BTreeMap<String, u64>,
    pub(super) interrupted: bool,
}

/// How many distinct failure messages a report keeps.
pub(super) const ERROR_MESSAGES_KEPT: usize = 10;

impl Measured {
    pub(super) fn calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub(super) fn rate(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// How many endpoints answered in each second, as runs of equal counts:
    /// (first second, last second, endpoints).
    pub(super) fn answering_over_time(&self) -> Vec<(u64, u64, usize)> {
        let mut runs: Vec<(u64, u64, usize)> = Vec::new();
        for (second, endpoints) in &self.answering {
            match runs.last_mut() {
                Some((_, last, count)) if *count == endpoints.len() && *last + 1 == *second => *last = *second,
                _ => runs.push((*second, *second, endpoints.len())),
            }
        }
        runs
    }

    pub(super) fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[((self.latencies.len() as f64 * fraction) as usize).min(self.latencies.len() - 1)]
    }
}

/// A status code as gRPC names it (`NOT_FOUND`).
pub(super) fn code_name(code: tonic::Code) -> String {
    match code {
        tonic::Code::Ok => "OK".into(),
        other => format!("{other:?}").chars().fold(String::new(), |mut name, c| {
            if c.is_uppercase() && !name.is_empty() {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
            name
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }
}

//! `--chaos kill:SERVICE@SECS`: a fault injected into a running `provision
//! local` during a run, and what the run saw around it.

use std::{str::FromStr, time::Duration};

use super::measured::Measured;

/// A fault to inject during the run.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// `kill` or `restart`.
    pub action: String,
    /// The stack service.
    pub service: String,
    /// When, from the start of the run.
    pub at: Duration,
}

impl FromStr for Chaos {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("--chaos {text:?}: expected kill:SERVICE@SECS or restart:SERVICE@SECS");
        let (action, rest) = text.split_once(':').ok_or_else(usage)?;
        let (service, at) = rest.split_once('@').ok_or_else(usage)?;
        if !matches!(action, "kill" | "restart") || service.is_empty() {
            return Err(usage());
        }
        let at: f64 = at.parse().map_err(|_| usage())?;
        if !(0.0..86_400.0).contains(&at) {
            return Err(usage());
        }
        Ok(Self { action: action.to_owned(), service: service.to_owned(), at: Duration::from_secs_f64(at) })
    }
}

/// Calls that failed before and after the fault, and when a replica not
/// seen before the fault first answered.
pub(super) fn report(measured: &Measured, at: Duration) -> (u64, u64, Option<Duration>) {
    let before = measured.failures.iter().filter(|failed| **failed < at).count() as u64;
    let after = measured.failures.len() as u64 - before;
    let newcomer = measured
        .first_seen
        .iter()
        .filter(|(name, first)| !name.starts_with('(') && **first >= at)
        .map(|(_, first)| *first - at)
        .min();
    (before, after, newcomer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_specs_parse_or_say_what_is_expected() {
        let chaos: Chaos = "kill:game-server@2.5".parse().unwrap();
        assert_eq!(
            (chaos.action.as_str(), chaos.service.as_str(), chaos.at),
            ("kill", "game-server", Duration::from_millis(2500))
        );
        assert!("restart:ranking@0".parse::<Chaos>().is_ok());
        for bad in ["kill", "kill:svc", "boom:svc@1", "kill:@1", "kill:svc@soon"] {
            assert!(bad.parse::<Chaos>().unwrap_err().contains("expected kill:SERVICE@SECS"), "{bad}");
        }
    }
}

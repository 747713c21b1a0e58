//! `provision bench --rate`: calls per second for an open loop, constant
//! (`2000`) or in phases (`2000:40,50:60`: 2000/s for 40 s, then 50/s for
//! 60 s), so that one run can load a service and then watch it settle, as
//! an autoscaling demo needs.

use std::{fmt, str::FromStr, time::Duration};

/// Phases of a constant rate; the last may have no length (it lasts until
/// `--duration` or `--requests` ends the run).
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    phases: Vec<(f64, Option<Duration>)>,
}

impl RateSchedule {
    /// The whole length, if every phase has one.
    pub fn length(&self) -> Option<Duration> {
        self.phases.iter().map(|(_, length)| *length).sum()
    }

    /// When each call should start, from the start of the run: one after
    /// another at the rate of the phase they fall in, ending after the
    /// last phase with a length.
    pub fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        let mut offset = 0.0_f64;
        std::iter::from_fn(move || {
            let mut phase_start = 0.0;
            for (rate, length) in &self.phases {
                let end = length.map(|length| phase_start + length.as_secs_f64());
                if end.is_none_or(|end| offset < end) {
                    let at = offset;
                    offset += 1.0 / rate;
                    return Some(Duration::from_secs_f64(at));
                }
                phase_start = end.unwrap_or(phase_start);
            }
            None
        })
    }
}

impl FromStr for RateSchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "--rate {text:?}: expected calls per second (2000) or phases of RATE:SECS (2000:40,50:60), \
                 rates above 0"
            )
        };
        let mut phases = Vec::new();
        let parts: Vec<&str> = text.split(',').collect();
        for (index, part) in parts.iter().enumerate() {
            let (rate, length) = match part.split_once(':') {
                Some((rate, secs)) => {
                    let secs: f64 = secs.trim().parse().map_err(|_| usage())?;
                    if !(secs > 0.0 && secs.is_finite()) {
                        return Err(usage());
                    }
                    (rate, Some(Duration::from_secs_f64(secs)))
                }
                // Only the last phase may run on without a length.
                None if index + 1 == parts.len() => (*part, None),
                None => return Err(usage()),
            };
            let rate: f64 = rate.trim().parse().map_err(|_| usage())?;
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(usage());
            }
            phases.push((rate, length));
        }
        Ok(Self { phases })
    }
}

impl fmt::Display for RateSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(rate, length)| match length {
                Some(length) => format!("{rate} calls/s for {} s", length.as_secs_f64()),
                None => format!("{rate} calls/s"),
            })
            .collect();
        f.write_str(&phases.join(", then "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_spaces_calls_evenly_without_end() {
        let schedule: RateSchedule = "4".parse().unwrap();
        let offsets: Vec<f64> = schedule.offsets().take(5).map(|at| at.as_secs_f64()).collect();
        assert_eq!(offsets, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(schedule.length(), None);
        assert_eq!(schedule.to_string(), "4 calls/s");
    }

    #[test]
    fn phases_change_the_rate_and_end_the_run() {
        let schedule: RateSchedule = "4:1,1:2".parse().unwrap();
        let offsets: Vec<f64> = schedule.offsets().map(|at| at.as_secs_f64()).collect();
        assert_eq!(offsets, [0.0, 0.25, 0.5, 0.75, 1.0, 2.0]);
        assert_eq!(schedule.length(), Some(Duration::from_secs(3)));
        assert_eq!(schedule.to_string(), "4 calls/s for 1 s, then 1 calls/s for 2 s");
    }

    #[test]
    fn bad_schedules_say_what_is_expected() {
        for bad in ["", "0", "-5", "fast", "10,20", "10:0", "10:x", "10:5,"] {
            let error = bad.parse::<RateSchedule>().unwrap_err();
            assert!(error.contains("expected calls per second"), "{bad}: {error}");
        }
        assert!("10:5,20".parse::<RateSchedule>().is_ok());
    }
}

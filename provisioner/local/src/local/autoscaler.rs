//! Target tracking for one local service, the rule Application Auto Scaling
//! applies to an ECS service: hold the average utilization at the target
//! by setting the count to `ceil(count * measured / target)`, within
//! `min..=max`; add capacity after a short window above the target, remove
//! it only after a longer one below, and not within the cooldowns.
//!
//! AWS judges one-minute datapoints: 3 above the target to scale out, 15
//! below 90% of it to scale in. Locally a sample is taken every second, so
//! the windows are shorter (30 s and 60 s), and `--autoscale-speedup`
//! divides the windows and the cooldowns alike for a demo.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use crate::{
    local::usage::Utilization,
    spec::autoscaling::{Autoscaling, Metric},
};

/// How long the average must stay above a target before a scale-out.
const SCALE_OUT_WINDOW: Duration = Duration::from_secs(30);
/// How long it must stay below before a scale-in.
const SCALE_IN_WINDOW: Duration = Duration::from_secs(60);
/// A scale-in needs every metric below this share of its target, so that
/// the count does not flap around it (AWS's scale-in alarm sits at 90%).
const SCALE_IN_BELOW: f64 = 0.9;

/// A change of the count, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The count before.
    pub from: u32,
    /// The count after.
    pub to: u32,
    /// The measurement that decided it, for the log.
    pub reason: String,
}

/// The rule, the recent samples and the last changes of one service.
#[derive(Debug)]
pub struct Autoscaler {
    rule: Autoscaling,
    scale_out_window: Duration,
    scale_in_window: Duration,
    samples: VecDeque<(Instant, Utilization)>,
    /// Samples count from here: the start, or the last change.
    since: Instant,
    last_scale_out: Option<Instant>,
    last_scale_in: Option<Instant>,
}

impl Autoscaler {
    /// Tracks `rule` from `now`, its windows and cooldowns divided by
    /// `speedup` (1: as configured).
    pub fn new(rule: &Autoscaling, speedup: u32, now: Instant) -> Self {
        let speedup = speedup.max(1);
        let mut rule = rule.clone();
        rule.scale_out_cooldown /= speedup;
        rule.scale_in_cooldown /= speedup;
        Self {
            rule,
            scale_out_window: SCALE_OUT_WINDOW / speedup,
            scale_in_window: SCALE_IN_WINDOW / speedup,
            samples: VecDeque::new(),
            since: now,
            last_scale_out: None,
            last_scale_in: None,
        }
    }

    /// The rule with the clock applied, for the start-up line.
    pub fn describe(&self) -> String {
        let targets: Vec<String> =
            self.rule.targets().iter().map(|(metric, target)| format!("{metric} {target}%")).collect();
        format!(
            "autoscaling {}..={} on {} (windows {} s out, {} s in; cooldowns {} s out, {} s in)",
            self.rule.min,
            self.rule.max,
            targets.join(" and "),
            self.scale_out_window.as_secs_f64(),
            self.scale_in_window.as_secs_f64(),
            self.rule.scale_out_cooldown.as_secs_f64(),
            self.rule.scale_in_cooldown.as_secs_f64(),
        )
    }

    /// The bounds.
    pub fn bounds(&self) -> (u32, u32) {
        (self.rule.min, self.rule.max)
    }

    /// The targets that are set.
    pub fn targets(&self) -> Vec<(Metric, f64)> {
        self.rule.targets()
    }

    /// Records the service's average utilization at `at`.
    pub fn record(&mut self, at: Instant, utilization: Utilization) {
        self.samples.push_back((at, utilization));
        let keep = self.scale_out_window.max(self.scale_in_window);
        while self.samples.front().is_some_and(|(taken, _)| at.saturating_duration_since(*taken) > keep) {
            self.samples.pop_front();
        }
    }

    /// The average over the last `window`, if the samples since the last
    /// change cover it.
    pub fn average(&self, now: Instant, window: Duration) -> Option<Utilization> {
        if now.saturating_duration_since(self.since) < window {
            return None;
        }
        self.mean_of(now, window, |at| at > self.since)
    }

    /// The average over the scale-out window, for status.
    pub fn recent(&self, now: Instant) -> Option<Utilization> {
        self.mean_of(now, self.scale_out_window, |_| true)
    }

    /// The mean of the samples of the last `window` that `keep` accepts.
    fn mean_of(&self, now: Instant, window: Duration, keep: impl Fn(Instant) -> bool) -> Option<Utilization> {
        let samples: Vec<Utilization> = self
            .samples
            .iter()
            .filter(|(at, _)| keep(*at) && now.saturating_duration_since(*at) <= window)
            .map(|(_, utilization)| *utilization)
            .collect();
        Utilization::mean(&samples)
    }

    /// What the count should become at `now`, from `current`; `None` to
    /// keep it. `scale_in_allowed` is false during a rolling restart, as
    /// ECS suspends scale-in during a deployment.
    pub fn decide(&mut self, now: Instant, current: u32, scale_in_allowed: bool) -> Option<Decision> {
        let (min, max) = (self.rule.min, self.rule.max);
        if current < min || current > max {
            let to = current.clamp(min, max);
            return Some(self.change(now, current, to, format!("the count {current} is outside {min}..={max}")));
        }
        let cooling = |last: Option<Instant>, cooldown: Duration| last.is_some_and(|at| now < at + cooldown);
        if !cooling(self.last_scale_out, self.rule.scale_out_cooldown)
            && let Some(average) = self.average(now, self.scale_out_window)
        {
            let (desired, metric, measured, target) = self.desired(current, &average);
            if desired.min(max) > current {
                let reason =
                    format!("{metric} {measured:.0}% over {} s, target {target}%", self.scale_out_window.as_secs_f64());
                return Some(self.change(now, current, desired.min(max), reason));
            }
        }
        let scale_in_blocked = !scale_in_allowed
            || cooling(self.last_scale_out, self.rule.scale_out_cooldown)
            || cooling(self.last_scale_in, self.rule.scale_in_cooldown);
        if !scale_in_blocked && let Some(average) = self.average(now, self.scale_in_window) {
            let every_metric_low =
                self.targets().iter().all(|(metric, target)| value(&average, *metric) < target * SCALE_IN_BELOW);
            let (desired, ..) = self.desired(current, &average);
            if every_metric_low && desired.max(min) < current {
                let measured: Vec<String> = self
                    .targets()
                    .iter()
                    .map(|(metric, target)| format!("{metric} {:.0}% (target {target}%)", value(&average, *metric)))
                    .collect();
                let reason = format!(
                    "{} over {} s, each below {:.0}% of its target",
                    measured.join(", "),
                    self.scale_in_window.as_secs_f64(),
                    SCALE_IN_BELOW * 100.0
                );
                return Some(self.change(now, current, desired.max(min), reason));
            }
        }
        None
    }

    /// The count each target asks for, and the largest of them with the
    /// metric behind it: one policy wanting more capacity is enough, as
    /// with several AWS target-tracking policies.
    fn desired(&self, current: u32, average: &Utilization) -> (u32, Metric, f64, f64) {
        self.targets()
            .into_iter()
            .map(|(metric, target)| {
                let measured = value(average, metric);
                let desired = (f64::from(current) * measured / target).ceil();
                (desired.clamp(0.0, f64::from(u32::MAX)) as u32, metric, measured, target)
            })
            .max_by_key(|(desired, ..)| *desired)
            .expect("validated: at least one target")
    }

    fn change(&mut self, now: Instant, from: u32, to: u32, reason: String) -> Decision {
        if to > from {
            self.last_scale_out = Some(now);
        } else {
            self.last_scale_in = Some(now);
        }
        self.since = now;
        Decision { from, to, reason }
    }
}

fn value(utilization: &Utilization, metric: Metric) -> f64 {
    match metric {
        Metric::Cpu => utilization.cpu,
        Metric::Memory => utilization.memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Autoscaling {
        Autoscaling {
            min: 1,
            max: 4,
            cpu_percent: Some(50.0),
            memory_percent: None,
            scale_out_cooldown: Duration::from_secs(60),
            scale_in_cooldown: Duration::from_secs(120),
        }
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    /// Feeds one sample a second from `from` to `to` (seconds after
    /// `start`) at `cpu`, deciding after each; the decisions with their
    /// second.
    fn run(scaler: &mut Autoscaler, count: &mut u32, start: Instant, from: u64, to: u64, cpu: f64) -> Vec<(u64, u32)> {
        let mut changes = Vec::new();
        for second in from..to {
            scaler.record(at(start, second), Utilization { cpu, memory: 10.0 });
            if let Some(decision) = scaler.decide(at(start, second), *count, true) {
                assert_eq!(decision.from, *count);
                *count = decision.to;
                changes.push((second, decision.to));
            }
        }
        changes
    }

    #[test]
    fn load_above_the_target_scales_out_after_the_window_and_by_the_ratio() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 1, start);
        let mut count = 1;
        // 120% on one replica with a 50% target asks for ceil(2.4) = 3.
        let changes = run(&mut scaler, &mut count, start, 0, 40, 120.0);
        assert_eq!(changes, [(30, 3)]);
        // Still hot after the cooldown: capped at max.
        let changes = run(&mut scaler, &mut count, start, 40, 120, 90.0);
        assert_eq!(changes, [(90, 4)]);
        // At max, more load changes nothing.
        assert_eq!(run(&mut scaler, &mut count, start, 120, 300, 100.0), []);
    }

    #[test]
    fn an_idle_service_scales_in_only_after_the_cooldowns_and_the_longer_window() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 1, start);
        let mut count = 1;
        run(&mut scaler, &mut count, start, 0, 31, 200.0);
        assert_eq!(count, 4);
        // Idle from second 31: the scale-out cooldown ends at 90, the window
        // since the change covers 60 s at 90.
        let changes = run(&mut scaler, &mut count, start, 31, 200, 2.0);
        assert_eq!(changes, [(90, 1)]);
    }

    #[test]
    fn near_the_target_nothing_changes() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 1, start);
        let mut count = 2;
        // 47% is below the target but above 90% of it (45%).
        assert_eq!(run(&mut scaler, &mut count, start, 0, 300, 47.0), []);
        assert_eq!(count, 2);
    }

    #[test]
    fn scale_in_waits_while_a_restart_runs_and_respects_min() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 1, start);
        for second in 0..70 {
            scaler.record(at(start, second), Utilization { cpu: 1.0, memory: 1.0 });
        }
        assert_eq!(scaler.decide(at(start, 69), 3, false), None);
        let decision = scaler.decide(at(start, 69), 3, true).unwrap();
        assert_eq!((decision.from, decision.to), (3, 1));
        assert_eq!(decision.reason, "cpu 1% (target 50%) over 60 s, each below 90% of its target");
        // The scale-in cooldown holds the next one.
        assert_eq!(scaler.decide(at(start, 140), 2, true), None);
    }

    #[test]
    fn the_speedup_divides_windows_and_cooldowns() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 10, start);
        let mut count = 1;
        let changes = run(&mut scaler, &mut count, start, 0, 8, 120.0);
        assert_eq!(changes, [(3, 3)]);
        assert!(
            scaler.describe().contains("windows 3 s out, 6 s in; cooldowns 6 s out, 12 s in"),
            "{}",
            scaler.describe()
        );
    }

    #[test]
    fn either_target_can_ask_for_more_but_both_must_allow_less() {
        let start = Instant::now();
        let both = Autoscaling { memory_percent: Some(50.0), ..rule() };
        let mut scaler = Autoscaler::new(&both, 1, start);
        for second in 0..70 {
            scaler.record(at(start, second), Utilization { cpu: 5.0, memory: 80.0 });
        }
        let decision = scaler.decide(at(start, 69), 2, true).unwrap();
        assert_eq!((decision.to, decision.reason.starts_with("memory 80%")), (4, true), "{decision:?}");
        let mut scaler = Autoscaler::new(&both, 1, start);
        for second in 0..70 {
            scaler.record(at(start, second), Utilization { cpu: 5.0, memory: 46.0 });
        }
        assert_eq!(scaler.decide(at(start, 69), 2, true), None);
    }

    #[test]
    fn a_count_outside_the_bounds_is_brought_inside_at_once() {
        let start = Instant::now();
        let mut scaler = Autoscaler::new(&rule(), 1, start);
        assert_eq!(scaler.decide(start, 6, true).map(|decision| decision.to), Some(4));
    }
}

//! Exponential backoff with jitter, as gRPC's connection backoff does, so
//! that many clients do not retry a recovering server in lockstep.

use std::time::Duration;

use rand::RngExt;

/// A backoff schedule: `initial`, then times `multiplier` up to `max`, each
/// delay spread by +-`jitter` (a fraction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Spread of each delay, e.g. 0.2 for +-20%.
    pub jitter: f64,
}

impl BackoffConfig {
    /// Starts a schedule.
    pub fn start(self) -> Backoff {
        Backoff { config: self, next: self.initial }
    }
}

/// The running state of a [`BackoffConfig`].
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
}

impl Backoff {
    /// The delay before the next attempt; each call grows the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = base.mul_f64(self.config.multiplier).min(self.config.max);
        let spread = 1.0 + self.config.jitter * (rand::rng().random::<f64>() * 2.0 - 1.0);
        base.mul_f64(spread.max(0.0))
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.config.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_maximum_within_the_jitter() {
        let config = BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            multiplier: 2.0,
            jitter: 0.1,
        };
        let mut backoff = config.start();
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        for (delay, expected) in delays.iter().zip([100u128, 200, 400, 400, 400]) {
            assert!((expected * 9 / 10..=expected * 11 / 10).contains(delay), "{delays:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(110));
    }
}

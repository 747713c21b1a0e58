//! How the hand-written clients retry: botocore's standard mode with its
//! adaptive rate limiter, as the SDK clients are set up
//! (`RetryConfig::adaptive()`), so EC2 and ELB behave like the rest when
//! AWS is busy. Standard mode: what may be retried (throttling and
//! transient codes, 5xx, broken connections), a retry quota shared by every
//! call of the client (a retry costs 14, a throttled one 5, a success gives
//! back what its retries took, or 1), and jittered exponential backoff (1 s
//! for throttling, 50 ms otherwise, at most 20 s). Adaptive mode: once AWS
//! throttles, each request waits for a token of a bucket whose rate follows
//! CUBIC (cut to 70% at each throttle, then growing back), as in botocore's
//! `retries/adaptive.py`, `bucket.py` and `throttling.py`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::error::Failure;

/// What kind of failure a retry answers, which sets its cost and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// AWS asked the client to slow down.
    Throttling,
    /// The network, a timeout, a 5xx: trying again may succeed.
    Transient,
    /// Trying again would fail the same way.
    No,
}

/// Error codes botocore's standard mode reads as throttling.
const THROTTLING_CODES: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];
/// Error codes botocore's standard mode reads as transient.
const TRANSIENT_CODES: [&str; 3] = ["RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"];
/// HTTP statuses botocore's standard mode reads as transient.
const TRANSIENT_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// How botocore's standard mode classes `failure`.
pub fn classify(failure: &Failure) -> Retryable {
    match failure {
        Failure::Credentials(_) => Retryable::No,
        Failure::Transport(_) => Retryable::Transient,
        Failure::Service { status, code, .. } => {
            let code = code.as_deref().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) || *status == 429 {
                Retryable::Throttling
            } else if TRANSIENT_CODES.contains(&code) || TRANSIENT_STATUSES.contains(status) {
                Retryable::Transient
            } else {
                Retryable::No
            }
        }
    }
}

/// The pause before retry number `retry` (1 for the first), given a
/// random draw in `0..1`: `draw * min(base * 2^(retry-1), 20 s)`.
pub fn backoff(kind: Retryable, retry: u32, draw: f64) -> Duration {
    let base = if kind == Retryable::Throttling { 1.0 } else { 0.05 };
    let ceiling = (base * 2f64.powi(retry.saturating_sub(1).min(30) as i32)).min(MAX_BACKOFF_SECS);
    Duration::from_secs_f64(draw.clamp(0.0, 1.0) * ceiling)
}

const MAX_BACKOFF_SECS: f64 = 20.0;
const QUOTA: u32 = 500;
const RETRY_COST: u32 = 14;
const THROTTLING_RETRY_COST: u32 = 5;
const NO_RETRY_INCREMENT: u32 = 1;

/// One client's retry state: its quota and its rate limiter, shared by
/// every call it makes (clones share it too).
#[derive(Debug, Clone)]
pub struct RetryState {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    quota: u32,
    limiter: Limiter,
}

impl Default for RetryState {
    fn default() -> Self {
        Self { inner: Arc::new(Mutex::new(State { quota: QUOTA, limiter: Limiter::new(0.0) })) }
    }
}

impl RetryState {
    /// Waits for the rate limiter's leave to send (at once until AWS has
    /// throttled this client).
    pub async fn before_attempt(&self) {
        loop {
            let wait = self.lock().limiter.acquire(self.now());
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Feeds an answer (throttled or not) to the rate limiter.
    pub fn after_attempt(&self, throttled: bool) {
        let now = self.now();
        self.lock().limiter.update(throttled, now);
    }

    /// Takes a retry's cost from the quota; `None` when the quota is spent
    /// (AWS is failing broadly: retrying would only add load).
    pub fn take_retry(&self, kind: Retryable) -> Option<u32> {
        let cost = if kind == Retryable::Throttling { THROTTLING_RETRY_COST } else { RETRY_COST };
        let mut state = self.lock();
        if state.quota < cost {
            return None;
        }
        state.quota -= cost;
        Some(cost)
    }

    /// Gives back to the quota after a success: what the last retry took,
    /// or one for a call that needed none.
    pub fn succeeded(&self, last_retry_cost: Option<u32>) {
        let mut state = self.lock();
        state.quota = (state.quota + last_retry_cost.unwrap_or(NO_RETRY_INCREMENT)).min(QUOTA);
    }

    /// What is left of the quota.
    #[cfg(test)]
    pub fn quota(&self) -> u32 {
        self.lock().quota
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> f64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
}

/// botocore's `ClientRateLimiter`: off until the first throttle; then a
/// token bucket whose fill rate CUBIC sets from the measured send rate.
#[derive(Debug)]
struct Limiter {
    enabled: bool,
    bucket: Bucket,
    cubic: Cubic,
    clock: RateClock,
}

impl Limiter {
    fn new(now: f64) -> Self {
        Self { enabled: false, bucket: Bucket::new(1.0, now), cubic: Cubic::new(0.0, now), clock: RateClock::new(now) }
    }

    /// `None` to send now (a token taken), or how long to wait first.
    fn acquire(&mut self, now: f64) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        self.bucket.take(now)
    }

    fn update(&mut self, throttled: bool, now: f64) {
        let measured = self.clock.record(now);
        let rate = if throttled {
            let basis = if self.enabled { measured.min(self.bucket.fill_rate) } else { measured };
            self.enabled = true;
            self.cubic.error(basis, now)
        } else {
            self.cubic.success(now)
        };
        self.bucket.set_rate(rate.min(2.0 * measured), now);
    }
}

/// botocore's adaptive `TokenBucket`: fills at `fill_rate` per second up to
/// `max(fill_rate, 1)` tokens; never slower than half a request a second.
#[derive(Debug)]
struct Bucket {
    fill_rate: f64,
    capacity: f64,
    tokens: f64,
    last: f64,
}

impl Bucket {
    const MIN_RATE: f64 = 0.5;

    fn new(rate: f64, now: f64) -> Self {
        let mut bucket = Self { fill_rate: 0.0, capacity: 1.0, tokens: 0.0, last: now };
        bucket.set_rate(rate, now);
        bucket
    }

    fn refill(&mut self, now: f64) {
        self.tokens = (self.tokens + (now - self.last).max(0.0) * self.fill_rate).min(self.capacity);
        self.last = now;
    }

    fn set_rate(&mut self, rate: f64, now: f64) {
        self.refill(now);
        self.fill_rate = rate.max(Self::MIN_RATE);
        self.capacity = if rate >= 1.0 { rate } else { 1.0 };
        self.tokens = self.tokens.min(self.capacity);
    }

    fn take(&mut self, now: f64) -> Option<Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.fill_rate))
        }
    }
}

/// CUBIC's rate: cut to `BETA` of the rate at a throttle, then growing
/// back past it as `SCALE * (t - k)^3 + w_max`.
#[derive(Debug)]
struct Cubic {
    w_max: f64,
    k: f64,
    last_fail: f64,
}

impl Cubic {
    const SCALE: f64 = 0.4;
    const BETA: f64 = 0.7;

    fn new(rate: f64, now: f64) -> Self {
        Self { w_max: rate, k: Self::zero_point(rate), last_fail: now }
    }

    fn zero_point(w_max: f64) -> f64 {
        (w_max * (1.0 - Self::BETA) / Self::SCALE).cbrt()
    }

    fn success(&self, now: f64) -> f64 {
        Self::SCALE * (now - self.last_fail - self.k).powi(3) + self.w_max
    }

    fn error(&mut self, rate: f64, now: f64) -> f64 {
        self.w_max = rate;
        self.k = Self::zero_point(rate);
        self.last_fail = now;
        rate * Self::BETA
    }
}

/// The send rate measured over half-second buckets, smoothed.
#[derive(Debug)]
struct RateClock {
    rate: f64,
    last_bucket: f64,
    count: f64,
}

impl RateClock {
    const SMOOTHING: f64 = 0.8;
    const BUCKETS_PER_SECOND: f64 = 2.0;

    fn new(now: f64) -> Self {
        Self { rate: 0.0, last_bucket: now.floor(), count: 0.0 }
    }

    fn record(&mut self, now: f64) -> f64 {
        let bucket = (now * Self::BUCKETS_PER_SECOND).floor() / Self::BUCKETS_PER_SECOND;
        self.count += 1.0;
        if bucket > self.last_bucket {
            let current = self.count / (bucket - self.last_bucket);
            self.rate = current * Self::SMOOTHING + self.rate * (1.0 - Self::SMOOTHING);
            self.count = 0.0;
            self.last_bucket = bucket;
        }
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Failure {
        Failure::Service { status, code: Some(code.to_owned()), message: String::new() }
    }

    #[test]
    fn failures_are_classed_as_botocores_standard_mode_does() {
        assert_eq!(classify(&service(400, "ThrottlingException")), Retryable::Throttling);
        assert_eq!(classify(&service(400, "TooManyRequestsException")), Retryable::Throttling);
        assert_eq!(classify(&service(400, "LimitExceededException")), Retryable::Throttling);
        assert_eq!(classify(&service(503, "RequestLimitExceeded")), Retryable::Throttling);
        assert_eq!(classify(&service(429, "Whatever")), Retryable::Throttling);
        assert_eq!(classify(&service(400, "RequestTimeout")), Retryable::Transient);
        assert_eq!(classify(&service(502, "")), Retryable::Transient);
        assert_eq!(classify(&Failure::Transport("reset".into())), Retryable::Transient);
        assert_eq!(classify(&service(400, "InvalidGroup.NotFound")), Retryable::No);
        assert_eq!(classify(&service(501, "NotImplemented")), Retryable::No);
        assert_eq!(classify(&Failure::Credentials("none".into())), Retryable::No);
    }

    #[test]
    fn backoff_doubles_from_its_base_up_to_twenty_seconds() {
        assert_eq!(backoff(Retryable::Throttling, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(Retryable::Throttling, 3, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(Retryable::Throttling, 9, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(Retryable::Transient, 2, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(Retryable::Transient, 2, 0.5), Duration::from_millis(50));
    }

    #[test]
    fn the_quota_runs_out_under_failures_and_comes_back_with_successes() {
        let state = RetryState::default();
        let mut retries = 0;
        while state.take_retry(Retryable::Transient).is_some() {
            retries += 1;
        }
        assert_eq!(retries, 500 / 14);
        // 10 left: two throttles (5 each), then nothing.
        assert!(state.take_retry(Retryable::Throttling).is_some(), "a throttle costs less than what is left");
        assert!(state.take_retry(Retryable::Throttling).is_some());
        assert!(state.take_retry(Retryable::Throttling).is_none());
        state.succeeded(Some(14));
        assert!(state.take_retry(Retryable::Transient).is_some(), "a success gives its retry's cost back");
        for _ in 0..1000 {
            state.succeeded(None);
        }
        assert_eq!(state.quota(), 500, "never above the start");
    }

    #[test]
    fn the_limiter_is_off_until_a_throttle_then_paces_sends_and_recovers_as_cubic_says() {
        let mut limiter = Limiter::new(0.0);
        // Ten requests a second for three seconds: nothing waits.
        let mut now = 0.0;
        for _ in 0..30 {
            assert_eq!(limiter.acquire(now), None);
            limiter.update(false, now);
            now += 0.1;
        }
        // A throttle: the rate is cut to 70% of what was measured.
        limiter.update(true, now);
        let cut = limiter.bucket.fill_rate;
        assert!((5.0..8.0).contains(&cut), "{cut}");
        // Sending as fast as possible now waits for tokens.
        let waits = (0..20).filter(|_| limiter.acquire(now).is_some()).count();
        assert!(waits > 0, "a burst is paced after a throttle");
        // CUBIC grows past the old rate once k seconds have gone by.
        let later = now + limiter.cubic.k + 2.0;
        assert!(limiter.cubic.success(later) > limiter.cubic.w_max);
        assert!(limiter.cubic.success(now + 0.1) < limiter.cubic.w_max);
    }
}

//! Pacing and retrying Security Hub calls.
//!
//! GetFindings has an account quota of a few requests per second; Lever keeps under
//! [`DEFAULT_GET_FINDINGS_PER_SECOND`] (and BatchUpdateFindings under
//! [`DEFAULT_BATCH_UPDATES_PER_SECOND`]) with a [`Pacer`] (a `governor` GCRA limiter with a burst
//! of one, so requests are evenly spaced and no window of one second ever holds more than the
//! rate). Retries are Lever's own ([`RetryPolicy`]), not the SDK's: every attempt, retries
//! included, goes through the pacer, and the backoff sleeps use the same [`Sleeper`], so tests can
//! run them on a [`ManualTimer`] without sleeping.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// GetFindings requests per second Lever allows itself by default (issue 3, item 7).
pub const DEFAULT_GET_FINDINGS_PER_SECOND: u32 = 3;
/// BatchUpdateFindings requests per second Lever allows itself by default (Security Hub's
/// documented rate: 10 a second, burst 30; Lever never bursts).
pub const DEFAULT_BATCH_UPDATES_PER_SECOND: u32 = 10;

/// Monotonic time and sleeping, injectable.
pub trait Sleeper: Send + Sync + fmt::Debug + 'static {
    /// Time since a fixed origin; never decreases.
    fn elapsed(&self) -> Duration;
    /// Resolves after `d`.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// Real time: tokio's clock and `tokio::time::sleep` (needs a tokio runtime with time enabled).
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    origin: tokio::time::Instant,
}

impl TokioTimer {
    pub fn new() -> TokioTimer {
        TokioTimer {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioTimer {
    fn default() -> Self {
        TokioTimer::new()
    }
}

impl Sleeper for TokioTimer {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Virtual time for tests and simulations: `sleep` returns at once after moving the clock
/// forward by the requested duration, and remembers it. Meant for one sequential caller
/// (concurrent sleepers would each move the clock).
#[derive(Debug, Default)]
pub struct ManualTimer {
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Duration,
    sleeps: Vec<Duration>,
}

impl ManualTimer {
    pub fn new() -> ManualTimer {
        ManualTimer::default()
    }
    /// Moves the clock without anyone sleeping.
    pub fn advance(&self, by: Duration) {
        self.lock().now += by;
    }
    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sleeper for ManualTimer {
    fn elapsed(&self) -> Duration {
        self.lock().now
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let mut st = self.lock();
        st.now += d;
        st.sleeps.push(d);
        Box::pin(std::future::ready(()))
    }
}

/// [`Sleeper`] as a `governor` clock.
#[derive(Debug, Clone)]
struct TimerClock(Arc<dyn Sleeper>);

impl GovernorClock for TimerClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TimerClock, NoOpMiddleware<Duration>>;

/// At most `per_second` permits in any one-second window, evenly spaced (burst of one).
/// Shared by clones of [`crate::securityhub::SecurityHub`], so concurrent readers share it.
pub struct Pacer {
    limiter: Limiter,
    timer: Arc<dyn Sleeper>,
    per_second: NonZeroU32,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("per_second", &self.per_second)
            .field("timer", &self.timer)
            .finish()
    }
}

impl Pacer {
    /// `per_second` permits per second of real (tokio) time.
    pub fn per_second(per_second: NonZeroU32) -> Pacer {
        Pacer::with_timer(per_second, Arc::new(TokioTimer::new()))
    }

    /// `per_second` permits per second of `timer`'s time.
    pub fn with_timer(per_second: NonZeroU32, timer: Arc<dyn Sleeper>) -> Pacer {
        // One permit every ceil(1 s / rate): rounding up keeps `rate + 1` permits from fitting
        // in one second (333_333_333 ns × 3 would be 1 ns short of a second).
        let period = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(per_second.get())));
        let quota = Quota::with_period(period).expect("a positive period");
        Pacer {
            limiter: RateLimiter::direct_with_clock(quota, TimerClock(timer.clone())),
            timer,
            per_second,
        }
    }

    pub fn rate(&self) -> NonZeroU32 {
        self.per_second
    }

    /// The minimum spacing between two permits.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(self.per_second.get())))
    }

    pub fn timer(&self) -> &Arc<dyn Sleeper> {
        &self.timer
    }

    /// Waits (on the timer) until a permit is available, and takes it.
    pub async fn until_ready(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.timer.elapsed());
                    self.timer.sleep(wait).await;
                }
            }
        }
    }
}

/// Bounded retries with exponential backoff for retryable Security Hub errors (throttling,
/// 5xx, timeouts, connection failures; see [`crate::securityhub::SecurityHubError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Ceiling of one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts; backoffs of about 0.5, 1, 2 and 4 s (8 s at most).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retry: one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed attempt `attempt` (1-based): the exponential step
    /// `initial × 2^(attempt-1)` capped at `max_backoff`, with "equal jitter": half of it
    /// fixed, half scaled by `jitter` (0.0 to 1.0).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        step / 2 + (step / 2).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// Times at which `n` permits are granted on a manual timer.
    fn grants(pacer: &Pacer, timer: &ManualTimer, n: usize) -> Vec<Duration> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = vec![];
            for _ in 0..n {
                pacer.until_ready().await;
                out.push(timer.elapsed());
            }
            out
        })
    }

    #[test]
    fn three_per_second_evenly_spaced_never_four_in_a_second() {
        let timer = Arc::new(ManualTimer::new());
        let pacer = Pacer::with_timer(nz(3), timer.clone());
        let at = grants(&pacer, &timer, 10);
        assert_eq!(at[0], Duration::ZERO, "the first permit is immediate");
        for w in at.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_nanos(333_333_334));
        }
        for w in at.windows(4) {
            assert!(w[3] - w[0] >= Duration::from_secs(1), "{w:?}");
        }
        assert_eq!(timer.sleeps().len(), 9);
    }

    #[test]
    fn idle_time_is_not_saved_up_as_a_burst() {
        let timer = Arc::new(ManualTimer::new());
        let pacer = Pacer::with_timer(nz(3), timer.clone());
        let _ = grants(&pacer, &timer, 1);
        timer.advance(Duration::from_secs(10));
        let at = grants(&pacer, &timer, 3);
        assert_eq!(at[0], Duration::from_secs(10));
        assert_eq!(at[1] - at[0], Duration::from_nanos(333_333_334));
        assert_eq!(at[2] - at[1], Duration::from_nanos(333_333_334));
    }

    #[test]
    fn tokio_timer_paces_in_real_time() {
        // Only a lower bound, which sleeping guarantees: 5 permits at 200 a second cannot
        // take less than 4 periods.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let start = std::time::Instant::now(); // before the pacer's own origin
        let pacer = Pacer::per_second(nz(200));
        rt.block_on(async {
            for _ in 0..5 {
                pacer.until_ready().await;
            }
        });
        assert!(
            start.elapsed() >= pacer.period() * 4,
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let p = RetryPolicy::default();
        let lo: Vec<u64> = (1..=6)
            .map(|a| p.backoff(a, 0.0).as_millis() as u64)
            .collect();
        let hi: Vec<u64> = (1..=6)
            .map(|a| p.backoff(a, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(lo, [250, 500, 1000, 2000, 4000, 4000]);
        assert_eq!(hi, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.backoff(1000, 1.0), Duration::from_secs(8));
    }
}

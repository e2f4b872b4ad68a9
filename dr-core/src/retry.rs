//! The one retry layer: every retry the library makes — a step's attempts, the reads of its
//! read-backs, the observation before planning — goes through a [`Retrier`] built from a
//! [`RetryPolicy`] and a run-wide [`RetryBudget`].
//!
//! # The policy
//!
//! * Only temporary errors ([`Retry::Temporary`]) are retried. A retried error that runs out
//!   of attempts, of its step's deadline or of the run's budget comes back
//!   [`Retry::Persistent`], so no outer layer retries it again.
//! * A request that certainly did not take effect ([`Effect::NotApplied`]: throttled,
//!   refused, a fault decided before the call) may be sent again by any step. One whose effect
//!   is unknown ([`Effect::Unknown`]: a timeout, a 5xx after sending, a lost reply) is sent
//!   again only by an idempotent step, or after the step's read-back shows the effect is not
//!   there (the executor does that).
//! * Attempts are bounded three ways: `max_attempts`, the step's deadline (`deadline`, by
//!   default three attempt timeouts: no retry starts that could not finish in it), and the
//!   run's budget (`RetryBudget`: a floor of retries plus a share of the first attempts, so
//!   a provider that is down does not get hammered by every step at once).
//! * Backoff is exponential with full jitter from a seeded PRNG: a run is repeatable.
//! * Provider SDKs keep only their own transport-level retries (a few, documented in each
//!   provider crate's README); an SDK error whose retries ran out still comes back temporary,
//!   so this layer — bounded by deadline and budget — decides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Effect, Error, Result, Retry};

/// How temporary errors are retried.
///
/// The delay before retry `n` (from 1) is `initial_backoff × multiplier^(n-1)`, capped at
/// `max_backoff`; with `jitter`, a uniformly random part of it ("full jitter") drawn from a
/// PRNG seeded by the executor's seed, the step id and the attempt.
///
/// The default: at most 10 attempts, 2 s doubling to at most 60 s, full jitter, within a
/// deadline of three attempt timeouts per step.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::RetryPolicy;
///
/// let policy = RetryPolicy { jitter: false, ..RetryPolicy::default() };
/// assert_eq!(policy.max_attempts, 10);
/// assert_eq!(policy.backoff(1), Duration::from_secs(2));
/// assert_eq!(policy.backoff(3), Duration::from_secs(8));
/// assert_eq!(policy.backoff(10), Duration::from_secs(60));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    #[serde(rename = "initial_backoff_seconds", with = "crate::duration::seconds")]
    pub initial_backoff: Duration,
    /// Largest delay.
    #[serde(rename = "max_backoff_seconds", with = "crate::duration::seconds")]
    pub max_backoff: Duration,
    /// Growth factor per retry.
    pub multiplier: f64,
    /// Full jitter: wait a random part of the computed delay.
    pub jitter: bool,
    /// Time a step may spend in attempts and backoffs, from its first attempt; `None` for
    /// three attempt timeouts.
    #[serde(rename = "deadline_seconds", with = "crate::duration::seconds_opt")]
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: true,
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry `retry` (from 1), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The step deadline for an attempt timeout of `timeout`.
    pub fn deadline_for(&self, timeout: Duration) -> Duration {
        self.deadline.unwrap_or_else(|| timeout.saturating_mul(3))
    }
}

/// A run-wide allowance of retries: `min_retries`, plus `ratio` retries per first attempt made
/// so far (tower's retry budget, counted per run rather than per second).
///
/// # Examples
///
/// ```
/// use dr_core::retry::RetryBudget;
///
/// let budget = RetryBudget { min_retries: 1, ratio: 0.5 };
/// let live = budget.start();
/// live.deposit();
/// live.deposit();                 // two first attempts: 1 + 0.5 × 2 = 2 retries
/// assert!(live.withdraw());
/// assert!(live.withdraw());
/// assert!(!live.withdraw());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudget {
    /// Retries always allowed.
    pub min_retries: u32,
    /// Retries allowed per first attempt.
    pub ratio: f64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            min_retries: 50,
            ratio: 2.0,
        }
    }
}

/// Scale of the budget's fixed-point counters (thousandths of a retry).
const MILLI: u64 = 1000;

/// A [`RetryBudget`] being spent.
#[derive(Debug)]
pub struct LiveBudget {
    per_deposit: u64,
    balance: AtomicU64,
    spent: AtomicU64,
}

impl RetryBudget {
    /// Starts spending.
    pub fn start(&self) -> LiveBudget {
        let per = (self.ratio.max(0.0) * MILLI as f64) as u64;
        LiveBudget {
            per_deposit: per,
            balance: AtomicU64::new(u64::from(self.min_retries) * MILLI),
            spent: AtomicU64::new(0),
        }
    }
}

impl LiveBudget {
    /// Records a first attempt.
    pub fn deposit(&self) {
        self.balance.fetch_add(self.per_deposit, Ordering::Relaxed);
    }

    /// Takes one retry; `false` when the budget is spent.
    pub fn withdraw(&self) -> bool {
        let ok = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(MILLI)
            })
            .is_ok();
        if ok {
            self.spent.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Retries taken so far.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }
}

/// The retry layer of one run: its policy, budget and jitter seed.
#[derive(Debug)]
pub struct Retrier {
    policy: RetryPolicy,
    budget: LiveBudget,
    seed: u64,
    read_attempts: u32,
}

/// Attempts of one read (describe, status, list) on temporary errors.
const READ_ATTEMPTS: u32 = 12;
/// Delay before a read's first retry; doubles after each, up to [`READ_MAX_BACKOFF`].
const READ_BACKOFF: Duration = Duration::from_secs(1);
/// Largest delay between two attempts of a read.
const READ_MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Why a retry will not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The error is not temporary.
    NotRetryable,
    /// `max_attempts` reached.
    Attempts,
    /// The next attempt would start past the step's deadline.
    Deadline,
    /// The run's retry budget is spent.
    Budget,
}

impl Retrier {
    /// A retry layer with `policy`, `budget` and the jitter `seed`.
    pub fn new(policy: RetryPolicy, budget: RetryBudget, seed: u64) -> Self {
        Retrier {
            policy,
            budget: budget.start(),
            seed,
            read_attempts: READ_ATTEMPTS,
        }
    }

    /// At most `n` attempts per read (at least 1) instead of twelve: the observation before
    /// planning must not spend a minute on a primary that is gone.
    pub fn read_attempts(mut self, n: u32) -> Self {
        self.read_attempts = n.max(1);
        self
    }

    /// The run's policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Records a first attempt (it earns the budget its share).
    pub fn first_attempt(&self) {
        self.budget.deposit();
    }

    /// Retries taken so far in the run.
    pub fn retries(&self) -> u64 {
        self.budget.spent()
    }

    /// Whether `err`, after `attempt` attempts of a step with `policy` that has spent `elapsed`
    /// of its `deadline`, may be retried; and if so after which delay. Takes the retry from
    /// the budget.
    ///
    /// # Errors
    /// Why not ([`Stop`]).
    pub fn next(
        &self,
        policy: &RetryPolicy,
        err: &Error,
        step: &str,
        attempt: u32,
        elapsed: Duration,
        deadline: Duration,
    ) -> std::result::Result<Duration, Stop> {
        if err.retry() != Retry::Temporary {
            return Err(Stop::NotRetryable);
        }
        if attempt >= policy.max_attempts.max(1) {
            return Err(Stop::Attempts);
        }
        let mut backoff = policy.backoff(attempt);
        if policy.jitter {
            backoff = backoff.mul_f64(unit_random(self.seed, step, attempt));
        }
        if elapsed.saturating_add(backoff) >= deadline {
            return Err(Stop::Deadline);
        }
        if !self.budget.withdraw() {
            return Err(Stop::Budget);
        }
        Ok(backoff)
    }

    /// Calls `read` until it succeeds, fails for good, or its attempts (twelve by default:
    /// 1 s, 2 s, 4 s, then 8 s apart, about 75 s in all) or the budget are used up. Only for reads: they are idempotent by nature, so
    /// any temporary error may be retried whatever its [`Effect`].
    ///
    /// # Errors
    /// The last error, marked persistent when it was temporary.
    pub async fn read<T, F, Fut>(&self, step: &str, mut read: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut delay = READ_BACKOFF;
        let mut attempt = 1;
        loop {
            match read().await {
                Err(e)
                    if e.is_retryable()
                        && attempt < self.read_attempts
                        && self.budget.withdraw() =>
                {
                    tracing::debug!(step, error = %e, attempt, effect = %e.effect(), "read failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(READ_MAX_BACKOFF);
                    attempt += 1;
                }
                other => return other.map_err(|e| e.exhausted(attempt)),
            }
        }
    }
}

/// Whether `err` may be retried by a step that is not idempotent without reading its effect
/// back first.
pub fn safe_to_resend(err: &Error) -> bool {
    err.is_retryable() && err.effect() == Effect::NotApplied
}

/// SplitMix64: a small, fast, well-mixed PRNG step.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in `[0, 1)` from the seed, a step id and an attempt: the same on every
/// run, whatever order concurrent steps fail in.
fn unit_random(seed: u64, step: &str, attempt: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in step.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let r = splitmix64(seed ^ splitmix64(h ^ u64::from(attempt)));
    (r >> 11) as f64 / (1u64 << 53) as f64
}

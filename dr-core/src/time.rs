//! A clock that follows tokio's time, so that simulated runs on a paused clock report
//! simulated timestamps and durations.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock timestamps derived from tokio's monotonic clock.
///
/// `now()` is the wall time at creation plus the tokio time elapsed since. Under a paused
/// tokio clock (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) time advances
/// only as tasks sleep, so a 40-minute simulated failover reports 40 minutes, in well under a
/// second of real time. On a normal runtime it is the real wall clock.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = dr_core::Clock::new();
/// let t0 = clock.now();
/// assert!(clock.now() >= t0);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: DateTime<Utc>,
    mono: Instant,
    system: bool,
}

impl Clock {
    /// A clock anchored at the current wall time.
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// A clock that reads `start` now (deterministic timestamps for simulations and tests).
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Clock {
            wall: start,
            mono: Instant::now(),
            system: false,
        }
    }

    /// The system's wall clock itself, whatever tokio's time does: for what other processes
    /// read too (a lease's expiry), where a paused or sped-up tokio clock must not leak.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = dr_core::Clock::system();
    /// assert!((chrono::Utc::now() - clock.now()).num_seconds().abs() < 5);
    /// ```
    pub fn system() -> Self {
        Clock {
            wall: Utc::now(),
            mono: Instant::now(),
            system: true,
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        if self.system {
            return Utc::now();
        }
        let elapsed = Instant::now().saturating_duration_since(self.mono);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }

    /// The tokio instant this clock's `start` corresponds to.
    pub fn anchor(&self) -> Instant {
        self.mono
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

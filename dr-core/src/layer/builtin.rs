//! The layers that ship with the library.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CallInfo, Guard, Layer};
use crate::provider::Operation;
use crate::sim::fault::{Fault, Faults as FaultState, SplitMix64};
use crate::sim::FaultConfig;
use crate::{Clock, Error, Result, Retry};

/// Injects faults into every call, decided from a seed by the same rules as the simulated
/// cloud's ([`FaultConfig`]): temporary failures before the call (throttled, refused, timed
/// out — the call is not sent), calls that hang, permanent failures, and replies lost after
/// the call took effect. A drill wraps a real provider in it.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    hang: Duration,
    state: Mutex<FaultState>,
    lost: Mutex<Vec<CallInfo>>,
}

impl Faults {
    /// Faults from `config`, decided by a PRNG seeded with `seed`. A hanging call sleeps a
    /// minute before it times out.
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        Faults {
            config,
            hang: Duration::from_secs(60),
            state: Mutex::new(FaultState::new(seed)),
            lost: Mutex::new(Vec::new()),
        }
    }

    /// How long a hanging call sleeps before it fails.
    pub fn hang_for(mut self, d: Duration) -> Self {
        self.hang = d;
        self
    }

    fn decide(&self, call: &CallInfo) -> Fault {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.decide(&self.config, call.operation, &call.target)
    }
}

#[async_trait]
impl Layer for Faults {
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        let fault = self.decide(call);
        if fault == Fault::AfterEffect {
            self.lost
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(call.clone());
            return Ok(None);
        }
        match crate::sim::fault::refusal(
            fault,
            &call.provider,
            call.operation,
            &call.target,
            self.hang,
        )
        .await
        {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    fn after(
        &self,
        call: &CallInfo,
        outcome: std::result::Result<(), &Error>,
        _elapsed: Duration,
    ) -> Option<Error> {
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        let pos = lost.iter().position(|c| c == call)?;
        lost.swap_remove(pos);
        outcome.is_ok().then(|| Error::Unavailable {
            provider: call.provider.clone(),
            operation: call.operation.name().into(),
            source: Some("injected fault after the call took effect".into()),
        })
    }
}

/// Delays every call by a random time between `min` and `max`, drawn from a seed.
#[derive(Debug)]
pub struct Latency {
    min: Duration,
    max: Duration,
    rng: Mutex<SplitMix64>,
}

impl Latency {
    /// Latency uniform in `[min, max]`.
    pub fn new(seed: u64, min: Duration, max: Duration) -> Self {
        Latency {
            min,
            max,
            rng: Mutex::new(SplitMix64::new(seed)),
        }
    }
}

#[async_trait]
impl Layer for Latency {
    async fn before(&self, _call: &CallInfo) -> Result<Guard> {
        let d = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .duration_between(self.min, self.max);
        tokio::time::sleep(d).await;
        Ok(None)
    }
}

/// One call as a [`CallLog`] saw it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallRecord {
    /// When it returned.
    pub at: DateTime<Utc>,
    /// The provider role.
    pub role: &'static str,
    /// The provider's name.
    pub provider: String,
    /// The operation.
    pub operation: Operation,
    /// What it addressed.
    pub target: String,
    /// Whether it succeeded, as the layers inside the log reported it.
    pub ok: bool,
    /// Whether its effect happened: the call went through and succeeded. A log placed
    /// innermost (next to the provider) sees the provider's own answer, before any outer
    /// layer loses the reply.
    pub took_effect: bool,
    /// The error's retry class, when it failed.
    pub retry: Option<Retry>,
}

/// Records every call that reaches it, with whether it took effect.
#[derive(Debug, Default)]
pub struct CallLog {
    clock: Clock,
    calls: Mutex<Vec<CallRecord>>,
}

impl CallLog {
    /// An empty log on the wall clock.
    pub fn new() -> Self {
        CallLog::default()
    }

    /// An empty log timestamped by `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        CallLog {
            clock,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every call so far, in the order they returned.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Layer for CallLog {
    fn after(
        &self,
        call: &CallInfo,
        outcome: std::result::Result<(), &Error>,
        _elapsed: Duration,
    ) -> Option<Error> {
        let record = CallRecord {
            at: self.clock.now(),
            role: call.role,
            provider: call.provider.clone(),
            operation: call.operation,
            target: call.target.clone(),
            ok: outcome.is_ok(),
            took_effect: outcome.is_ok(),
            retry: outcome.err().map(Error::retry),
        };
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        None
    }
}

/// A `tracing` span per call (`provider_call`, with role, provider, operation and target),
/// and an event with its outcome and duration. Targets and errors carry no secrets: the
/// provider traits never put one in either.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tracing;

#[async_trait]
impl Layer for Tracing {
    fn span(&self, call: &CallInfo) -> Option<tracing::Span> {
        Some(tracing::debug_span!(
            "provider_call",
            role = call.role,
            provider = %call.provider,
            operation = %call.operation,
            target = %call.target,
        ))
    }

    fn after(
        &self,
        call: &CallInfo,
        outcome: std::result::Result<(), &Error>,
        elapsed: Duration,
    ) -> Option<Error> {
        match outcome {
            Ok(()) => tracing::debug!(
                role = call.role, provider = %call.provider, operation = %call.operation,
                target = %call.target, elapsed_ms = elapsed.as_millis() as u64, "call succeeded"
            ),
            Err(e) => tracing::debug!(
                role = call.role, provider = %call.provider, operation = %call.operation,
                target = %call.target, elapsed_ms = elapsed.as_millis() as u64,
                error = %e, retry = %e.retry(), effect = %e.effect(), "call failed"
            ),
        }
        None
    }
}

/// Counts of one operation, as [`Metrics`] keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct OperationStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls that failed with a temporary error.
    pub temporary_errors: u64,
    /// Total time spent in the calls.
    #[serde(rename = "total_seconds", with = "crate::duration::seconds")]
    pub total: Duration,
}

/// Counts calls, errors and time per (role, operation).
#[derive(Debug, Default)]
pub struct Metrics {
    stats: Mutex<BTreeMap<(&'static str, Operation), OperationStats>>,
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// The counters so far, per (role, operation).
    pub fn snapshot(&self) -> BTreeMap<(&'static str, Operation), OperationStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Layer for Metrics {
    fn after(
        &self,
        call: &CallInfo,
        outcome: std::result::Result<(), &Error>,
        elapsed: Duration,
    ) -> Option<Error> {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let s = stats.entry((call.role, call.operation)).or_default();
        s.calls += 1;
        s.total += elapsed;
        if let Err(e) = outcome {
            s.errors += 1;
            if e.is_retryable() {
                s.temporary_errors += 1;
            }
        }
        None
    }
}

//! Cross-cutting behaviour as layers that wrap **any** provider — a real SDK-backed one as
//! much as the simulated cloud: fault injection ([`Faults`]), latency ([`Latency`]), a call
//! log that says whether each call took effect ([`CallLog`]), a tracing span per call
//! ([`Tracing`]) and per-operation counters ([`Metrics`]).
//!
//! A [`Layer`] sees each provider call before it is sent (it may delay it, or refuse it: a
//! refused call is never sent) and after it returns (it may replace the outcome: a lost
//! reply). [`Providers::layer`](crate::Providers::layer) wraps every provider of a set;
//! layers added later are outer. A drill injects faults into a real provider the same way a
//! test does into the simulated one:
//!
//! ```
//! use std::sync::Arc;
//! use dr_core::layer::{CallLog, Faults, Tracing};
//! use dr_core::sim::{FaultConfig, SimCloud};
//! use dr_core::Providers;
//!
//! let cloud = SimCloud::new(1);
//! let log = Arc::new(CallLog::new());
//! let providers = Providers::new()
//!     .with_database(cloud.database())
//!     .layer(log.clone())                                        // innermost: the truth
//!     .layer(Arc::new(Faults::new(7, FaultConfig::default().with_rate(0.1))))
//!     .layer(Arc::new(Tracing));                                 // outermost
//! assert!(log.calls().is_empty());
//! # let _ = providers;
//! ```

mod builtin;
mod wrap;

use std::any::Any;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use builtin::{CallLog, CallRecord, Faults, Latency, Metrics, OperationStats, Tracing};
pub use wrap::Layered;

use crate::provider::Operation;
use crate::{Error, Result};

/// One provider call, as layers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The provider role (`database`, `dns`, `cluster`, `store`, `probe`, `notifier`).
    pub role: &'static str,
    /// What the call is routed by within the role: the database's region, the DNS zone, the
    /// cluster's name, the store provider's name, the channel (empty for the probe).
    pub key: String,
    /// The provider's name (`sim`, `rds`, `kube`).
    pub provider: String,
    /// The operation.
    pub operation: Operation,
    /// What it addresses (`us-west-2/orders-west`, `Z1/api.example.com`).
    pub target: String,
}

impl fmt::Display for CallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {}",
            self.role, self.provider, self.operation, self.target
        )
    }
}

/// Something a layer keeps while its call is in flight (a permit, a span guard).
pub type Guard = Option<Box<dyn Any + Send>>;

/// A decorator of provider calls. See the [module docs](self).
#[async_trait]
pub trait Layer: fmt::Debug + Send + Sync + 'static {
    /// Before the call is sent. An error refuses it: the call is not made, and outer layers
    /// see the error as its outcome. The guard is dropped when the call returns.
    ///
    /// # Errors
    /// The refusal.
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        let _ = call;
        Ok(None)
    }

    /// A span the call runs in (its provider's own tracing nests inside it).
    fn span(&self, call: &CallInfo) -> Option<tracing::Span> {
        let _ = call;
        None
    }

    /// After the call returned `outcome` in `elapsed`. Returning an error replaces the
    /// outcome (a reply lost after the call took effect).
    fn after(
        &self,
        call: &CallInfo,
        outcome: std::result::Result<(), &Error>,
        elapsed: Duration,
    ) -> Option<Error> {
        let _ = (call, outcome, elapsed);
        None
    }
}

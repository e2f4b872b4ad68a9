//! Concurrency limits per target: how many provider calls may be in flight at once against
//! one database region, DNS zone, cluster API server, store or channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::layer::{CallInfo, Guard, Layer};
use crate::Result;

/// Concurrency limits per target, applied to provider calls (not to steps: a step waiting
/// for a promotion to finish holds no slot between its polls). The executor puts them around
/// its providers as a [`Layer`].
///
/// Defaults, from the providers' documented rate limits and what one client can keep in
/// flight without being throttled: 8 calls per database region (RDS throttles its API per
/// account and region), 5 per DNS zone (Route 53 accepts five requests a second per
/// account), 50 per cluster (a kube API server admits 200 mutating requests in flight by
/// default; clients commonly keep well under), 16 per store, 4 per notification channel, 16
/// health probes.
///
/// # Examples
///
/// ```
/// use dr_core::executor::Limits;
///
/// let limits = Limits::default()
///     .per_kind("dns", 2)
///     .per_target("cluster", "dr-west", 200);
/// assert_eq!(limits.limit("dns", "Z1"), 2);
/// assert_eq!(limits.limit("cluster", "dr-west"), 200);
/// assert_eq!(limits.limit("cluster", "other"), 50);
/// assert_eq!(Limits::unlimited().limit("database", "us-east-1"), usize::MAX);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    per_kind: BTreeMap<String, usize>,
    per_target: BTreeMap<(String, String), usize>,
}

impl Default for Limits {
    fn default() -> Self {
        let per_kind = [
            ("database", 8),
            ("dns", 5),
            ("cluster", 50),
            ("store", 16),
            ("notifier", 4),
            ("probe", 16),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Limits {
            per_kind,
            per_target: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// No limit on any target.
    pub fn unlimited() -> Self {
        Limits {
            per_kind: BTreeMap::new(),
            per_target: BTreeMap::new(),
        }
    }

    /// Sets the limit of every target of a provider role (`database`, `dns`, `cluster`,
    /// `store`, `notifier`, `probe`), at least 1.
    pub fn per_kind(mut self, role: impl Into<String>, limit: usize) -> Self {
        self.per_kind.insert(role.into(), limit.max(1));
        self
    }

    /// Sets the limit of one target (`"database", "us-east-1"`; `"dns", "Z0SHOP"`), at
    /// least 1.
    pub fn per_target(
        mut self,
        role: impl Into<String>,
        key: impl Into<String>,
        limit: usize,
    ) -> Self {
        self.per_target
            .insert((role.into(), key.into()), limit.max(1));
        self
    }

    /// The limit of `role`'s target `key`.
    pub fn limit(&self, role: &str, key: &str) -> usize {
        self.per_target
            .get(&(role.to_string(), key.to_string()))
            .or_else(|| self.per_kind.get(role))
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// A layer enforcing these limits for one run.
    pub(crate) fn start(&self) -> Arc<dyn Layer> {
        Arc::new(LiveLimits {
            limits: self.clone(),
            open: Mutex::new(HashMap::new()),
        })
    }
}

/// [`Limits`] being enforced: one semaphore per target.
#[derive(Debug)]
struct LiveLimits {
    limits: Limits,
    open: Mutex<HashMap<(&'static str, String), Arc<Semaphore>>>,
}

#[async_trait]
impl Layer for LiveLimits {
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        let limit = self.limits.limit(call.role, &call.key);
        if limit == usize::MAX {
            return Ok(None);
        }
        let sem = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.entry((call.role, call.key.clone()))
                .or_insert_with(|| Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))))
                .clone()
        };
        match sem.acquire_owned().await {
            Ok(permit) => Ok(Some(Box::new(permit))),
            // Never closed; without a permit the call goes ahead unlimited.
            Err(_) => Ok(None),
        }
    }
}

//! Concurrency limits per target: how many steps may work on one database region, DNS zone,
//! cluster API server, store or channel at the same time.

use std::collections::{BTreeMap, HashMap};

use crate::graph::Step;
use crate::step::Role;

/// Concurrency limits per target. A step counts against the target of its first provider
/// call (a promotion against its region's database API, a DNS switch against its zone).
///
/// Defaults, from the providers' documented rate limits and what a single client can keep in
/// flight without being throttled: 16 steps per database region (RDS throttles mutating API
/// calls per account and region), 16 per DNS zone (Route 53 accepts five change batches a
/// second per account; a switch spends most of its time waiting for `INSYNC`), 64 per cluster
/// (a kube API server admits 200 mutating requests in flight by default), 16 per store, 8 per
/// notification channel, 32 probes, 16 webhooks, 4 local programs; approvals and external
/// calls are not limited.
///
/// # Examples
///
/// ```
/// use dr_core::executor::Limits;
/// use dr_core::step::Role;
///
/// let limits = Limits::default()
///     .per_kind("dns", 4)
///     .per_target(Role::Cluster { cluster: "dr-west".into() }, 200);
/// assert_eq!(limits.limit(&Role::Dns { zone: "Z1".into() }), 4);
/// assert_eq!(limits.limit(&Role::Cluster { cluster: "dr-west".into() }), 200);
/// assert_eq!(limits.limit(&Role::Cluster { cluster: "other".into() }), 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    per_kind: BTreeMap<String, usize>,
    per_target: BTreeMap<Role, usize>,
}

impl Default for Limits {
    fn default() -> Self {
        let per_kind = [
            ("database", 16),
            ("dns", 16),
            ("cluster", 64),
            ("store", 16),
            ("notifier", 8),
            ("probe", 32),
            ("http", 16),
            ("process", 4),
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

    /// Sets the limit of every target of a role kind (`database`, `dns`, `cluster`, `store`,
    /// `notifier`, `probe`, `http`, `process`), at least 1.
    pub fn per_kind(mut self, kind: impl Into<String>, limit: usize) -> Self {
        self.per_kind.insert(kind.into(), limit.max(1));
        self
    }

    /// Sets the limit of one target, at least 1.
    pub fn per_target(mut self, target: Role, limit: usize) -> Self {
        self.per_target.insert(target, limit.max(1));
        self
    }

    /// The limit for `target`.
    pub fn limit(&self, target: &Role) -> usize {
        self.per_target
            .get(target)
            .or_else(|| self.per_kind.get(target.name()))
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// The target index of every step and the limit of every target.
    pub(crate) fn assign(&self, steps: &[Step]) -> (Vec<usize>, Vec<usize>) {
        let mut ids: HashMap<Role, usize> = HashMap::new();
        let mut limits = Vec::new();
        let mut targets = Vec::with_capacity(steps.len());
        for s in steps {
            let role = s
                .action
                .calls()
                .into_iter()
                .next()
                .map(|c| c.role)
                .unwrap_or(Role::Approval);
            let next = ids.len();
            let id = *ids.entry(role.clone()).or_insert_with(|| {
                limits.push(self.limit(&role));
                next
            });
            targets.push(id);
        }
        (targets, limits)
    }
}

//! Grandfather-father-son retention: which backups to keep, as a pure function.

use chrono::{DateTime, Datelike, Utc};

/// How many daily, weekly, monthly and yearly backups to keep.
///
/// The default is the common schedule of 30 daily, 12 weekly and 12 monthly backups and no
/// yearly ones. Missing fields take their default when deserialised.
///
/// # Examples
///
/// ```
/// use dr_core::backup::RetentionPolicy;
///
/// let policy: RetentionPolicy = serde_json::from_str(r#"{"daily": 7, "yearly": 5}"#).unwrap();
/// assert_eq!(policy, RetentionPolicy { daily: 7, weekly: 12, monthly: 12, yearly: 5 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep the newest backup of each of the last `daily` days that have a backup.
    pub daily: u32,
    /// Keep the newest backup of each of the last `weekly` ISO weeks that have a backup.
    pub weekly: u32,
    /// Keep the newest backup of each of the last `monthly` months that have a backup.
    pub monthly: u32,
    /// Keep the newest backup of each of the last `yearly` years that have a backup.
    pub yearly: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            daily: 30,
            weekly: 12,
            monthly: 12,
            yearly: 0,
        }
    }
}

impl RetentionPolicy {
    /// The most backups this policy keeps (for backups not dated in the future): one per
    /// slot, plus the newest backup.
    pub fn max_kept(&self) -> u64 {
        u64::from(self.daily)
            + u64::from(self.weekly)
            + u64::from(self.monthly)
            + u64::from(self.yearly)
            + 1
    }
}

/// A backup as retention sees it: its key and when it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BackupInfo {
    /// The backup's object key.
    pub key: String,
    /// When the backup was taken.
    pub created: DateTime<Utc>,
}

impl BackupInfo {
    /// A backup `key` taken at `created`.
    pub fn new(key: impl Into<String>, created: DateTime<Utc>) -> Self {
        BackupInfo {
            key: key.into(),
            created,
        }
    }
}

/// Why a backup is kept.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetainReason {
    /// The newest backup: never deleted.
    Newest,
    /// The newest backup of one of the last `daily` days.
    Daily,
    /// The newest backup of one of the last `weekly` ISO weeks.
    Weekly,
    /// The newest backup of one of the last `monthly` months.
    Monthly,
    /// The newest backup of one of the last `yearly` years.
    Yearly,
    /// Dated after `now` (clock skew, or a clock set wrong): never deleted, never counted.
    Future,
    /// A manual backup: retention never deletes it (set by [`prune`](super::prune)).
    Manual,
}

/// What [`retain`] decided: every input key is in exactly one of the two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionDecision {
    /// Backups to keep, newest first, each with the reasons it is kept.
    pub keep: Vec<(String, Vec<RetainReason>)>,
    /// Backups to delete, newest first.
    pub delete: Vec<String>,
}

impl RetentionDecision {
    /// Whether `key` is kept.
    pub fn is_kept(&self, key: &str) -> bool {
        self.reasons(key).is_some()
    }

    /// The reasons `key` is kept, if it is.
    pub fn reasons(&self, key: &str) -> Option<&[RetainReason]> {
        self.keep
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.as_slice())
    }
}

/// Applies a grandfather-father-son policy to a set of backups. Pure: no I/O, no clock.
///
/// Semantics (those of restic's and borg's `--keep-daily` and friends):
///
/// * Backups are ordered newest first by `created`, ties broken by key (the greater key
///   counts as the newer), so the decision does not depend on the input order.
/// * For `daily: N`, walk that order and keep the first backup of each new UTC calendar day,
///   until N days have been counted. Days without a backup do not use up a slot, so a
///   schedule that stopped does not make pruning delete its last good backups. `weekly`
///   counts ISO weeks (Monday to Sunday, UTC), `monthly` calendar months, `yearly` years.
///   The rules are independent: one backup may be kept for several reasons.
/// * The newest backup is always kept ([`RetainReason::Newest`]).
/// * Backups dated after `now` are kept ([`RetainReason::Future`]) and fill no slot: a clock
///   that is off must not make a prune delete anything it does not understand.
/// * Keys should be unique; a key given twice is decided once, by its newest entry.
///
/// Consequences (checked by property tests): every key is either kept or deleted; applying
/// the policy to what it kept deletes nothing more; a larger policy keeps a superset; at most
/// [`RetentionPolicy::max_kept`] backups not in the future are kept.
///
/// # Examples
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use dr_core::backup::{retain, BackupInfo, RetainReason, RetentionPolicy};
///
/// let at = |d, h| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
/// let backups = [
///     BackupInfo::new("db/20-02", at(20, 2)),
///     BackupInfo::new("db/21-02", at(21, 2)),
///     BackupInfo::new("db/21-14", at(21, 14)),
/// ];
/// let policy = RetentionPolicy { daily: 2, weekly: 0, monthly: 0, yearly: 0 };
/// let decision = retain(&policy, &backups, at(22, 0));
/// assert_eq!(decision.delete, ["db/21-02"]);
/// assert_eq!(
///     decision.reasons("db/21-14"),
///     Some(&[RetainReason::Newest, RetainReason::Daily][..])
/// );
/// assert!(decision.is_kept("db/20-02"));
/// ```
pub fn retain(
    policy: &RetentionPolicy,
    backups: &[BackupInfo],
    now: DateTime<Utc>,
) -> RetentionDecision {
    let mut sorted: Vec<&BackupInfo> = backups.iter().collect();
    sorted.sort_by(|a, b| (b.created, &b.key).cmp(&(a.created, &a.key)));
    let mut seen = std::collections::HashSet::new();
    sorted.retain(|b| seen.insert(b.key.as_str()));

    let mut reasons: Vec<Vec<RetainReason>> = vec![Vec::new(); sorted.len()];
    if let Some(first) = reasons.first_mut() {
        first.push(RetainReason::Newest);
    }
    let past: Vec<usize> = (0..sorted.len())
        .filter(|&i| {
            let future = sorted[i].created > now;
            if future {
                reasons[i].push(RetainReason::Future);
            }
            !future
        })
        .collect();

    type Period = fn(&DateTime<Utc>) -> (i32, u32);
    let rules: [(u32, Period, RetainReason); 4] = [
        (
            policy.daily,
            |t| (t.year(), t.ordinal()),
            RetainReason::Daily,
        ),
        (
            policy.weekly,
            |t| (t.iso_week().year(), t.iso_week().week()),
            RetainReason::Weekly,
        ),
        (
            policy.monthly,
            |t| (t.year(), t.month()),
            RetainReason::Monthly,
        ),
        (policy.yearly, |t| (t.year(), 0), RetainReason::Yearly),
    ];
    for (count, period, reason) in rules {
        let mut last = None;
        let mut counted = 0u32;
        for &i in &past {
            if counted >= count {
                break;
            }
            let p = period(&sorted[i].created);
            if last != Some(p) {
                last = Some(p);
                counted += 1;
                reasons[i].push(reason);
            }
        }
    }

    let mut decision = RetentionDecision::default();
    for (b, mut why) in sorted.into_iter().zip(reasons) {
        if why.is_empty() {
            decision.delete.push(b.key.clone());
        } else {
            why.sort();
            decision.keep.push((b.key.clone(), why));
        }
    }
    decision
}

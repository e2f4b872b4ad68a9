//! Properties of the grandfather-father-son retention function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use dr_core::backup::{retain, BackupInfo, RetainReason, RetentionPolicy};
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

/// Up to 120 backups spread over the last ~3 years (minutes resolution), unique keys.
fn backups() -> impl Strategy<Value = Vec<BackupInfo>> {
    prop::collection::vec(0i64..(3 * 366 * 24 * 60), 0..120).prop_map(|ages| {
        ages.into_iter()
            .enumerate()
            .map(|(i, age)| BackupInfo::new(format!("b/{i:03}"), now() - Duration::minutes(age)))
            .collect()
    })
}

fn policy() -> impl Strategy<Value = RetentionPolicy> {
    (0u32..10, 0u32..8, 0u32..8, 0u32..4).prop_map(|(daily, weekly, monthly, yearly)| {
        RetentionPolicy {
            daily,
            weekly,
            monthly,
            yearly,
        }
    })
}

fn kept(d: &dr_core::backup::RetentionDecision) -> BTreeSet<String> {
    d.keep.iter().map(|(k, _)| k.clone()).collect()
}

proptest! {
    #[test]
    fn partitions_the_input(p in policy(), bs in backups()) {
        let d = retain(&p, &bs, now());
        let keep = kept(&d);
        let delete: BTreeSet<String> = d.delete.iter().cloned().collect();
        prop_assert!(keep.is_disjoint(&delete));
        let all: BTreeSet<String> = keep.union(&delete).cloned().collect();
        let input: BTreeSet<String> = bs.iter().map(|b| b.key.clone()).collect();
        prop_assert_eq!(all, input);
        prop_assert_eq!(d.keep.len() + d.delete.len(), bs.len());
        prop_assert!(d.keep.iter().all(|(_, r)| !r.is_empty()));
    }

    #[test]
    fn keeps_the_newest(p in policy(), bs in backups()) {
        let d = retain(&p, &bs, now());
        if let Some(newest) = bs.iter().max_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key))) {
            prop_assert!(d.reasons(&newest.key).unwrap().contains(&RetainReason::Newest));
        }
    }

    #[test]
    fn is_idempotent(p in policy(), bs in backups()) {
        let d = retain(&p, &bs, now());
        let keep = kept(&d);
        let rest: Vec<BackupInfo> = bs.iter().filter(|b| keep.contains(&b.key)).cloned().collect();
        let again = retain(&p, &rest, now());
        prop_assert!(again.delete.is_empty(), "{:?}", again.delete);
        prop_assert_eq!(again.keep, d.keep);
    }

    #[test]
    fn is_monotone(p in policy(), extra in policy(), bs in backups()) {
        let bigger = RetentionPolicy {
            daily: p.daily + extra.daily,
            weekly: p.weekly + extra.weekly,
            monthly: p.monthly + extra.monthly,
            yearly: p.yearly + extra.yearly,
        };
        let small = kept(&retain(&p, &bs, now()));
        let large = kept(&retain(&bigger, &bs, now()));
        prop_assert!(small.is_subset(&large));
    }

    #[test]
    fn keeps_a_bounded_number(p in policy(), bs in backups()) {
        let d = retain(&p, &bs, now());
        prop_assert!(d.keep.len() as u64 <= p.max_kept());
    }

    #[test]
    fn does_not_depend_on_input_order(p in policy(), mut bs in backups()) {
        let d = retain(&p, &bs, now());
        bs.reverse();
        prop_assert_eq!(retain(&p, &bs, now()), d);
    }
}

#[test]
fn gfs_example_daily_weekly_monthly() {
    // One backup a day at 02:00 for 100 days, ending 2026-11-21 (a Saturday).
    let bs: Vec<BackupInfo> = (0..100)
        .map(|d| {
            let t = Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap() - Duration::days(d);
            BackupInfo::new(t.format("db/%Y-%m-%d").to_string(), t)
        })
        .collect();
    let policy = RetentionPolicy {
        daily: 7,
        weekly: 4,
        monthly: 3,
        yearly: 1,
    };
    let d = retain(&policy, &bs, now());
    let keep: Vec<&str> = d.keep.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keep,
        [
            "db/2026-11-21", // newest, daily, weekly, monthly, yearly
            "db/2026-11-20",
            "db/2026-11-19",
            "db/2026-11-18",
            "db/2026-11-17",
            "db/2026-11-16", // Monday: still the week of the 21st
            "db/2026-11-15", // Sunday: daily, and last of ISO week 46
            "db/2026-11-08", // weekly
            "db/2026-11-01", // weekly
            "db/2026-10-31", // monthly (October)
            "db/2026-09-30", // monthly (September)
        ]
    );
    assert_eq!(
        d.reasons("db/2026-11-21").unwrap(),
        [
            RetainReason::Newest,
            RetainReason::Daily,
            RetainReason::Weekly,
            RetainReason::Monthly,
            RetainReason::Yearly
        ]
    );
    assert_eq!(
        d.reasons("db/2026-11-15").unwrap(),
        [RetainReason::Daily, RetainReason::Weekly]
    );
}

#[test]
fn ties_future_and_stopped_schedules() {
    let t = now() - Duration::days(3);
    // Same timestamp: the greater key counts as newer.
    let d = retain(
        &RetentionPolicy {
            daily: 1,
            weekly: 0,
            monthly: 0,
            yearly: 0,
        },
        &[BackupInfo::new("a", t), BackupInfo::new("b", t)],
        now(),
    );
    assert_eq!(d.delete, ["a"]);
    // Dated after now: kept, and fills no slot.
    let d = retain(
        &RetentionPolicy {
            daily: 1,
            weekly: 0,
            monthly: 0,
            yearly: 0,
        },
        &[
            BackupInfo::new("future", now() + Duration::hours(2)),
            BackupInfo::new("today", now() - Duration::hours(1)),
            BackupInfo::new("older", now() - Duration::days(1)),
        ],
        now(),
    );
    assert_eq!(
        d.reasons("future").unwrap(),
        [RetainReason::Newest, RetainReason::Future]
    );
    assert_eq!(d.reasons("today").unwrap(), [RetainReason::Daily]);
    assert_eq!(d.delete, ["older"]);
    // A schedule that stopped 90 days ago keeps its last 30 dailies all the same.
    let bs: Vec<BackupInfo> = (90..200)
        .map(|d| BackupInfo::new(format!("{d}"), now() - Duration::days(d)))
        .collect();
    let d = retain(
        &RetentionPolicy {
            daily: 30,
            weekly: 0,
            monthly: 0,
            yearly: 0,
        },
        &bs,
        now(),
    );
    assert_eq!(d.keep.len(), 30);
    // The default policy, and an empty input.
    assert_eq!(
        RetentionPolicy::default(),
        RetentionPolicy {
            daily: 30,
            weekly: 12,
            monthly: 12,
            yearly: 0
        }
    );
    assert_eq!(
        retain(&RetentionPolicy::default(), &[], now()),
        Default::default()
    );
}

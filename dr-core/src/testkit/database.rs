//! The [`DatabaseReplica`] conformance checks: what "not found" means, roles and lag as
//! `describe` reports them, promotion and what a read-back sees after it, typed refusals of
//! unsupported operations, snapshots and restores, and the retry class of each error.
//!
//! Every check takes the provider as `&dyn DatabaseReplica` and the instances to use from a
//! [`DatabaseFixture`]; it panics with a clear message when the provider misbehaves and
//! returns the provider's own errors where an operation that should work fails. Waits are
//! `tokio::time` sleeps, so the checks run on a paused clock (the simulated cloud) and on
//! real time (a real database) alike.

use std::time::Duration;

use crate::provider::{DatabaseReplica, DbRef, DbRole, DbState, Operation, RestorePoint};
use crate::{Error, Result, Retry};

/// The instances the checks use.
#[derive(Debug, Clone)]
pub struct DatabaseFixture {
    /// An available primary.
    pub primary: DbRef,
    /// An available replica of `primary`; promoted by [`promote`] (run it last).
    pub replica: DbRef,
    /// An instance that does not exist.
    pub missing: DbRef,
    /// A snapshot id not used yet in `primary`'s region.
    pub snapshot_id: String,
    /// Where a snapshot of `primary` is restored: an instance that does not exist yet, in
    /// `primary`'s region.
    pub restore_target: DbRef,
    /// How long waits (snapshot ready, instance available) may take.
    pub deadline: Duration,
}

fn assert_permanent(e: &Error, what: &str) {
    assert_eq!(
        e.retry(),
        Retry::Permanent,
        "{what}: must be a permanent error, got {e}"
    );
}

/// Runs every check, the promotion last.
///
/// # Errors
/// The first error of an operation that should have worked.
///
/// # Panics
/// When the provider misbehaves.
pub async fn run_all(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    not_found(db, fx).await?;
    describe_roles(db, fx).await?;
    promote_primary_refused(db, fx).await?;
    unsupported_is_typed(db, fx).await?;
    snapshots(db, fx).await?;
    promote(db, fx).await
}

/// "Not found" is `NotFound`, permanent, for `describe`, `promote` and `describe_snapshot`
/// of things that do not exist; `wait_available` ends at once on it instead of polling.
///
/// # Errors
/// None of its own (errors other than the expected ones panic).
///
/// # Panics
/// When an absent instance or snapshot is anything but `NotFound`.
pub async fn not_found(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    let e = db
        .describe(&fx.missing)
        .await
        .expect_err("describe of a missing instance must fail");
    assert!(e.is_not_found(), "describe of a missing instance: {e}");
    assert_permanent(&e, "describe of a missing instance");
    let e = db
        .promote(&fx.missing)
        .await
        .expect_err("promote of a missing instance must fail");
    assert!(
        e.is_not_found(),
        "promote of a missing instance: NotFound, got {e}"
    );
    let started = tokio::time::Instant::now();
    let e = db
        .wait_available(&fx.missing, fx.deadline)
        .await
        .expect_err("waiting for a missing instance must fail");
    assert!(
        e.is_not_found(),
        "wait_available of a missing instance: {e}"
    );
    assert!(
        started.elapsed() < fx.deadline,
        "wait_available must not poll a missing instance until its deadline"
    );
    if db.capabilities().supports(Operation::DescribeSnapshot) {
        let missing_snap = format!("{}-never-taken", fx.snapshot_id);
        let e = db
            .describe_snapshot(&fx.primary.region, &missing_snap)
            .await
            .expect_err("describe of a missing snapshot must fail");
        assert!(e.is_not_found(), "describe of a missing snapshot: {e}");
        assert_permanent(&e, "describe of a missing snapshot");
    }
    Ok(())
}

/// `describe` reports the primary as an available primary with an endpoint and no lag, and
/// the replica as an available replica of that primary with a measured lag.
///
/// # Errors
/// An error of `describe`.
///
/// # Panics
/// When a role, state, source or endpoint is wrong.
pub async fn describe_roles(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    let p = db.describe(&fx.primary).await?;
    assert_eq!(p.db, fx.primary, "describe answers for the instance asked");
    assert_eq!(p.state, DbState::Available, "{} is available", fx.primary);
    assert_eq!(p.role, DbRole::Primary, "{} is a primary", fx.primary);
    assert!(p.endpoint.is_some(), "an available primary has an endpoint");
    assert_eq!(p.replication_lag, None, "a primary has no replication lag");
    let r = db.describe(&fx.replica).await?;
    assert_eq!(r.state, DbState::Available, "{} is available", fx.replica);
    assert_eq!(
        r.role,
        DbRole::Replica {
            source: fx.primary.clone()
        },
        "{} replicates from {}",
        fx.replica,
        fx.primary
    );
    assert!(r.endpoint.is_some(), "an available replica has an endpoint");
    assert!(
        r.replication_lag.is_some(),
        "an available, connected replica reports its lag"
    );
    Ok(())
}

/// Promoting a primary is refused with a permanent `InvalidState`, and changes nothing.
///
/// # Errors
/// An error of `describe`.
///
/// # Panics
/// When the promotion is accepted, or refused otherwise.
pub async fn promote_primary_refused(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    let e = db
        .promote(&fx.primary)
        .await
        .expect_err("promoting a primary must be refused");
    assert!(
        matches!(e, Error::InvalidState { .. }),
        "promoting a primary: InvalidState, got {e}"
    );
    assert_permanent(&e, "promoting a primary");
    assert_eq!(db.describe(&fx.primary).await?.role, DbRole::Primary);
    Ok(())
}

/// Every operation the provider does not list in its capabilities answers a typed
/// `NotSupported` (a listing may also answer an empty list), never a panic or a silent
/// success.
///
/// # Errors
/// None of its own.
///
/// # Panics
/// When an unsupported operation does anything but refuse.
pub async fn unsupported_is_typed(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    let caps = db.capabilities();
    assert!(caps.supports(Operation::Describe), "describe is required");
    let refused = |what: &str, r: std::result::Result<(), Error>| match r {
        Err(Error::NotSupported { .. }) => {}
        other => panic!("{what} is not in the capabilities: NotSupported, got {other:?}"),
    };
    if !caps.supports(Operation::RestorePointInTime) {
        let r = db
            .restore_to_point_in_time(&fx.primary, &fx.restore_target, RestorePoint::Latest)
            .await;
        refused("restore_to_point_in_time", r.map(drop));
    }
    if !caps.supports(Operation::CreateSnapshot) {
        let r = db.create_snapshot(&fx.primary, &fx.snapshot_id).await;
        refused("create_snapshot", r.map(drop));
    }
    if !caps.supports(Operation::Reboot) {
        refused("reboot", db.reboot(&fx.primary, false).await.map(drop));
    }
    if !caps.supports(Operation::CreateReplica) {
        let r = db.create_replica(&fx.primary, &fx.restore_target).await;
        refused("create_replica", r.map(drop));
    }
    if !caps.supports(Operation::ListSnapshots) {
        match db.list_snapshots(&fx.primary, &fx.primary.region).await {
            Ok(list) => assert!(list.is_empty(), "an unsupported listing lists nothing"),
            Err(e) => refused("list_snapshots", Err(e)),
        }
    }
    Ok(())
}

/// Where snapshots are supported: a new snapshot is read back by `describe_snapshot` and
/// listed; its id cannot be taken twice; once available it restores into a new primary;
/// a second restore into the same target is `AlreadyExists`.
///
/// # Errors
/// An error of an operation that should have worked.
///
/// # Panics
/// When a read-back disagrees or a duplicate is accepted.
pub async fn snapshots(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    let caps = db.capabilities();
    if !caps.supports(Operation::CreateSnapshot) {
        return Ok(());
    }
    let region = fx.primary.region.as_str();
    let snap = db.create_snapshot(&fx.primary, &fx.snapshot_id).await?;
    assert_eq!(snap.id, fx.snapshot_id);
    assert_eq!(snap.source, fx.primary, "a snapshot names its source");
    let back = db.describe_snapshot(region, &fx.snapshot_id).await?;
    assert_eq!(back.source, fx.primary);
    assert_eq!(
        back.created, snap.created,
        "describe_snapshot reads back `created`"
    );
    let listed = db.list_snapshots(&fx.primary, region).await?;
    assert!(
        listed.iter().any(|s| s.id == fx.snapshot_id),
        "list_snapshots lists the new snapshot: {listed:?}"
    );
    assert!(
        listed.windows(2).all(|w| w[0].created >= w[1].created),
        "list_snapshots is newest first"
    );
    let e = db
        .create_snapshot(&fx.primary, &fx.snapshot_id)
        .await
        .expect_err("a snapshot id cannot be taken twice");
    assert!(
        matches!(e, Error::AlreadyExists { .. }),
        "a second snapshot with the same id: AlreadyExists, got {e}"
    );
    if !caps.supports(Operation::RestoreSnapshot) {
        return Ok(());
    }
    let ready = wait_snapshot(db, region, &fx.snapshot_id, fx.deadline).await?;
    let e = db
        .describe(&fx.restore_target)
        .await
        .expect_err("the restore target must not exist yet");
    assert!(e.is_not_found(), "restore target before the restore: {e}");
    db.restore_snapshot(&ready, &fx.restore_target).await?;
    let restored = db.wait_available(&fx.restore_target, fx.deadline).await?;
    assert_eq!(
        restored.role,
        DbRole::Primary,
        "a restored instance is a primary"
    );
    let e = db
        .restore_snapshot(&ready, &fx.restore_target)
        .await
        .expect_err("restoring onto an existing instance must be refused");
    assert!(
        matches!(e, Error::AlreadyExists { .. }),
        "a second restore into the same target: AlreadyExists, got {e}"
    );
    Ok(())
}

async fn wait_snapshot(
    db: &dyn DatabaseReplica,
    region: &str,
    id: &str,
    deadline: Duration,
) -> Result<crate::provider::DbSnapshot> {
    let start = tokio::time::Instant::now();
    loop {
        let s = db.describe_snapshot(region, id).await?;
        if s.available {
            return Ok(s);
        }
        assert!(
            start.elapsed() < deadline,
            "snapshot {region}/{id} not available within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Promotion: the replica becomes an available primary without lag (as `wait_available`
/// and `describe` read it back), and promoting it again is a permanent `InvalidState`, which
/// is how a retry learns the first attempt worked.
///
/// # Errors
/// An error of `promote`, `wait_available` or `describe`.
///
/// # Panics
/// When the read-back does not show a primary, or the second promotion is accepted.
pub async fn promote(db: &dyn DatabaseReplica, fx: &DatabaseFixture) -> Result<()> {
    db.promote(&fx.replica).await?;
    let after = db.wait_available(&fx.replica, fx.deadline).await?;
    assert_eq!(
        after.role,
        DbRole::Primary,
        "a promoted replica is a primary"
    );
    assert_eq!(
        after.replication_lag, None,
        "a primary has no replication lag"
    );
    let again = db.describe(&fx.replica).await?;
    assert_eq!(again.role, DbRole::Primary, "describe after promote");
    assert_eq!(again.state, DbState::Available);
    let e = db
        .promote(&fx.replica)
        .await
        .expect_err("promoting twice must be refused");
    assert!(
        matches!(e, Error::InvalidState { .. }),
        "a second promotion: InvalidState, got {e}"
    );
    assert_permanent(&e, "a second promotion");
    Ok(())
}

//! Point-in-time recovery from a WAL archive in a snapshot store: a base backup streamed
//! into the store, WAL segments shipped from the primary's `archive_command` spool, and a
//! restore into a new data directory on a free port, up to a `recovery_target_time` and to
//! the end of the archive, verified by the rows present.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{count, exec, fixture, primary_ref, REGION};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole, Operation, RestorePoint};
use dr_postgres::{PostgresDatabase, WalArchive};

/// Inserts rows `ids` one by one, returning each commit's time.
async fn insert(pg: &PostgresDatabase, ids: std::ops::Range<i32>) -> Vec<DateTime<Utc>> {
    let client = pg.client(&primary_ref()).await.expect("connect");
    let mut out = Vec::new();
    for id in ids {
        let row = client
            .query_one(
                "INSERT INTO t (id, at) VALUES ($1, clock_timestamp()) RETURNING at",
                &[&id],
            )
            .await
            .expect("insert");
        out.push(row.get(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_point_in_time_from_the_archive_in_a_store() {
    let Some(fx) = fixture().await else { return };
    let spool = fx.dir.path().join("wal-spool");
    std::fs::create_dir(&spool).expect("spool");
    if let Some((uid, gid)) = fx.pair.primary().run_as() {
        std::os::unix::fs::chown(&spool, Some(uid), Some(gid)).expect("chown spool");
    }
    let (backups, _) = fx.disk_backups("pitr-store");
    // Not encrypted here (the dump tests cover encryption): a base backup and a few 16 MiB
    // WAL segments through the cipher take a minute in a debug build.
    let archive = WalArchive::new(backups, &spool);
    let at_point = DbRef::new(REGION, "pitr-at");
    let latest = DbRef::new(REGION, "pitr-latest");
    let pg = fx
        .builder()
        .with_wal_archive(primary_ref(), archive.clone())
        .with_instance(
            at_point.clone(),
            fx.pair
                .spare("pitr-at")
                .expect("spare")
                .instance(Some(fx.password.clone())),
        )
        .with_instance(
            latest.clone(),
            fx.pair
                .spare("pitr-latest")
                .expect("spare")
                .instance(Some(fx.password.clone())),
        )
        .build()
        .expect("provider");
    assert!(pg.capabilities().supports(Operation::RestorePointInTime));

    // Archiving on: archive_mode needs a restart.
    exec(&pg, &primary_ref(), "ALTER SYSTEM SET archive_mode = on").await;
    exec(
        &pg,
        &primary_ref(),
        &format!(
            "ALTER SYSTEM SET archive_command = '{}'",
            archive.archive_command().replace('\'', "''")
        ),
    )
    .await;
    fx.pair.primary().restart().await.expect("restart");
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL)",
    )
    .await;
    insert(&pg, 1..6).await;
    let base = pg
        .base_backup_to_archive(&primary_ref(), "base-1")
        .await
        .expect("base backup into the store");
    assert!(base.size > 1_000_000, "{base:?}");
    assert!(base.sha256.is_some());

    let kept = insert(&pg, 6..11).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let target = Utc::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = insert(&pg, 11..16).await;
    assert!(kept.iter().all(|t| *t < target) && after.iter().all(|t| *t > target));

    // Close the segment holding the last rows and wait until it is archived and shipped.
    let client = pg.client(&primary_ref()).await.expect("connect");
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await
        .expect("switch WAL")
        .get(0);
    let mut shipped = 0;
    for _ in 0..150 {
        shipped += pg.ship_wal(&primary_ref()).await.expect("ship WAL");
        let last: Option<String> = client
            .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
            .await
            .expect("archiver")
            .get(0);
        if last.is_some_and(|l| l >= segment)
            && std::fs::read_dir(&spool).expect("spool").count() == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shipped >= 2, "{shipped} WAL files shipped");
    assert_eq!(std::fs::read_dir(&spool).expect("spool").count(), 0);

    // To the point in time: the rows committed before it, none after.
    let status = pg
        .restore_to_point_in_time(&primary_ref(), &at_point, RestorePoint::At(target))
        .await
        .unwrap_or_else(|e| {
            let log =
                std::fs::read_to_string(fx.dir.path().join("pitr-at.log")).unwrap_or_default();
            panic!("point-in-time restore: {e}\nserver log:\n{log}")
        });
    assert_eq!(status.role, DbRole::Primary);
    assert_eq!(count(&pg, &at_point, "SELECT count(*) FROM t").await, 10);
    assert_eq!(
        count(&pg, &at_point, "SELECT max(id)::int8 FROM t").await,
        10
    );

    // To the end of the archive: every row.
    pg.restore_to_point_in_time(&primary_ref(), &latest, RestorePoint::Latest)
        .await
        .expect("restore to the end of the archive");
    assert_eq!(count(&pg, &latest, "SELECT count(*) FROM t").await, 15);

    // A second restore into an existing instance is refused.
    let again = pg
        .restore_to_point_in_time(&primary_ref(), &at_point, RestorePoint::Latest)
        .await
        .unwrap_err();
    assert!(
        matches!(again, dr_core::Error::AlreadyExists { .. }),
        "{again}"
    );
}

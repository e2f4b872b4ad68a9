//! A primary and a streaming standby per test, on free 127.0.0.1 ports in a temporary
//! directory, stopped when the fixture is dropped.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dr_core::backup::Backups;
use dr_core::provider::{DbRef, DynSnapshotStore};
use dr_core::store::LocalDiskStore;
use dr_core::Secret;
use dr_postgres::{LocalPair, PgInstance, PostgresBuilder, PostgresDatabase, BINDIR_ENV};

pub const REGION: &str = "dc1";
pub const STANDBY_REGION: &str = "dc2";

pub fn primary_ref() -> DbRef {
    DbRef::new(REGION, "primary")
}

pub fn standby_ref() -> DbRef {
    DbRef::new(STANDBY_REGION, "standby")
}

/// Field order matters: the pair (servers) is stopped before its directory is removed.
pub struct Fixture {
    pub pair: LocalPair,
    pub password: Secret,
    pub bindir: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts a pair, or returns `None` (printing that the test is skipped) when PostgreSQL is
/// not installed and `CI` is unset; with `CI` set, a missing PostgreSQL panics.
pub async fn fixture() -> Option<Fixture> {
    let bindir = PathBuf::from(dr_core::testkit::standin(BINDIR_ENV, "PostgreSQL")?);
    let user = std::env::var("DR_PG_USER").ok().filter(|u| !u.is_empty());
    let dir = tempfile::Builder::new()
        .prefix("dr-pg-")
        .tempdir()
        .expect("a temporary directory");
    let password = Secret::new(dr_core::testkit::unique("pw"));
    let pair = LocalPair::start(dir.path(), Some(&bindir), user.as_deref(), password.clone())
        .await
        .unwrap_or_else(|e| panic!("starting a primary and a standby: {e}"));
    Some(Fixture {
        pair,
        password,
        bindir,
        dir,
    })
}

impl Fixture {
    /// The provider over the pair: `dc1/primary` and `dc2/standby`, plus `extra` instances.
    pub fn builder(&self) -> PostgresBuilder {
        PostgresBuilder::new()
            .with_bindir(&self.bindir)
            .with_connect_timeout(Duration::from_secs(3))
            .with_instance(primary_ref(), self.pair.primary_instance())
            .with_instance(standby_ref(), self.pair.standby_instance())
    }

    pub fn provider(&self) -> PostgresDatabase {
        self.builder().build().expect("provider")
    }

    /// An instance on the primary's server, database `dbname`.
    pub fn on_primary(&self, dbname: &str) -> PgInstance {
        self.pair.primary_instance().with_dbname(dbname)
    }

    /// Backups on local disk under the fixture's directory.
    pub fn disk_backups(&self, name: &str) -> (Backups, PathBuf) {
        let root = self.dir.path().join(name);
        let store: Arc<DynSnapshotStore> =
            Arc::new(LocalDiskStore::new(&root).expect("local disk store"));
        (Backups::new(store), root)
    }
}

/// Runs `sql` on `db` through the provider's connection.
pub async fn exec(pg: &PostgresDatabase, db: &DbRef, sql: &str) {
    pg.client(db)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} on {db}: {e:?}"));
}

/// Waits (up to 30 s) until `db` is out of recovery and takes writes: a promoted server may
/// still be finishing its promotion, or restarting for the standby built from it, when the
/// run's report is in. Panics with the last error, SQL state included, when it does not.
pub async fn writable(pg: &PostgresDatabase, db: &DbRef) {
    let mut last = String::new();
    for _ in 0..60 {
        match pg.client(db).await {
            Ok(c) => match c
                .query_one(
                    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
                    &[],
                )
                .await
            {
                Ok(row) if row.get::<_, bool>(0) => return,
                Ok(_) => last = "in recovery or read-only".into(),
                Err(e) => last = format!("{e:?}"),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{db} does not take writes after 30 s: {last}");
}

/// The first column of the first row of `sql` on `db`, as i64.
pub async fn count(pg: &PostgresDatabase, db: &DbRef, sql: &str) -> i64 {
    pg.client(db)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql} on {db}: {e}"))
        .get(0)
}

/// Waits until the standby has replayed everything the primary has written (its replay
/// position at or past the primary's current WAL position, compared directly), and reports
/// zero lag, up to 30 s.
pub async fn caught_up(pg: &PostgresDatabase) {
    use dr_core::provider::DatabaseReplica;
    for _ in 0..150 {
        let primary = pg
            .client(&primary_ref())
            .await
            .expect("connect to the primary");
        let lsn: String = primary
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .expect("the primary's WAL position")
            .get(0);
        let standby = pg
            .client(&standby_ref())
            .await
            .expect("connect to the standby");
        let replayed: bool = standby
            .query_one(
                "SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::text::pg_lsn) >= 0, false)",
                &[&lsn],
            )
            .await
            .expect("the standby's replay position")
            .get(0);
        let s = pg.describe(&standby_ref()).await.expect("describe standby");
        if replayed && s.replication_lag == Some(Duration::ZERO) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the standby did not catch up within 30 s");
}

//! [`PostgresDatabase`]: [`DatabaseReplica`] over self-managed PostgreSQL servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::backup::Backups;
use dr_core::provider::{
    Capabilities, DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus, Operation,
    RestorePoint,
};
use dr_core::{Error, Result};

use crate::client::{connect, Tools, PROVIDER};
use crate::config::PgInstance;
use crate::error::{map_pg, Ctx};
use crate::lag::{Proofs, Recovery};

pub(crate) struct Parts {
    pub(crate) instances: BTreeMap<DbRef, PgInstance>,
    pub(crate) tools: Tools,
    pub(crate) dumps: BTreeMap<String, Arc<Backups>>,
    pub(crate) dump_prefix: String,
    pub(crate) fence: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) promote_wait: Duration,
    pub(crate) archives: BTreeMap<DbRef, crate::WalArchive>,
}

/// [`DatabaseReplica`] over self-managed PostgreSQL (VMs, on-premises servers, or operators
/// such as CloudNativePG and Patroni that expose the same SQL), through `tokio-postgres` and
/// the PostgreSQL client tools. Built by [`PostgresBuilder`](crate::PostgresBuilder).
///
/// * **describe**: `Available` when the server answers; role from `pg_is_in_recovery()`;
///   for a standby, the source found from its WAL receiver (or `primary_conninfo`) among the
///   configured instances. The replication lag is measured, not configured: zero when the
///   standby has replayed everything its reachable primary has written (its
///   `pg_current_wal_lsn()`); otherwise the time since the last instant the standby is
///   known to have held everything (the last time this provider saw it caught up, or its
///   last replayed commit, whichever is later): the window of commits a promotion now
///   could lose. See [`measure_lag`](Self::measure_lag). An unreachable server is a temporary `Unavailable` error, an instance that
///   is not configured (or a database that does not exist) `NotFound`.
/// * **promote**: `pg_promote(wait => true)`; then, unless disabled, the old primary is
///   [fenced](Self::fence) where it is reachable. A standby whose replay was paused
///   replays all the WAL it has received before it is promoted (PostgreSQL ≥ 14): what is
///   lost is what it never received.
/// * **snapshots** are `pg_dump` dumps streamed into the region's [`Backups`] (manifest,
///   checksum, optional encryption); a restore verifies the dump first, creates the target
///   database and streams the dump into `psql`, dropping the database again if anything
///   fails. See [`create_snapshot`](DatabaseReplica::create_snapshot).
/// * **create_replica** builds a standby with `pg_basebackup -R` on an instance configured
///   with a [`LocalServer`](crate::LocalServer), then starts it; **reboot** restarts such an
///   instance with `pg_ctl`.
/// * **restore_to_point_in_time** from a [`WalArchive`](crate::WalArchive) configured for the
///   source: its newest base backup before the restore point, unpacked into a target with
///   a [`LocalServer`](crate::LocalServer), replayed from the archived WAL to
///   `recovery_target_time`, then promoted.
/// * **check_data** runs a plan's [data checks](dr_core::plan::DataCheck) through
///   [`check`](Self::check).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{DatabaseReplica, DbRef, DbRole};
/// use dr_core::Secret;
/// use dr_postgres::{PgInstance, PostgresBuilder};
///
/// let pw = Secret::new("s3cret");
/// let primary = DbRef::new("local", "primary");
/// let standby = DbRef::new("local", "standby");
/// let pg = PostgresBuilder::from_env()
///     .with_instance(primary.clone(), PgInstance::new("127.0.0.1", 5433).with_password(pw.clone()))
///     .with_instance(standby.clone(), PgInstance::new("127.0.0.1", 5434).with_password(pw))
///     .build()?;
/// let status = pg.describe(&standby).await?;
/// println!("standby lag: {:?}", status.replication_lag);
/// pg.promote(&standby).await?; // fences the old primary if it still answers
/// assert_eq!(pg.describe(&standby).await?.role, DbRole::Primary);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) instances: BTreeMap<DbRef, PgInstance>,
    pub(crate) tools: Tools,
    pub(crate) dumps: BTreeMap<String, Arc<Backups>>,
    pub(crate) dump_prefix: String,
    pub(crate) fence: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) promote_wait: Duration,
    pub(crate) archives: BTreeMap<DbRef, crate::WalArchive>,
    pub(crate) proofs: Proofs,
}

/// What [`PostgresDatabase::fence`] did to an old primary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FenceReport {
    /// The fenced instance.
    pub db: DbRef,
    /// Client sessions terminated.
    pub sessions_terminated: u64,
}

impl PostgresDatabase {
    pub(crate) fn from_parts(p: Parts) -> Self {
        PostgresDatabase {
            inner: Arc::new(Inner {
                instances: p.instances,
                tools: p.tools,
                dumps: p.dumps,
                dump_prefix: p.dump_prefix,
                fence: p.fence,
                connect_timeout: p.connect_timeout,
                promote_wait: p.promote_wait,
                archives: p.archives,
                proofs: Proofs::default(),
            }),
        }
    }

    /// The configured instance `db`.
    ///
    /// # Errors
    /// `NotFound` when `db` is not configured.
    pub fn instance(&self, db: &DbRef) -> Result<&PgInstance> {
        self.inner
            .instances
            .get(db)
            .ok_or_else(|| Error::not_found(PROVIDER, db.to_string()))
    }

    /// A connection to `db`'s database.
    ///
    /// # Errors
    /// `NotFound` (not configured, or its database does not exist); `Unavailable` when the
    /// server cannot be reached; `Unauthorized`.
    pub async fn client(&self, db: &DbRef) -> Result<tokio_postgres::Client> {
        let inst = self.instance(db)?;
        let resource = db.to_string();
        if inst.server.as_ref().is_some_and(|s| !s.is_initialized()) {
            return Err(Error::not_found(PROVIDER, resource));
        }
        connect(
            inst,
            &inst.dbname,
            self.inner.connect_timeout,
            Ctx::new("connect", &resource),
        )
        .await
    }

    pub(crate) fn map(&self, op: &str, db: &DbRef, e: tokio_postgres::Error) -> Error {
        map_pg(Ctx::new(op, &db.to_string()), e, self.inner.connect_timeout)
    }

    /// The configured instance at `host:port`, if any.
    pub(crate) fn find(&self, host: &str, port: u16) -> Option<&DbRef> {
        self.inner
            .instances
            .iter()
            .find(|(_, i)| i.host == host && i.port == port)
            .map(|(r, _)| r)
    }

    /// The instance a standby replicates from.
    pub(crate) fn source_of(&self, db: &DbRef, rec: &Recovery) -> DbRef {
        let found = rec
            .sender
            .iter()
            .chain(rec.conninfo.iter())
            .find_map(|(h, p)| self.find(h, *p));
        if let Some(r) = found {
            return r.clone();
        }
        if let Some(s) = self.instance(db).ok().and_then(|i| i.source.clone()) {
            return s;
        }
        let (h, p) = rec
            .sender
            .clone()
            .or_else(|| rec.conninfo.clone())
            .unwrap_or_else(|| ("unknown".into(), 0));
        DbRef::new(&db.region, format!("{h}:{p}"))
    }

    /// Fences `db`, an old primary: `ALTER SYSTEM SET default_transaction_read_only = on`,
    /// a configuration reload, then every other client session terminated, so that clients
    /// reconnect into read-only sessions and new writes are refused with SQLSTATE `25006`.
    ///
    /// This is a fence against applications that still hold the old address, not against a
    /// client that deliberately runs `SET default_transaction_read_only = off`; stop the old
    /// server (or close its port) for a hard fence. [`unfence`](Self::unfence) reverses it.
    ///
    /// # Errors
    /// `NotFound`; `Unavailable` when it cannot be reached; `InvalidState` when it is a
    /// standby.
    pub async fn fence(&self, db: &DbRef) -> Result<FenceReport> {
        let client = self.client(db).await?;
        let map = |e| self.map("fence", db, e);
        let standby: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(map)?
            .try_get(0)
            .map_err(map)?;
        if standby {
            return Err(Error::InvalidState {
                provider: PROVIDER.into(),
                resource: db.to_string(),
                state: "a standby".into(),
                operation: "fence".into(),
            });
        }
        client
            .batch_execute("ALTER SYSTEM SET default_transaction_read_only = on")
            .await
            .map_err(map)?;
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .map_err(map)?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                &[],
            )
            .await
            .map_err(map)?;
        let n: i64 = row.try_get(0).map_err(map)?;
        tracing::info!(%db, sessions = n, "old primary fenced: read-only, sessions terminated");
        Ok(FenceReport {
            db: db.clone(),
            sessions_terminated: u64::try_from(n).unwrap_or_default(),
        })
    }

    /// Lifts a [`fence`](Self::fence): `ALTER SYSTEM RESET default_transaction_read_only`
    /// and a reload.
    ///
    /// # Errors
    /// As [`fence`](Self::fence).
    pub async fn unfence(&self, db: &DbRef) -> Result<()> {
        let client = self.client(db).await?;
        client
            .batch_execute("ALTER SYSTEM RESET default_transaction_read_only")
            .await
            .map_err(|e| self.map("unfence", db, e))?;
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .map_err(|e| self.map("unfence", db, e))
    }

    fn server_of(&self, db: &DbRef, operation: &str) -> Result<&crate::LocalServer> {
        self.instance(db)?.server.as_ref().ok_or_else(|| {
            Error::not_supported(
                PROVIDER,
                format!("{operation} of {db}, which has no local server configured"),
            )
        })
    }
}

/// Host and port from a libpq key/value connection string (other keys are ignored).
pub(crate) fn conninfo_host_port(conninfo: &str) -> Option<(String, u16)> {
    let mut host = None;
    let mut port = 5432;
    for part in conninfo.split_whitespace() {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = v.trim_matches('\'');
        match k {
            "host" | "hostaddr" => host = Some(v.to_string()),
            "port" => port = v.parse().ok()?,
            _ => {}
        }
    }
    host.map(|h| (h, port))
}

#[async_trait]
impl DatabaseReplica for PostgresDatabase {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        let mut ops = vec![Describe, Promote, CheckData];
        if !self.inner.dumps.is_empty() {
            ops.extend([
                CreateSnapshot,
                DescribeSnapshot,
                ListSnapshots,
                CopySnapshot,
                RestoreSnapshot,
            ]);
        }
        if self.inner.instances.values().any(|i| i.server.is_some()) {
            ops.extend([Reboot, CreateReplica]);
            if !self.inner.archives.is_empty() {
                ops.push(RestorePointInTime);
            }
        }
        Capabilities::of(ops)
    }

    async fn describe(&self, db: &DbRef) -> Result<DbStatus> {
        let inst = self.instance(db)?;
        let client = self.client(db).await?;
        let standby: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(|e| self.map("describe", db, e))?
            .try_get(0)
            .map_err(|e| self.map("describe", db, e))?;
        let (role, replication_lag) = if standby {
            let rec = self.recovery(db, &client).await?;
            let source = self.source_of(db, &rec);
            let lag = self.lag(db, &client, rec, &source).await?;
            (DbRole::Replica { source }, lag.map(|l| l.window))
        } else {
            (DbRole::Primary, None)
        };
        Ok(DbStatus {
            db: db.clone(),
            state: DbState::Available,
            role,
            endpoint: Some(inst.endpoint()),
            replication_lag,
            latest_restorable_time: None,
        })
    }

    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot> {
        self.dump(db, snapshot_id).await
    }

    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot> {
        self.dump_info(region, snapshot_id).await
    }

    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        self.list_dumps(db, region).await
    }

    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot> {
        self.copy_dump(snapshot, target_region, target_id).await
    }

    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        self.restore_dump(snapshot, target).await?;
        self.describe(target).await
    }

    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus> {
        self.restore_pitr(source, target, at).await?;
        self.describe(target).await
    }

    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        let client = self.client(replica).await?;
        let map = |e| self.map("promote", replica, e);
        let standby: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(map)?
            .try_get(0)
            .map_err(map)?;
        if !standby {
            return Err(Error::InvalidState {
                provider: PROVIDER.into(),
                resource: replica.to_string(),
                state: "a primary".into(),
                operation: "promote".into(),
            });
        }
        let rec = self.recovery(replica, &client).await?;
        let old_primary = self.source_of(replica, &rec);
        let wait = i32::try_from(self.inner.promote_wait.as_secs()).unwrap_or(i32::MAX);
        let promoted: bool = client
            .query_one("SELECT pg_promote(true, $1)", &[&wait])
            .await
            .map_err(map)?
            .try_get(0)
            .map_err(map)?;
        if !promoted {
            return Err(Error::Timeout {
                operation: format!("promoting {replica}"),
                after: self.inner.promote_wait,
            });
        }
        tracing::info!(db = %replica, "standby promoted");
        if self.inner.fence && self.inner.instances.contains_key(&old_primary) {
            match self.fence(&old_primary).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(db = %old_primary, error = %e, "old primary not fenced")
                }
            }
        }
        self.describe(replica).await
    }

    async fn check_data(
        &self,
        db: &DbRef,
        checks: &[dr_core::plan::DataCheck],
    ) -> Result<Vec<Option<String>>> {
        let checks = checks
            .iter()
            .map(crate::DataCheck::from_plan)
            .collect::<Result<Vec<_>>>()?;
        Ok(self
            .check(db, &checks)
            .await?
            .into_iter()
            .map(|c| c.value)
            .collect())
    }

    async fn reboot(&self, db: &DbRef, _force_failover: bool) -> Result<DbStatus> {
        let server = self.server_of(db, "reboot")?;
        server.restart().await?;
        self.describe(db).await
    }

    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus> {
        let server = self.server_of(replica, "create_replica")?;
        if server.is_initialized() {
            return Err(Error::AlreadyExists {
                provider: PROVIDER.into(),
                resource: replica.to_string(),
            });
        }
        let src = self.instance(source)?;
        server.base_backup(src).await?;
        server.start().await?;
        self.describe(replica).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_yields_host_and_port_only() {
        let c = "user=postgres password='x y' host=127.0.0.1 port=5433 sslmode=prefer";
        // `password='x y'` splits oddly, which does not matter: only host and port are read.
        assert_eq!(conninfo_host_port(c), Some(("127.0.0.1".into(), 5433)));
        assert_eq!(conninfo_host_port("host=db1"), Some(("db1".into(), 5432)));
        assert_eq!(conninfo_host_port(""), None);
    }
}

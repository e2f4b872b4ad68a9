//! Dumps as snapshots: `pg_dump` streamed into a [`Backups`] store, verified before it is
//! streamed back into `psql`.
//!
//! A dump of `db` taken as snapshot `id` is the backup `{prefix}{region}/{id}.sql` of the
//! region's store (plain SQL, as `pg_dump --no-owner --no-privileges` writes it), with a
//! manifest naming its source. Nothing is staged on local disk: `pg_dump`'s output goes
//! through the digest (and the cipher) straight into the store, and a restore streams the
//! verified backup straight into `psql`'s standard input.

use std::process::Stdio;
use std::sync::Arc;

use chrono::Utc;
use dr_core::backup::{Backups, RetentionClass, VerifyStatus, WriteOptions};
use dr_core::provider::{DbRef, DbSnapshot};
use dr_core::{Error, Result};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::client::{collect_stderr, connect, finish, output_stream, quote_ident, spawn, PROVIDER};
use crate::database::PostgresDatabase;
use crate::error::Ctx;

/// Manifest metadata: the region of the dumped instance.
pub const META_REGION: &str = "dr-postgres-region";
/// Manifest metadata: the id of the dumped instance.
pub const META_INSTANCE: &str = "dr-postgres-instance";
/// Manifest metadata: the database dumped.
pub const META_DBNAME: &str = "dr-postgres-dbname";

impl PostgresDatabase {
    fn dumps(&self, region: &str, operation: &str) -> Result<&Arc<Backups>> {
        self.inner.dumps.get(region).ok_or_else(|| {
            Error::not_supported(
                PROVIDER,
                format!("{operation} in region {region}, which has no dump store configured"),
            )
        })
    }

    /// The store key of snapshot `id` in `region`.
    pub fn dump_key(&self, region: &str, id: &str) -> String {
        format!("{}{region}/{id}.sql", self.inner.dump_prefix)
    }

    fn snapshot_of(
        &self,
        region: &str,
        id: &str,
        m: &dr_core::backup::BackupManifest,
    ) -> DbSnapshot {
        let source = match (m.metadata.get(META_REGION), m.metadata.get(META_INSTANCE)) {
            (Some(r), Some(i)) => DbRef::new(r, i),
            _ => DbRef::new(region, m.source.clone()),
        };
        DbSnapshot {
            region: region.to_string(),
            id: id.to_string(),
            source,
            created: m.created,
            available: true,
        }
    }

    pub(crate) async fn dump(&self, db: &DbRef, id: &str) -> Result<DbSnapshot> {
        let inst = self.instance(db)?;
        let backups = self.dumps(&db.region, "create_snapshot")?;
        let key = self.dump_key(&db.region, id);
        match backups.manifest(&key).await {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    provider: PROVIDER.into(),
                    resource: format!("snapshot {}/{id}", db.region),
                })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let resource = db.to_string();
        let ctx = Ctx::new("create_snapshot", &resource);
        // Fail early, and with the driver's error classes, when the database is not there.
        drop(self.client(db).await?);
        let created = Utc::now();
        let mut cmd = self
            .inner
            .tools
            .command("pg_dump", Some((inst, &inst.dbname)), None);
        cmd.args([
            "--format=plain",
            "--no-owner",
            "--no-privileges",
            "--quote-all-identifiers",
        ])
        .stdout(Stdio::piped());
        let child = spawn(&mut cmd, "pg_dump", ctx)?;
        let secret = inst.password.as_ref().map(|p| p.expose().to_string());
        let stream = output_stream(
            child,
            "pg_dump",
            secret,
            "create_snapshot".into(),
            resource.clone(),
        )?;
        let opts = WriteOptions::default()
            .with_created(created)
            .with_metadata(META_REGION, &db.region)
            .with_metadata(META_INSTANCE, &db.id)
            .with_metadata(META_DBNAME, &inst.dbname);
        let manifest = backups
            .write(&key, stream, &resource, RetentionClass::Manual, opts)
            .await?;
        tracing::info!(%db, key, bytes = manifest.size, "dump stored");
        Ok(self.snapshot_of(&db.region, id, &manifest))
    }

    pub(crate) async fn dump_info(&self, region: &str, id: &str) -> Result<DbSnapshot> {
        let backups = self.dumps(region, "describe_snapshot")?;
        let key = self.dump_key(region, id);
        let m = backups.manifest(&key).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found(PROVIDER, format!("snapshot {region}/{id}"))
            } else {
                e
            }
        })?;
        Ok(self.snapshot_of(region, id, &m))
    }

    pub(crate) async fn list_dumps(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        let Ok(backups) = self.dumps(region, "list_snapshots") else {
            return Ok(Vec::new());
        };
        let prefix = format!("{}{region}/", self.inner.dump_prefix);
        let mut out = Vec::new();
        for m in backups.list(&prefix).await? {
            let Some(id) = m
                .key
                .strip_prefix(&prefix)
                .and_then(|k| k.strip_suffix(".sql"))
            else {
                continue;
            };
            let snap = self.snapshot_of(region, id, &m);
            if &snap.source == db {
                out.push(snap);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub(crate) async fn copy_dump(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot> {
        let from = self.dumps(&snapshot.region, "copy_snapshot")?;
        let to = self.dumps(target_region, "copy_snapshot")?;
        let key = self.dump_key(&snapshot.region, &snapshot.id);
        let target_key = self.dump_key(target_region, target_id);
        match to.manifest(&target_key).await {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    provider: PROVIDER.into(),
                    resource: format!("snapshot {target_region}/{target_id}"),
                })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let m = from.manifest(&key).await?;
        // The copy is verified as it is read: a corrupt source fails the copy.
        let stream = from.restore(&key).await?;
        let mut opts = WriteOptions::default().with_created(m.created);
        for (k, v) in &m.metadata {
            opts = opts.with_metadata(k, v);
        }
        let copied = to
            .write(&target_key, stream, &m.source, m.retention_class, opts)
            .await?;
        Ok(self.snapshot_of(target_region, target_id, &copied))
    }

    /// Restores snapshot `snapshot` into a new database: the dump is verified in full first
    /// (a corrupt or tampered dump is refused with `ChecksumMismatch` before the target is
    /// touched), then `CREATE DATABASE`, then the dump is streamed into `psql` in a single
    /// transaction with `ON_ERROR_STOP`. If anything fails after the database was created,
    /// it is dropped again.
    pub(crate) async fn restore_dump(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<()> {
        let backups = self.dumps(&snapshot.region, "restore_snapshot")?;
        let inst = self.instance(target)?;
        let key = self.dump_key(&snapshot.region, &snapshot.id);
        let resource = target.to_string();
        let report = backups.verify(&key).await?;
        match report.status {
            VerifyStatus::Ok { .. } => {}
            VerifyStatus::MissingObject | VerifyStatus::MissingManifest => {
                return Err(Error::not_found(
                    PROVIDER,
                    format!("snapshot {}/{}", snapshot.region, snapshot.id),
                ))
            }
            VerifyStatus::WrongKey { key_id } => {
                return Err(Error::Unauthorized {
                    provider: PROVIDER.into(),
                    message: format!("dump {key} is encrypted with key {key_id:?}, not given"),
                })
            }
            other => {
                return Err(Error::ChecksumMismatch {
                    provider: PROVIDER.into(),
                    resource: format!("dump {key}"),
                    expected: "the content its manifest records".into(),
                    actual: format!("{other:?}"),
                })
            }
        }
        let admin = connect(
            inst,
            &inst.maintenance_db,
            self.inner.connect_timeout,
            Ctx::new("restore_snapshot", &resource),
        )
        .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&inst.dbname)))
            .await
            .map_err(|e| self.map("restore_snapshot", target, e))?;
        let result = self.feed_psql(&key, backups, target).await;
        if let Err(e) = &result {
            tracing::warn!(db = %target, error = %e, "restore failed: dropping the new database");
            let drop_sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&inst.dbname)
            );
            if let Err(de) = admin.batch_execute(&drop_sql).await {
                tracing::warn!(db = %target, error = %de, "could not drop the partial database");
            }
        }
        result
    }

    async fn feed_psql(&self, key: &str, backups: &Backups, target: &DbRef) -> Result<()> {
        let inst = self.instance(target)?;
        let resource = target.to_string();
        let ctx = Ctx::new("restore_snapshot", &resource);
        let mut stream = backups.restore(key).await?;
        let mut cmd = self
            .inner
            .tools
            .command("psql", Some((inst, &inst.dbname)), None);
        cmd.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-o",
            "/dev/null",
        ])
        .stdin(Stdio::piped());
        let mut child = spawn(&mut cmd, "psql", ctx)?;
        let stderr = collect_stderr(&mut child);
        let mut stdin = child.stdin.take().ok_or_else(|| Error::InvalidResponse {
            provider: PROVIDER.into(),
            operation: "restore_snapshot".into(),
            message: "psql has no standard input".into(),
        })?;
        let secret = inst.password.as_ref().map(|p| p.expose());
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Err(e) = stdin.write_all(&bytes).await {
                        // psql stopped reading: its exit status and stderr say why.
                        drop(stdin);
                        finish(child, stderr, "psql", secret, ctx).await?;
                        return Err(Error::io("writing the dump into psql", e));
                    }
                }
                Err(e) => {
                    // Corrupt or truncated: psql must not commit what it received.
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(e);
                }
            }
        }
        stdin
            .shutdown()
            .await
            .map_err(|e| Error::io("closing psql's input", e))?;
        drop(stdin);
        finish(child, stderr, "psql", secret, ctx).await.map(drop)
    }
}

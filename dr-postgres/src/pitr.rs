//! Point-in-time recovery from a WAL archive in a [`SnapshotStore`](dr_core::provider::SnapshotStore):
//! base backups (`pg_basebackup -Ft -D -`, streamed into the store), WAL segments shipped
//! into it from the primary's `archive_command` spool, and a restore into a new data
//! directory replayed up to a `recovery_target_time`.
//!
//! Layout under the archive's prefix (default `pitr/{region}/{instance}/`): `base/{label}.tar`
//! (one tar of the data directory, the WAL needed for consistency included) and
//! `wal/{segment}`, each a [`Backups`] object with its manifest (checksum, optional
//! encryption), verified as it is read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use dr_core::backup::{BackupManifest, Backups, RetentionClass, WriteOptions};
use dr_core::provider::{ByteStream, DbRef, RestorePoint};
use dr_core::{Error, Result};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{collect_stderr, finish, output_stream, spawn, PROVIDER};
use crate::database::PostgresDatabase;
use crate::error::Ctx;

/// Manifest metadata of a base backup: the WAL position it starts from is not known to the
/// tar stream, so its start time is kept (`created`) and this marks the object's kind.
const META_KIND: &str = "dr-postgres-pitr";

/// A WAL archive for one primary: the store its base backups and WAL segments go to, and
/// the local spool directory its `archive_command` copies completed segments into.
///
/// Give the primary [`archive_command`](Self::archive_command) (with `archive_mode = on`),
/// call [`PostgresDatabase::ship_wal`] periodically (it uploads what the spool holds and
/// removes it), and take base backups with [`PostgresDatabase::base_backup_to_archive`].
///
/// # Examples
///
/// ```no_run
/// # fn main() -> dr_core::Result<()> {
/// use std::sync::Arc;
/// use dr_core::backup::Backups;
/// use dr_core::store::LocalDiskStore;
/// use dr_postgres::WalArchive;
///
/// let store = Arc::new(LocalDiskStore::new("/var/backups/pitr")?);
/// let archive = WalArchive::new(Backups::new(store), "/var/lib/postgresql/wal-spool");
/// println!("archive_command = '{}'", archive.archive_command());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WalArchive {
    pub(crate) backups: Arc<Backups>,
    pub(crate) spool: PathBuf,
    pub(crate) prefix: Option<String>,
}

impl WalArchive {
    /// Archive into `backups`, from the spool directory `spool`.
    pub fn new(backups: Backups, spool: impl Into<PathBuf>) -> Self {
        WalArchive {
            backups: Arc::new(backups),
            spool: spool.into(),
            prefix: None,
        }
    }

    /// Key prefix in the store (default `pitr/{region}/{instance}/`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The spool directory.
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// The primary's `archive_command`: copy a completed segment into the spool under a
    /// temporary name, then rename it (so the shipper never uploads half a segment);
    /// refuse to overwrite a segment already there.
    pub fn archive_command(&self) -> String {
        let spool = self.spool.display().to_string().replace('\'', "");
        format!("test ! -f '{spool}/%f' && cp %p '{spool}/.%f.tmp' && mv '{spool}/.%f.tmp' '{spool}/%f'")
    }

    fn prefix_for(&self, db: &DbRef) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("pitr/{}/{}/", db.region, db.id))
    }
}

/// Whether `name` is a file PostgreSQL archives: a WAL segment (24 hex digits), a timeline
/// history file, or a backup history file.
fn archivable(name: &str) -> bool {
    let hex = |s: &str| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
    hex(name)
        || name
            .strip_suffix(".history")
            .is_some_and(|t| t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        || name
            .split_once('.')
            .is_some_and(|(seg, rest)| hex(seg) && rest.ends_with(".backup"))
}

/// A local file as a [`ByteStream`], read in chunks.
fn file_stream(file: tokio::fs::File, what: String) -> ByteStream {
    futures::stream::unfold(Some(file), move |file| {
        let what = what.clone();
        async move {
            let mut f = file?;
            let mut buf = BytesMut::with_capacity(256 * 1024);
            match f.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), Some(f))),
                Err(e) => Some((Err(Error::io(format!("reading {what}"), e)), None)),
            }
        }
    })
    .boxed()
}

impl PostgresDatabase {
    fn archive(&self, db: &DbRef, operation: &str) -> Result<&WalArchive> {
        self.inner.archives.get(db).ok_or_else(|| {
            Error::not_supported(
                PROVIDER,
                format!("{operation} of {db}, which has no WAL archive configured"),
            )
        })
    }

    /// Takes a base backup of `db` into its WAL archive as `base/{label}.tar`:
    /// `pg_basebackup -Ft -D - -X fetch --checkpoint=fast`, streamed through the backup
    /// module (digest, optional encryption) into the store, never staged on disk.
    ///
    /// # Errors
    /// `NotSupported` without a WAL archive for `db`; `AlreadyExists`; the tool's error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(pg: dr_postgres::PostgresDatabase) -> dr_core::Result<()> {
    /// use dr_core::provider::DbRef;
    /// let m = pg.base_backup_to_archive(&DbRef::new("dc1", "orders"), "2026-12-01").await?;
    /// println!("{} bytes", m.size);
    /// # Ok(()) }
    /// ```
    pub async fn base_backup_to_archive(&self, db: &DbRef, label: &str) -> Result<BackupManifest> {
        let archive = self.archive(db, "base backup")?;
        let inst = self.instance(db)?;
        let key = format!("{}base/{label}.tar", archive.prefix_for(db));
        match archive.backups.manifest(&key).await {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    provider: PROVIDER.into(),
                    resource: format!("base backup {key}"),
                })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let resource = db.to_string();
        let ctx = Ctx::new("base backup", &resource);
        let created = Utc::now();
        let mut cmd =
            self.inner
                .tools
                .command("pg_basebackup", Some((inst, &inst.maintenance_db)), None);
        cmd.args(["-D", "-", "-Ft", "-X", "fetch", "--checkpoint=fast"])
            .stdout(Stdio::piped());
        let child = spawn(&mut cmd, "pg_basebackup", ctx)?;
        let secret = inst.password.as_ref().map(|p| p.expose().to_string());
        let stream = output_stream(
            child,
            "pg_basebackup",
            secret,
            "base backup".into(),
            resource.clone(),
        )?;
        let opts = WriteOptions::default()
            .with_created(created)
            .with_metadata(META_KIND, "base");
        let m = archive
            .backups
            .write(&key, stream, &resource, RetentionClass::Manual, opts)
            .await?;
        tracing::info!(%db, key, bytes = m.size, "base backup stored");
        Ok(m)
    }

    /// Uploads every completed file in `db`'s WAL spool into its archive as `wal/{name}`,
    /// then removes it from the spool; returns how many were shipped. A file already in the
    /// archive is not uploaded again (it was shipped before a crash of the shipper) and is
    /// removed once its manifest is found.
    ///
    /// # Errors
    /// `NotSupported` without a WAL archive; `Io` reading the spool; the store's errors
    /// (a file whose upload failed stays in the spool for the next call).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(pg: dr_postgres::PostgresDatabase) -> dr_core::Result<()> {
    /// use dr_core::provider::DbRef;
    /// let shipped = pg.ship_wal(&DbRef::new("dc1", "orders")).await?;
    /// println!("{shipped} WAL files archived");
    /// # Ok(()) }
    /// ```
    pub async fn ship_wal(&self, db: &DbRef) -> Result<usize> {
        let archive = self.archive(db, "ship WAL")?;
        let prefix = format!("{}wal/", archive.prefix_for(db));
        let spool = &archive.spool;
        let mut names = Vec::new();
        let dir = std::fs::read_dir(spool)
            .map_err(|e| Error::io(format!("reading the WAL spool {}", spool.display()), e))?;
        for entry in dir {
            let entry = entry.map_err(|e| Error::io("reading the WAL spool", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if archivable(&name) {
                names.push(name);
            }
        }
        names.sort();
        let mut shipped = 0;
        for name in names {
            let path = spool.join(&name);
            let key = format!("{prefix}{name}");
            let exists = match archive.backups.manifest(&key).await {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e),
            };
            if !exists {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                let modified = file
                    .metadata()
                    .await
                    .and_then(|m| m.modified())
                    .map(DateTime::<Utc>::from)
                    .unwrap_or_else(|_| Utc::now());
                let opts = WriteOptions::default()
                    .with_created(modified)
                    .with_metadata(META_KIND, "wal");
                archive
                    .backups
                    .write(
                        &key,
                        file_stream(file, name.clone()),
                        &db.to_string(),
                        RetentionClass::Manual,
                        opts,
                    )
                    .await?;
                shipped += 1;
            }
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(shipped)
    }

    /// Restores `source`'s archive into `target` (an instance configured with a
    /// [`LocalServer`](crate::LocalServer) whose data directory does not exist yet): the
    /// newest base backup taken before the restore point is verified and unpacked, the
    /// archived WAL fetched (verified as it is read), and the server started in archive
    /// recovery up to `recovery_target_time` (or to the end of the archive for
    /// [`RestorePoint::Latest`]), then promoted.
    pub(crate) async fn restore_pitr(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<()> {
        let archive = self.archive(source, "restore_to_point_in_time")?;
        let server = self.instance(target)?.server.as_ref().ok_or_else(|| {
            Error::not_supported(
                PROVIDER,
                format!("restore_to_point_in_time into {target}, which has no local server"),
            )
        })?;
        if server.is_initialized() {
            return Err(Error::AlreadyExists {
                provider: PROVIDER.into(),
                resource: target.to_string(),
            });
        }
        let prefix = archive.prefix_for(source);
        let bases = archive.backups.list(&format!("{prefix}base/")).await?;
        let base = bases
            .into_iter()
            .filter(|m| match at {
                RestorePoint::At(t) => m.created < t,
                RestorePoint::Latest => true,
            })
            .max_by_key(|m| m.created)
            .ok_or_else(|| {
                Error::not_found(
                    PROVIDER,
                    format!("a base backup of {source} taken before the restore point"),
                )
            })?;
        let resource = target.to_string();
        let data_dir = server.data_dir().to_path_buf();
        let wal_dir = {
            let mut name = data_dir.as_os_str().to_owned();
            name.push(".wal-restore");
            PathBuf::from(name)
        };
        for dir in [&data_dir, &wal_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            if let Some((uid, gid)) = server.run_as() {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .map_err(|e| Error::io(format!("chown {}", dir.display()), e))?;
            }
        }
        std::fs::set_permissions(
            &data_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| Error::io(format!("chmod {}", data_dir.display()), e))?;
        // The whole base backup is verified before anything is unpacked.
        self.verified(&archive.backups, &base.key).await?;
        self.untar(&archive.backups, &base.key, &data_dir, server, &resource)
            .await?;
        // Every archived WAL file is fetched (each verified as it is read).
        for m in archive.backups.list(&format!("{prefix}wal/")).await? {
            let Some(name) = m.key.rsplit('/').next().filter(|n| archivable(n)) else {
                continue;
            };
            let path = wal_dir.join(name);
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            let mut stream = archive.backups.restore(&m.key).await?;
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk?)
                    .await
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            }
            file.flush()
                .await
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            if let Some((uid, gid)) = server.run_as() {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| Error::io(format!("chown {}", path.display()), e))?;
            }
        }
        let mut settings = vec![
            (
                "restore_command".to_string(),
                format!("cp '{}/%f' '%p'", wal_dir.display()),
            ),
            // The restored server must not archive into its source's spool.
            ("archive_mode".to_string(), "off".to_string()),
            ("recovery_target_action".to_string(), "promote".to_string()),
        ];
        if let RestorePoint::At(t) = at {
            settings.push((
                "recovery_target_time".to_string(),
                t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
            ));
        }
        server.write_settings_with(&settings)?;
        let signal = data_dir.join("recovery.signal");
        std::fs::write(&signal, b"")
            .map_err(|e| Error::io(format!("writing {}", signal.display()), e))?;
        if let Some((uid, gid)) = server.run_as() {
            std::os::unix::fs::chown(&signal, Some(uid), Some(gid))
                .map_err(|e| Error::io(format!("chown {}", signal.display()), e))?;
        }
        server.start().await?;
        self.wait_promoted(target).await
    }

    async fn verified(&self, backups: &Backups, key: &str) -> Result<()> {
        let report = backups.verify(key).await?;
        match report.status {
            dr_core::backup::VerifyStatus::Ok { .. } => Ok(()),
            other => Err(Error::ChecksumMismatch {
                provider: PROVIDER.into(),
                resource: format!("base backup {key}"),
                expected: "the content its manifest records".into(),
                actual: format!("{other:?}"),
            }),
        }
    }

    async fn untar(
        &self,
        backups: &Backups,
        key: &str,
        data_dir: &Path,
        server: &crate::LocalServer,
        resource: &str,
    ) -> Result<()> {
        let ctx = Ctx::new("restore_to_point_in_time", resource);
        let mut cmd = tokio::process::Command::new("tar");
        cmd.arg("-x").arg("-C").arg(data_dir).arg("-f").arg("-");
        if let Some((uid, gid)) = server.run_as() {
            cmd.uid(uid).gid(gid);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = spawn(&mut cmd, "tar", ctx)?;
        let stderr = collect_stderr(&mut child);
        let mut stdin = child.stdin.take().ok_or_else(|| Error::InvalidResponse {
            provider: PROVIDER.into(),
            operation: "restore_to_point_in_time".into(),
            message: "tar has no standard input".into(),
        })?;
        let mut stream = backups.restore(key).await?;
        while let Some(chunk) = stream.next().await {
            let bytes = match chunk {
                Ok(b) => b,
                Err(e) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(e);
                }
            };
            if let Err(e) = stdin.write_all(&bytes).await {
                drop(stdin);
                finish(child, stderr, "tar", None, ctx).await?;
                return Err(Error::io("writing the base backup into tar", e));
            }
        }
        stdin
            .shutdown()
            .await
            .map_err(|e| Error::io("closing tar's input", e))?;
        drop(stdin);
        finish(child, stderr, "tar", None, ctx).await.map(drop)
    }

    /// Waits (up to the promote wait) until `db` answers and is out of recovery.
    async fn wait_promoted(&self, db: &DbRef) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.inner.promote_wait;
        loop {
            if let Ok(client) = self.client(db).await {
                let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await;
                if let Ok(false) = row.and_then(|r| r.try_get::<_, bool>(0)) {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    operation: format!("point-in-time recovery of {db} (see its server log)"),
                    after: self.inner.promote_wait,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archivable_names() {
        assert!(archivable("000000010000000000000003"));
        assert!(archivable("00000002.history"));
        assert!(archivable("000000010000000000000002.00000028.backup"));
        assert!(!archivable(".000000010000000000000003.tmp"));
        assert!(!archivable("000000010000000000000003.partial"));
        assert!(!archivable("README"));
    }
}

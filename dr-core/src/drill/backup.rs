//! The backup-verification drill: restore a randomly chosen recent backup into a test
//! target, verify it, time it, clean up.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{cell, NotCleaned};
use crate::backup::{BackupManifest, Backups};
use crate::duration::human;
use crate::provider::{sha256_stream, DynSnapshotStore, PutOptions};
use crate::{Clock, Error, Result};

/// A check of the restored data beyond its checksums: a dump that parses, a row count, a
/// known record.
#[async_trait]
pub trait DataCheck: std::fmt::Debug + Send + Sync + 'static {
    /// Checks the restored copy at `key` in `target`; the `Ok` text says what was checked.
    ///
    /// # Errors
    /// What is wrong with the data (the drill then fails).
    async fn check(&self, target: &DynSnapshotStore, key: &str) -> Result<String>;
}

/// A [`DataCheck`]: the restored copy starts with `prefix` (a dump's magic bytes, a CSV
/// header) and is at least `min_size` bytes long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartsWith {
    /// The bytes it starts with.
    pub prefix: Vec<u8>,
    /// Its least size.
    pub min_size: u64,
}

#[async_trait]
impl DataCheck for StartsWith {
    async fn check(&self, target: &DynSnapshotStore, key: &str) -> Result<String> {
        let got = target.get(key).await?;
        let size = got.meta.size;
        let mut stream = got.stream;
        let mut head = Vec::with_capacity(self.prefix.len());
        while head.len() < self.prefix.len() {
            match stream.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => break,
            }
        }
        let bad = |message: String| Error::InvalidResponse {
            provider: "drill".into(),
            operation: "data check".into(),
            message,
        };
        if !head.starts_with(&self.prefix) {
            return Err(bad(format!(
                "{key} does not start with the expected {} bytes",
                self.prefix.len()
            )));
        }
        if size < self.min_size {
            return Err(bad(format!(
                "{key} has {size} bytes, fewer than {}",
                self.min_size
            )));
        }
        Ok(format!(
            "starts with the expected {} bytes, {size} bytes in all",
            self.prefix.len()
        ))
    }
}

/// What the backup-verification drill did and found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackupDrillReport {
    /// `true` when the backup restored, matched its checksums and passed the data check.
    pub passed: bool,
    /// Seed of the choice.
    pub seed: u64,
    /// When the drill started.
    pub started_at: DateTime<Utc>,
    /// Backups that were candidates (recent enough).
    pub candidates: usize,
    /// The backup restored.
    pub backup: Option<BackupManifest>,
    /// Where it was restored to (in the target store).
    pub restored_to: Option<String>,
    /// The restore: reading, decrypting and verifying the backup and writing the copy.
    #[serde(rename = "restore_seconds", with = "crate::duration::seconds_opt")]
    pub restore_time: Option<Duration>,
    /// The restored copy's SHA-256, read back from the target.
    pub restored_sha256: Option<String>,
    /// The checksum verification's result.
    pub checksums: Result<String, String>,
    /// The data check's result (`Ok("none configured")` without one).
    pub data_check: Result<String, String>,
    /// What was removed afterwards.
    pub cleaned_up: Vec<String>,
    /// What could not be removed, and why.
    pub not_cleaned: Vec<NotCleaned>,
}

impl BackupDrillReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"report serialisation failed: {e}\"}}"))
    }

    /// The report as Markdown, readable on its own.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed {
            "✅ passed"
        } else {
            "❌ failed"
        };
        let _ = writeln!(out, "# Backup verification drill: {verdict}\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Started | {} |", self.started_at.to_rfc3339());
        let _ = writeln!(
            out,
            "| Chosen (seed {}) | {} of {} recent backups |",
            self.seed,
            self.backup
                .as_ref()
                .map_or_else(|| "none".into(), |b| format!("`{}`", cell(&b.key))),
            self.candidates
        );
        if let Some(b) = &self.backup {
            let _ = writeln!(
                out,
                "| Backup | {} bytes of {}, taken {} |",
                b.size,
                cell(&b.source),
                b.created.to_rfc3339()
            );
        }
        if let Some(t) = &self.restored_to {
            let _ = writeln!(out, "| Restored to | `{}` |", cell(t));
        }
        let _ = writeln!(
            out,
            "| Restore time | {} |",
            self.restore_time.map_or_else(|| "—".into(), human)
        );
        let show = |r: &Result<String, String>| match r {
            Ok(s) => format!("✅ {}", cell(s)),
            Err(e) => format!("❌ {}", cell(e)),
        };
        let _ = writeln!(out, "| Checksums | {} |", show(&self.checksums));
        let _ = writeln!(out, "| Data check | {} |\n", show(&self.data_check));
        super::write_cleanup(&mut out, &self.cleaned_up, &self.not_cleaned, "##");
        out
    }
}

/// The backup-verification drill: from the backups under `prefix` taken within `max_age`,
/// restores one chosen with `seed` into `target` (a test store or bucket), verifies it
/// against its manifest as it streams and reads the copy's SHA-256 back, runs the data
/// check, and deletes the copy.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(backups: dr_core::backup::Backups, test_bucket: std::sync::Arc<dr_core::provider::DynSnapshotStore>) {
/// use std::time::Duration;
/// use dr_core::drill::BackupDrill;
///
/// let report = BackupDrill::new(backups, test_bucket)
///     .prefix("db/orders/")
///     .max_age(Duration::from_secs(7 * 86_400))
///     .seed(20261201)
///     .run()
///     .await;
/// println!("{}", report.to_markdown());
/// # }
/// ```
#[derive(Debug)]
pub struct BackupDrill {
    backups: Backups,
    target: Arc<DynSnapshotStore>,
    prefix: String,
    max_age: Duration,
    seed: u64,
    check: Option<Arc<dyn DataCheck>>,
    clock: Clock,
    tag: String,
}

impl BackupDrill {
    /// A drill of `backups`, restoring into `target`; by default every backup of the last
    /// 7 days, seed 0, no data check.
    pub fn new(backups: Backups, target: Arc<DynSnapshotStore>) -> Self {
        BackupDrill {
            backups,
            target,
            prefix: String::new(),
            max_age: Duration::from_secs(7 * 86_400),
            seed: 0,
            check: None,
            clock: Clock::default(),
            tag: "drill".into(),
        }
    }

    /// Only backups under `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Only backups taken within `age` of now.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Seed of the choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The data check run on the restored copy.
    pub fn data_check(mut self, check: Arc<dyn DataCheck>) -> Self {
        self.check = Some(check);
        self
    }

    /// The clock (the restore time and "recent" follow it).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The key prefix of the copy in the target (`drill` by default): copies go to
    /// `{tag}/{seed}/{key}`.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }

    /// Runs the drill. Never fails: every outcome is in the report.
    pub async fn run(&self) -> BackupDrillReport {
        let started_at = self.clock.now();
        let mut report = BackupDrillReport {
            passed: false,
            seed: self.seed,
            started_at,
            candidates: 0,
            backup: None,
            restored_to: None,
            restore_time: None,
            restored_sha256: None,
            checksums: Err("not run".into()),
            data_check: Err("not run".into()),
            cleaned_up: Vec::new(),
            not_cleaned: Vec::new(),
        };
        let mut recent: Vec<BackupManifest> = match self.backups.list(&self.prefix).await {
            Ok(all) => all
                .into_iter()
                .filter(|m| {
                    (started_at - m.created)
                        .to_std()
                        .is_ok_and(|age| age <= self.max_age)
                        || m.created >= started_at
                })
                .collect(),
            Err(e) => {
                report.checksums = Err(format!("cannot list the backups: {e}"));
                return report;
            }
        };
        recent.sort_by(|a, b| a.key.cmp(&b.key));
        report.candidates = recent.len();
        if recent.is_empty() {
            report.checksums = Err(format!(
                "no backup under `{}` taken within {}",
                self.prefix,
                human(self.max_age)
            ));
            return report;
        }
        let pick = (splitmix(self.seed) % recent.len() as u64) as usize;
        let chosen = recent.swap_remove(pick);
        let copy = format!("{}/{}/{}", self.tag, self.seed, chosen.key);
        report.backup = Some(chosen.clone());

        // Restore: the stream verifies the manifest's checksums as it goes and fails with
        // ChecksumMismatch before its last chunk.
        let t0 = tokio::time::Instant::now();
        let restored = match self.backups.restore(&chosen.key).await {
            Ok(stream) => {
                let opts = match &chosen.sha256 {
                    Some(sha) => PutOptions::default().with_expected_sha256(sha.clone()),
                    None => PutOptions::default(),
                };
                self.target.put(&copy, stream, opts).await
            }
            Err(e) => Err(e),
        };
        match restored {
            Ok(_) => {
                report.restore_time = Some(t0.elapsed());
                report.restored_to = Some(copy.clone());
                // Read the copy back: its digest must be the backup's content digest.
                match self.target.get(&copy).await {
                    Ok(got) => match sha256_stream(got.stream).await {
                        Ok((sha, size)) => {
                            report.restored_sha256 = Some(sha.clone());
                            report.checksums = match &chosen.sha256 {
                                Some(want) if *want != sha => Err(format!(
                                    "the restored copy's SHA-256 {sha} is not the manifest's {want}"
                                )),
                                _ if size != chosen.size => Err(format!(
                                    "the restored copy has {size} bytes, the manifest {}",
                                    chosen.size
                                )),
                                Some(_) => Ok(format!(
                                    "SHA-256 of {size} bytes matches the manifest"
                                )),
                                None => Ok(format!(
                                    "every encrypted chunk authenticated and the keyed digest of {size} bytes matches the manifest"
                                )),
                            };
                        }
                        Err(e) => report.checksums = Err(format!("reading the copy back: {e}")),
                    },
                    Err(e) => report.checksums = Err(format!("reading the copy back: {e}")),
                }
                report.data_check = match &self.check {
                    None => Ok("none configured".into()),
                    Some(c) => c
                        .check(self.target.as_ref(), &copy)
                        .await
                        .map_err(|e| e.to_string()),
                };
            }
            Err(e) => {
                report.checksums = Err(e.to_string());
            }
        }

        // Clean up the copy, also after a failed restore (a partial object may exist).
        match self.target.head(&copy).await {
            Ok(_) => match self.target.delete(&copy).await {
                Ok(()) => report
                    .cleaned_up
                    .push(format!("object {copy} in the target")),
                Err(e) => report.not_cleaned.push(NotCleaned {
                    resource: format!("object {copy} in the target"),
                    reason: e.to_string(),
                }),
            },
            Err(Error::NotFound { .. }) => {}
            Err(e) => report.not_cleaned.push(NotCleaned {
                resource: format!("object {copy} in the target"),
                reason: format!("cannot tell whether it exists: {e}"),
            }),
        }
        report.passed = report.checksums.is_ok() && report.data_check.is_ok();
        report
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

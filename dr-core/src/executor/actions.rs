//! Each action mapped to provider calls, and the read-backs that tell whether a
//! non-idempotent action's effect is already in place.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::approval::{ApprovalRequest, Decision};
use super::event::RunEvent;
use super::Run;
use crate::graph::{Action, SecretSource, Step};
use crate::provider::{DbRole, DbState, HealthStatus, RestorePoint, SnapshotStoreExt};
use crate::{Error, Result, Secret};

/// How often `VerifyHealth` probes.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// What one step recorded while running, kept across its attempts.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Data-loss window (replica lag, snapshot or restore-point age).
    pub(crate) data_loss: Option<Duration>,
    /// Rollout revision read before the first attempt of a rollout step.
    pub(crate) revision_before: Option<u64>,
    /// The read-back before the first attempt has run.
    pub(crate) prechecked: bool,
}

/// What a read-back says about a non-idempotent action's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The effect is in place.
    Done,
    /// The effect is not there: the action may be (re-)executed.
    NotDone,
    /// Cannot tell: do not retry blindly.
    Unknown,
}

fn age(incident: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (incident - at).to_std().unwrap_or_default()
}

fn exists<T>(r: Result<T>) -> Observed {
    match r {
        Ok(_) => Observed::Done,
        Err(e) if e.is_not_found() => Observed::NotDone,
        Err(_) => Observed::Unknown,
    }
}

impl Run<'_> {
    /// Reads back whether `step`'s effect is in place. Records the replica lag of a
    /// promotion (before it is promoted) on the way.
    pub(crate) async fn observe(&self, step: &Step, rec: &mut Record) -> Observed {
        let p = &self.exec.providers;
        match &step.action {
            Action::PromoteReplica { db } => {
                let Ok(dbp) = p.database(&db.region) else {
                    return Observed::Unknown;
                };
                match crate::reads::patiently(|| dbp.describe(db)).await {
                    Ok(status) => match status.role {
                        DbRole::Primary => Observed::Done,
                        DbRole::Replica { .. } => {
                            if rec.data_loss.is_none() {
                                rec.data_loss = status.replication_lag;
                            }
                            Observed::NotDone
                        }
                    },
                    Err(_) => Observed::Unknown,
                }
            }
            Action::RestoreSnapshot { target, .. } | Action::RestorePointInTime { target, .. } => {
                match p.database(&target.region) {
                    Ok(dbp) => exists(crate::reads::patiently(|| dbp.describe(target)).await),
                    Err(_) => Observed::Unknown,
                }
            }
            Action::CreateReplica { replica, .. } => match p.database(&replica.region) {
                Ok(dbp) => exists(crate::reads::patiently(|| dbp.describe(replica)).await),
                Err(_) => Observed::Unknown,
            },
            Action::CreateDbSnapshot { db, snapshot_id } => match p.database(&db.region) {
                Ok(dbp) => exists(
                    crate::reads::patiently(|| dbp.describe_snapshot(&db.region, snapshot_id))
                        .await,
                ),
                Err(_) => Observed::Unknown,
            },
            Action::RebootDatabase { db, .. } => match p.database(&db.region) {
                Ok(dbp) => match crate::reads::patiently(|| dbp.describe(db)).await {
                    Ok(s) if s.state == DbState::Rebooting => Observed::Done,
                    _ => Observed::Unknown,
                },
                Err(_) => Observed::Unknown,
            },
            Action::RolloutRestart { workload } | Action::RolloutUndo { workload, .. } => {
                let Ok(cp) = p.cluster(&workload.cluster) else {
                    return Observed::Unknown;
                };
                match crate::reads::patiently(|| cp.rollout_status(workload)).await {
                    Ok(status) => match rec.revision_before {
                        // The revision before the first attempt is unknown: cannot tell.
                        None if rec.prechecked => Observed::Unknown,
                        None => {
                            // Before the first attempt: remember where the rollout stood.
                            rec.revision_before = Some(status.revision);
                            Observed::NotDone
                        }
                        Some(before) if status.revision > before => Observed::Done,
                        Some(_) => Observed::NotDone,
                    },
                    Err(_) => Observed::Unknown,
                }
            }
            // Idempotent actions and approvals are not read back.
            _ => Observed::NotDone,
        }
    }

    /// Runs one attempt of `step`'s action.
    pub(crate) async fn execute(&self, step: &Step, rec: &mut Record) -> Result<()> {
        let p = &self.exec.providers;
        let started = Instant::now();
        match &step.action {
            Action::Notify {
                channel,
                notification,
            } => p.notifier(channel)?.notify(channel, notification).await,
            Action::Approval { prompt } => {
                self.emit(RunEvent::ApprovalRequested {
                    at: self.clock.now(),
                    step: step.id.clone(),
                    prompt: prompt.clone(),
                });
                let Some(hook) = &self.exec.approvals else {
                    return Err(Error::ApprovalDenied {
                        step: step.id.clone(),
                        reason: "no approval hook configured".into(),
                    });
                };
                let request = ApprovalRequest {
                    plan: self.graph.plan.clone(),
                    scenario: self.graph.scenario.clone(),
                    step: step.id.clone(),
                    service: step.service.clone(),
                    prompt: prompt.clone(),
                };
                match hook.decide(&request).await? {
                    Decision::Approve => Ok(()),
                    Decision::Reject { reason } => Err(Error::ApprovalDenied {
                        step: step.id.clone(),
                        reason,
                    }),
                }
            }
            Action::RebootDatabase { db, force_failover } => {
                p.database(&db.region)?.reboot(db, *force_failover).await?;
                Ok(())
            }
            Action::PromoteReplica { db } => {
                let dbp = p.database(&db.region)?;
                if rec.data_loss.is_none() {
                    rec.data_loss = dbp.describe(db).await?.replication_lag;
                }
                dbp.promote(db).await?;
                Ok(())
            }
            Action::RestoreSnapshot {
                source,
                snapshot_region,
                target,
            } => {
                let snaps = p
                    .database(snapshot_region)?
                    .list_snapshots(source, snapshot_region)
                    .await?;
                let newest = snaps
                    .into_iter()
                    .filter(|s| s.available)
                    .max_by_key(|s| s.created)
                    .ok_or_else(|| {
                        Error::not_found(
                            "executor",
                            format!("available snapshot of {source} in {snapshot_region}"),
                        )
                    })?;
                rec.data_loss = Some(age(self.incident, newest.created));
                p.database(&target.region)?
                    .restore_snapshot(&newest, target)
                    .await?;
                Ok(())
            }
            Action::RestorePointInTime { source, target, at } => {
                let point = match at {
                    RestorePoint::At(t) => Some(*t),
                    RestorePoint::Latest => {
                        p.database(&source.region)?
                            .describe(source)
                            .await?
                            .latest_restorable_time
                    }
                };
                rec.data_loss = point.map(|t| age(self.incident, t));
                p.database(&target.region)?
                    .restore_to_point_in_time(source, target, *at)
                    .await?;
                Ok(())
            }
            Action::WaitDatabase { db } => {
                p.database(&db.region)?
                    .wait_available(db, step.timeout)
                    .await?;
                Ok(())
            }
            Action::CreateDbSnapshot { db, snapshot_id } => {
                p.database(&db.region)?
                    .create_snapshot(db, snapshot_id)
                    .await?;
                Ok(())
            }
            Action::CreateReplica { source, replica } => {
                p.database(&replica.region)?
                    .create_replica(source, replica)
                    .await?;
                Ok(())
            }
            Action::SwitchDns {
                zone,
                name,
                set_id,
                values,
            } => {
                let dns = p.dns(zone)?;
                let mut record = dns.get_record_set(zone, name, set_id.as_deref()).await?;
                if &record.values == values {
                    return Ok(());
                }
                record.values = values.clone();
                let change = dns.switch_record(&record).await?;
                if !change.in_sync {
                    let remaining = step.timeout.saturating_sub(started.elapsed());
                    dns.wait_change(&change.id, remaining).await?;
                }
                Ok(())
            }
            Action::ApplyManifests {
                cluster,
                namespace,
                manifests,
            } => {
                p.cluster(cluster)?
                    .apply(cluster, namespace, manifests)
                    .await
            }
            Action::Scale { workload, replicas } => {
                p.cluster(&workload.cluster)?
                    .scale(workload, *replicas)
                    .await
            }
            Action::RolloutRestart { workload } => {
                p.cluster(&workload.cluster)?
                    .rollout_restart(workload)
                    .await?;
                Ok(())
            }
            Action::RolloutUndo { workload, revision } => {
                p.cluster(&workload.cluster)?
                    .rollout_undo(workload, *revision)
                    .await?;
                Ok(())
            }
            Action::SetSecret {
                cluster,
                namespace,
                secret,
                key,
                value,
            } => {
                let value = match value {
                    SecretSource::Literal { value } => value.clone(),
                    SecretSource::DatabaseEndpoint { db, template } => {
                        let dbp = p.database(&db.region)?;
                        let endpoint = dbp.describe(db).await?.endpoint.ok_or_else(|| {
                            Error::InvalidResponse {
                                provider: dbp.name().to_string(),
                                operation: "describe".into(),
                                message: format!("{db} has no endpoint"),
                            }
                        })?;
                        match template {
                            Some(t) => Secret::new(t.replace("{endpoint}", &endpoint)),
                            None => Secret::new(endpoint),
                        }
                    }
                };
                let data = BTreeMap::from([(key.clone(), value)]);
                p.cluster(cluster)?
                    .patch_secret(cluster, namespace, secret, &data)
                    .await
            }
            Action::WaitWorkload { workload } => {
                p.cluster(&workload.cluster)?
                    .wait_ready(workload, step.timeout)
                    .await?;
                Ok(())
            }
            Action::IsolateWorkload { workload } => {
                p.cluster(&workload.cluster)?.isolate(workload).await
            }
            Action::ExportResources {
                cluster,
                namespace,
                kinds,
                store,
                key,
            } => {
                let manifests = p
                    .cluster(cluster)?
                    .export(cluster, namespace, kinds)
                    .await?;
                let mut yaml = String::new();
                for m in &manifests {
                    yaml.push_str("---\n");
                    yaml.push_str(m.body.trim_end());
                    yaml.push('\n');
                }
                p.store(store)?.put_bytes(key, yaml.into()).await?;
                Ok(())
            }
            Action::VerifyHealth { target, .. } => {
                // Probes until healthy; the per-attempt timeout (which names the check) ends it.
                let probe = p.probe()?;
                loop {
                    if probe.check(target).await? == HealthStatus::Healthy {
                        return Ok(());
                    }
                    tokio::time::sleep(PROBE_INTERVAL).await;
                }
            }
        }
    }
}

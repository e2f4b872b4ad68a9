//! `dump-restore`: a database is lost or unusable; restore it in full from a dump in a store.

use serde::{Deserialize, Serialize};

use super::common::{owner, preamble, repoint, unknown, verify_data};
use super::{Kind, Result};
use crate::backup::{Backups, RetentionClass, WriteOptions};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::provider::DbRef;
use crate::simulation::Simulation;

/// A database is lost or unusable, and the way back is its dump in a store (S3, Blob
/// Storage, GCS): pick the newest dump (or the one named), verify it against its manifest's
/// checksum before anything is touched, restore it into a new instance
/// (`INSTANCE-from-dump`), repoint the application (secret, restart, health check). The old
/// instance is kept for a rollback.
///
/// To check the data after the restore (a row count, a checksum query), add a `command` step
/// after the `database restored` milestone.
///
/// ```yaml
/// - name: restore-from-dump
///   kind: dump-restore
///   database: orders-db
///   store: backups-west
///   prefix: dumps/orders-db/     # the default: dumps/DATABASE/
///   # dump: dumps/orders-db/2026-11-30.sql   (default: the newest)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpRestore {
    /// The database (by plan name).
    pub database: String,
    /// The store holding its dumps (by plan name).
    pub store: String,
    /// Where its dumps are in the store (default `dumps/DATABASE/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The dump to restore (default: the newest under the prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

impl DumpRestore {
    /// Where the dumps are.
    pub fn prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("dumps/{}/", self.database))
    }
}

impl Kind for DumpRestore {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let db = g
            .plan
            .database(&self.database)
            .ok_or_else(|| unknown("database", &self.database))?;
        let gate = preamble(g);
        let owner = owner(g, &db.name);
        let prefix = self.prefix();
        let verified = g.add(
            format!("{}/verify-dump", db.name),
            Action::new(crate::step::dump::VerifyDump {
                store: self.store.clone(),
                prefix: prefix.clone(),
                key: self.dump.clone(),
            }),
            owner,
            gate,
        );
        let target = DbRef::new(&db.region, format!("{}-from-dump", db.instance()));
        let waited = Action::new(crate::step::dump::RestoreDump {
            store: self.store.clone(),
            prefix,
            key: self.dump.clone(),
            source: DbRef::new(&db.region, db.instance()),
            target: target.clone(),
        });
        let r = g.add_call(
            format!("{}/restore-dump", db.name),
            waited.clone(),
            owner,
            vec![verified],
        );
        let w = g.add_wait(
            format!("{}/wait", db.name),
            Action::new(crate::step::database::WaitDatabase { db: target.clone() }),
            &waited,
            owner,
            vec![r],
        );
        // The dump schedule bounds the loss (the age of the newest dump is measured at run
        // time).
        if let Some(b) = &db.backups {
            g.db_loss.insert(db.name.clone(), b.every.get());
        }
        g.reached("database restored", &w);
        let w = verify_data(g, db, &target, owner, w);
        repoint(g, db, &target, std::slice::from_ref(&w))?;
        g.risk(
            owner,
            format!(
                "`{}` is kept as it is for a rollback; delete it once the restored data is verified",
                db.instance()
            ),
        );
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.database("database", &self.database);
        c.store("store", &self.store);
        if let Some(d) = &self.dump {
            if !d.starts_with(&self.prefix()) {
                let message = format!("dump `{d}` is not under prefix `{}`", self.prefix());
                c.problem("dump", message);
            }
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // The instance is lost; two dumps are in the store, aged like the simulated
        // snapshots (0.6 and 1.6 backup intervals; 6 and 30 hours without a schedule), and
        // the database service knows them as snapshots (as dr-postgres does with a dump
        // store).
        let Some(db) = sim.plan().database(&self.database) else {
            return;
        };
        let primary = DbRef::new(&db.region, db.instance());
        let cloud = sim.cloud();
        cloud.fail_database(&primary);
        if sim.plan().stores.iter().all(|s| s.name != self.store) {
            return;
        }
        let backups = Backups::new(cloud.store(&self.store));
        let now = cloud.clock().now();
        let every = db
            .backups
            .as_ref()
            .map_or(std::time::Duration::from_secs(10 * 3600), |b| b.every.get());
        for fraction in [1.6, 0.6] {
            let age = std::time::Duration::from_secs_f64(every.as_secs_f64() * fraction);
            let created = now - chrono::Duration::from_std(age).unwrap_or_default();
            let key = format!("{}{}.sql", self.prefix(), created.format("%Y-%m-%dT%H%M"));
            let body = format!("-- pg_dump of {} at {created}\n", db.name);
            let data = futures::stream::iter([Ok(bytes::Bytes::from(body))]);
            let written = backups
                .write(
                    &key,
                    Box::pin(data),
                    &format!("database {}", db.name),
                    RetentionClass::Daily,
                    WriteOptions::default().with_created(created),
                )
                .await;
            match written {
                Ok(_) => cloud.add_snapshot(
                    &primary,
                    &db.region,
                    crate::step::dump::snapshot_id(&key),
                    age,
                ),
                Err(e) => tracing::warn!(%key, error = %e, "could not write a dump"),
            }
        }
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "database {} is lost: restore it from the newest dump in store {}",
            self.database, self.store
        )
    }
}

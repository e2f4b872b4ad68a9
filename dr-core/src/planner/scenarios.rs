//! The steps of each scenario, as the runbooks perform them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::build::{databases_of, service_index, GraphBuilder};
use super::PlanningError;
use crate::graph::{Action, SecretSource};
use crate::plan::{Cluster, Database, DbStrategy, ScenarioKind, Service, Workload};
use crate::provider::{
    DbRef, DbState, Manifest, Notification, RestorePoint, Severity, WorkloadRef,
};

type Result<T, E = PlanningError> = std::result::Result<T, E>;

pub(super) fn build(g: &mut GraphBuilder<'_>) -> Result<()> {
    match g.scenario.kind {
        ScenarioKind::RegionFailover => region_failover(g),
        ScenarioKind::DatabaseFailure => database_failure(g),
        ScenarioKind::PointInTimeRestore => point_in_time_restore(g),
        ScenarioKind::ClusterRebuild => cluster_rebuild(g),
        ScenarioKind::ApplicationRollback => workload_action(g, WorkloadOp::Undo),
        ScenarioKind::ServiceRestart => workload_action(g, WorkloadOp::Restart),
        ScenarioKind::SecurityIsolation => security_isolation(g),
    }?;
    epilogue(g);
    Ok(())
}

fn required<'a>(g: &GraphBuilder<'a>, field: &str, v: &'a Option<String>) -> Result<&'a str> {
    v.as_deref().ok_or_else(|| PlanningError::Unrecoverable {
        what: format!("scenario `{}`", g.scenario.name),
        why: format!("it needs `{field}`"),
    })
}

fn unknown(what: &'static str, name: &str) -> PlanningError {
    PlanningError::Unknown {
        what,
        name: name.to_string(),
    }
}

/// Services in recovery order: by tier, then as declared.
fn ordered<'a>(g: &GraphBuilder<'a>) -> Vec<&'a Service> {
    let mut v: Vec<&Service> = g.plan.services.iter().collect();
    v.sort_by_key(|s| s.tier);
    v
}

/// The service whose steps a database's recovery is reported under: a service that is only
/// the database, else the first (most critical) service using it.
fn owner<'a>(g: &GraphBuilder<'a>, db: &str) -> Option<&'a str> {
    g.owner_of(db)
}

/// Start notifications (not gating anything) and the approval gate every change waits for.
fn preamble(g: &mut GraphBuilder<'_>) -> Vec<String> {
    let severity = match g.scenario.kind {
        ScenarioKind::RegionFailover | ScenarioKind::SecurityIsolation => Severity::Critical,
        _ => Severity::Warning,
    };
    for channel in g.scenario.notify.clone() {
        let notification = Notification {
            severity,
            title: format!("{}: {} started", g.plan.name, g.scenario.name),
            body: format!(
                "Disaster recovery scenario `{}` ({}) is starting.",
                g.scenario.name,
                g.scenario.kind.name()
            ),
        };
        g.add_optional(
            format!("notify-start:{channel}"),
            Action::new(crate::step::notify::Notify {
                channel,
                notification,
            }),
            None,
            vec![],
        );
    }
    if g.scenario.approval {
        let prompt = format!(
            "Approve {} `{}` of plan `{}`",
            g.scenario.kind.name(),
            g.scenario.name,
            g.plan.name
        );
        vec![g.add(
            "approval",
            Action::new(crate::step::approval::Approval { prompt }),
            None,
            vec![],
        )]
    } else {
        vec![]
    }
}

/// End notifications after everything else.
fn epilogue(g: &mut GraphBuilder<'_>) {
    if g.scenario.notify.is_empty() || !g.has_steps() {
        return;
    }
    let sinks = g.sinks();
    for channel in g.scenario.notify.clone() {
        let notification = Notification {
            severity: Severity::Info,
            title: format!("{}: {} finished", g.plan.name, g.scenario.name),
            body: format!("Recovery steps of `{}` have completed.", g.scenario.name),
        };
        g.add_optional(
            format!("notify-end:{channel}"),
            Action::new(crate::step::notify::Notify {
                channel,
                notification,
            }),
            None,
            sinks.clone(),
        );
    }
}

fn workload_ref(cluster: &Cluster, w: &Workload) -> WorkloadRef {
    WorkloadRef {
        cluster: cluster.name.clone(),
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
    }
}

/// The cluster a workload runs on normally: in the primary region if it is there.
fn home_cluster<'a>(g: &GraphBuilder<'a>, workload: &str) -> Result<(&'a Cluster, &'a Workload)> {
    let primary = g.plan.primary_region().map(|r| r.name.as_str());
    let mut found = None;
    for c in &g.plan.clusters {
        if let Some(w) = g.plan.workload(&c.name, workload) {
            if Some(c.region.as_str()) == primary {
                return Ok((c, w));
            }
            found.get_or_insert((c, w));
        }
    }
    found.ok_or_else(|| unknown("workload", workload))
}

/// A Deployment or StatefulSet manifest for a workload, for (re)applying it.
pub(super) fn manifest(w: &Workload) -> Manifest {
    let kind = match w.kind {
        crate::provider::WorkloadKind::Deployment => "Deployment",
        crate::provider::WorkloadKind::StatefulSet => "StatefulSet",
    };
    let image = w
        .image
        .clone()
        .unwrap_or_else(|| format!("{}:stable", w.name));
    let body = format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n",
        name = w.name,
        ns = w.namespace,
        replicas = w.replicas,
    );
    Manifest {
        kind: kind.into(),
        name: w.name.clone(),
        body,
    }
}

fn secret_step(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    cluster: &Cluster,
    namespace: &str,
    db: &DbRef,
    deps: Vec<String>,
) -> Option<String> {
    let binding = svc.secret.as_ref()?;
    Some(g.add(
        format!("{}/set-secret", svc.name),
        Action::new(crate::step::cluster::SetSecret {
            cluster: cluster.name.clone(),
            namespace: namespace.to_string(),
            secret: binding.name.clone(),
            key: binding.key.clone(),
            value: SecretSource::DatabaseEndpoint {
                db: db.clone(),
                template: binding.template.clone(),
            },
        }),
        Some(&svc.name),
        deps,
    ))
}

fn verify_step(g: &mut GraphBuilder<'_>, svc: &Service, deps: Vec<String>) -> Option<String> {
    let check = g.plan.health_check(svc.health_check.as_deref()?)?;
    Some(g.add(
        format!("{}/verify", svc.name),
        Action::new(crate::step::health::VerifyHealth {
            check: check.name.clone(),
            target: check.target.clone(),
        }),
        Some(&svc.name),
        deps,
    ))
}

fn dns_steps(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    value_for: impl Fn(&crate::plan::DnsRecordDef) -> Option<String>,
    deps: &[String],
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in &svc.dns {
        let record = g
            .plan
            .dns_record(name)
            .ok_or_else(|| unknown("DNS record", name))?;
        let value = value_for(record).ok_or_else(|| PlanningError::Unrecoverable {
            what: format!("DNS record `{name}`"),
            why: "no target value for the recovery region (add `targets` or a cluster there)"
                .into(),
        })?;
        ids.push(g.add(
            format!("{}/dns:{}", svc.name, record.name),
            Action::new(crate::step::dns::SwitchDns {
                zone: record.zone.clone(),
                name: record.name.clone(),
                set_id: record.set_id.clone(),
                values: vec![value],
            }),
            Some(&svc.name),
            deps.to_vec(),
        ));
    }
    Ok(ids)
}

fn or_else(ids: Vec<String>, fallback: &[String]) -> Vec<String> {
    if ids.is_empty() {
        fallback.to_vec()
    } else {
        ids
    }
}

/// Promotes the replica in `region`, or restores the newest snapshot held there.
fn recover_db_in(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    region: &str,
    gate: &[String],
) -> Result<(DbRef, String)> {
    let owner = owner(g, &db.name);
    let obs = g.observed.databases.get(&db.name);
    if let Some(r) = db.replicas.iter().find(|r| r.region == region) {
        let ro = obs.and_then(|o| o.replicas.get(&r.id));
        let state = ro.and_then(|o| o.state);
        if ro.is_none() || state == Some(DbState::Available) {
            let lag = ro.and_then(|o| o.lag).unwrap_or(r.expected_lag.get());
            return Ok(promote(
                g,
                db,
                DbRef::new(&r.region, &r.id),
                lag,
                owner,
                gate,
            ));
        }
        let state = state.map_or("unreachable".to_string(), |s| s.to_string());
        g.risk(
            owner,
            format!(
                "replica `{}` of `{}` is {state}: restoring from a snapshot instead",
                r.id, db.name
            ),
        );
    }
    if let Some(age) = g.observed.snapshot_age(&db.name, region) {
        return Ok(restore(g, db, region, age, owner, gate));
    }
    Err(PlanningError::Unrecoverable {
        what: format!("database `{}`", db.name),
        why: format!("no healthy replica and no snapshot in region `{region}`"),
    })
}

fn promote(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    replica: DbRef,
    lag: Duration,
    owner: Option<&str>,
    gate: &[String],
) -> (DbRef, String) {
    let waited = Action::new(crate::step::database::PromoteReplica {
        db: replica.clone(),
    });
    let p = g.add_call(
        format!("{}/promote", db.name),
        waited.clone(),
        owner,
        gate.to_vec(),
    );
    let w = g.add_wait(
        format!("{}/wait", db.name),
        Action::new(crate::step::database::WaitDatabase {
            db: replica.clone(),
        }),
        &waited,
        owner,
        vec![p],
    );
    g.db_loss.insert(db.name.clone(), lag);
    g.reached("database promoted", &w);
    (replica, w)
}

fn restore(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    region: &str,
    snapshot_age: Duration,
    owner: Option<&str>,
    gate: &[String],
) -> (DbRef, String) {
    let target = DbRef::new(region, format!("{}-restored", db.instance()));
    let waited = Action::new(crate::step::database::RestoreSnapshot {
        source: DbRef::new(&db.region, db.instance()),
        snapshot_region: region.to_string(),
        target: target.clone(),
    });
    let r = g.add_call(
        format!("{}/restore", db.name),
        waited.clone(),
        owner,
        gate.to_vec(),
    );
    let w = g.add_wait(
        format!("{}/wait", db.name),
        Action::new(crate::step::database::WaitDatabase { db: target.clone() }),
        &waited,
        owner,
        vec![r],
    );
    g.db_loss.insert(db.name.clone(), snapshot_age);
    g.reached("database restored", &w);
    (target, w)
}

fn region_failover(g: &mut GraphBuilder<'_>) -> Result<()> {
    let from = required(g, "from", &g.scenario.from)?;
    let to = required(g, "to", &g.scenario.to)?;
    let gate = preamble(g);

    // Databases: promote or restore those of the failed region; the others keep serving.
    let mut serving: BTreeMap<String, (DbRef, Vec<String>)> = BTreeMap::new();
    for db in &g.plan.databases {
        if db.region == from {
            let (r, wait) = recover_db_in(g, db, to, &gate)?;
            serving.insert(db.name.clone(), (r, vec![wait]));
        } else {
            serving.insert(
                db.name.clone(),
                (DbRef::new(&db.region, db.instance()), vec![]),
            );
        }
    }

    let target = g.plan.cluster_in(to);
    let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for svc in ordered(g) {
        let mut deps = gate.clone();
        for d in &svc.depends_on {
            deps.extend(done.get(d).cloned().unwrap_or_default());
        }
        let db = svc.database.as_ref().and_then(|d| serving.get(d)).cloned();
        if let Some((_, waits)) = &db {
            deps.extend(waits.iter().cloned());
        }
        let mut ready = Vec::new();
        if !svc.workloads.is_empty() {
            let cluster = target.ok_or_else(|| PlanningError::Unrecoverable {
                what: format!("service `{}`", svc.name),
                why: format!("no cluster in region `{to}`"),
            })?;
            ready = bring_up(g, svc, cluster, db.as_ref().map(|(r, _)| r), &deps)?;
        }
        let before_dns = or_else(ready, &deps);
        let switched = dns_steps(g, svc, |r| g.plan.dns_target(r, to), &before_dns)?;
        let before_verify = or_else(switched, &before_dns);
        verify_step(g, svc, before_verify.clone());
        let sinks = g.service_sinks(&svc.name);
        done.insert(svc.name.clone(), or_else(sinks, &deps));
    }
    Ok(())
}

/// Scales a service's workloads up on `cluster` (after writing the database endpoint into
/// its secret); returns the steps after which they are ready.
fn bring_up(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    cluster: &Cluster,
    db: Option<&DbRef>,
    deps: &[String],
) -> Result<Vec<String>> {
    let mut ready = Vec::new();
    let mut secret: Option<String> = None;
    for name in &svc.workloads {
        let w =
            g.plan
                .workload(&cluster.name, name)
                .ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("service `{}`", svc.name),
                    why: format!(
                        "workload `{name}` is not declared on cluster `{}`",
                        cluster.name
                    ),
                })?;
        if secret.is_none() {
            if let Some(db) = db {
                secret = secret_step(g, svc, cluster, &w.namespace, db, deps.to_vec());
            }
        }
        let wref = workload_ref(cluster, w);
        let mut scale_deps = deps.to_vec();
        // Pods started after the secret is written read the new endpoint; pods already
        // running in a warm standby must be restarted to read it.
        if w.standby_replicas == 0 {
            scale_deps.extend(secret.clone());
        }
        let scale = g.add(
            format!("{}/scale:{}", svc.name, w.name),
            Action::new(crate::step::cluster::Scale {
                workload: wref.clone(),
                replicas: w.replicas,
            }),
            Some(&svc.name),
            scale_deps,
        );
        let mut wait_deps = vec![scale];
        if let (Some(secret), true) = (&secret, w.standby_replicas > 0) {
            wait_deps = vec![g.add_call(
                format!("{}/restart:{}", svc.name, w.name),
                Action::new(crate::step::cluster::RolloutRestart {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                vec![wait_deps[0].clone(), secret.clone()],
            )];
        }
        ready.push(g.add(
            format!("{}/wait:{}", svc.name, w.name),
            Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
            Some(&svc.name),
            wait_deps,
        ));
    }
    Ok(ready)
}

/// Writes the new endpoint into each user's secret, restarts its workloads on their home
/// cluster and verifies health.
fn repoint(g: &mut GraphBuilder<'_>, db: &Database, new: &DbRef, after: &[String]) -> Result<()> {
    for svc in ordered(g) {
        if svc.database.as_deref() != Some(db.name.as_str()) || svc.workloads.is_empty() {
            continue;
        }
        if svc.secret.is_none() {
            g.risk(
                Some(&svc.name),
                format!(
                    "service `{}` has no secret binding: its workloads keep the old endpoint of `{}`",
                    svc.name, db.name
                ),
            );
        }
        let mut ready = Vec::new();
        let mut secret = None;
        for name in &svc.workloads {
            let (cluster, w) = home_cluster(g, name)?;
            if secret.is_none() {
                secret = secret_step(g, svc, cluster, &w.namespace, new, after.to_vec());
            }
            let Some(secret) = &secret else { break };
            let wref = workload_ref(cluster, w);
            let restart = g.add_call(
                format!("{}/restart:{}", svc.name, w.name),
                Action::new(crate::step::cluster::RolloutRestart {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                vec![secret.clone()],
            );
            ready.push(g.add(
                format!("{}/wait:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
                Some(&svc.name),
                vec![restart],
            ));
        }
        verify_step(g, svc, or_else(ready, after));
    }
    Ok(())
}

fn database_failure(g: &mut GraphBuilder<'_>) -> Result<()> {
    let name = required(g, "database", &g.scenario.database)?;
    let db = g
        .plan
        .database(name)
        .ok_or_else(|| unknown("database", name))?;
    let gate = preamble(g);
    let owner = owner(g, &db.name);
    let rpo = owner
        .and_then(|o| g.plan.service(o))
        .map(|s| s.rpo.get())
        .unwrap_or(Duration::MAX);
    let obs = g.observed.databases.get(&db.name);
    let primary_up = obs.and_then(|o| o.primary.as_ref()).is_some_and(|p| {
        matches!(
            p.state,
            DbState::Available | DbState::Rebooting | DbState::Modifying
        )
    });
    // Healthy replicas, the primary's region first.
    let mut replicas: Vec<(DbRef, Duration)> = db
        .replicas
        .iter()
        .filter_map(|r| {
            let ro = obs.and_then(|o| o.replicas.get(&r.id));
            let ok = ro.is_none_or(|o| o.state == Some(DbState::Available));
            ok.then(|| {
                let lag = ro.and_then(|o| o.lag).unwrap_or(r.expected_lag.get());
                (DbRef::new(&r.region, &r.id), lag)
            })
        })
        .collect();
    replicas.sort_by_key(|(r, _)| r.region != db.region);
    let snapshot = g.observed.snapshot_age(&db.name, &db.region);

    let strategy = match g.scenario.strategy {
        DbStrategy::Auto if primary_up => DbStrategy::Reboot,
        DbStrategy::Auto => {
            if replicas.iter().any(|(_, lag)| *lag <= rpo) {
                DbStrategy::Promote
            } else if snapshot.is_some() {
                DbStrategy::Restore
            } else {
                DbStrategy::Promote
            }
        }
        s => s,
    };
    match strategy {
        DbStrategy::Reboot | DbStrategy::Auto => {
            let me = DbRef::new(&db.region, db.instance());
            let waited = Action::new(crate::step::database::RebootDatabase {
                db: me.clone(),
                force_failover: db.multi_az,
            });
            let r = g.add_call(
                format!("{}/reboot", db.name),
                waited.clone(),
                owner,
                gate.clone(),
            );
            let w = g.add_wait(
                format!("{}/wait", db.name),
                Action::new(crate::step::database::WaitDatabase { db: me }),
                &waited,
                owner,
                vec![r],
            );
            // Committed data survives a reboot.
            g.db_loss.insert(db.name.clone(), Duration::ZERO);
            for svc in ordered(g) {
                if svc.database.as_deref() == Some(db.name.as_str()) {
                    verify_step(g, svc, vec![w.clone()]);
                }
            }
        }
        DbStrategy::Promote => {
            let (replica, lag) = replicas
                .into_iter()
                .find(|(_, lag)| *lag <= rpo)
                .or_else(|| {
                    db.replicas
                        .first()
                        .map(|r| (DbRef::new(&r.region, &r.id), r.expected_lag.get()))
                })
                .ok_or_else(|| PlanningError::Unrecoverable {
                    what: format!("database `{}`", db.name),
                    why: "no replica to promote".into(),
                })?;
            let (new, wait) = promote(g, db, replica.clone(), lag, owner, &gate);
            repoint(g, db, &new, std::slice::from_ref(&wait))?;
            // Restore redundancy: a new replica of the promoted instance (optional).
            g.add_optional(
                format!("{}/new-replica", db.name),
                Action::new(crate::step::database::CreateReplica {
                    source: new,
                    replica: DbRef::new(&db.region, format!("{}-replica", replica.id)),
                }),
                owner,
                vec![wait],
            );
        }
        DbStrategy::Restore => {
            let age = snapshot.ok_or_else(|| PlanningError::Unrecoverable {
                what: format!("database `{}`", db.name),
                why: format!("no snapshot in region `{}`", db.region),
            })?;
            let (new, wait) = restore(g, db, &db.region, age, owner, &gate);
            repoint(g, db, &new, &[wait])?;
        }
    }
    Ok(())
}

fn point_in_time_restore(g: &mut GraphBuilder<'_>) -> Result<()> {
    let name = required(g, "database", &g.scenario.database)?;
    let db = g
        .plan
        .database(name)
        .ok_or_else(|| unknown("database", name))?;
    let pitr = db
        .pitr
        .as_ref()
        .ok_or_else(|| PlanningError::Unrecoverable {
            what: format!("database `{}`", db.name),
            why: "point-in-time recovery is not enabled (`pitr`)".into(),
        })?;
    let gate = preamble(g);
    let owner = owner(g, &db.name);
    let users: Vec<&Service> = ordered(g)
        .into_iter()
        .filter(|s| s.database.as_deref() == Some(name) && !s.workloads.is_empty())
        .collect();

    // Stop writes first, so nothing is written to the instance being abandoned.
    let mut stopped = gate.clone();
    for svc in &users {
        for w in &svc.workloads {
            let (cluster, w) = home_cluster(g, w)?;
            stopped.push(g.add(
                format!("{}/scale-down:{}", svc.name, w.name),
                Action::new(crate::step::cluster::Scale {
                    workload: workload_ref(cluster, w),
                    replicas: 0,
                }),
                Some(&svc.name),
                gate.clone(),
            ));
        }
    }
    let target = DbRef::new(&db.region, format!("{}-pitr", db.instance()));
    let at = g.scenario.at.map_or(RestorePoint::Latest, RestorePoint::At);
    let loss = match g.scenario.at {
        Some(t) => (g.observed.observed_at - t).to_std().unwrap_or_default(),
        None => g
            .observed
            .databases
            .get(&db.name)
            .and_then(|o| o.primary.as_ref()?.latest_restorable_time)
            .and_then(|t| (g.observed.observed_at - t).to_std().ok())
            .unwrap_or(pitr.lag.get()),
    };
    if loss > pitr.window.get() {
        return Err(PlanningError::Unrecoverable {
            what: format!("database `{}`", db.name),
            why: "the restore point is older than the point-in-time window".into(),
        });
    }
    let waited = Action::new(crate::step::database::RestorePointInTime {
        source: DbRef::new(&db.region, db.instance()),
        target: target.clone(),
        at,
    });
    let r = g.add_call(
        format!("{}/restore-pitr", db.name),
        waited.clone(),
        owner,
        stopped,
    );
    let wait = g.add_wait(
        format!("{}/wait", db.name),
        Action::new(crate::step::database::WaitDatabase { db: target.clone() }),
        &waited,
        owner,
        vec![r],
    );
    g.db_loss.insert(db.name.clone(), loss);
    for svc in users {
        let mut ready = Vec::new();
        let mut secret = None;
        for name in &svc.workloads {
            let (cluster, w) = home_cluster(g, name)?;
            if secret.is_none() {
                secret = secret_step(g, svc, cluster, &w.namespace, &target, vec![wait.clone()]);
            }
            let wref = workload_ref(cluster, w);
            let mut deps = vec![wait.clone()];
            deps.extend(secret.clone());
            let up = g.add(
                format!("{}/scale-up:{}", svc.name, w.name),
                Action::new(crate::step::cluster::Scale {
                    workload: wref.clone(),
                    replicas: w.replicas,
                }),
                Some(&svc.name),
                deps,
            );
            ready.push(g.add(
                format!("{}/wait:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
                Some(&svc.name),
                vec![up],
            ));
        }
        verify_step(g, svc, ready);
    }
    Ok(())
}

fn cluster_rebuild(g: &mut GraphBuilder<'_>) -> Result<()> {
    let from = required(g, "cluster", &g.scenario.cluster)?;
    let to = required(g, "to_cluster", &g.scenario.to_cluster)?;
    let failed = g
        .plan
        .cluster(from)
        .ok_or_else(|| unknown("cluster", from))?;
    let target = g.plan.cluster(to).ok_or_else(|| unknown("cluster", to))?;
    let gate = preamble(g);
    let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for svc in ordered(g) {
        let on_failed: Vec<&Workload> = failed
            .workloads
            .iter()
            .filter(|w| svc.workloads.contains(&w.name))
            .collect();
        if on_failed.is_empty() {
            continue;
        }
        let mut deps = gate.clone();
        for d in &svc.depends_on {
            deps.extend(done.get(d).cloned().unwrap_or_default());
        }
        let db = svc
            .database
            .as_deref()
            .and_then(|d| g.plan.database(d))
            .map(|d| DbRef::new(&d.region, d.instance()));
        let mut secret = None;
        let mut ready = Vec::new();
        for w in on_failed {
            if let (None, Some(db)) = (&secret, &db) {
                secret = secret_step(g, svc, target, &w.namespace, db, deps.clone());
            }
            let mut apply_deps = deps.clone();
            apply_deps.extend(secret.clone());
            let apply = g.add(
                format!("{}/apply:{}", svc.name, w.name),
                Action::new(crate::step::cluster::ApplyManifests {
                    cluster: target.name.clone(),
                    namespace: w.namespace.clone(),
                    manifests: vec![manifest(w)],
                }),
                Some(&svc.name),
                apply_deps,
            );
            ready.push(g.add(
                format!("{}/wait:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload {
                    workload: workload_ref(target, w),
                }),
                Some(&svc.name),
                vec![apply],
            ));
        }
        let cross_region = target.region != failed.region;
        let switched = dns_steps(
            g,
            svc,
            |r| {
                r.targets
                    .get(&target.region)
                    .filter(|_| cross_region)
                    .cloned()
                    .or_else(|| Some(target.ingress.clone()))
            },
            &ready,
        )?;
        verify_step(g, svc, or_else(switched, &ready));
        done.insert(svc.name.clone(), g.service_sinks(&svc.name));
    }
    Ok(())
}

enum WorkloadOp {
    Undo,
    Restart,
}

fn workload_action(g: &mut GraphBuilder<'_>, op: WorkloadOp) -> Result<()> {
    let name = required(g, "service", &g.scenario.service)?;
    let svc = g
        .plan
        .service(name)
        .ok_or_else(|| unknown("service", name))?;
    let gate = preamble(g);
    let mut ready = Vec::new();
    for w in &svc.workloads {
        let (cluster, w) = home_cluster(g, w)?;
        let wref = workload_ref(cluster, w);
        let (verb, action) = match op {
            WorkloadOp::Undo => (
                "undo",
                Action::new(crate::step::cluster::RolloutUndo {
                    workload: wref.clone(),
                    revision: g.scenario.revision,
                }),
            ),
            WorkloadOp::Restart => (
                "restart",
                Action::new(crate::step::cluster::RolloutRestart {
                    workload: wref.clone(),
                }),
            ),
        };
        let step = g.add_call(
            format!("{}/{verb}:{}", svc.name, w.name),
            action,
            Some(&svc.name),
            gate.clone(),
        );
        ready.push(g.add(
            format!("{}/wait:{}", svc.name, w.name),
            Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
            Some(&svc.name),
            vec![step],
        ));
    }
    verify_step(g, svc, ready);
    Ok(())
}

fn security_isolation(g: &mut GraphBuilder<'_>) -> Result<()> {
    let name = required(g, "service", &g.scenario.service)?;
    let store = required(g, "evidence_store", &g.scenario.evidence_store)?.to_string();
    let svc = g
        .plan
        .service(name)
        .ok_or_else(|| unknown("service", name))?;
    let gate = preamble(g);
    let stamp = g.observed.observed_at.format("%Y%m%d%H%M%S").to_string();
    let mut contained = Vec::new();
    let mut exported: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut homes = Vec::new();
    for w in &svc.workloads {
        homes.push(home_cluster(g, w)?);
    }
    for (cluster, w) in &homes {
        let wref = workload_ref(cluster, w);
        let iso = g.add(
            format!("{}/isolate:{}", svc.name, w.name),
            Action::new(crate::step::cluster::IsolateWorkload {
                workload: wref.clone(),
            }),
            Some(&svc.name),
            gate.clone(),
        );
        // Evidence of the namespace before anything is torn down.
        let key = (cluster.name.clone(), w.namespace.clone());
        let export = match exported.get(&key) {
            Some(id) => id.clone(),
            None => {
                let id = g.add(
                    format!("{}/export:{}/{}", svc.name, cluster.name, w.namespace),
                    Action::new(crate::step::store::ExportResources {
                        cluster: cluster.name.clone(),
                        namespace: w.namespace.clone(),
                        kinds: Vec::new(),
                        store: store.clone(),
                        key: format!(
                            "evidence/{}/{}/{stamp}/{}/{}.yaml",
                            g.plan.name, g.scenario.name, cluster.name, w.namespace
                        ),
                    }),
                    Some(&svc.name),
                    vec![iso.clone()],
                );
                exported.insert(key, id.clone());
                id
            }
        };
        contained.push(g.add(
            format!("{}/scale-to-zero:{}", svc.name, w.name),
            Action::new(crate::step::cluster::Scale {
                workload: wref,
                replicas: 0,
            }),
            Some(&svc.name),
            vec![iso, export],
        ));
    }
    for db in databases_of(&service_index(g.plan), svc) {
        let Some(db) = g.plan.database(&db) else {
            continue;
        };
        let me = DbRef::new(&db.region, db.instance());
        let snap_id = format!("{}-evidence-{stamp}", db.instance());
        contained.push(g.add_call(
            format!("{}/evidence-snapshot", db.name),
            Action::new(crate::step::database::CreateDbSnapshot {
                db: me,
                snapshot_id: snap_id,
            }),
            Some(&svc.name),
            gate.clone(),
        ));
    }
    let approve = g.add(
        format!("{}/approve-redeploy", svc.name),
        Action::new(crate::step::approval::Approval {
            prompt: format!(
                "Evidence of `{}` is captured and its workloads are stopped: redeploy clean workloads?",
                svc.name
            ),
        }),
        Some(&svc.name),
        contained,
    );
    for (cluster, w) in &homes {
        let apply = g.add(
            format!("{}/redeploy:{}", svc.name, w.name),
            Action::new(crate::step::cluster::ApplyManifests {
                cluster: cluster.name.clone(),
                namespace: w.namespace.clone(),
                manifests: vec![manifest(w)],
            }),
            Some(&svc.name),
            vec![approve.clone()],
        );
        g.add(
            format!("{}/wait:{}", svc.name, w.name),
            Action::new(crate::step::cluster::WaitWorkload {
                workload: workload_ref(cluster, w),
            }),
            Some(&svc.name),
            vec![apply],
        );
    }
    Ok(())
}

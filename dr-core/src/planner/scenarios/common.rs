//! Steps several scenario kinds share: the approval gate and notifications, promotions and
//! restores, bringing workloads up, repointing applications, DNS switches, health checks.

use crate::graph::StepId;
use std::time::Duration;

use super::Result;
use crate::graph::{Action, SecretSource};
use crate::plan::validate::ScenarioChecks;
use crate::plan::{Cluster, Database, Service, Workload};
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{DbRef, DbState, Manifest, Notification, Severity, WorkloadRef};

pub(super) fn unknown(what: &'static str, name: &str) -> PlanningError {
    PlanningError::Unknown {
        what,
        name: name.to_string(),
    }
}

/// Services in recovery order: by tier, then as declared.
pub(super) fn ordered<'a>(g: &GraphBuilder<'a>) -> Vec<&'a Service> {
    let mut v: Vec<&Service> = g.plan.services.iter().collect();
    v.sort_by_key(|s| s.tier);
    v
}

/// The service whose steps a database's recovery is reported under: a service that is only
/// the database, else the first (most critical) service using it.
pub(super) fn owner<'a>(g: &GraphBuilder<'a>, db: &str) -> Option<&'a str> {
    g.owner_of(db)
}

/// Start notifications (not gating anything) and the approval gate every change waits for.
pub(super) fn preamble(g: &mut GraphBuilder<'_>) -> Vec<StepId> {
    let severity = g.scenario.kind.severity();
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
pub(super) fn epilogue(g: &mut GraphBuilder<'_>) {
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

pub(super) fn workload_ref(cluster: &Cluster, w: &Workload) -> WorkloadRef {
    WorkloadRef {
        cluster: cluster.name.clone(),
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
    }
}

/// The cluster a workload runs on normally: in the primary region if it is there.
pub(super) fn home_cluster<'a>(
    g: &GraphBuilder<'a>,
    workload: &str,
) -> Result<(&'a Cluster, &'a Workload)> {
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

pub(super) fn secret_step(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    cluster: &Cluster,
    namespace: &str,
    db: &DbRef,
    deps: Vec<StepId>,
) -> Option<StepId> {
    let binding = svc.secret.as_ref()?;
    Some(g.add(
        StepId::concat(&[&svc.name, "/set-secret"]),
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

pub(super) fn verify_step(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    deps: Vec<StepId>,
) -> Option<StepId> {
    let check = g.plan.health_check(svc.health_check.as_deref()?)?;
    Some(g.add(
        StepId::concat(&[&svc.name, "/verify"]),
        Action::new(crate::step::health::VerifyHealth {
            check: check.name.clone(),
            target: check.target.clone(),
        }),
        Some(&svc.name),
        deps,
    ))
}

pub(super) fn dns_steps(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    value_for: impl Fn(&crate::plan::DnsRecordDef) -> Option<String>,
    deps: &[StepId],
) -> Result<Vec<StepId>> {
    let mut ids = Vec::new();
    // With the `healthy-target` interlock, each switch probes its new targets at the
    // service's health check first.
    let guarded = g
        .plan
        .interlocks
        .contains(&crate::plan::Interlock::HealthyTarget);
    let health = svc
        .health_check
        .as_deref()
        .and_then(|h| g.plan.health_check(h))
        .map(|c| crate::step::dns::TargetCheck {
            check: c.name.clone(),
            url: c.target.clone(),
        })
        .filter(|_| guarded);
    if guarded && health.is_none() && !svc.dns.is_empty() {
        return Err(PlanningError::Unrecoverable {
            what: format!("service `{}`", svc.name),
            why: format!(
                "the plan's interlock `healthy-target` needs a health check to judge the new \
                 targets of its DNS records ({}) by: add `health_check` to the service",
                svc.dns.join(", ")
            ),
        });
    }
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
            StepId::concat(&[&svc.name, "/dns:", &record.name]),
            Action::new(crate::step::dns::SwitchDns {
                zone: record.zone.clone(),
                name: record.name.clone(),
                set_id: record.set_id.clone(),
                values: vec![value],
                health: health.clone(),
            }),
            Some(&svc.name),
            deps.to_vec(),
        ));
    }
    Ok(ids)
}

pub(super) fn or_else(ids: Vec<StepId>, fallback: &[StepId]) -> Vec<StepId> {
    if ids.is_empty() {
        fallback.to_vec()
    } else {
        ids
    }
}

/// Promotes the replica in `region`, or restores the newest snapshot held there.
pub(super) fn recover_db_in(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    region: &str,
    gate: &[StepId],
) -> Result<(DbRef, StepId)> {
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

pub(super) fn promote(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    replica: DbRef,
    lag: Duration,
    owner: Option<&str>,
    gate: &[StepId],
) -> (DbRef, StepId) {
    let waited = Action::new(crate::step::database::PromoteReplica {
        db: replica.clone(),
    });
    let p = g.add_call(
        StepId::concat(&[&db.name, "/promote"]),
        waited.clone(),
        owner,
        gate.to_vec(),
    );
    let w = g.add_wait(
        StepId::concat(&[&db.name, "/wait"]),
        Action::new(crate::step::database::WaitDatabase {
            db: replica.clone(),
        }),
        &waited,
        owner,
        vec![p],
    );
    g.db_loss.insert(db.name.clone(), lag);
    g.reached("database promoted", &w);
    let ready = verify_data(g, db, &replica, owner, w);
    (replica, ready)
}

/// The plan's data checks of `db`, run against `target` once `after` is done; returns the
/// step after which `target` may take the applications: the checks, or `after` when the
/// plan names none.
pub(super) fn verify_data(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    target: &DbRef,
    owner: Option<&str>,
    after: StepId,
) -> StepId {
    if db.checks.is_empty() {
        return after;
    }
    g.add(
        StepId::concat(&[&db.name, "/verify-data"]),
        Action::new(crate::step::data::VerifyData {
            db: target.clone(),
            checks: db.checks.clone(),
        }),
        owner,
        vec![after],
    )
}

pub(super) fn restore(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    region: &str,
    snapshot_age: Duration,
    owner: Option<&str>,
    gate: &[StepId],
) -> (DbRef, StepId) {
    let target = DbRef::new(region, format!("{}-restored", db.instance()));
    let waited = Action::new(crate::step::database::RestoreSnapshot {
        source: DbRef::new(&db.region, db.instance()),
        snapshot_region: region.to_string(),
        target: target.clone(),
    });
    let r = g.add_call(
        StepId::concat(&[&db.name, "/restore"]),
        waited.clone(),
        owner,
        gate.to_vec(),
    );
    let w = g.add_wait(
        StepId::concat(&[&db.name, "/wait"]),
        Action::new(crate::step::database::WaitDatabase { db: target.clone() }),
        &waited,
        owner,
        vec![r],
    );
    g.db_loss.insert(db.name.clone(), snapshot_age);
    g.reached("database restored", &w);
    let ready = verify_data(g, db, &target, owner, w);
    (target, ready)
}

/// Scales a service's workloads up on `cluster` (after writing the database endpoint into
/// its secret); returns the steps after which they are ready.
pub(super) fn bring_up(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    cluster: &Cluster,
    db: Option<&DbRef>,
    deps: &[StepId],
) -> Result<Vec<StepId>> {
    bring_up_on(g, svc, cluster, db, deps, &[])
}

/// Scales each node group of `cluster` that has standby bounds (a replacement group aside)
/// to its serving bounds and waits until it is ready; returns the waits (none for a cluster
/// without such groups).
pub(super) fn scale_nodes(
    g: &mut GraphBuilder<'_>,
    cluster: &Cluster,
    deps: &[StepId],
) -> Vec<StepId> {
    let mut ready = Vec::new();
    let plan = g.plan;
    // A replacement group stays a spare: its own scenario scales it.
    let standing_by = cluster
        .node_groups
        .iter()
        .filter(|n| n.standby.is_some() && !super::is_spare(plan, &cluster.name, &n.name));
    for group in standing_by {
        let gref = crate::provider::NodeGroupRef::new(&cluster.name, &group.name);
        let scale = Action::new(crate::step::nodes::ScaleNodeGroup {
            group: gref.clone(),
            scaling: group.serving(),
        });
        let id = format!("nodes:{}/{}", cluster.name, group.name);
        let call = g.add_call(format!("{id}/scale"), scale.clone(), None, deps.to_vec());
        ready.push(g.add_wait(
            format!("{id}/wait"),
            Action::new(crate::step::nodes::WaitNodeGroup { group: gref }),
            &scale,
            None,
            vec![call],
        ));
    }
    ready
}

/// [`bring_up`], each workload scaled only once `capacity` (the node groups' waits) is done.
pub(super) fn bring_up_on(
    g: &mut GraphBuilder<'_>,
    svc: &Service,
    cluster: &Cluster,
    db: Option<&DbRef>,
    deps: &[StepId],
    capacity: &[StepId],
) -> Result<Vec<StepId>> {
    let mut ready = Vec::new();
    let mut secret: Option<StepId> = None;
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
        // New pods beyond the nodes' capacity would stay pending; a workload whose pods all
        // run already (a warm standby at full size) needs no new node.
        if w.replicas > w.standby_replicas {
            scale_deps.extend(capacity.iter().cloned());
        }
        let scale = g.add(
            StepId::concat(&[&svc.name, "/scale:", &w.name]),
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
                StepId::concat(&[&svc.name, "/restart:", &w.name]),
                Action::new(crate::step::cluster::RolloutRestart {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                vec![wait_deps[0].clone(), secret.clone()],
            )];
        }
        ready.push(g.add(
            StepId::concat(&[&svc.name, "/wait:", &w.name]),
            Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
            Some(&svc.name),
            wait_deps,
        ));
    }
    Ok(ready)
}

/// Writes the new endpoint into each user's secret, restarts its workloads on their home
/// cluster and verifies health.
pub(super) fn repoint(
    g: &mut GraphBuilder<'_>,
    db: &Database,
    new: &DbRef,
    after: &[StepId],
) -> Result<()> {
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
                StepId::concat(&[&svc.name, "/restart:", &w.name]),
                Action::new(crate::step::cluster::RolloutRestart {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                vec![secret.clone()],
            );
            ready.push(g.add(
                StepId::concat(&[&svc.name, "/wait:", &w.name]),
                Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
                Some(&svc.name),
                vec![restart],
            ));
        }
        verify_step(g, svc, or_else(ready, after));
    }
    Ok(())
}

/// What [`workload_action`] does to each workload.
#[derive(Debug, Clone, Copy)]
pub(super) enum WorkloadOp {
    /// Roll back to a revision (default: the previous one).
    Undo(Option<u64>),
    /// Restart the pods.
    Restart,
}

/// Rolls back or restarts every workload of `name` on its home cluster, waits until they are
/// ready, verifies health.
pub(super) fn workload_action(g: &mut GraphBuilder<'_>, name: &str, op: WorkloadOp) -> Result<()> {
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
            WorkloadOp::Undo(revision) => (
                "undo",
                Action::new(crate::step::cluster::RolloutUndo {
                    workload: wref.clone(),
                    revision,
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
            StepId::concat(&[&svc.name, "/wait:", &w.name]),
            Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
            Some(&svc.name),
            vec![step],
        ));
    }
    verify_step(g, svc, ready);
    Ok(())
}

/// Checks that `service` is declared and has workloads to act on.
pub(super) fn service_with_workloads(c: &mut ScenarioChecks<'_>, service: &str) {
    c.service("service", service);
    if let Some(s) = c.plan.service(service) {
        if s.workloads.is_empty() {
            let message = format!("service `{}` has no workloads", s.name);
            c.problem("service", message);
        }
    }
}

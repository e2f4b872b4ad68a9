//! `cache-failure`: the cache stops answering.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{home_cluster, preamble, unknown, verify_step, workload_ref};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::simulation::Simulation;

/// The cache (a workload of the plan, a Redis StatefulSet) stops answering: switch the
/// service to degraded mode (`degraded_flag=true` in its workloads' environment, pods rolled),
/// bring the cache back (scaled to its replicas, pods restarted, waited until ready, its
/// health check verified), run the scenario's own steps (a warm-up: they all run before the
/// next step), switch degraded mode off, verify the service.
///
/// ```yaml
/// - name: cache-failure
///   kind: cache-failure
///   cache: redis
///   service: api
///   health_check: redis-health
///   steps:
///     - { id: warm-cache, kind: command, after: [redis/verify], params: { program: ./warm.sh } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFailure {
    /// The cache's workload (by name, on its home cluster).
    pub cache: String,
    /// The service that uses the cache.
    pub service: String,
    /// The environment variable that switches the service's degraded mode (default
    /// `CACHE_DEGRADED`; `true` while the cache is down, `false` after).
    #[serde(default = "default_flag")]
    pub degraded_flag: String,
    /// The health check that proves the cache answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
}

fn default_flag() -> String {
    "CACHE_DEGRADED".into()
}

fn flag(name: &str, on: bool) -> BTreeMap<String, String> {
    BTreeMap::from([(name.to_string(), on.to_string())])
}

impl Kind for CacheFailure {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let svc = g
            .plan
            .service(&self.service)
            .ok_or_else(|| unknown("service", &self.service))?;
        let gate = preamble(g);
        let mut degraded = Vec::new();
        let mut apps = Vec::new();
        for name in &svc.workloads {
            let (cluster, w) = home_cluster(g, name)?;
            let wref = workload_ref(cluster, w);
            let on = g.add(
                format!("{}/degraded-on:{}", svc.name, w.name),
                Action::new(crate::step::config::SetEnv {
                    workload: wref.clone(),
                    env: flag(&self.degraded_flag, true),
                }),
                Some(&svc.name),
                gate.clone(),
            );
            degraded.push(g.add(
                format!("{}/wait-degraded:{}", svc.name, w.name),
                Action::new(crate::step::cluster::WaitWorkload {
                    workload: wref.clone(),
                }),
                Some(&svc.name),
                vec![on],
            ));
            apps.push(wref);
        }

        // The cache back: its replicas, fresh pods, ready, answering.
        let (cluster, cache) = home_cluster(g, &self.cache)?;
        let cref = workload_ref(cluster, cache);
        let scaled = g.add(
            format!("{}/scale", cache.name),
            Action::new(crate::step::cluster::Scale {
                workload: cref.clone(),
                replicas: cache.replicas,
            }),
            Some(&svc.name),
            degraded.clone(),
        );
        let restarted = g.add_call(
            format!("{}/restart", cache.name),
            Action::new(crate::step::cluster::RolloutRestart {
                workload: cref.clone(),
            }),
            Some(&svc.name),
            vec![scaled],
        );
        let mut ready = vec![g.add(
            format!("{}/wait", cache.name),
            Action::new(crate::step::cluster::WaitWorkload { workload: cref }),
            Some(&svc.name),
            vec![restarted],
        )];
        if let Some(check) = self
            .health_check
            .as_deref()
            .and_then(|h| g.plan.health_check(h))
        {
            ready = vec![g.add(
                format!("{}/verify", cache.name),
                Action::new(crate::step::health::VerifyHealth {
                    check: check.name.clone(),
                    target: check.target.clone(),
                }),
                Some(&svc.name),
                ready,
            )];
        }

        // Degraded mode off once the cache is back and the scenario's own steps (a warm-up)
        // are done.
        let mut before_off = ready;
        before_off.extend(g.scenario.steps.iter().map(|s| s.id.clone().into()));
        let mut back = Vec::new();
        for wref in apps {
            let off = g.add(
                format!("{}/degraded-off:{}", svc.name, wref.name),
                Action::new(crate::step::config::SetEnv {
                    workload: wref.clone(),
                    env: flag(&self.degraded_flag, false),
                }),
                Some(&svc.name),
                before_off.clone(),
            );
            back.push(g.add(
                format!("{}/wait:{}", svc.name, wref.name),
                Action::new(crate::step::cluster::WaitWorkload { workload: wref }),
                Some(&svc.name),
                vec![off],
            ));
        }
        verify_step(g, svc, back);
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.service("service", &self.service);
        let declared = c
            .plan
            .clusters
            .iter()
            .any(|cl| cl.workloads.iter().any(|w| w.name == self.cache));
        if !declared {
            let message = format!("no cluster declares the cache workload `{}`", self.cache);
            c.problem("cache", message);
        }
        if let Some(h) = &self.health_check {
            if c.plan.health_check(h).is_none() {
                c.problem("health_check", format!("unknown health check `{h}`"));
            }
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // The cache's pods are gone; its health check answers from the cache workload on the
        // cluster its DNS record names (a record named like the check's host, if the plan
        // has one), so it is unhealthy until the cache serves again.
        let cache = sim.home_workloads(std::slice::from_ref(&self.cache));
        let Some(cref) = cache.first() else { return };
        let plan = sim.plan();
        if let Some(check) = self
            .health_check
            .as_deref()
            .and_then(|h| plan.health_check(h))
        {
            let host = check
                .target
                .split("://")
                .nth(1)
                .unwrap_or(&check.target)
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            if let Some(record) = plan.dns.iter().find(|d| d.name == host) {
                sim.cloud().bind_endpoint(
                    &check.target,
                    crate::sim::EndpointBinding {
                        zone: record.zone.clone(),
                        record: record.name.clone(),
                        workloads: vec![cref.clone()],
                        via: None,
                    },
                );
            }
        }
        sim.cloud().add_workload(cref, 0);
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "cache {} stopped answering: service {} runs degraded until it is back",
            self.cache, self.service
        )
    }
}

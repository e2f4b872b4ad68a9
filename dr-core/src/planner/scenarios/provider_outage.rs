//! `provider-outage`: a third-party provider (payments, e-mail, an LLM API) is down.

use crate::graph::StepId;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{home_cluster, preamble, unknown, verify_step, workload_ref};
use super::{Kind, Result};
use crate::graph::Action;
use crate::plan::validate::ScenarioChecks;
use crate::plan::Plan;
use crate::planner::build::GraphBuilder;
use crate::planner::PlanningError;
use crate::provider::{HealthStatus, Notification, Severity};
use crate::simulation::Simulation;
use crate::HumanDuration;

/// A third-party provider is down — a circuit breaker around it: probe its health check
/// until `trip_after` probes failed within `window` (else nothing is switched), switch the
/// service to the fallback (`fallback` environment, pods rolled), tell the scenario's
/// channels that service is degraded, wait until the provider has been healthy for
/// `recover_after` probes in a row (half-open), switch back (`primary` environment), verify,
/// and tell the channels it is over.
///
/// ```yaml
/// - name: payments-outage
///   kind: provider-outage
///   service: checkout
///   health_check: psp-health
///   fallback: { PAYMENT_PROVIDER: backup-psp }
///   primary: { PAYMENT_PROVIDER: main-psp }
///   trip_after: 3
///   window: 5m
///   recover_after: 5
///   notify: [status-page]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderOutage {
    /// The service that calls the provider.
    pub service: String,
    /// The provider's health check (by name).
    pub health_check: String,
    /// Environment that switches the service to the fallback.
    pub fallback: BTreeMap<String, String>,
    /// Environment that switches it back.
    pub primary: BTreeMap<String, String>,
    /// Failed probes that trip the breaker (default 3).
    #[serde(default = "default_trip")]
    pub trip_after: u32,
    /// Window the failures must fall in (default `5m`).
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Healthy probes in a row before switching back (default 5).
    #[serde(default = "default_recover")]
    pub recover_after: u32,
    /// Time between probes (default `30s`).
    #[serde(default = "default_interval")]
    pub probe_interval: HumanDuration,
}

fn default_trip() -> u32 {
    3
}
fn default_window() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_recover() -> u32 {
    5
}
fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// How long the simulated provider stays down.
const SIM_OUTAGE: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl Kind for ProviderOutage {
    fn build(&self, g: &mut GraphBuilder<'_>) -> Result<()> {
        let svc = g
            .plan
            .service(&self.service)
            .ok_or_else(|| unknown("service", &self.service))?;
        let check = g
            .plan
            .health_check(&self.health_check)
            .ok_or_else(|| unknown("health check", &self.health_check))?;
        let gate = preamble(g);
        let tripped = g.add(
            "breaker/trip",
            Action::new(crate::step::breaker::TripBreaker {
                check: check.name.clone(),
                target: check.target.clone(),
                failures: self.trip_after,
                window: self.window.get(),
                interval: self.probe_interval.get(),
            }),
            Some(&svc.name),
            gate,
        );
        let mut homes = Vec::new();
        for name in &svc.workloads {
            let (cluster, w) = home_cluster(g, name)?;
            homes.push(workload_ref(cluster, w));
        }
        if homes.is_empty() {
            return Err(PlanningError::Unrecoverable {
                what: format!("service `{}`", svc.name),
                why: "it has no workloads to switch to the fallback".into(),
            });
        }
        let switch = |g: &mut GraphBuilder<'_>,
                      phase: &str,
                      env: &BTreeMap<String, String>,
                      deps: Vec<StepId>| {
            let mut ready = Vec::new();
            for wref in &homes {
                let set = g.add(
                    format!("{}/{phase}:{}", svc.name, wref.name),
                    Action::new(crate::step::config::SetEnv {
                        workload: wref.clone(),
                        env: env.clone(),
                    }),
                    Some(&svc.name),
                    deps.clone(),
                );
                ready.push(g.add(
                    format!("{}/wait-{phase}:{}", svc.name, wref.name),
                    Action::new(crate::step::cluster::WaitWorkload {
                        workload: wref.clone(),
                    }),
                    Some(&svc.name),
                    vec![set],
                ));
            }
            ready
        };
        let on_fallback = switch(g, "fallback", &self.fallback, vec![tripped]);
        let tell =
            |g: &mut GraphBuilder<'_>, what: &str, severity, body: String, deps: &[StepId]| {
                for channel in g.scenario.notify.clone() {
                    let notification = Notification {
                        severity,
                        title: format!("{}: {}", svc.name, what),
                        body: body.clone(),
                    };
                    g.add_optional(
                        format!("notify-{what}:{channel}"),
                        Action::new(crate::step::notify::Notify {
                            channel,
                            notification,
                        }),
                        None,
                        deps.to_vec(),
                    );
                }
            };
        tell(
            g,
            "degraded",
            Severity::Warning,
            format!(
                "`{}` is unavailable: `{}` runs on its fallback, with degraded service.",
                check.name, svc.name
            ),
            &on_fallback,
        );
        let recovered = g.add(
            "breaker/half-open",
            Action::new(crate::step::breaker::HalfOpen {
                check: check.name.clone(),
                target: check.target.clone(),
                successes: self.recover_after,
                interval: self.probe_interval.get(),
            }),
            None,
            on_fallback,
        );
        let back = switch(g, "primary", &self.primary, vec![recovered]);
        let verified = verify_step(g, svc, back.clone()).map_or(back, |v| vec![v]);
        tell(
            g,
            "restored",
            Severity::Info,
            format!("`{}` is back: `{}` runs on it again.", check.name, svc.name),
            &verified,
        );
        Ok(())
    }

    fn validate(&self, c: &mut ScenarioChecks<'_>) {
        c.service("service", &self.service);
        if c.plan.health_check(&self.health_check).is_none() {
            let message = format!("unknown health check `{}`", self.health_check);
            c.problem("health_check", message);
        }
        if self.fallback.is_empty() {
            c.problem(
                "fallback",
                "the environment that switches to the fallback is empty",
            );
        }
        if self.primary.is_empty() {
            c.problem("primary", "the environment that switches back is empty");
        }
        if self.trip_after == 0 || self.recover_after == 0 {
            c.problem(
                "trip_after",
                "`trip_after` and `recover_after` must be at least 1",
            );
        }
        if self.probe_interval.get().is_zero() {
            c.problem("probe_interval", "must be a positive duration, not 0");
        }
    }

    async fn inject(&self, sim: &Simulation) {
        // The provider is down for twenty minutes, then answers again.
        let Some(check) = sim.plan().health_check(&self.health_check) else {
            return;
        };
        let cloud = sim.cloud().clone();
        let target = check.target.clone();
        cloud.set_endpoint_health(&target, HealthStatus::Unhealthy);
        tokio::spawn(async move {
            tokio::time::sleep(SIM_OUTAGE).await;
            cloud.set_endpoint_health(&target, HealthStatus::Healthy);
        });
    }

    fn incident(&self, _plan: &Plan) -> String {
        format!(
            "the provider behind health check {} is down (for 20 minutes): service {} falls back",
            self.health_check, self.service
        )
    }
}

//! Edge steps: point a CDN distribution at another origin and wait until it is deployed,
//! move a load balancer's targets to another region.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::provider::{CdnOrigin, LbTarget, LoadBalancer, Operation as O, TargetState};
use crate::{Error, Result};

/// How many times an origin update is read and written again after another writer changed
/// the distribution in between.
const ORIGIN_WRITES: u32 = 5;

/// How long a wait may poll within `remaining` of its attempt: a little less, so that its
/// own timeout, which says what it waited for, ends the attempt rather than the executor's.
fn wait_budget(remaining: Duration) -> Duration {
    remaining.saturating_sub((remaining / 10).min(Duration::from_secs(10)))
}

/// Point a CDN distribution's default behaviour at `origin` (CloudFront
/// `UpdateDistribution` with the `ETag` it read). Remembers the origin from before, for the
/// read-back and the compensation (switch back). The update is a read-modify-write: when
/// another change lands between the read and the write, the provider refuses it
/// (`PreconditionFailed`) and the step reads again and writes again, a few times. An origin
/// already in place is not written again, so a resumed run never sets it twice. The
/// distribution is usually not deployed yet when the step ends: [`WaitDistribution`] waits.
///
/// # Examples
///
/// ```
/// use dr_core::step::{edge::SwitchOrigin, Action};
///
/// let a = Action::new(SwitchOrigin {
///     distribution: "E2QWRUHAPOMQZL".into(),
///     origin: "static.us-west-2.shop.example.com".into(),
/// });
/// assert_eq!(a.kind(), "switch_origin");
/// assert!(a.get().compensable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchOrigin {
    /// Distribution id.
    pub distribution: String,
    /// The origin domain name to serve from.
    pub origin: String,
}

impl SwitchOrigin {
    fn role(&self) -> Role {
        Role::Cdn {
            distribution: self.distribution.clone(),
        }
    }

    /// Reads, and writes `origin` unless it is in place, reading again after a concurrent
    /// change.
    async fn set(&self, ctx: &StepContext<'_>, origin: &str) -> Result<()> {
        let cdn = ctx.cdn(&self.distribution)?;
        let mut attempt = 1;
        loop {
            let d = ctx
                .read(|| cdn.describe_distribution(&self.distribution))
                .await?;
            if d.origin == origin {
                return Ok(());
            }
            match cdn.set_origin(&self.distribution, origin).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_precondition_failed() && attempt < ORIGIN_WRITES => {
                    tracing::info!(
                        distribution = %self.distribution,
                        attempt,
                        "the distribution changed between the read and the write: reading again"
                    );
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn current(&self, ctx: &StepContext<'_>) -> Result<String> {
        let cdn = ctx.cdn(&self.distribution)?;
        Ok(ctx
            .read(|| cdn.describe_distribution(&self.distribution))
            .await?
            .origin)
    }
}

#[async_trait]
impl StepAction for SwitchOrigin {
    fn kind(&self) -> &str {
        "switch_origin"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let id = &self.distribution;
        vec![
            // The origin before the switch, remembered for the read-back and to switch back.
            Call::provider(
                self.role(),
                O::DescribeDistribution,
                format!("{id} (origin before)"),
            ),
            Call::provider(self.role(), O::DescribeDistribution, id.clone()),
            Call::provider(
                self.role(),
                O::SetOrigin,
                format!("{id} -> {}", self.origin),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(10)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        match self.current(ctx).await {
            Ok(before) => {
                let done = before == self.origin;
                ctx.memory.set("origin_before", &before);
                if done {
                    Observed::Done
                } else {
                    Observed::NotDone
                }
            }
            Err(_) => Observed::Unknown,
        }
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        match self.current(ctx).await {
            Ok(o) if o == self.origin => Observed::Done,
            Ok(_) => Observed::NotDone,
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        self.set(ctx, &self.origin).await
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<String>("origin_before") else {
            return Err(Error::InvalidState {
                provider: "executor".into(),
                resource: format!("distribution {}", self.distribution),
                state: "without a remembered origin".into(),
                operation: "switch back".into(),
            });
        };
        self.set(ctx, &before).await
    }
}

/// Wait until a CDN distribution serving `origin` is deployed to every edge location
/// (CloudFront's `Deployed` status), within the step's timeout (the plan's `timeouts:
/// wait_distribution`). Fails at once when the distribution serves another origin: someone
/// changed it after the switch.
///
/// # Examples
///
/// ```
/// use dr_core::step::{edge::WaitDistribution, Action};
///
/// let a = Action::new(WaitDistribution {
///     distribution: "E2QWRUHAPOMQZL".into(),
///     origin: "static.us-west-2.shop.example.com".into(),
/// });
/// assert_eq!(a.kind(), "wait_distribution");
/// assert!(a.is_idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitDistribution {
    /// Distribution id.
    pub distribution: String,
    /// The origin it must serve.
    pub origin: String,
}

#[async_trait]
impl StepAction for WaitDistribution {
    fn kind(&self) -> &str {
        "wait_distribution"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            Role::Cdn {
                distribution: self.distribution.clone(),
            },
            O::DescribeDistribution,
            format!("{} (until deployed)", self.distribution),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(180)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let cdn: &std::sync::Arc<dyn CdnOrigin> = ctx.cdn(&self.distribution)?;
        let deadline = wait_budget(ctx.remaining());
        let mut wait = super::Backoff::new(deadline, Duration::from_secs(30));
        let mut last = "no status read".to_string();
        loop {
            match cdn.describe_distribution(&self.distribution).await {
                Ok(d) if d.origin != self.origin => {
                    return Err(Error::InvalidState {
                        provider: cdn.name().to_string(),
                        resource: format!("distribution {}", self.distribution),
                        state: format!("serving origin {}", d.origin),
                        operation: format!("wait for origin {} to be deployed", self.origin),
                    })
                }
                Ok(d) if d.deployed => return Ok(()),
                Ok(d) => last = format!("version {} in progress", d.version),
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(distribution = %self.distribution, error = %e, "poll failed, polling on");
                }
            }
            if wait.expired() {
                return Err(Error::Timeout {
                    operation: format!(
                        "waiting for distribution {} to be deployed ({last})",
                        self.distribution
                    ),
                    after: deadline,
                });
            }
            wait.sleep().await;
        }
    }
}

/// Move a load balancer target group's traffic to other targets (ELBv2
/// `RegisterTargets`, `DescribeTargetHealth`, `DeregisterTargets`): register `register`,
/// wait until every one of them is healthy, then deregister `deregister` (they drain). The
/// old targets are never deregistered before the new ones are healthy: when they do not
/// become healthy in time, the step fails naming the target group and the old targets stay
/// registered. Remembers which old targets were registered before, for the read-back and the
/// compensation (register them again).
///
/// Deregistering is not undone by retrying, so the step is not retried blindly: after an
/// attempt with an unknown outcome, it reads the group's targets back first.
///
/// # Examples
///
/// ```
/// use dr_core::provider::LbTarget;
/// use dr_core::step::{edge::MoveTargets, Action};
///
/// let a = Action::new(MoveTargets {
///     group: "tg-api".into(),
///     register: vec![LbTarget::parse("10.2.0.10:8080").unwrap()],
///     deregister: vec![LbTarget::parse("10.1.0.10:8080").unwrap()],
/// });
/// assert_eq!(a.kind(), "move_targets");
/// assert!(!a.is_idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveTargets {
    /// Target group ARN or name.
    pub group: String,
    /// The targets that take the traffic.
    pub register: Vec<LbTarget>,
    /// The targets that stop taking it, once the new ones are healthy.
    pub deregister: Vec<LbTarget>,
}

fn list(targets: &[LbTarget]) -> String {
    targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The targets of `wanted` registered in `health` and not on their way out.
fn registered(health: &[crate::provider::TargetHealth], wanted: &[LbTarget]) -> Vec<LbTarget> {
    wanted
        .iter()
        .filter(|t| {
            health
                .iter()
                .any(|h| t.matches(&h.target) && h.state != TargetState::Draining)
        })
        .cloned()
        .collect()
}

impl MoveTargets {
    fn role(&self) -> Role {
        Role::LoadBalancer {
            group: self.group.clone(),
        }
    }

    /// The old targets, less any that is also a new one.
    fn leaving(&self) -> Vec<LbTarget> {
        self.deregister
            .iter()
            .filter(|t| !self.register.contains(t))
            .cloned()
            .collect()
    }

    /// Polls until every new target is healthy, within the attempt's time.
    async fn wait_healthy(&self, ctx: &StepContext<'_>, lb: &dyn LoadBalancer) -> Result<()> {
        let deadline = wait_budget(ctx.remaining());
        let mut wait = super::Backoff::new(deadline, Duration::from_secs(15));
        let mut last = "no health read".to_string();
        loop {
            match lb.target_health(&self.group).await {
                Ok(health) => {
                    let pending: Vec<String> = self
                        .register
                        .iter()
                        .filter_map(|t| {
                            let state = health
                                .iter()
                                .find(|h| t.matches(&h.target))
                                .map(|h| h.state);
                            match state {
                                Some(TargetState::Healthy) => None,
                                Some(s) => Some(format!("{t} {}", state_name(s))),
                                None => Some(format!("{t} not registered")),
                            }
                        })
                        .collect();
                    if pending.is_empty() {
                        return Ok(());
                    }
                    last = pending.join(", ");
                }
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(group = %self.group, error = %e, "poll failed, polling on");
                }
            }
            if wait.expired() {
                return Err(Error::Timeout {
                    operation: format!(
                        "waiting for the new targets of target group {} to be healthy ({last}); the old targets stay registered",
                        self.group
                    ),
                    after: deadline,
                });
            }
            wait.sleep().await;
        }
    }
}

fn state_name(s: TargetState) -> &'static str {
    match s {
        TargetState::Initial => "initial",
        TargetState::Healthy => "healthy",
        TargetState::Unhealthy => "unhealthy",
        TargetState::Draining => "draining",
        TargetState::Unused => "unused",
        TargetState::Unknown => "unknown",
    }
}

#[async_trait]
impl StepAction for MoveTargets {
    fn kind(&self) -> &str {
        "move_targets"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let g = &self.group;
        let mut calls = vec![
            // Which old targets are registered, remembered for the read-back and to undo.
            Call::provider(
                self.role(),
                O::TargetHealth,
                format!("{g} (targets before)"),
            ),
            Call::provider(self.role(), O::TargetHealth, g.clone()),
            Call::provider(
                self.role(),
                O::RegisterTargets,
                format!("{g} + {}", list(&self.register)),
            ),
            Call::provider(
                self.role(),
                O::TargetHealth,
                format!("{g} (until {} are healthy)", list(&self.register)),
            ),
        ];
        let leaving = self.leaving();
        if !leaving.is_empty() {
            calls.extend([
                Call::provider(
                    self.role(),
                    O::TargetHealth,
                    format!("{g} (before deregistering)"),
                ),
                Call::provider(
                    self.role(),
                    O::DeregisterTargets,
                    format!("{g} - {}", list(&leaving)),
                ),
            ]);
        }
        calls
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        format!(
            "move target group {} to {}",
            self.group,
            list(&self.register)
        )
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(lb) = ctx.load_balancer(&self.group) else {
            return Observed::Unknown;
        };
        match ctx.read(|| lb.target_health(&self.group)).await {
            Ok(health) => {
                let before = registered(&health, &self.leaving());
                let done = self.moved(&health);
                ctx.memory.set("registered_before", &before);
                if done {
                    Observed::Done
                } else {
                    Observed::NotDone
                }
            }
            Err(_) => Observed::Unknown,
        }
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(lb) = ctx.load_balancer(&self.group) else {
            return Observed::Unknown;
        };
        match ctx.read(|| lb.target_health(&self.group)).await {
            Ok(health) if self.moved(&health) => Observed::Done,
            Ok(_) => Observed::NotDone,
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        if self.register.is_empty() {
            return Err(Error::InvalidRequest {
                provider: "executor".into(),
                operation: "move_targets".into(),
                message: format!(
                    "target group {}: no new targets to move the traffic to",
                    self.group
                ),
            });
        }
        let lb: &std::sync::Arc<dyn LoadBalancer> = ctx.load_balancer(&self.group)?;
        let health = ctx.read(|| lb.target_health(&self.group)).await?;
        let present = registered(&health, &self.register);
        let missing: Vec<LbTarget> = self
            .register
            .iter()
            .filter(|t| !present.contains(t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            lb.register_targets(&self.group, &missing).await?;
        }
        self.wait_healthy(ctx, lb.as_ref()).await?;
        // Only now, with every new target healthy: the old ones leave (read again, so a
        // target already gone is not deregistered twice).
        let leaving = self.leaving();
        if leaving.is_empty() {
            return Ok(());
        }
        let health = ctx.read(|| lb.target_health(&self.group)).await?;
        let leaving = registered(&health, &leaving);
        if !leaving.is_empty() {
            lb.deregister_targets(&self.group, &leaving).await?;
        }
        Ok(())
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let Some(before) = ctx.memory.get::<Vec<LbTarget>>("registered_before") else {
            return Err(Error::InvalidState {
                provider: "executor".into(),
                resource: format!("target group {}", self.group),
                state: "without remembered targets".into(),
                operation: "register the old targets again".into(),
            });
        };
        if before.is_empty() {
            return Ok(());
        }
        ctx.load_balancer(&self.group)?
            .register_targets(&self.group, &before)
            .await
    }
}

impl MoveTargets {
    /// Whether the move is complete in `health`: every new target healthy, no old one
    /// registered (draining ones have left).
    fn moved(&self, health: &[crate::provider::TargetHealth]) -> bool {
        let healthy = self.register.iter().all(|t| {
            health
                .iter()
                .any(|h| t.matches(&h.target) && h.state == TargetState::Healthy)
        });
        healthy && registered(health, &self.leaving()).is_empty()
    }
}

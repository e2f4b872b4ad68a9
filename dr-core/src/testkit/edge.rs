//! The [`CdnOrigin`] and [`LoadBalancer`] conformance checks: what "not found" means, what
//! a read-back sees after an origin switch or a target (de)registration, idempotency, and
//! the retry class of each error.
//!
//! Every check takes the provider as a trait object and what to use from a fixture; it
//! panics with a clear message when the provider misbehaves and returns the provider's own
//! errors where an operation that should work fails. Waits are `tokio::time` sleeps, so the
//! checks run on a paused clock (the simulated cloud) and on real time (a stand-in) alike.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> dr_core::Result<()> {
//! use std::time::Duration;
//! use dr_core::provider::LbTarget;
//! use dr_core::sim::SimCloud;
//! use dr_core::testkit::edge::{self, CdnFixture, LbFixture};
//!
//! let cloud = SimCloud::new(1);
//! cloud.add_distribution("E1", "east.example.com");
//! cloud.add_target_group("tg");
//! let cdn = CdnFixture {
//!     distribution: "E1".into(),
//!     origins: ["east.example.com".into(), "west.example.com".into()],
//!     missing: "E404".into(),
//!     deadline: Duration::from_secs(3600),
//! };
//! edge::cdn_run_all(cloud.cdn().as_ref(), &cdn).await?;
//! let lb = LbFixture {
//!     group: "tg".into(),
//!     targets: vec![LbTarget::parse("10.0.0.1:8080")?],
//!     missing: "tg-404".into(),
//! };
//! edge::lb_run_all(cloud.load_balancer().as_ref(), &lb).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::provider::{CdnOrigin, LbTarget, LoadBalancer, TargetState};
use crate::{Error, Result, Retry};

/// The distribution the CDN checks use.
#[derive(Debug, Clone)]
pub struct CdnFixture {
    /// An existing distribution whose origin the checks switch and switch back.
    pub distribution: String,
    /// Its origin now, and another one to switch to.
    pub origins: [String; 2],
    /// A distribution id that does not exist.
    pub missing: String,
    /// How long a change may take to be deployed.
    pub deadline: Duration,
}

/// The target group the load balancer checks use.
#[derive(Debug, Clone)]
pub struct LbFixture {
    /// An existing target group, none of `targets` registered in it.
    pub group: String,
    /// Targets the group can take.
    pub targets: Vec<LbTarget>,
    /// A target group that does not exist.
    pub missing: String,
}

fn assert_not_found(e: &Error, what: &str) {
    assert!(e.is_not_found(), "{what}: must be NotFound, got {e}");
    assert_eq!(e.retry(), Retry::Permanent, "{what}: must be permanent");
}

/// Runs every CDN check; the distribution ends with its first origin.
///
/// # Errors
/// The first error of an operation that should have worked.
///
/// # Panics
/// When the provider misbehaves.
pub async fn cdn_run_all(cdn: &dyn CdnOrigin, fx: &CdnFixture) -> Result<()> {
    cdn_not_found(cdn, fx).await?;
    cdn_switch(cdn, fx).await
}

/// A missing distribution is `NotFound`, permanent, for a describe and an origin switch.
///
/// # Errors
/// None of its own.
///
/// # Panics
/// When it is anything but `NotFound`.
pub async fn cdn_not_found(cdn: &dyn CdnOrigin, fx: &CdnFixture) -> Result<()> {
    let e = cdn
        .describe_distribution(&fx.missing)
        .await
        .expect_err("describing a missing distribution must fail");
    assert_not_found(&e, "describe_distribution of a missing distribution");
    let e = cdn
        .set_origin(&fx.missing, &fx.origins[1])
        .await
        .expect_err("switching a missing distribution must fail");
    assert_not_found(&e, "set_origin of a missing distribution");
    Ok(())
}

/// A switch is read back at once, changes the version, is deployed within the deadline;
/// switching to the origin in place changes nothing (not even the version); switching back
/// works the same way.
///
/// # Errors
/// A describe or a switch that failed.
///
/// # Panics
/// When a read-back does not see the switch, or the version does not follow the changes.
pub async fn cdn_switch(cdn: &dyn CdnOrigin, fx: &CdnFixture) -> Result<()> {
    let id = &fx.distribution;
    let before = cdn.describe_distribution(id).await?;
    assert_eq!(before.id, *id, "describe_distribution answers for {id}");
    assert_eq!(
        before.origin, fx.origins[0],
        "the fixture's distribution must start at its first origin"
    );
    for to in [&fx.origins[1], &fx.origins[0]] {
        let current = cdn.describe_distribution(id).await?;
        let updated = cdn.set_origin(id, to).await?;
        assert_eq!(
            updated.origin, *to,
            "set_origin returns the distribution as updated"
        );
        if current.origin != *to {
            assert_ne!(
                updated.version, current.version,
                "an update to {to} must change the version"
            );
        }
        let read = cdn.describe_distribution(id).await?;
        assert_eq!(read.origin, *to, "a read-back after set_origin sees {to}");
        let again = cdn.set_origin(id, to).await?;
        assert_eq!(
            again.version, read.version,
            "setting the origin in place ({to}) must change nothing"
        );
        wait_deployed(cdn, id, fx.deadline).await?;
    }
    Ok(())
}

async fn wait_deployed(cdn: &dyn CdnOrigin, id: &str, deadline: Duration) -> Result<()> {
    let start = tokio::time::Instant::now();
    loop {
        if cdn.describe_distribution(id).await?.deployed {
            return Ok(());
        }
        assert!(
            start.elapsed() < deadline,
            "distribution {id} not deployed within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Runs every load balancer check; the group ends with none of the fixture's targets
/// registered (they may still be draining).
///
/// # Errors
/// The first error of an operation that should have worked.
///
/// # Panics
/// When the provider misbehaves.
pub async fn lb_run_all(lb: &dyn LoadBalancer, fx: &LbFixture) -> Result<()> {
    lb_not_found(lb, fx).await?;
    lb_register_deregister(lb, fx).await
}

/// A missing target group is `NotFound`, permanent, for a health read and a registration.
///
/// # Errors
/// None of its own.
///
/// # Panics
/// When it is anything but `NotFound`.
pub async fn lb_not_found(lb: &dyn LoadBalancer, fx: &LbFixture) -> Result<()> {
    let e = lb
        .target_health(&fx.missing)
        .await
        .expect_err("reading a missing target group must fail");
    assert_not_found(&e, "target_health of a missing target group");
    let e = lb
        .register_targets(&fx.missing, &fx.targets)
        .await
        .expect_err("registering in a missing target group must fail");
    assert_not_found(&e, "register_targets in a missing target group");
    Ok(())
}

/// Registered targets are listed (once, even when registered twice) and not draining;
/// deregistered ones drain or are gone; deregistering them again is no error.
///
/// # Errors
/// A registration, a deregistration or a health read that failed.
///
/// # Panics
/// When a read-back does not see what was done.
pub async fn lb_register_deregister(lb: &dyn LoadBalancer, fx: &LbFixture) -> Result<()> {
    let g = &fx.group;
    lb.register_targets(g, &fx.targets).await?;
    lb.register_targets(g, &fx.targets).await?;
    let health = lb.target_health(g).await?;
    for t in &fx.targets {
        let listed: Vec<_> = health.iter().filter(|h| h.target == *t).collect();
        assert_eq!(
            listed.len(),
            1,
            "target {t} registered twice must be listed once in {g}: {health:?}"
        );
        assert_ne!(
            listed[0].state,
            TargetState::Draining,
            "a target just registered in {g} is not draining"
        );
    }
    lb.deregister_targets(g, &fx.targets).await?;
    let health = lb.target_health(g).await?;
    for t in &fx.targets {
        if let Some(h) = health.iter().find(|h| h.target == *t) {
            assert_eq!(
                h.state,
                TargetState::Draining,
                "a deregistered target of {g} drains or is gone"
            );
        }
    }
    lb.deregister_targets(g, &fx.targets).await?;
    Ok(())
}

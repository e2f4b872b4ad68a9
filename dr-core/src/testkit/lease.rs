//! The [`Lease`] conformance checks: one leader, renewal, release, expiry and fencing.
//!
//! Run them on a paused tokio clock (`#[tokio::test(start_paused = true)]`): the expiry check
//! sleeps past the lease's ttl.

use std::time::Duration;

use crate::provider::{Lease, LeaseGuard};
use crate::Result;

const TTL: Duration = Duration::from_secs(15);

async fn leader_of(
    runners: &[&dyn Lease],
    round: &str,
    ttl: Duration,
) -> Result<(usize, LeaseGuard)> {
    let tries = runners
        .iter()
        .enumerate()
        .map(|(i, l)| async move { (i, l.acquire(&format!("{round}-{i}"), ttl).await) });
    let mut leaders = Vec::new();
    for (i, r) in futures::future::join_all(tries).await {
        if let Some(g) = r? {
            leaders.push((i, g));
        }
    }
    assert_eq!(leaders.len(), 1, "exactly one leader, got {leaders:?}");
    Ok(leaders.remove(0))
}

/// Runs every check. `runners` are independent handles (clients) on the same, free lease;
/// at least two.
///
/// # Errors
/// The first error of the lease's store.
///
/// # Panics
/// When the lease misbehaves (two leaders, a lost lease renewed, a token going back).
pub async fn run_all(runners: &[&dyn Lease]) -> Result<()> {
    run_all_with_ttl(runners, TTL).await
}

/// [`run_all`] with leases of `ttl` (and a sleep of `ttl` + 1 s for the expiry check), for
/// leases on real time against a stand-in, where 15 s would be long.
///
/// # Errors
/// The first error of the lease's store.
///
/// # Panics
/// As [`run_all`].
pub async fn run_all_with_ttl(runners: &[&dyn Lease], ttl: Duration) -> Result<()> {
    assert!(
        runners.len() >= 2,
        "the lease checks need two runners at least"
    );

    // Concurrent acquisition: one leader; the others are refused while it is fresh.
    let (i, first) = leader_of(runners, "a", ttl).await?;
    let j = (i + 1) % runners.len();
    assert!(
        runners[j].acquire("a-other", ttl).await?.is_none(),
        "a fresh lease was taken from its holder"
    );
    // Acquiring again as the holder renews without a new token.
    let again = runners[i]
        .acquire(&first.holder, ttl)
        .await?
        .expect("the holder re-acquires its own lease");
    assert_eq!(again.fencing_token, first.fencing_token);
    let renewed = runners[i].renew(&again).await?;
    assert_eq!(renewed.fencing_token, first.fencing_token);

    // Release: another runner takes it at once, with a higher token.
    runners[i].release(renewed).await?;
    let second = runners[j]
        .acquire("b", ttl)
        .await?
        .expect("a released lease is free");
    assert!(
        second.fencing_token > first.fencing_token,
        "fencing tokens must increase: {} then {}",
        first.fencing_token,
        second.fencing_token
    );

    // Expiry: the holder stops renewing; after the ttl another runner takes over, and the
    // deposed holder learns it lost the lease.
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    let third = runners[i]
        .acquire("c", ttl)
        .await?
        .expect("an expired lease can be taken over");
    assert!(third.fencing_token > second.fencing_token);
    let lost = runners[j].renew(&second).await;
    assert!(
        lost.is_err(),
        "a deposed holder renewed a lease it lost: {lost:?}"
    );
    // Its release changes nothing.
    runners[j].release(second).await?;
    assert!(runners[j].acquire("d", ttl).await?.is_none());
    runners[i].release(third).await?;
    Ok(())
}

/// `runners` (independent handles on one free lease, each its own client) race to acquire
/// it at once, under distinct holders, `rounds` times: each time exactly one wins, the
/// others get `None`, and the winner's release frees it for the next round with a higher
/// fencing token.
///
/// # Errors
/// The first error of the lease's store.
///
/// # Panics
/// When no runner or more than one wins a round, or a token does not increase.
pub async fn race(runners: &[&dyn Lease], rounds: usize) -> Result<()> {
    let mut last = 0;
    for round in 0..rounds {
        let (i, guard) = leader_of(runners, &format!("race{round}"), TTL).await?;
        assert!(
            guard.fencing_token > last,
            "fencing tokens must increase: {last} then {}",
            guard.fencing_token
        );
        last = guard.fencing_token;
        runners[i].release(guard).await?;
    }
    Ok(())
}

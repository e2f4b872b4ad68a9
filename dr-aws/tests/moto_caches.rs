//! The ElastiCache cache restore provider against a moto server (`scripts/standins/moto.sh`).
//!
//! It reads `AWS_ENDPOINT_URL`. Without it the tests print a `skipped:` line and pass, unless
//! `CI` is set: then they fail, because the stand-in should have been started.

#[path = "support/moto.rs"]
mod moto;

use dr_aws::ElastiCacheCaches;
use dr_core::provider::{CacheBackupState, CacheRestore, CacheState};
use dr_core::{Error, Retry};
use moto::{assert_unauthorized_and_refused, aws, cache_with_snapshot, refusing, unique};

const REGION: &str = "us-west-2";

#[tokio::test]
async fn backups_are_listed_for_their_cache_only_and_restored_once() {
    let Some(aws) = aws().await else { return };
    let caches = aws.build_elasticache_caches().expect("provider");
    let (source, snapshot) = (unique("sessions"), unique("sessions-bk"));
    let (other, other_snapshot) = (unique("carts"), unique("carts-bk"));
    cache_with_snapshot(REGION, &source, &snapshot).await;
    cache_with_snapshot(REGION, &other, &other_snapshot).await;

    let backups = caches
        .list_cache_backups(REGION, &source)
        .await
        .expect("listed");
    assert_eq!(
        backups.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        [snapshot.as_str()],
        "only the backup of {source}: {backups:?}"
    );
    assert_eq!(backups[0].cache, source);
    assert_eq!(backups[0].region, REGION);
    assert_eq!(backups[0].state, CacheBackupState::Available);
    // A cache with no backups in the region (or none at all) has an empty list, not an error.
    assert!(caches
        .list_cache_backups(REGION, &unique("nothing"))
        .await
        .expect("listed")
        .is_empty());
    assert!(
        caches
            .list_cache_backups("eu-west-1", &source)
            .await
            .expect("listed in another region")
            .is_empty(),
        "the backup is in {REGION} only"
    );

    let target = unique("sessions-dr");
    let restored = caches
        .restore_cache(REGION, &target, &snapshot, None)
        .await
        .expect("restore started");
    assert_eq!(restored.id, target);
    assert_eq!(restored.region, REGION);
    let described = caches
        .describe_cache(REGION, &target)
        .await
        .expect("the restored cache exists");
    assert_eq!(described.id, target);
    // moto creates a cluster `available` at once.
    assert_eq!(described.state, CacheState::Available, "{described:?}");

    let again = caches
        .restore_cache(REGION, &target, &snapshot, Some("cache.r6g.large"))
        .await
        .expect_err("the cache exists");
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");
    assert_eq!(again.retry(), Retry::Permanent);
}

#[tokio::test]
async fn unknown_backups_and_caches_are_not_found() {
    let Some(aws) = aws().await else { return };
    let caches = aws.build_elasticache_caches().expect("provider");
    let backup = unique("no-such-backup");
    let e = caches
        .restore_cache(REGION, &unique("dr"), &backup, Some("cache.t4g.micro"))
        .await
        .expect_err("no such backup");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&backup), "{e}");
    let cache = unique("no-such-cache");
    let e = caches
        .describe_cache(REGION, &cache)
        .await
        .expect_err("no such cache");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&cache), "{e}");
}

#[tokio::test]
async fn without_credentials_or_a_listener_the_call_is_refused_typed() {
    let Some(aws) = aws().await else { return };
    let [no_credentials, closed] = refusing(&aws).map(|(credentials, endpoint)| {
        ElastiCacheCaches::new(credentials, Some(endpoint), None).expect("provider")
    });
    let no_credentials = no_credentials
        .list_cache_backups(REGION, "sessions")
        .await
        .expect_err("no credentials");
    let closed = closed
        .describe_cache(REGION, "sessions")
        .await
        .expect_err("nobody listens");
    assert_unauthorized_and_refused(&no_credentials, &closed);
}

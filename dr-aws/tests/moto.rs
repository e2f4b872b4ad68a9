//! End-to-end tests against a moto server (`scripts/standins/moto.sh`).
//!
//! They read `AWS_ENDPOINT_URL`. Without it they print a `skipped:` line and pass, unless
//! `CI` is set: then they fail, because the stand-in should have been started.

use std::time::Duration;

use bytes::Bytes;
use dr_aws::{AwsConfig, HealthCheckSpec, S3Store, UNCHANGED};
use dr_core::provider::{
    ByteStream, DatabaseReplica, DbRef, DbRole, DbState, DnsFailover, DnsRecord, PutOptions,
    RestorePoint, Routing, SnapshotStore, SnapshotStoreExt,
};
use dr_core::Error;
use futures::StreamExt;

/// Loads the configuration from the environment, or `None` when moto is not running here.
async fn aws() -> Option<AwsConfig> {
    dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto")?;
    Some(AwsConfig::from_env().await.expect("AWS config from env"))
}

/// A name no other test (or earlier run against the same server) uses.
fn unique(prefix: &str) -> String {
    dr_core::testkit::unique(prefix)
}

// ---------------------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------------------

async fn bucket(aws: &AwsConfig, region: Option<&str>) -> S3Store {
    let name = unique("dr-test");
    let store = match region {
        None => aws.build_s3_for(&name),
        Some(r) => dr_aws::AwsBuilder::from_env()
            .with_region(r)
            .load()
            .await
            .expect("config")
            .build_s3_for(&name),
    };
    let mut req = store.client().create_bucket().bucket(&name);
    if let Some(r) = region.filter(|r| *r != "us-east-1") {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(r))
                .build(),
        );
    }
    req.send().await.expect("create bucket");
    store.with_part_size(dr_aws::MIN_PART_SIZE)
}

/// `len` bytes of a repeating pattern, as a stream of 1 MiB chunks.
fn pattern(len: usize) -> (Vec<u8>, ByteStream) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<dr_core::Result<Bytes>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    (data, futures::stream::iter(chunks).boxed())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

async fn open_uploads(store: &S3Store) -> usize {
    store
        .client()
        .list_multipart_uploads()
        .bucket(store.bucket())
        .send()
        .await
        .expect("list uploads")
        .uploads()
        .len()
}

#[tokio::test]
async fn s3_small_round_trip_head_verify_and_metadata() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await;
    let opts = PutOptions::default().with_metadata("owner", "orders");
    let data = futures::stream::iter([Ok(Bytes::from("hello ")), Ok(Bytes::from("world"))]).boxed();
    let meta = store.put("a/b.txt", data, opts).await.expect("put");
    assert_eq!(meta.size, 11);
    assert_eq!(
        meta.sha256.as_deref(),
        Some(sha256_hex(b"hello world").as_str())
    );

    assert_eq!(
        store.get_bytes("a/b.txt").await.expect("get"),
        "hello world"
    );
    let head = store.head("a/b.txt").await.expect("head");
    assert_eq!(head.size, 11);
    assert_eq!(
        head.metadata.get("owner").map(String::as_str),
        Some("orders")
    );
    assert_eq!(head.sha256, meta.sha256);
    store.verify("a/b.txt").await.expect("verify");
    // where `corruptor` overwrites an object's content in place without touching its
    // `sha256` metadata (a PutObject through `store.client()` with the old metadata).
}

#[tokio::test]
async fn s3_passes_the_snapshot_store_conformance_suite() {
    if aws().await.is_none() {
        return;
    }
    // moto races on concurrent PutObjects of one key (one request fails with a 500, "I/O
    // operation on closed file", while another replaces the object); S3 does not. The suite's
    // eight writers to one key need more than the default 3 attempts to get past it.
    let aws = dr_aws::AwsBuilder::from_env()
        .with_retry_attempts(10)
        .load()
        .await
        .expect("AWS config from env");
    let store = bucket(&aws, None).await;
    // Corrupts an object behind the store's back: new content, the old metadata (and so the
    // old recorded sha256).
    let client = store.client().clone();
    let name = store.bucket().to_string();
    let corruptor = move |key: String| {
        let (client, name) = (client.clone(), name.clone());
        async move {
            let fail = |e: String| dr_core::Error::InvalidResponse {
                provider: "moto".into(),
                operation: "corrupt".into(),
                message: e,
            };
            let head = client
                .head_object()
                .bucket(&name)
                .key(&key)
                .send()
                .await
                .map_err(|e| fail(format!("{e:?}")))?;
            client
                .put_object()
                .bucket(&name)
                .key(&key)
                .set_metadata(head.metadata().cloned())
                .body(aws_sdk_s3::primitives::ByteStream::from_static(
                    b"corrupted!",
                ))
                .send()
                .await
                .map_err(|e| fail(format!("{e:?}")))?;
            Ok(())
        }
    };
    // moto checks a precondition and writes in two steps, without a lock: the races are
    // left out here (see the crate README), the preconditions one at a time are checked.
    dr_core::testkit::store::run_sequential(&store, &unique("conformance"), &corruptor)
        .await
        .expect("S3 passes the SnapshotStore conformance suite");
    dr_core::testkit::store::backups_round_trip(std::sync::Arc::new(store), &unique("backups"))
        .await
        .expect("backups round-trip through S3");
}

#[tokio::test]
async fn s3_conditional_writes_and_lease() {
    use dr_core::provider::{Lease, StoreLease};
    use dr_core::testkit::{lease, store as suite};
    use std::sync::Arc;
    let Some(aws) = aws().await else { return };
    let store: Arc<dyn SnapshotStore> = Arc::new(bucket(&aws, None).await);
    let prefix = unique("conditional");
    // Each precondition, one request at a time. moto checks `If-None-Match`/`If-Match` and
    // then writes without a lock (`moto/s3/responses.py`), so racing writers can both win
    // on it: the races (`conditional_races`, `journal_races`, `lease::race`) run against the
    // other stores' stand-ins, and must be run against the S3 service itself before relying
    // on the journal or the lease there (see the crate README).
    suite::conditional_writes(store.as_ref(), &prefix)
        .await
        .expect("conditional writes");
    let key = format!("{prefix}/lease");
    let runners: Vec<StoreLease> = (0..3)
        .map(|_| StoreLease::new(store.clone(), &key))
        .collect();
    let dyns: Vec<&dyn Lease> = runners.iter().map(|l| l as &dyn Lease).collect();
    lease::run_all_with_ttl(&dyns, Duration::from_secs(2))
        .await
        .expect("lease checks on S3");
}

#[tokio::test]
async fn s3_multipart_records_sha256_and_streams_back() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await;
    let len = 2 * dr_aws::MIN_PART_SIZE + 123;
    let (data, stream) = pattern(len);
    let meta = store
        .put(
            "big/no-expected",
            stream,
            PutOptions::default().with_metadata("k", "v"),
        )
        .await
        .expect("multipart put");
    assert_eq!(meta.size, len as u64);
    let head = store
        .verify("big/no-expected")
        .await
        .expect("verify of a digest recorded as a tag");
    assert_eq!(head.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    assert_eq!(head.metadata.get("k").map(String::as_str), Some("v"));
    let head = store.head("big/no-expected").await.expect("head");
    assert_eq!(head.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    // The digest is a tag, not a copy of the object with new metadata.
    let tags = store
        .client()
        .get_object_tagging()
        .bucket(store.bucket())
        .key("big/no-expected")
        .send()
        .await
        .expect("tags");
    let tag = tags
        .tag_set()
        .iter()
        .find(|t| t.key() == dr_aws::SHA256_TAG);
    assert_eq!(tag.map(|t| t.value()), Some(sha256_hex(&data).as_str()));
    // A server-side copy keeps it.
    let copied = store
        .copy_to("big/no-expected", &store, "big/copied")
        .await
        .expect("copy");
    assert_eq!(copied.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    store.verify("big/copied").await.expect("verify the copy");

    // With the digest known up front, it is recorded when the upload starts.
    let (_, stream) = pattern(len);
    let opts = PutOptions::default().with_expected_sha256(sha256_hex(&data));
    store.put("big/expected", stream, opts).await.expect("put");
    store.verify("big/expected").await.expect("verify");

    let got = store.get("big/expected").await.expect("get");
    let mut chunks = 0;
    let mut total = 0;
    let mut s = got.stream;
    while let Some(chunk) = s.next().await {
        total += chunk.expect("chunk").len();
        chunks += 1;
    }
    assert_eq!(total, len);
    assert!(chunks > 1, "the body arrives in chunks, not as one buffer");
    assert_eq!(open_uploads(&store).await, 0);
}

#[tokio::test]
async fn s3_checksum_mismatch_leaves_nothing() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await;
    let wrong = "0".repeat(64);
    for len in [100, 2 * dr_aws::MIN_PART_SIZE + 1] {
        let (_, stream) = pattern(len);
        let err = store
            .put(
                "x",
                stream,
                PutOptions::default().with_expected_sha256(&wrong),
            )
            .await
            .expect_err("mismatch");
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        assert!(store
            .head("x")
            .await
            .expect_err("nothing stored")
            .is_not_found());
        assert_eq!(open_uploads(&store).await, 0, "multipart upload aborted");
    }
}

#[tokio::test]
async fn s3_stream_error_aborts_the_upload() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await;
    let part = Bytes::from(vec![7u8; dr_aws::MIN_PART_SIZE]);
    let stream = futures::stream::iter([
        Ok(part.clone()),
        Ok(part),
        Err(Error::Cancelled {
            reason: "source went away".into(),
        }),
    ])
    .boxed();
    let err = store
        .put("broken", stream, PutOptions::default())
        .await
        .expect_err("stream error");
    assert!(
        matches!(err, Error::Cancelled { .. }),
        "returned as is: {err}"
    );
    assert!(store
        .head("broken")
        .await
        .expect_err("absent")
        .is_not_found());
    assert_eq!(open_uploads(&store).await, 0);
}

#[tokio::test]
async fn s3_list_paginates_in_key_order() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await.with_list_page_size(2);
    for k in ["p/3", "p/1", "p/2", "p/4", "p/5", "q/1"] {
        store.put_bytes(k, Bytes::from(k)).await.expect("put");
    }
    let keys: Vec<String> = store
        .list_all("p/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["p/1", "p/2", "p/3", "p/4", "p/5"]);
    assert!(store.list_all("none/").await.expect("empty").is_empty());
}

#[tokio::test]
async fn s3_delete_is_idempotent_and_missing_objects_are_not_found() {
    let Some(aws) = aws().await else { return };
    let store = bucket(&aws, None).await;
    store.put_bytes("d", "x".into()).await.expect("put");
    store.delete("d").await.expect("delete");
    store.delete("d").await.expect("delete again");
    assert!(store.get("d").await.expect_err("gone").is_not_found());
    assert!(store.head("d").await.expect_err("gone").is_not_found());
    assert!(store.copy("d", "e").await.expect_err("gone").is_not_found());
}

#[tokio::test]
async fn s3_copy_within_and_across_buckets_keeps_the_checksum() {
    let Some(aws) = aws().await else { return };
    let east = bucket(&aws, None).await;
    let west = bucket(&aws, Some("us-west-2")).await;
    east.put_bytes("src/with space+plus", "payload".into())
        .await
        .expect("put");
    let copied = east
        .copy("src/with space+plus", "dst/1")
        .await
        .expect("copy");
    assert!(copied.sha256.is_some());
    east.verify("dst/1").await.expect("verify copy");

    east.copy_to("src/with space+plus", &west, "from-east")
        .await
        .expect("copy_to");
    assert_eq!(west.get_bytes("from-east").await.expect("get"), "payload");
    west.verify("from-east")
        .await
        .expect("verify cross-bucket copy");

    // The core's streaming copy passes the digest along.
    dr_core::provider::copy_between(&east, "dst/1", &west, "streamed")
        .await
        .expect("copy_between");
    west.verify("streamed").await.expect("verify streamed copy");
}

// ---------------------------------------------------------------------------------------
// Route 53
// ---------------------------------------------------------------------------------------

async fn zone(dns: &dr_aws::Route53Dns) -> (String, String) {
    let domain = format!("{}.example.com", unique("z"));
    let out = dns
        .client()
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create zone");
    let id = out.hosted_zone().expect("zone").id().to_string();
    (id, domain)
}

fn record(zone: &str, name: &str, values: &[&str], routing: Routing) -> DnsRecord {
    DnsRecord {
        zone: zone.to_string(),
        name: name.to_string(),
        record_type: "CNAME".into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        ttl: 60,
        routing,
    }
}

#[tokio::test]
async fn route53_simple_switch_wait_and_repeat_is_a_no_op() {
    let Some(aws) = aws().await else { return };
    let dns = aws.build_route53();
    let (zone, domain) = zone(&dns).await;
    let name = format!("api.{domain}");

    let err = dns
        .get_record(&zone, &name)
        .await
        .expect_err("no record yet");
    assert!(err.is_not_found(), "{err}");

    let first = record(&zone, &name, &["lb.us-east-1.example.com"], Routing::Simple);
    let change = dns.switch_record(&first).await.expect("create by upsert");
    assert_ne!(change.id, UNCHANGED);
    dns.wait_change(&change.id, Duration::from_secs(60))
        .await
        .expect("in sync");
    assert_eq!(dns.get_record(&zone, &name).await.expect("read"), first);

    let second = record(&zone, &name, &["lb.us-west-2.example.com"], Routing::Simple);
    let change = dns.switch_record(&second).await.expect("switch");
    assert_ne!(change.id, UNCHANGED);
    let got = dns.get_change(&change.id).await.expect("get_change");
    assert_eq!(got.id, change.id);
    assert_eq!(
        dns.get_record(&zone, &name).await.expect("read").values,
        second.values
    );

    let again = dns.switch_record(&second).await.expect("repeat");
    assert_eq!(again.id, UNCHANGED);
    assert!(again.in_sync);
    assert!(dns
        .wait_change(&again.id, Duration::from_secs(1))
        .await
        .is_ok());
}

#[tokio::test]
async fn route53_failover_and_weighted_sets() {
    let Some(aws) = aws().await else { return };
    let dns = aws.build_route53();
    let (zone, domain) = zone(&dns).await;
    let name = format!("db.{domain}");
    let hc = dns
        .create_health_check(
            &unique("hc"),
            &HealthCheckSpec::https("east.example.com", "/healthz"),
        )
        .await
        .expect("health check");
    dns.health_check_status(&hc).await.expect("health status");

    let primary = Routing::Failover {
        primary: true,
        set_id: "east".into(),
    };
    let secondary = Routing::Failover {
        primary: false,
        set_id: "west".into(),
    };
    dns.switch_record(&record(
        &zone,
        &name,
        &["east.example.com"],
        primary.clone(),
    ))
    .await
    .expect("primary");
    // Attach the health check to the primary, as an operator would.
    let set = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(format!("{name}."))
        .r#type(aws_sdk_route53::types::RrType::Cname)
        .set_identifier("east")
        .failover(aws_sdk_route53::types::ResourceRecordSetFailover::Primary)
        .ttl(60)
        .resource_records(
            aws_sdk_route53::types::ResourceRecord::builder()
                .value("east.example.com")
                .build()
                .expect("record"),
        )
        .health_check_id(&hc)
        .build()
        .expect("set");
    dns.client()
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .expect("change"),
                )
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .expect("attach health check");
    dns.switch_record(&record(
        &zone,
        &name,
        &["west.example.com"],
        secondary.clone(),
    ))
    .await
    .expect("secondary");

    let p = dns
        .get_record_set(&zone, &name, Some("east"))
        .await
        .expect("primary");
    assert_eq!(p.routing, primary);
    let s = dns
        .get_record_set(&zone, &name, Some("west"))
        .await
        .expect("secondary");
    assert_eq!(s.routing, secondary);
    assert_eq!(s.values, ["west.example.com"]);

    // Switching the primary's target keeps its health check.
    dns.switch_record(&record(&zone, &name, &["east2.example.com"], primary))
        .await
        .expect("switch primary");
    let raw = dns
        .client()
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .expect("list");
    let east = raw
        .resource_record_sets()
        .iter()
        .find(|r| r.set_identifier() == Some("east"))
        .expect("east set");
    assert_eq!(east.health_check_id(), Some(hc.as_str()));

    let wname = format!("w.{domain}");
    let weighted = |w| Routing::Weighted {
        set_id: "blue".into(),
        weight: w,
    };
    dns.switch_record(&record(&zone, &wname, &["blue.example.com"], weighted(100)))
        .await
        .expect("weighted");
    dns.switch_record(&record(&zone, &wname, &["blue.example.com"], weighted(0)))
        .await
        .expect("drain");
    let got = dns
        .get_record_set(&zone, &wname, Some("blue"))
        .await
        .expect("read");
    assert_eq!(got.routing, weighted(0));
    assert!(dns
        .get_record_set(&zone, &wname, Some("green"))
        .await
        .expect_err("no such set")
        .is_not_found());
}

#[tokio::test]
async fn route53_missing_zone_is_not_found() {
    let Some(aws) = aws().await else { return };
    let dns = aws.build_route53();
    let err = dns
        .get_record("ZNOSUCHZONE00", "a.example.com")
        .await
        .expect_err("no zone");
    assert!(err.is_not_found(), "{err}");
}

// ---------------------------------------------------------------------------------------
// RDS
// ---------------------------------------------------------------------------------------

async fn instance(rds: &dr_aws::RdsDatabase, region: &str, multi_az: bool) -> DbRef {
    let id = unique("db");
    rds.client(region)
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin_user")
        .master_user_password("not-a-real-password")
        .multi_az(multi_az)
        .backup_retention_period(7)
        .send()
        .await
        .expect("create instance");
    DbRef::new(region, id)
}

#[tokio::test]
async fn rds_describe_and_missing_instances() {
    let Some(aws) = aws().await else { return };
    let rds = aws.build_rds();
    let db = instance(&rds, "us-east-1", false).await;
    let status = rds
        .wait_available(&db, Duration::from_secs(60))
        .await
        .expect("available");
    assert_eq!(status.state, DbState::Available);
    assert_eq!(status.role, DbRole::Primary);
    assert!(status.endpoint.is_some_and(|e| e.contains(':')));
    assert_eq!(status.replication_lag, None);

    let missing = DbRef::new("us-east-1", unique("nope"));
    assert!(rds
        .describe(&missing)
        .await
        .expect_err("missing")
        .is_not_found());
    // (moto answers a promotion of a missing instance with a 500; the scripted tests cover
    // the mapping of RDS's DBInstanceNotFound.)
}

#[tokio::test]
async fn rds_snapshots_copy_and_restore() {
    let Some(aws) = aws().await else { return };
    let rds = aws.build_rds();
    let db = instance(&rds, "us-east-1", false).await;
    let snap_id = unique("snap");
    let snap = rds.create_snapshot(&db, &snap_id).await.expect("snapshot");
    assert_eq!(snap.source, db);
    let err = rds.create_snapshot(&db, &snap_id).await.expect_err("twice");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    let described = rds
        .describe_snapshot("us-east-1", &snap_id)
        .await
        .expect("describe");
    assert_eq!(described.id, snap_id);
    assert!(described.available);
    let listed = rds.list_snapshots(&db, "us-east-1").await.expect("list");
    assert!(listed.iter().any(|s| s.id == snap_id));
    assert!(rds
        .describe_snapshot("us-east-1", &unique("nope"))
        .await
        .expect_err("missing")
        .is_not_found());

    let copy_id = unique("copy");
    let copy = rds
        .copy_snapshot(&described, "us-west-2", &copy_id)
        .await
        .expect("cross-region copy");
    assert_eq!(copy.region, "us-west-2");
    let copies = rds
        .list_snapshots(&db, "us-west-2")
        .await
        .expect("list west");
    assert!(copies.iter().any(|s| s.id == copy_id), "{copies:?}");

    let restored = DbRef::new("us-west-2", unique("restored"));
    let status = rds
        .restore_snapshot(&copy, &restored)
        .await
        .expect("restore");
    assert_eq!(status.db, restored);
    rds.wait_available(&restored, Duration::from_secs(60))
        .await
        .expect("restored available");
    let err = rds
        .restore_snapshot(&described, &DbRef::new("us-west-2", unique("x")))
        .await
        .expect_err("snapshot in another region");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");

    let pitr = DbRef::new("us-east-1", unique("pitr"));
    rds.restore_to_point_in_time(&db, &pitr, RestorePoint::Latest)
        .await
        .expect("pitr latest");
    let at = chrono::Utc::now() - chrono::Duration::minutes(1);
    let pitr_at = DbRef::new("us-east-1", unique("pitr-at"));
    rds.restore_to_point_in_time(&db, &pitr_at, RestorePoint::At(at))
        .await
        .expect("pitr at");
    assert_eq!(
        rds.describe(&pitr_at).await.expect("describe").state,
        DbState::Available
    );
}

#[tokio::test]
async fn rds_replicas_promote_and_reboot() {
    let Some(aws) = aws().await else { return };
    let rds = aws.build_rds();
    let primary = instance(&rds, "us-east-1", true).await;

    let local = DbRef::new("us-east-1", unique("replica"));
    let status = rds.create_replica(&primary, &local).await.expect("replica");
    assert_eq!(
        status.role,
        DbRole::Replica {
            source: primary.clone()
        }
    );
    let remote = DbRef::new("us-west-2", unique("replica"));
    rds.create_replica(&primary, &remote)
        .await
        .expect("cross-region replica");
    let status = rds.describe(&remote).await.expect("describe remote");
    assert_eq!(
        status.role,
        DbRole::Replica {
            source: primary.clone()
        },
        "the ARN source maps back to a DbRef"
    );
    // (moto accepts a second replica of the same name; real RDS refuses it with
    // DBInstanceAlreadyExists, whose mapping the unit tests cover.)

    // moto accepts promotions and forced failovers without modelling them (a promoted
    // replica still names its source); the scripted tests cover the state transitions.
    rds.promote(&local).await.expect("promote");
    rds.wait_available(&local, Duration::from_secs(60))
        .await
        .expect("available after promotion");
    rds.reboot(&primary, true)
        .await
        .expect("reboot with failover");
    rds.reboot(&primary, false).await.expect("reboot");
}

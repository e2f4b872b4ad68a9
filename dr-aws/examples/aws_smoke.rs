//! Smoke test of the three AWS providers against `AWS_ENDPOINT_URL` (moto, see the README):
//! an S3 object round trip, a Route 53 record switch and an RDS replica promotion, printing
//! each call.
//!
//! ```sh
//! source scripts/standins/moto.sh && moto_start
//! cargo run -p dr-aws --example aws_smoke
//! moto_stop
//! ```

use std::time::Duration;

use dr_aws::AwsConfig;
use dr_core::provider::{
    DatabaseReplica, DbRef, DnsFailover, DnsRecord, Routing, SnapshotStoreExt,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        eprintln!("AWS_ENDPOINT_URL is not set: start moto first (see dr-aws/README.md)");
        std::process::exit(2);
    };
    println!("endpoint {endpoint}");
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let aws = AwsConfig::from_env().await?;
    println!("config {aws:?}");

    // S3: a bucket, an object round trip, a checksum verification.
    let bucket = format!("dr-smoke-{suffix}");
    let store = aws.build_s3_for(&bucket);
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await?;
    println!("s3 create_bucket {bucket}");
    let meta = store
        .put_bytes("smoke/hello.txt", "hello from dr-aws".into())
        .await?;
    println!(
        "s3 put smoke/hello.txt: {} bytes, sha256 {:?}",
        meta.size, meta.sha256
    );
    let body = store.get_bytes("smoke/hello.txt").await?;
    println!(
        "s3 get smoke/hello.txt: {:?}",
        String::from_utf8_lossy(&body)
    );
    store.verify("smoke/hello.txt").await?;
    println!("s3 verify smoke/hello.txt: ok");
    let listed = store.list_all("smoke/").await?;
    println!("s3 list smoke/: {} object(s)", listed.len());

    // Route 53: a zone, a record, a switch, a repeated (no-op) switch.
    let dns = aws.build_route53();
    let domain = format!("smoke-{suffix}.example.com");
    let zone = dns
        .client()
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(format!("smoke-{suffix}"))
        .send()
        .await?;
    let zone_id = zone
        .hosted_zone()
        .map(|z| z.id().to_string())
        .ok_or("no hosted zone in the response")?;
    println!("route53 create_hosted_zone {domain}: {zone_id}");
    let mut record = DnsRecord {
        zone: zone_id.clone(),
        name: format!("api.{domain}"),
        record_type: "CNAME".into(),
        values: vec!["lb.us-east-1.example.com".into()],
        ttl: 60,
        routing: Routing::Simple,
    };
    let change = dns.switch_record(&record).await?;
    println!(
        "route53 switch_record {} -> {:?}: {change:?}",
        record.name, record.values
    );
    record.values = vec!["lb.us-west-2.example.com".into()];
    let change = dns.switch_record(&record).await?;
    println!(
        "route53 switch_record {} -> {:?}: {change:?}",
        record.name, record.values
    );
    let change = dns.wait_change(&change.id, Duration::from_secs(60)).await?;
    println!("route53 wait_change: {change:?}");
    let again = dns.switch_record(&record).await?;
    println!("route53 switch_record (repeat): {again:?}");
    let read = dns.get_record(&zone_id, &record.name).await?;
    println!("route53 get_record: {:?}", read.values);

    // RDS: a primary, a cross-region read replica, its promotion.
    let rds = aws.build_rds();
    let primary = DbRef::new("us-east-1", format!("orders-{suffix}"));
    rds.client(&primary.region)
        .create_db_instance()
        .db_instance_identifier(&primary.id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("orders")
        .master_user_password("smoke-test-only")
        .send()
        .await?;
    println!("rds create_db_instance {primary}");
    let status = rds
        .wait_available(&primary, Duration::from_secs(600))
        .await?;
    println!("rds wait_available {primary}: {:?}", status.state);
    let replica = DbRef::new("us-west-2", format!("orders-replica-{suffix}"));
    let status = rds.create_replica(&primary, &replica).await?;
    println!(
        "rds create_replica {replica}: {:?} {:?}",
        status.state, status.role
    );
    let status = rds.promote(&replica).await?;
    println!("rds promote {replica}: {:?}", status.state);
    let status = rds
        .wait_available(&replica, Duration::from_secs(600))
        .await?;
    println!(
        "rds wait_available {replica}: {:?}, endpoint {:?}",
        status.state, status.endpoint
    );
    println!("smoke test passed");
    Ok(())
}

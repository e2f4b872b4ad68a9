//! Creates on the AWS endpoint what a plan expects to find there, printing each SDK call.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use dr_aws::{AwsConfig, RdsDatabase, Route53Dns, S3Store};
use dr_core::backup::{Backups, RetentionClass, WriteOptions};
use dr_core::plan::Plan;
use dr_core::provider::{DatabaseReplica, DbRef, DnsFailover, DnsRecord, Routing};
use dr_core::{Error, Result};

use super::load_aws;
use crate::Console;

/// How long provisioning waits for an instance to become available.
const DB_WAIT: Duration = Duration::from_secs(30 * 60);

/// What [`provision`] set up, and the providers to reach it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The plan with the names actually used: suffixed ids and buckets, hosted zone ids.
    pub plan: Plan,
    /// RDS, in every region.
    pub rds: RdsDatabase,
    /// Route 53.
    pub dns: Route53Dns,
    /// The hosted zone ids the plan's records live in.
    pub zones: Vec<String>,
    /// One S3 store per plan store, by the plan's store name.
    pub stores: Vec<(String, S3Store)>,
}

/// Creates what `plan` expects on the endpoint of `aws`, or reuses it when it exists: each
/// database's RDS primary and cross-region read replicas, a hosted zone per zone name with
/// every record pointing at the primary region, each S3 store's bucket with one backup of
/// each database in it.
///
/// With a `suffix`, instance ids and bucket names get it appended and every zone is created
/// anew, so that nothing is shared with other runs. Zones given as ids (no dot) are used as
/// they are.
///
/// # Errors
/// The first failed SDK call.
pub async fn provision(
    aws: &AwsConfig,
    plan: &Plan,
    suffix: Option<&str>,
    console: &Console,
) -> Result<Provisioned> {
    let mut plan = plan.clone();
    if let Some(s) = suffix {
        for db in &mut plan.databases {
            db.instance_id = Some(format!("{}-{s}", db.instance()));
            for r in &mut db.replicas {
                r.id = format!("{}-{s}", r.id);
            }
        }
        for store in &mut plan.stores {
            let bucket = store.location.clone().unwrap_or_else(|| store.name.clone());
            store.location = Some(format!("{bucket}-{s}"));
        }
    }
    let rds = aws.build_rds();
    databases(&rds, &plan, console).await?;
    let dns = aws.build_route53();
    let zones = zones(&dns, &mut plan, suffix.is_some(), console).await?;
    records(&dns, &plan, console).await?;
    let stores = stores(&plan, console).await?;
    Ok(Provisioned {
        plan,
        rds,
        dns,
        zones,
        stores,
    })
}

async fn databases(rds: &RdsDatabase, plan: &Plan, console: &Console) -> Result<()> {
    for db in &plan.databases {
        let primary = DbRef::new(&db.region, db.instance());
        match rds.describe(&primary).await {
            Ok(s) => console.out(&format!(
                "  rds DescribeDBInstances {primary}: exists ({})",
                s.state
            )),
            Err(Error::NotFound { .. }) => {
                let engine = db.engine.as_deref().unwrap_or("postgres");
                rds.client(&primary.region)
                    .create_db_instance()
                    .db_instance_identifier(&primary.id)
                    .engine(engine)
                    .db_instance_class("db.t3.micro")
                    .allocated_storage(20)
                    .multi_az(db.multi_az)
                    .master_username("dr_admin")
                    // RDS keeps the password in Secrets Manager: none is made up here.
                    .manage_master_user_password(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error("rds", "CreateDBInstance", e))?;
                console.out(&format!(
                    "  rds CreateDBInstance {primary} ({engine}, db.t3.micro)"
                ));
            }
            Err(e) => return Err(e),
        }
        let s = rds.wait_available(&primary, DB_WAIT).await?;
        console.out(&format!("  rds wait available {primary}: {}", s.state));
        for r in &db.replicas {
            let replica = DbRef::new(&r.region, &r.id);
            match rds.describe(&replica).await {
                Ok(s) => console.out(&format!(
                    "  rds DescribeDBInstances {replica}: exists ({})",
                    s.state
                )),
                Err(Error::NotFound { .. }) => {
                    rds.create_replica(&primary, &replica).await?;
                    console.out(&format!(
                        "  rds CreateDBInstanceReadReplica {replica} of {primary}"
                    ));
                }
                Err(e) => return Err(e),
            }
            let s = rds.wait_available(&replica, DB_WAIT).await?;
            console.out(&format!("  rds wait available {replica}: {}", s.state));
        }
    }
    Ok(())
}

/// Finds or creates a hosted zone for every zone name of the plan's records and replaces
/// the names by the zones' ids in `plan`.
async fn zones(
    dns: &Route53Dns,
    plan: &mut Plan,
    fresh: bool,
    console: &Console,
) -> Result<Vec<String>> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for record in &mut plan.dns {
        if !record.zone.contains('.') {
            // Already a zone id.
            if !ids.iter().any(|(_, id)| id == &record.zone) {
                ids.push((record.zone.clone(), record.zone.clone()));
            }
            continue;
        }
        if let Some((_, id)) = ids.iter().find(|(name, _)| name == &record.zone) {
            record.zone = id.clone();
            continue;
        }
        let name = record.zone.clone();
        let existing = if fresh {
            None
        } else {
            find_zone(dns, &name, console).await?
        };
        let id = match existing {
            Some(id) => id,
            None => {
                let out = dns
                    .client()
                    .create_hosted_zone()
                    .name(&name)
                    .caller_reference(format!("dr-examples-{name}-{}", unique()))
                    .send()
                    .await
                    .map_err(|e| sdk_error("route53", "CreateHostedZone", e))?;
                let id = out
                    .hosted_zone()
                    .map(|z| bare_zone_id(z.id()))
                    .ok_or_else(|| Error::InvalidResponse {
                        provider: "route53".into(),
                        operation: "CreateHostedZone".into(),
                        message: "no hosted zone in the response".into(),
                    })?;
                console.out(&format!("  route53 CreateHostedZone {name}: {id}"));
                id
            }
        };
        ids.push((name, id.clone()));
        record.zone = id;
    }
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

async fn find_zone(dns: &Route53Dns, name: &str, console: &Console) -> Result<Option<String>> {
    let out = dns
        .client()
        .list_hosted_zones_by_name()
        .dns_name(name)
        .max_items(1)
        .send()
        .await
        .map_err(|e| sdk_error("route53", "ListHostedZonesByName", e))?;
    let found = out
        .hosted_zones()
        .iter()
        .find(|z| z.name().trim_end_matches('.') == name.trim_end_matches('.'))
        .map(|z| bare_zone_id(z.id()));
    if let Some(id) = &found {
        console.out(&format!(
            "  route53 ListHostedZonesByName {name}: exists ({id})"
        ));
    }
    Ok(found)
}

fn bare_zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// Points every record at the primary region (a no-op when it already does).
async fn records(dns: &Route53Dns, plan: &Plan, console: &Console) -> Result<()> {
    let Some(primary) = plan.primary_region() else {
        return Ok(());
    };
    for def in &plan.dns {
        let Some(value) = plan.dns_target(def, &primary.name) else {
            continue;
        };
        let record = DnsRecord {
            zone: def.zone.clone(),
            name: def.name.clone(),
            record_type: def.record_type.clone(),
            values: vec![value.clone()],
            ttl: 60,
            routing: Routing::Simple,
        };
        let change = dns.switch_record(&record).await?;
        console.out(&format!(
            "  route53 ChangeResourceRecordSets UPSERT {} {} -> {value}: {}",
            def.record_type, def.name, change.id
        ));
    }
    Ok(())
}

/// Creates (or reuses) each S3 store's bucket in its region and writes one backup of each
/// database into it.
async fn stores(plan: &Plan, console: &Console) -> Result<Vec<(String, S3Store)>> {
    let mut out = Vec::new();
    for def in plan.stores.iter().filter(|s| s.kind == "s3") {
        let bucket = def.location.clone().unwrap_or_else(|| def.name.clone());
        let aws = load_aws(&def.region)
            .await
            .map_err(|message| Error::Unauthorized {
                provider: "aws".into(),
                message,
            })?;
        let store = aws.build_s3_for(&bucket);
        let client = store.client();
        if client.head_bucket().bucket(&bucket).send().await.is_ok() {
            console.out(&format!("  s3 HeadBucket {bucket}: exists"));
        } else {
            let mut req = client.create_bucket().bucket(&bucket);
            if def.region != "us-east-1" {
                req = req.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(def.region.as_str()))
                        .build(),
                );
            }
            req.send()
                .await
                .map_err(|e| sdk_error("s3", "CreateBucket", e))?;
            console.out(&format!("  s3 CreateBucket {bucket} in {}", def.region));
        }
        let backups = Backups::new(Arc::new(store.clone()));
        for db in &plan.databases {
            let key = format!(
                "{}/{}.dump",
                db.name,
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            );
            let dump = bytes::Bytes::from(format!(
                "-- logical dump of {} ({})\n",
                db.name,
                db.instance()
            ));
            let data = Box::pin(futures::stream::once(async move { Ok(dump) }));
            let manifest = backups
                .write(
                    &key,
                    data,
                    &format!("database {}", db.name),
                    RetentionClass::Daily,
                    WriteOptions::default(),
                )
                .await?;
            console.out(&format!(
                "  s3 PutObject {bucket}/{key} ({} bytes) and its manifest",
                manifest.size
            ));
        }
        out.push((def.name.clone(), store));
    }
    Ok(out)
}

/// Maps a raw SDK call's error (calls the providers do not wrap) to a permanent error.
fn sdk_error(provider: &str, operation: &str, e: impl std::error::Error) -> Error {
    Error::InvalidRequest {
        provider: provider.into(),
        operation: operation.into(),
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// Nanoseconds since the epoch and the process id: unique enough for caller references.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", std::process::id())
}

//! The proof of `run-plan --providers`: one plan whose database (RDS) and DNS (Route 53) live
//! on moto, whose backups live on Azurite and on fake-gcs-server, whose health check hits a
//! local HTTP server and whose clusters are simulated runs its region failover end to end
//! through [`run_with_providers`] (what `run-plan PLAN --scenario region-failover --providers
//! FILE` calls); then the final state is read back through providers built from the same
//! file: the record points at the DR region, the replica was promoted and is available, the
//! backups verify.
//!
//! Needs the three stand-ins `scripts/test.sh` starts (`AWS_ENDPOINT_URL`,
//! `AZURITE_BLOB_URL`, `GCS_EMULATOR_URL`); without them the test says it was skipped,
//! unless `CI` is set.
#![cfg(all(
    feature = "aws",
    feature = "providers-aws",
    feature = "providers-azure",
    feature = "providers-gcp"
))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../dr-gcp/tests/support/json_control.rs"]
mod gcs_json_control;

use std::time::Duration;

use dr_core::backup::{Backups, RetentionClass, WriteOptions};
use dr_core::executor::StepStatus;
use dr_core::plan::Plan;
use dr_core::provider::{DbRef, DbState};
use dr_examples::aws::{load_aws, provision};
use dr_examples::providers::{run_with_providers, ProvidersRunOptions};
use dr_examples::{Console, EXIT_OK};
use dr_providers::BuildOptions;
use google_cloud_storage::client::StorageControl;

struct Standins {
    aws: String,
    azure: String,
    azure_account: String,
    azure_container: String,
    gcs: String,
    gcs_bucket: String,
}

fn standins() -> Option<Standins> {
    let aws = dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto");
    let azure = dr_core::testkit::standin("AZURITE_BLOB_URL", "Azurite");
    let gcs = dr_core::testkit::standin("GCS_EMULATOR_URL", "fake-gcs-server");
    let var = |n: &str, d: &str| {
        std::env::var(n)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.into())
    };
    Some(Standins {
        aws: aws?,
        azure: azure?,
        azure_account: var("AZURITE_ACCOUNT", "devstoreaccount1"),
        azure_container: var("AZURITE_CONTAINER", "dr-test"),
        gcs: gcs?,
        gcs_bucket: var("GCS_BUCKET", "dr-test"),
    })
}

/// A health endpoint on 127.0.0.1: 200 `status: ok` to every request.
fn health_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nstatus: ok",
            );
        }
    });
    addr
}

fn plan_yaml(s: &Standins, health: std::net::SocketAddr) -> String {
    format!(
        r#"
name: shop-providers
regions:
  - {{ name: us-east-1, role: primary, cloud: aws }}
  - {{ name: us-west-2, role: secondary, cloud: aws }}
databases:
  - name: orders-db
    region: us-east-1
    instance_id: shop-orders
    engine: postgres
    replicas:
      - {{ id: shop-orders-west, region: us-west-2, expected_lag: 30s }}
clusters:
  - name: prod-east
    region: us-east-1
    ingress: lb.us-east-1.shop.example.com
    workloads:
      - {{ name: api, namespace: shop, replicas: 3, image: "shop/api:2.14.0" }}
  - name: dr-west
    region: us-west-2
    ingress: lb.us-west-2.shop.example.com
    workloads:
      - {{ name: api, namespace: shop, replicas: 3, standby_replicas: 1, image: "shop/api:2.14.0" }}
dns:
  - {{ name: api.shop.example.com, zone: shop.example.com }}
stores:
  - {{ name: backups-azure, region: us-west-2, kind: azure-blob, location: {container} }}
  - {{ name: backups-gcs, region: us-west-2, kind: gcs, location: {bucket} }}
health_checks:
  - {{ name: api-health, target: "http://{health}/health" }}
notifications:
  - {{ name: oncall, kind: log }}
services:
  - {{ name: database, tier: critical, rto: 1h, rpo: 15m, database: orders-db }}
  - name: api
    tier: critical
    rto: 15m
    rpo: 5m
    depends_on: [database]
    database: orders-db
    workloads: [api]
    dns: [api.shop.example.com]
    health_check: api-health
estimates: {{ promote_replica: 5m, switch_dns: 90s, wait_workload: 2m, approval: 2m }}
scenarios:
  - {{ name: region-failover, kind: region-failover, from: us-east-1, to: us-west-2, approval: true, notify: [oncall] }}
"#,
        container = s.azure_container,
        bucket = s.gcs_bucket,
    )
}

fn providers_yaml(s: &Standins, zone: &str) -> String {
    format!(
        r#"
aws: {{ endpoint: "{aws}" }}
databases:
  us-east-1: {{ kind: rds }}
  us-west-2: {{ kind: rds }}
dns:
  {zone}: {{ kind: route53 }}
clusters:
  prod-east: {{ kind: simulated }}
  dr-west: {{ kind: simulated }}
stores:
  backups-azure: {{ kind: azure_blob, account: {account}, endpoint: "{azure}", access_key: {{ env: AZURITE_KEY }} }}
  backups-gcs: {{ kind: gcs, endpoint: "{gcs}", anonymous: true }}
health_checks:
  api-health: {{ kind: http, expect_status: 200-299, body_contains: ok, timeout: 2s }}
notifications:
  oncall: {{ kind: log }}
"#,
        aws = s.aws,
        account = s.azure_account,
        azure = s.azure,
        gcs = s.gcs,
    )
}

fn build_options(s: &Standins) -> BuildOptions {
    BuildOptions {
        gcs_control: Some(StorageControl::from_stub(
            gcs_json_control::JsonControl::new(&s.gcs),
        )),
        ..BuildOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_failover_through_a_providers_file_on_three_emulators() {
    let Some(s) = standins() else { return };
    let dir = tempfile::tempdir().unwrap();
    let health = health_server();
    let suffix = dr_core::testkit::unique("pv");

    // What the plan expects on the AWS endpoint: the RDS primary and its replica, the
    // hosted zone with the record pointing at us-east-1 (this run's own, suffixed).
    let plan = Plan::from_yaml_str(&plan_yaml(&s, health)).unwrap();
    let aws = load_aws("us-east-1").await.unwrap();
    let console = Console::captured();
    let provisioned = provision(&aws, &plan, Some(&suffix), &console)
        .await
        .unwrap_or_else(|e| panic!("provisioning: {e}\n{}", console.stdout()));
    // Provisioning suffixes bucket names too; the container and bucket are the stand-ins'.
    let mut provisioned_plan = provisioned.plan.clone();
    for (store, original) in provisioned_plan.stores.iter_mut().zip(&plan.stores) {
        store.location = original.location.clone();
    }
    let plan = provisioned_plan;
    let zone = provisioned.zones[0].clone();
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let providers_path = dir.path().join("providers.yaml");
    std::fs::write(&providers_path, providers_yaml(&s, &zone)).unwrap();

    // A backup of the database in each store, written through providers built from the file.
    let before = dr_providers::load_and_build(&providers_path, &plan, build_options(&s))
        .await
        .unwrap();
    let key = format!("orders-db/{suffix}.dump");
    for store in ["backups-azure", "backups-gcs"] {
        let backups = Backups::new(before.providers.store(store).unwrap().clone());
        let dump = bytes::Bytes::from(format!("-- logical dump of orders-db ({suffix})\n"));
        let data = Box::pin(futures::stream::once(async move { Ok(dump) }));
        backups
            .write(
                &key,
                data,
                "database orders-db",
                RetentionClass::Daily,
                WriteOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{store} ({:?}): {e}", before.route("store", store)));
    }

    // The dry run: every call with the provider it goes to; nothing changes.
    let opts = ProvidersRunOptions {
        approval_delay: Duration::from_millis(100),
        build: build_options(&s),
        ..ProvidersRunOptions::default()
    };
    let dry = Console::captured();
    let run = run_with_providers(
        &plan_path,
        "region-failover",
        &providers_path,
        &ProvidersRunOptions {
            dry_run: true,
            ..opts.clone()
        },
        &dry,
    )
    .await;
    let out = dry.stdout();
    assert_eq!(run.exit, EXIT_OK, "{out}\n{}", dry.stderr());
    assert!(run.report.is_none());
    assert!(
        out.contains(&format!("database us-west-2 -> rds us-west-2 at {}", s.aws)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "store backups-azure -> azure_blob container {}",
            s.azure_container
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("store backups-gcs -> gcs bucket {}", s.gcs_bucket)),
        "{out}"
    );
    assert!(out.contains("cluster dr-west -> simulated"), "{out}");
    assert!(
        out.contains("database promote database us-west-2/shop-orders-west-"),
        "{out}"
    );
    assert!(
        out.contains(&format!("dns switch_record {zone}/api.shop.example.com")),
        "{out}"
    );
    assert!(out.contains(&format!("-> route53 at {}", s.aws)), "{out}");
    assert!(out.contains("probe probe api-health"), "{out}");
    assert!(out.contains("-> http (GET http://127.0.0.1:"), "{out}");
    // Preflight: every mapped provider answered a read-only call.
    assert_eq!(run.reachability.len(), 6, "{:?}", run.reachability);
    assert!(run.reachability.iter().all(|r| r.reachable), "{out}");

    // The run.
    let console = Console::captured();
    let run = run_with_providers(
        &plan_path,
        "region-failover",
        &providers_path,
        &opts,
        &console,
    )
    .await;
    let (out, err) = (console.stdout(), console.stderr());
    assert_eq!(run.exit, EXIT_OK, "stdout:\n{out}\nstderr:\n{err}");
    let report = run.report.expect("a report");
    assert!(report.succeeded(), "{report}");
    let promote = report.step("orders-db/promote").expect("a promotion");
    assert_eq!(promote.status, StepStatus::Succeeded, "{report}");
    // The health check was probed over HTTP on the local server.
    let health_step = report.step("api/verify").expect("a health step");
    assert_eq!(health_step.status, StepStatus::Succeeded, "{report}");

    // Read back through providers built again from the same file.
    let after = dr_providers::load_and_build(&providers_path, &plan, build_options(&s))
        .await
        .unwrap();
    let record = after
        .providers
        .dns(&zone)
        .unwrap()
        .get_record(&zone, "api.shop.example.com")
        .await
        .unwrap();
    let expected = plan.dns_target(&plan.dns[0], "us-west-2").unwrap();
    assert_eq!(record.values.len(), 1, "{record:?}");
    assert_eq!(
        record.values[0].trim_end_matches('.'),
        expected.trim_end_matches('.'),
        "{record:?}"
    );
    assert!(expected.contains("us-west-2"), "{expected}");

    let replica = &plan.databases[0].replicas[0];
    let status = after
        .providers
        .database("us-west-2")
        .unwrap()
        .describe(&DbRef::new("us-west-2", &replica.id))
        .await
        .unwrap();
    assert_eq!(status.state, DbState::Available, "{status:?}");

    for store in ["backups-azure", "backups-gcs"] {
        let backups = Backups::new(after.providers.store(store).unwrap().clone());
        let verified = backups
            .verify(&key)
            .await
            .unwrap_or_else(|e| panic!("{store}: {e}"));
        assert!(verified.is_ok(), "{store}: {verified:?}");
    }
}

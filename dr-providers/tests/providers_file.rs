//! The providers file: loading (errors with line and field), credentials refused in plain
//! text, every unmapped plan resource named, and a build on the simulated cloud, local disk,
//! memory, a real HTTP probe and the log, with reachability and routed calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use dr_core::plan::{Format, Plan};
use dr_providers::{build, ProvidersConfig, ProvidersError};

fn plan() -> Plan {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/region-failover.yaml");
    Plan::load(&path).unwrap()
}

fn parse_err(text: &str, format: Format) -> String {
    match ProvidersConfig::parse(text, format, "providers.x") {
        Ok(c) => panic!("parsed: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_literal_credential_is_refused_with_how_to_reference_it() {
    let yaml = "stores:\n  backups-west:\n    kind: azure_blob\n    account: shop\n    access_key: Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq\n";
    let msg = parse_err(yaml, Format::Yaml);
    // The line of the entry holding the field; the field itself by path.
    assert!(msg.starts_with("providers.x:3:"), "{msg}");
    assert!(msg.contains("at `stores.backups-west.access_key`"), "{msg}");
    assert!(msg.contains("{ env: VARIABLE_NAME }"), "{msg}");
    assert!(!msg.contains("Eby8vdM02"), "{msg}");

    let toml = "[aws]\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n";
    let msg = parse_err(toml, Format::Toml);
    assert!(msg.contains("aws.secret_access_key"), "{msg}");
    assert!(
        msg.contains("cannot be written in the providers file"),
        "{msg}"
    );
    assert!(!msg.contains("wJalrXUtnFEMI"), "{msg}");

    let json = r#"{"databases": {"us-east-1": {"kind": "postgres", "instances": {"shop-prod": {"url": "postgres://u:pw@h/db"}}}}}"#;
    let msg = parse_err(json, Format::Json);
    assert!(
        msg.contains("databases.us-east-1.instances.shop-prod.url"),
        "{msg}"
    );
    assert!(!msg.contains("pw@"), "{msg}");

    // A reference is accepted; a bad variable name is not.
    let ok = ProvidersConfig::from_yaml(
        "stores: { s: { kind: azure_blob, account: a, access_key: { env: AZ_KEY } } }",
    )
    .unwrap();
    assert_eq!(ok.stores["s"].access_key.as_ref().unwrap().env, "AZ_KEY");
    let msg = parse_err(
        "stores: { s: { kind: azure_blob, sas_token: { env: \"1 bad\" } } }",
        Format::Yaml,
    );
    assert!(msg.contains("not an environment variable name"), "{msg}");
}

#[test]
fn malformed_files_name_the_line_and_field() {
    let msg = parse_err("databases:\n  us-east-1:\n    kind: oracle\n", Format::Yaml);
    assert!(msg.starts_with("providers.x:3:"), "{msg}");
    assert!(msg.contains("databases.us-east-1.kind"), "{msg}");
    assert!(msg.contains("unknown variant `oracle`"), "{msg}");

    let msg = parse_err(
        "health_checks:\n  api-health: { kind: http, timeout: fast }\n",
        Format::Yaml,
    );
    assert!(msg.contains("health_checks.api-health.timeout"), "{msg}");

    let msg = parse_err(
        "clusters:\n  dr-west: { kind: simulated, contxt: x }\n",
        Format::Yaml,
    );
    assert!(msg.contains("unknown field `contxt`"), "{msg}");

    let msg = parse_err("", Format::Yaml);
    assert!(msg.contains("the file is empty"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.ini");
    std::fs::write(&path, "x").unwrap();
    let e = ProvidersConfig::load(&path).unwrap_err();
    assert!(matches!(e, ProvidersError::UnknownFormat { .. }), "{e}");
    assert_eq!(e.retry(), dr_core::Retry::Permanent);
}

#[tokio::test]
async fn every_unmapped_resource_is_named_with_its_role() {
    let config = ProvidersConfig::from_yaml(
        "databases:\n  us-east-1: { kind: simulated }\nclusters:\n  dr-west: { kind: simulated }\n  dr-east: { kind: simulated }\n",
    )
    .unwrap();
    let e = build(&config, &plan()).await.unwrap_err();
    let msg = e.to_string();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "databases.us-west-2",
        "dns.Z0SHOP",
        "clusters.prod-east",
        "clusters.dr-east",
        "stores.backups-west",
        "stores.evidence",
        "health_checks.api-health",
        "notifications.oncall",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        msg.contains("replica shop-prod-west of database orders-db"),
        "{msg}"
    );
    assert!(msg.contains("no DNS provider for zone `Z0SHOP`"), "{msg}");
    assert!(msg.contains("`default: simulated`"), "{msg}");
    // A name the plan does not have is named with the plan's.
    assert!(
        msg.contains("clusters.dr-east: the plan has no such name (it has: dr-west, prod-east)"),
        "{msg}"
    );
}

#[tokio::test]
async fn entries_are_checked_against_their_kind() {
    let config = ProvidersConfig::from_yaml(
        r#"
default: simulated
aws: { endpoint: "http://admin:hunter2@127.0.0.1:5000" }
clusters:
  dr-west: { kind: kubernetes }
  prod-east: { kind: simulated, context: prod }
stores:
  backups-west: { kind: local }
  evidence: { kind: azure_blob, bucket: x }
health_checks:
  api-health: { kind: simulated, timeout: 2s }
"#,
    )
    .unwrap();
    let e = build(&config, &plan()).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("aws.endpoint"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(
        msg.contains("clusters.dr-west: give either `context`"),
        "{msg}"
    );
    assert!(
        msg.contains("clusters.prod-east.context: `context` does not apply to kind `simulated`"),
        "{msg}"
    );
    assert!(
        msg.contains("stores.backups-west: a `local` store needs a `path`"),
        "{msg}"
    );
    assert!(msg.contains("stores.evidence.bucket"), "{msg}");
    assert!(
        msg.contains("stores.evidence: give the storage `account`"),
        "{msg}"
    );
    assert!(
        msg.contains("health_checks.api-health.HTTP settings"),
        "{msg}"
    );
}

#[cfg(not(feature = "aws"))]
#[tokio::test]
async fn a_kind_without_its_feature_names_the_feature() {
    let config =
        ProvidersConfig::from_yaml("default: simulated\ndns:\n  Z0SHOP: { kind: route53 }\n")
            .unwrap();
    let msg = build(&config, &plan()).await.unwrap_err().to_string();
    assert!(
        msg.contains("dns.Z0SHOP.kind: `route53` needs the `aws` feature"),
        "{msg}"
    );
}

/// A local HTTP server answering 200 `ok` to everything (on its own thread, real time).
fn http_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_with_simulated_default_local_memory_http_and_log() {
    let addr = http_server();
    let mut plan = plan();
    plan.health_checks[0].target = format!("http://{addr}/health");
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
default: simulated
stores:
  backups-west: {{ kind: local, path: "{}" }}
  evidence: {{ kind: memory }}
health_checks:
  api-health: {{ kind: http, body_contains: ok, timeout: 2s }}
notifications:
  oncall: {{ kind: log }}
"#,
        dir.path().display()
    );
    let config = ProvidersConfig::from_yaml(&yaml).unwrap();
    let built = build(&config, &plan).await.unwrap();
    let route = |role, name| built.route(role, name).unwrap().provider.clone();
    assert_eq!(route("database", "us-west-2"), "simulated");
    assert!(!built.route("database", "us-west-2").unwrap().mapped);
    assert!(
        route("store", "backups-west").starts_with("local ("),
        "{}",
        route("store", "backups-west")
    );
    assert_eq!(route("store", "evidence"), "memory");
    assert!(route("health_check", "api-health").starts_with("http (GET http://127.0.0.1:"));
    assert_eq!(route("notifications", "oncall"), "log");
    assert_eq!(route("notifications", "status-page"), "simulated");

    // Preflight: one read-only call per mapped provider (local store, HTTP check).
    let reach = built
        .check_reachability(std::time::Duration::from_secs(5))
        .await;
    assert_eq!(reach.len(), 2, "{reach:?}");
    assert!(reach.iter().all(|r| r.reachable), "{reach:?}");
    let probe = reach
        .iter()
        .find(|r| r.route.role == "health_check")
        .unwrap();
    assert_eq!(probe.detail, "healthy");

    // The store works through the built set; the probe goes to the HTTP server.
    use dr_core::provider::SnapshotStoreExt as _;
    let store = built.providers.store("backups-west").unwrap();
    store.put_bytes("k", "v".into()).await.unwrap();
    let again = dr_core::store::LocalDiskStore::new(dir.path()).unwrap();
    assert_eq!(again.get_bytes("k").await.unwrap(), "v");
    let status = built
        .providers
        .probe()
        .unwrap()
        .check(&plan.health_checks[0].target)
        .await
        .unwrap();
    assert_eq!(status, dr_core::provider::HealthStatus::Healthy);

    // The dry run: every call names the provider it goes to.
    let sim = built.simulation();
    let sc = plan.scenario("region-failover").unwrap().clone();
    sim.inject(&sc).await;
    let observed = sim.observe().await;
    let graph = dr_core::planner::plan(&plan, "region-failover", &observed).unwrap();
    let calls = built.routed_calls(&graph);
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| !c.provider.starts_with("no provider")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.role == "probe" && c.provider.starts_with("http (")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.role == "database" && c.provider == "simulated"),
        "{calls:?}"
    );
}

/// An AWS endpoint nobody listens on: the database provider is built (credentials from
/// variables the file names) but does not answer the preflight.
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_is_reported() {
    let plan = plan();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::env::set_var("DR_TEST_UNREACHABLE_AK", "testing");
    std::env::set_var("DR_TEST_UNREACHABLE_SK", "testing");
    let yaml = format!(
        "default: simulated\naws: {{ endpoint: \"http://127.0.0.1:{port}\", access_key_id: {{ env: DR_TEST_UNREACHABLE_AK }}, secret_access_key: {{ env: DR_TEST_UNREACHABLE_SK }} }}\ndatabases:\n  us-west-2: {{ kind: rds }}\n"
    );
    let config = ProvidersConfig::from_yaml(&yaml).unwrap();
    let built = build(&config, &plan).await.unwrap();
    let route = built.route("database", "us-west-2").unwrap();
    assert_eq!(
        route.provider,
        format!("rds us-west-2 at http://127.0.0.1:{port}")
    );
    let reach = built
        .check_reachability(std::time::Duration::from_secs(20))
        .await;
    assert_eq!(reach.len(), 1, "{reach:?}");
    assert!(!reach[0].reachable, "{}", reach[0]);
    assert_eq!(reach[0].call, "describe us-west-2/shop-prod-west");

    // A variable the file names but the environment lacks: a build error naming it.
    let config = ProvidersConfig::from_yaml(
        "default: simulated\naws: { access_key_id: { env: DR_TEST_UNSET_AK }, secret_access_key: { env: DR_TEST_UNSET_SK } }\ndns:\n  Z0SHOP: { kind: route53 }\n",
    )
    .unwrap();
    let e = build(&config, &plan).await.unwrap_err();
    assert!(
        matches!(e, ProvidersError::Build { role: "dns", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("DR_TEST_UNSET_AK"), "{e}");
}

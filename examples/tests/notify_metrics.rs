//! The notifications/metrics example's pieces: a run with comms and metrics on the
//! simulated cloud, then a scrape of `/metrics` over HTTP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_core::metrics::RecoveryMetrics;
use dr_core::notify::{CommsConfig, Phase, Reason};
use dr_examples::observe::{run_observed, serve_metrics};
use dr_examples::plans_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(start_paused = true)]
async fn run_then_scrape() {
    let metrics = RecoveryMetrics::new();
    let config = CommsConfig {
        channels: vec!["status-page".into()],
        ..CommsConfig::default()
    }
    .runbook_escalation("incidents");
    let observed = run_observed(
        &plans_dir().join("region-failover.yaml"),
        "region-failover",
        42,
        config,
        &metrics,
    )
    .await
    .unwrap();
    assert!(observed.report.succeeded());
    assert_eq!(
        observed.sent.last().unwrap().reason,
        Reason::Phase {
            phase: Phase::Resolved
        }
    );
    // The run takes about 8 minutes: the 0 and 5 minute levels of the matrix, no more.
    let escalations = observed
        .sent
        .iter()
        .filter(|s| matches!(s.reason, Reason::Escalation { .. }))
        .count();
    assert_eq!(escalations, 2, "{:#?}", observed.sent);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_metrics(listener, metrics));
    let page = get(addr, "/metrics").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("application/openmetrics-text"), "{page}");
    let rto = observed.report.achieved_rto.as_secs_f64();
    assert!(
        page.contains(&format!(
            "failover_time_seconds{{plan=\"shop-web\",scenario=\"region-failover\"}} {rto}"
        )),
        "{page}"
    );
    assert!(
        page.contains("recovery_test_results{plan=\"shop-web\",scenario=\"region-failover\"} 1")
    );
    assert!(get(addr, "/other").await.starts_with("HTTP/1.1 404"));
    server.abort();
}

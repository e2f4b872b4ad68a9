//! What people hear and what monitoring scrapes during the bundled region failover on the
//! simulated cloud: the status-page phases, the runbooks' escalation matrix, RTO warnings
//! and updates every 2 minutes, then the recovery metrics served in the Prometheus text
//! format on 127.0.0.1.
//!
//! ```text
//! cargo run --example notify-metrics                      # serve until Ctrl-C
//! cargo run --example notify-metrics -- --port 9898 --serve-for 30
//! curl http://127.0.0.1:9898/metrics
//! ```

use std::process::ExitCode;
use std::time::Duration;

use dr_core::metrics::RecoveryMetrics;
use dr_core::notify::CommsConfig;
use dr_core::HumanDuration;
use dr_examples::observe::{run_observed, serve_metrics};
use dr_examples::{init_tracing, plans_dir};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    init_tracing();
    let metrics = RecoveryMetrics::new();
    let config = CommsConfig {
        channels: vec!["status-page".into()],
        update_every: Some(HumanDuration::from_secs(120)),
        ..CommsConfig::default()
    }
    .runbook_escalation("incidents");

    // The run, on the simulated cloud's paused clock: minutes pass at once.
    let sim = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build();
    let observed = match sim.map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(run_observed(
            &plans_dir().join("region-failover.yaml"),
            "region-failover",
            42,
            config,
            &metrics,
        ))
    }) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let start = observed.report.started_at;
    println!("Notifications (simulated time):");
    for s in &observed.sent {
        let at = (s.at - start).to_std().unwrap_or_default().as_secs();
        println!(
            "+{:02}:{:02}:{:02}  to {:<12} {}",
            at / 3600,
            (at / 60) % 60,
            at % 60,
            s.channel,
            s.notification.title
        );
    }
    if let Some(resolved) = observed.sent.last() {
        println!("\nLast notification:\n{}\n", resolved.notification.body);
    }

    // The metrics, on real time.
    let port = arg("--port")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    let serve_for = arg("--serve-for").map(Duration::from_secs);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::from(1);
            }
        };
        if let Ok(addr) = listener.local_addr() {
            println!("Serving metrics on http://{addr}/metrics");
        }
        let server = serve_metrics(listener, metrics);
        match serve_for {
            Some(d) => {
                let _ = tokio::time::timeout(d, server).await;
            }
            None => server.await,
        }
        ExitCode::SUCCESS
    })
}

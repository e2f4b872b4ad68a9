//! Drills on the simulated cloud: the bundled region failover rehearsed on an isolated copy
//! of the shop (test databases restored from production's newest snapshot, a test
//! namespace, test DNS records), never changing production, cleaned up afterwards; then a
//! backup-verification drill; the evidence (JSON and Markdown) and the drill history's
//! trend go to a directory.
//!
//! ```text
//! cargo run --example drill                        # evidence in target/drills/
//! cargo run --example drill -- --dir DIR --scenario database-failure --seed 7
//! ```
//!
//! Exit status 0 when both drills passed, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use dr_core::backup::{Backups, RetentionClass, WriteOptions};
use dr_core::drill::{BackupDrill, DrillHistory, ScenarioDrill, StartsWith};
use dr_core::plan::Plan;
use dr_core::store::InMemoryStore;
use dr_examples::{init_tracing, plans_dir};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    init_tracing();
    let dir = arg("--dir").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/drills"),
        PathBuf::from,
    );
    let scenario = arg("--scenario").unwrap_or_else(|| "region-failover".into());
    let seed: u64 = arg("--seed").and_then(|s| s.parse().ok()).unwrap_or(42);
    let plan = match Plan::load(plans_dir().join("region-failover.yaml")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let history = match DrillHistory::open(&dir) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };

    let tag = format!("drill{seed}");
    let report = match ScenarioDrill::new(&plan, &scenario)
        .tag(&tag)
        .seed(seed)
        .run_on_sim()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{}", report.to_markdown());
    match history.append(&report) {
        Ok(path) => eprintln!("evidence: {}", path.display()),
        Err(e) => eprintln!("warning: the drill was not recorded: {e}"),
    }

    // The backup-verification drill, on a store of three nightly dumps.
    let store = Arc::new(InMemoryStore::new());
    let backups = Backups::new(store);
    for night in 1..=3 {
        let dump = format!(
            "PGDMP orders-db dump, night {night}\n{}",
            "row\n".repeat(500)
        );
        let data = futures::stream::iter([Ok(Bytes::from(dump))]);
        if let Err(e) = backups
            .write(
                &format!("db/orders/2026-11-{night:02}.dump"),
                Box::pin(data),
                "database orders-db",
                RetentionClass::Daily,
                WriteOptions::default(),
            )
            .await
        {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    let verify = BackupDrill::new(backups, Arc::new(InMemoryStore::new()))
        .prefix("db/orders/")
        .seed(seed)
        .data_check(Arc::new(StartsWith {
            prefix: b"PGDMP".to_vec(),
            min_size: 1024,
        }))
        .run()
        .await;
    println!("{}", verify.to_markdown());

    match history.summary(10) {
        Ok(summary) => println!("## Drill history (last 10)\n\n{summary}"),
        Err(e) => eprintln!("warning: no history summary: {e}"),
    }
    if report.passed && verify.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

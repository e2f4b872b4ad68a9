//! The `postgres-failover` example against a real primary and standby started locally:
//! the promotion, the repointed secret and the rows on the promoted standby, through the
//! function the example's `main` calls.
//!
//! It needs PostgreSQL (`DR_PG_BINDIR`, exported by `scripts/standins/postgres.sh`): without
//! it the test prints a `skipped:` line, unless `CI` is set, when it fails.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../postgres-failover.rs"]
mod example;

use dr_core::executor::StepStatus;
use dr_examples::Console;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_is_promoted_and_the_app_repointed() {
    let Some(bindir) = dr_core::testkit::standin(dr_postgres::BINDIR_ENV, "PostgreSQL") else {
        return;
    };
    let opts = example::Options {
        bindir: Some(bindir.into()),
        run_as: std::env::var("DR_PG_USER").ok(),
        ..example::Options::default()
    };
    let console = Console::captured();
    let outcome = example::run(&opts, &console).await.expect("the drill runs");
    let out = console.stdout();
    assert!(outcome.report.succeeded(), "{out}");
    assert!(
        !outcome.report.degraded,
        "a new standby was built too: {out}"
    );
    let promote = outcome
        .report
        .step("orders-db/promote")
        .expect("promote step");
    assert_eq!(promote.status, StepStatus::Succeeded, "{out}");
    // The standby had replayed everything before the crash, but with the primary gone it
    // cannot prove it: the window is measured from its last replayed commit to the moment
    // the executor reads it (after the observation's retries of the dead primary), an upper
    // bound that stays within the 5-minute RPO.
    let window = promote.data_loss.expect("a measured window");
    assert!(window < std::time::Duration::from_secs(300), "{out}");
    assert!(outcome.report.targets_met(), "{out}");
    assert_eq!(
        outcome.secret.expose(),
        format!("postgres://shop@{}/postgres", outcome.standby_endpoint)
    );
    assert_eq!(outcome.rows_written, 1000);
    assert_eq!(outcome.rows_on_promoted, outcome.rows_written, "{out}");
    assert!(
        out.contains("orders-db/promote"),
        "the report is printed: {out}"
    );
}

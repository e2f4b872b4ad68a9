//! What people see: progress as plain lines, JSON lines or a live view, and the report as
//! Markdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::DateTime;
use dr_core::executor::{Outcome, RunEvent};
use dr_examples::progress::LiveView;
use dr_examples::{
    plans_dir, run_scenario, Console, EventsFormat, ReportFormat, RunOptions, EXIT_OK,
};
use indicatif::{InMemoryTerm, ProgressDrawTarget};
use serde_json::Value;

async fn run(opts: RunOptions) -> (u8, Console) {
    let console = Console::captured();
    let plan = plans_dir().join("region-failover.yaml");
    let code = run_scenario(&plan, "region-failover", &opts, &console).await;
    (code, console)
}

#[tokio::test(start_paused = true)]
async fn markdown_report_owns_stdout() {
    let (code, console) = run(RunOptions {
        report: ReportFormat::Markdown,
        ..RunOptions::default()
    })
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let md = console.stdout();
    assert!(
        md.starts_with("# Recovery run: shop-web / region-failover"),
        "{md}"
    );
    for section in [
        "## Targets",
        "## Timeline",
        "## Critical path",
        "## Post-incident review",
        "### What happened",
        "### What worked well",
        "### What needs improvement",
        "### Action items",
    ] {
        assert!(md.contains(section), "no {section} in\n{md}");
    }
    assert!(md.contains("| api |"), "{md}");
    // The forecast and progress went to stderr.
    assert!(console.stderr().contains("Progress (simulated time):"));
    assert!(!md.contains("Progress (simulated time):"));
}

#[tokio::test(start_paused = true)]
async fn events_as_json_lines() {
    let (code, console) = run(RunOptions {
        json: true,
        events: EventsFormat::Json,
        ..RunOptions::default()
    })
    .await;
    assert_eq!(code, EXIT_OK, "{}", console.stderr());
    let events: Vec<Value> = console
        .stderr()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "run_started");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    let started = events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .count();
    let done = events
        .iter()
        .filter(|e| e["event"] == "step_succeeded")
        .count();
    assert!(started > 5 && done > 5, "{events:?}");
    // stdout is still only the JSON report.
    let report: Value = serde_json::from_str(&console.stdout()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn captured_console_gets_plain_lines() {
    assert_eq!(
        EventsFormat::Auto.resolve(&Console::captured()),
        EventsFormat::Plain
    );
    let (_, console) = run(RunOptions::default()).await;
    let out = console.stdout();
    assert!(
        out.contains("+00:00:00  run of `region-failover` started"),
        "{out}"
    );
}

#[test]
fn live_view_tracks_running_steps() {
    let term = InMemoryTerm::new(10, 100);
    let mut view = LiveView::new(ProgressDrawTarget::term_like(Box::new(term.clone())));
    let at = DateTime::UNIX_EPOCH;
    view.show(&RunEvent::RunStarted {
        at,
        scenario: "region-failover".into(),
        steps: 3,
    });
    for step in ["db/promote", "dns/switch"] {
        view.show(&RunEvent::StepStarted {
            at,
            step: step.into(),
            attempt: 1,
        });
    }
    assert_eq!(view.running(), ["db/promote", "dns/switch"]);
    view.show(&RunEvent::StepSucceeded {
        at: at + chrono::Duration::seconds(65),
        step: "db/promote".into(),
        elapsed: std::time::Duration::from_secs(65),
        already_done: false,
    });
    assert_eq!(view.running(), ["dns/switch"]);
    assert_eq!(view.done(), 1);
    let screen = term.contents();
    assert!(
        screen.contains("+00:01:05  db/promote done in 1m 5s"),
        "{screen}"
    );
    assert!(screen.contains("dns/switch"), "{screen}");
    assert!(screen.contains("1/3 steps"), "{screen}");
    view.show(&RunEvent::RunFinished {
        at,
        outcome: Outcome::Succeeded,
    });
    assert!(view.running().is_empty());
}

#[test]
fn formats_parse() {
    assert_eq!("md".parse::<ReportFormat>(), Ok(ReportFormat::Markdown));
    assert_eq!("json".parse::<EventsFormat>(), Ok(EventsFormat::Json));
    assert!("xml".parse::<ReportFormat>().is_err());
}

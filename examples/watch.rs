//! Detection → decision → run: a watcher samples the bundled plan's region-failover trigger
//! (the API's and the web site's health checks) every minute on the simulated cloud; the home
//! region goes down after three passes; three failed samples fire the trigger; the on-call
//! engineer approves; the failover runs; the checks answer from the DR region and the trigger
//! re-arms. Every watcher event is printed as it happens, then the run's report.
//!
//! ```text
//! cargo run --example watch [-- --json]
//! ```

use std::sync::Arc;
use std::time::Duration;

use dr_core::executor::Executor;
use dr_core::plan::Plan;
use dr_core::sim::SimConfig;
use dr_core::simulation::Simulation;
use dr_core::watch::{WatchEvent, WatchMetrics, Watcher};
use dr_examples::{init_tracing, plans_dir, SimulatedOnCall};

const INTERVAL: Duration = Duration::from_secs(60);

fn describe(e: &WatchEvent) -> String {
    match e {
        WatchEvent::Sampled {
            at,
            scenario,
            failed,
            failures_in_window,
            signals,
        } => {
            let shown: Vec<String> = signals
                .iter()
                .map(|s| format!("{} {}", s.name, s.detail))
                .collect();
            format!(
                "{} sample  {scenario}: {} ({failures_in_window} failed in the window): {}",
                at.format("%H:%M:%S"),
                if *failed { "FAILED" } else { "ok" },
                shown.join(", ")
            )
        }
        WatchEvent::Fired {
            at,
            scenario,
            reason,
        } => format!("{} FIRED   {scenario}: {reason}", at.format("%H:%M:%S")),
        WatchEvent::Decided {
            at,
            scenario,
            decision,
        } => format!(
            "{} decide  {scenario}: {}",
            at.format("%H:%M:%S"),
            serde_json::to_string(decision).unwrap_or_default()
        ),
        WatchEvent::Rearmed { at, scenario } => {
            format!("{} re-arm  {scenario}", at.format("%H:%M:%S"))
        }
        WatchEvent::RunFinished {
            at,
            scenario,
            summary,
            ..
        } => format!("{} run     {scenario}: {summary}", at.format("%H:%M:%S")),
        WatchEvent::ReadinessChanged { at, readiness } => format!(
            "{} ready   {}: {}",
            at.format("%H:%M:%S"),
            readiness.scenario,
            if readiness.ready {
                "ready".to_string()
            } else {
                format!("at risk: {}", readiness.at_risk.join("; "))
            }
        ),
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let json = std::env::args().any(|a| a == "--json");
    let plan = match Plan::load(plans_dir().join("region-failover.yaml")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let sim = Simulation::new(&plan, 1, SimConfig::default());
    let (providers, clock) = (sim.providers(), sim.cloud().clock());
    let oncall = Arc::new(SimulatedOnCall {
        delay: Duration::from_secs(45),
    });
    let factory = {
        let (providers, clock, oncall) = (providers.clone(), clock, oncall.clone());
        move || {
            Executor::new(providers.clone())
                .clock(clock)
                .approvals(oncall.clone())
        }
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = match Watcher::new(plan.clone(), providers) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let watcher = watcher
        .clock(clock)
        .interval(INTERVAL)
        .approvals(oncall)
        .executor(factory)
        .metrics(WatchMetrics::register_in(&mut registry))
        .events(tx);
    let printer = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if json {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
            } else if !matches!(&e, WatchEvent::Sampled { failed: false, .. }) {
                println!("{}", describe(&e));
            }
        }
    });

    let Some(scenario) = plan.scenario("region-failover") else {
        eprintln!("the bundled plan has no region-failover scenario");
        return std::process::ExitCode::from(2);
    };
    for pass in 0..14 {
        if pass == 3 {
            if !json {
                println!("--- {} ---", scenario.incident(&plan));
            }
            sim.inject(scenario).await;
        }
        watcher.tick().await;
        tokio::time::sleep(INTERVAL).await;
    }
    let reports = watcher.wait_runs().await;
    drop(watcher);
    let _ = printer.await;
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    let succeeded = reports.len() == 1 && reports.iter().all(|r| r.succeeded());
    if !json {
        for r in &reports {
            println!("\n{r}");
        }
        println!("Metrics:");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("region-failover"))
        {
            println!("  {line}");
        }
    }
    if succeeded {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

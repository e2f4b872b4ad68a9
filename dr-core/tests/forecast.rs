//! The forecast as a distribution, on the bundled region failover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dr_core::forecast::{forecast, ForecastError, ForecastOptions};
use dr_core::plan::{LatencyDist, Plan};

fn bundled() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(&path).unwrap()
}

fn opts(runs: usize, seed: u64) -> ForecastOptions {
    ForecastOptions { runs, seed }
}

#[tokio::test(start_paused = true)]
async fn seeded_and_reproducible() {
    let plan = bundled();
    let a = forecast(&plan, "region-failover", &opts(60, 5))
        .await
        .unwrap();
    let b = forecast(&plan, "region-failover", &opts(60, 5))
        .await
        .unwrap();
    assert_eq!(a, b);
    let c = forecast(&plan, "region-failover", &opts(60, 6))
        .await
        .unwrap();
    assert_ne!(a.recovery, c.recovery);
}

#[tokio::test(start_paused = true)]
async fn percentiles_probabilities_and_criticality() {
    let plan = bundled();
    let f = forecast(&plan, "region-failover", &opts(200, 42))
        .await
        .unwrap();
    assert_eq!(f.runs, 200);
    // A few runs draw an on-call answer later than the approval gate's timeout: they fail,
    // as they would in an incident.
    assert!(f.p_succeeded > 0.9 && f.p_succeeded <= 1.0, "{f}");
    for s in &f.services {
        let (p50, p95) = (s.recovery.p50.unwrap(), s.recovery.p95.unwrap());
        assert!(p50 <= p95, "{f}");
        if let Some(p99) = s.recovery.p99 {
            assert!(p95 <= p99, "{f}");
        }
        assert!(s.p_meet_rto <= s.p_recovered && s.p_recovered >= f.p_succeeded);
    }
    // The database promotion (median 5m, p95 10m) and the DNS switches spread the
    // recovery: p95 is well above p50.
    let api = f.service("api").unwrap();
    assert!(api.recovery.p95.unwrap() > api.recovery.p50.unwrap() + Duration::from_secs(60));
    // The approval gate comes first on every path; the database's promotion, or the DR
    // cluster's node scaling that runs beside it, lies on the critical path of every run
    // that succeeded; the static assets' steps, which wait for neither, on none.
    let ok = f.p_succeeded;
    assert_eq!(f.criticality("approval"), Some(1.0), "{f}");
    let nodes = f.criticality("nodes:dr-west/general/wait").unwrap();
    assert!(
        f.criticality("orders-db/promote").unwrap() + nodes >= ok - 1e-9,
        "{f}"
    );
    assert!(
        f.criticality("orders-db/wait").unwrap() + nodes >= ok - 1e-9,
        "{f}"
    );
    assert!(f.criticality("orders-db/promote").unwrap() > nodes, "{f}");
    assert_eq!(f.criticality("static-assets/verify"), Some(0.0), "{f}");
    // In a run that succeeded, either voice or api finishes last.
    let tail = f.criticality("api/verify").unwrap() + f.criticality("voice/verify").unwrap();
    assert!((tail - ok).abs() < 1e-9, "{f}");
    let text = f.to_string();
    assert!(text.contains("P(meet RTO)"), "{text}");
    assert!(text.contains("Criticality index"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn slower_promotions_from_the_plan_miss_the_rto_more_often() {
    let fast = bundled();
    let mut slow = bundled();
    let yaml = "latency:\n  promote_replica: { p50: 12m, p95: 30m }\n";
    slow.forecast = Some(serde_yaml_ng::from_str(yaml).unwrap());
    let f = forecast(&fast, "region-failover", &opts(150, 1))
        .await
        .unwrap();
    let s = forecast(&slow, "region-failover", &opts(150, 1))
        .await
        .unwrap();
    assert!(matches!(
        s.latency["promote_replica"],
        LatencyDist::Percentiles { .. }
    ));
    let (fa, sa) = (f.service("api").unwrap(), s.service("api").unwrap());
    assert!(sa.p_meet_rto < fa.p_meet_rto, "{f}\n{s}");
    assert!(sa.recovery.p50 > fa.recovery.p50);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused() {
    let mut plan = bundled();
    assert!(matches!(
        forecast(&plan, "region-failover", &opts(0, 1)).await,
        Err(ForecastError::NoRuns)
    ));
    assert!(forecast(&plan, "nope", &opts(1, 1)).await.is_err());
    let yaml = "latency:\n  switch_dns: { min: 5m, mode: 1m, max: 10m }\n";
    plan.forecast = Some(serde_yaml_ng::from_str(yaml).unwrap());
    let err = forecast(&plan, "region-failover", &opts(1, 1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("forecast.latency.switch_dns"),
        "{err}"
    );
}

//! What people hear: the webhook notifier against a local HTTP server, and the incident
//! comms (status-page phases, escalation, RTO warnings, periodic updates) driven by a run
//! of the bundled region failover on the simulated cloud.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dr_core::executor::{AutoApprove, Executor, RunReport};
use dr_core::notify::{
    CommsConfig, EscalationLevel, IncidentComms, Phase, Reason, Sent, WebhookFormat,
    WebhookNotifier,
};
use dr_core::plan::Plan;
use dr_core::planner;
use dr_core::provider::{Notification, Notifier, Severity};
use dr_core::sim::{SimCloud, SimConfig};
use dr_core::simulation::Simulation;
use dr_core::{Error, HumanDuration, Retry, Secret};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};

const TOKEN: &str = "T0/B0/notify-token-5b2c";

type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A local HTTP server on 127.0.0.1: answers 200, or the status in a path `/status/NNN/…`.
fn server() -> (SocketAddr, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let json = serde_json::from_slice(&body).unwrap_or_default();
                            record.lock().unwrap().push((path.clone(), json));
                            let status = path
                                .strip_prefix("/status/")
                                .and_then(|s| s.get(..3))
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(200u16);
                            let mut response = Response::builder().status(status);
                            if path.contains("/retry/") {
                                response = response.header("retry-after", "30");
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from_static(b"ok"))).unwrap(),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
    });
    (addr, seen)
}

fn note() -> Notification {
    Notification {
        severity: Severity::Critical,
        title: "Investigating".into(),
        body: "region us-east-1 is down".into(),
    }
}

#[tokio::test]
async fn webhook_notifier_posts_slack_teams_and_json() {
    let (addr, seen) = server();
    let url = |p: &str| Secret::new(format!("http://{addr}/{p}/{TOKEN}"));
    let n = WebhookNotifier::new()
        .channel("slack", url("slack"), WebhookFormat::Slack)
        .channel("teams", url("teams"), WebhookFormat::Teams)
        .channel("json", url("json"), WebhookFormat::Json);
    for ch in ["slack", "teams", "json"] {
        n.notify(ch, &note()).await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].0, format!("/slack/{TOKEN}"));
    assert_eq!(
        seen[0].1["text"],
        "*Investigating*\nregion us-east-1 is down"
    );
    assert_eq!(seen[1].1["@type"], "MessageCard");
    assert_eq!(seen[1].1["title"], "Investigating");
    assert_eq!(seen[1].1["themeColor"], "E01E5A");
    assert_eq!(seen[2].1["channel"], "json");
    assert_eq!(seen[2].1["severity"], "critical");
}

#[tokio::test]
async fn webhook_notifier_classifies_answers_and_hides_the_url() {
    let (addr, _) = server();
    let url = |p: &str| Secret::new(format!("http://{addr}/status/{p}/{TOKEN}"));
    let n = WebhookNotifier::new()
        .channel("down", url("503"), WebhookFormat::Slack)
        .channel("busy", url("429"), WebhookFormat::Slack)
        .channel("gone", url("404"), WebhookFormat::Slack)
        .channel("later", url("503/retry"), WebhookFormat::Slack);
    let down = n.notify("down", &note()).await.unwrap_err();
    assert!(matches!(down, Error::Unavailable { .. }), "{down}");
    assert_eq!(down.retry(), Retry::Temporary);
    let busy = n.notify("busy", &note()).await.unwrap_err();
    assert!(matches!(busy, Error::Throttled { .. }), "{busy}");
    let gone = n.notify("gone", &note()).await.unwrap_err();
    assert_eq!(gone.retry(), Retry::Permanent);
    let later = n.notify("later", &note()).await.unwrap_err();
    assert!(matches!(later, Error::Refused { .. }), "{later}");
    // Nothing is listening here: refused, certainly not delivered.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = WebhookNotifier::new()
        .channel(
            "x",
            Secret::new(format!("http://127.0.0.1:{port}/{TOKEN}")),
            WebhookFormat::Slack,
        )
        .notify("x", &note())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Refused { .. }), "{refused}");
    for e in [down, busy, gone, later, refused] {
        let text = format!("{e} {e:?}");
        assert!(!text.contains("notify-token"), "{text}");
    }
}

fn bundled() -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plans/region-failover.yaml");
    Plan::load(&path).unwrap()
}

/// Runs the bundled region failover with comms on `notifier`.
async fn run_with_comms(
    notifier: Arc<dyn Notifier>,
    config: CommsConfig,
    sim_config: SimConfig,
) -> (RunReport, Vec<Sent>) {
    let plan = bundled();
    let sim = Simulation::new(&plan, 7, sim_config);
    let scenario = plan.scenario("region-failover").unwrap();
    sim.inject(scenario).await;
    let observed = sim.observe().await;
    let graph = planner::plan(&plan, "region-failover", &observed).unwrap();
    let clock = sim.cloud().clock();
    let comms = IncidentComms::new(&graph, notifier, config).clock(clock);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let told = tokio::spawn(comms.run(rx));
    let report = Executor::new(sim.providers())
        .clock(clock)
        .approvals(Arc::new(AutoApprove))
        .events(tx)
        .run(&graph)
        .await;
    (report, told.await.unwrap())
}

/// Sent when due: `at` is when the notifier was called, after earlier sends (a simulated
/// call takes up to 0.5 s).
fn near(d: Duration, secs: u64) -> bool {
    d >= Duration::from_secs(secs) && d < Duration::from_secs(secs + 5)
}

fn config() -> CommsConfig {
    CommsConfig {
        channels: vec!["status-page".into()],
        update_every: Some(HumanDuration::from_secs(120)),
        rto_warning: 0.4,
        escalation: vec![
            EscalationLevel {
                after: HumanDuration::from_secs(0),
                audience: "on-call engineer".into(),
                channel: "pager".into(),
            },
            EscalationLevel {
                after: HumanDuration::from_secs(5 * 60),
                audience: "management".into(),
                channel: "management".into(),
            },
            EscalationLevel {
                after: HumanDuration::from_secs(60 * 60),
                audience: "executives".into(),
                channel: "executives".into(),
            },
        ],
        impact: None,
    }
}

#[tokio::test(start_paused = true)]
async fn phases_escalation_warnings_and_updates_follow_the_run() {
    let sink = SimCloud::new(1);
    let (report, sent) = run_with_comms(sink.notifier(), config(), SimConfig::default()).await;
    assert!(report.succeeded(), "{report}");
    let start = report.started_at;
    let after = |s: &Sent| (s.at - start).to_std().unwrap();
    let listing: Vec<String> = sent
        .iter()
        .map(|s| format!("{:?} {} {:?}", after(s), s.channel, s.reason))
        .collect();

    // The four phases, in order, on the status page.
    let phases: Vec<Phase> = sent
        .iter()
        .filter_map(|s| match s.reason {
            Reason::Phase { phase } => Some(phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            Phase::Investigating,
            Phase::Identified,
            Phase::Monitoring,
            Phase::Resolved
        ],
        "{listing:#?}"
    );
    let first = &sent[0];
    assert_eq!(first.channel, "status-page");
    assert!(first
        .notification
        .body
        .contains(&format!("Start time: {}", start.to_rfc3339())));
    assert!(first
        .notification
        .body
        .contains("Affected services: api, database, static-assets, voice"));
    let resolved = sent.last().unwrap();
    assert_eq!(
        resolved.reason,
        Reason::Phase {
            phase: Phase::Resolved
        }
    );
    let took = dr_core::duration::human(after(resolved));
    assert!(
        resolved
            .notification
            .body
            .contains(&format!("Resolution time: {took}")),
        "{}",
        resolved.notification.body
    );

    // Escalation: 0 min and 5 min while open; never the 60 min level (resolved by then).
    let escalations: Vec<(&str, Duration)> = sent
        .iter()
        .filter(|s| matches!(s.reason, Reason::Escalation { .. }))
        .map(|s| (s.channel.as_str(), after(s)))
        .collect();
    assert_eq!(escalations.len(), 2, "{listing:#?}");
    assert_eq!(escalations[0].0, "pager");
    assert!(near(escalations[0].1, 0), "{listing:#?}");
    assert_eq!(escalations[1].0, "management");
    assert!(near(escalations[1].1, 300), "{listing:#?}");

    // Updates every 2 minutes until the run ends (it takes about 7 minutes).
    let updates: Vec<Duration> = sent
        .iter()
        .filter(|s| s.reason == Reason::Update)
        .map(after)
        .collect();
    assert_eq!(updates.len(), 3, "{listing:#?}");
    for (u, at) in updates.iter().zip([120, 240, 360]) {
        assert!(near(*u, at), "{listing:#?}");
    }

    // 40% of api's 15 min RTO passes at 6m, before api is recovered: one warning. The
    // services recovered before 40% of their RTO get none.
    let warnings: Vec<(&Reason, Duration)> = sent
        .iter()
        .filter(|s| matches!(s.reason, Reason::RtoWarning { .. }))
        .map(|s| (&s.reason, after(s)))
        .collect();
    let api = report.service("api").unwrap().achieved_rto.unwrap();
    assert!(api > Duration::from_secs(360), "{report}");
    assert_eq!(warnings.len(), 1, "{listing:#?}");
    assert_eq!(
        warnings[0].0,
        &Reason::RtoWarning {
            service: "api".into()
        }
    );
    assert!(near(warnings[0].1, 360), "{listing:#?}");
    // Every notification was delivered to the notifier.
    assert!(sent.iter().all(|s| s.error.is_none()));
    assert_eq!(sink.notifications().len(), sent.len());
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_is_not_resolved_and_comms_reach_a_webhook() {
    let (addr, seen) = server();
    let notifier = WebhookNotifier::new().channel(
        "status-page",
        Secret::new(format!("http://{addr}/hooks/{TOKEN}")),
        WebhookFormat::Json,
    );
    // The replica cannot be promoted: the database and its dependants are not recovered.
    let faults = dr_core::sim::FaultConfig::default().with_permanent(dr_core::sim::FaultRule::new(
        Some(dr_core::provider::Operation::Promote),
        "",
    ));
    let mut cfg = config();
    cfg.escalation.clear();
    cfg.update_every = None;
    let (report, sent) = run_with_comms(
        Arc::new(notifier),
        cfg,
        SimConfig::default().with_faults(faults),
    )
    .await;
    assert!(!report.succeeded(), "{report}");
    let last = sent.last().unwrap();
    assert_eq!(last.reason, Reason::RecoveryFailed);
    assert!(!sent.iter().any(|s| s.reason
        == Reason::Phase {
            phase: Phase::Resolved
        }));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), sent.len());
    assert_eq!(seen[0].1["title"], "[INCIDENT] shop-web: investigating");
    assert_eq!(
        seen.last().unwrap().1["title"],
        "[INCIDENT] shop-web: recovery failed"
    );
}

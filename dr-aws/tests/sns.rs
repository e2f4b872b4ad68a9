//! The SNS notifier against moto (`scripts/standins/moto.sh`): a topic with an HTTP
//! subscription on 127.0.0.1, to which moto delivers what is published.
//!
//! They read `AWS_ENDPOINT_URL`. Without it they print a `skipped:` line and pass, unless
//! `CI` is set: then they fail, because the stand-in should have been started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dr_aws::AwsConfig;
use dr_core::provider::{Notification, Notifier, Severity};
use dr_core::Error;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};

type Seen = Arc<Mutex<Vec<serde_json::Value>>>;

/// A local HTTP endpoint that records every JSON body posted to it.
fn endpoint() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/sns", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            if let Ok(json) = serde_json::from_slice(&body) {
                                record.lock().unwrap().push(json);
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
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
    (url, seen)
}

async fn aws() -> Option<AwsConfig> {
    dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto")?;
    Some(AwsConfig::from_env().await.expect("AWS config from env"))
}

/// Subscribes `url` to `arn`, delivering only messages whose `severity` attribute is
/// `severity`.
async fn subscribe(sns: &dr_aws::SnsNotifier, arn: &str, url: &str, severity: &str) {
    sns.client()
        .subscribe()
        .topic_arn(arn)
        .protocol("http")
        .endpoint(url)
        .attributes(
            "FilterPolicy",
            format!("{{\"severity\": [\"{severity}\"]}}"),
        )
        .send()
        .await
        .unwrap();
}

/// The notifications `seen` holds, waiting until there are `n` (moto delivers during the
/// publish; the wait only covers a slow machine).
async fn delivered(seen: &Seen, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let got: Vec<serde_json::Value> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["Type"] == "Notification")
            .cloned()
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto did not deliver {n} notification(s)");
}

#[tokio::test]
async fn publishes_to_a_topic_with_subject_body_and_severity() {
    let Some(aws) = aws().await else { return };
    let (pager, paged) = endpoint();
    let (email, mailed) = endpoint();
    let probe = aws.build_sns();
    let topic = probe
        .client()
        .create_topic()
        .name(dr_core::testkit::unique("dr-oncall"))
        .send()
        .await
        .unwrap();
    let arn = topic.topic_arn().unwrap().to_string();
    // Subscriptions filter on the severity attribute: the pager gets critical messages,
    // email the informational ones.
    subscribe(&probe, &arn, &pager, "critical").await;
    subscribe(&probe, &arn, &email, "info").await;
    let sns = aws.build_sns().topic("oncall", &arn);
    let critical = Notification {
        severity: Severity::Critical,
        title: format!("[INCIDENT] shop-web: investigating\n{}", "x".repeat(120)),
        body: "We are currently investigating a service disruption.".into(),
    };
    let resolved = Notification {
        severity: Severity::Info,
        title: "[RESOLVED] shop-web: service restored".into(),
        body: "The service disruption has been resolved.".into(),
    };
    sns.notify("oncall", &critical).await.unwrap();
    sns.notify("oncall", &resolved).await.unwrap();

    let paged = delivered(&paged, 1).await;
    let mailed = delivered(&mailed, 1).await;
    assert_eq!(paged.len(), 1, "{paged:#?}");
    assert_eq!(mailed.len(), 1, "{mailed:#?}");
    let m = &paged[0];
    assert_eq!(m["TopicArn"], arn.as_str());
    assert_eq!(
        m["Message"],
        "We are currently investigating a service disruption."
    );
    let subject = m["Subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[INCIDENT] shop-web: investigating x"),
        "{subject}"
    );
    assert_eq!(subject.chars().count(), 100);
    assert_eq!(
        mailed[0]["Subject"],
        "[RESOLVED] shop-web: service restored"
    );
}

#[tokio::test]
async fn unknown_channel_and_missing_topic_are_errors() {
    let Some(aws) = aws().await else { return };
    let note = Notification {
        severity: Severity::Info,
        title: "t".into(),
        body: "b".into(),
    };
    let sns = aws.build_sns().topic(
        "gone",
        format!(
            "arn:aws:sns:us-east-1:123456789012:{}",
            dr_core::testkit::unique("missing")
        ),
    );
    let unknown = sns.notify("elsewhere", &note).await.unwrap_err();
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown}");
    let missing = sns.notify("gone", &note).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
}

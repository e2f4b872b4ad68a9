//! The HTTP(S) health probe against a local server started by each test (127.0.0.1 only):
//! healthy, unhealthy, slow, flapping, redirects, headers, credentials redacted, and TLS with
//! a test CA generated here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dr_core::provider::{HealthProbe, HealthStatus, HttpCheck, HttpProbe};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};

const TOKEN: &str = "hc-token-5f2a9b1c";

/// Routes: `/health` 200 `status: ok`; `/down` 503; `/degraded` 200 `status: degraded`;
/// `/slow` 200 after 10 s; `/flap` 200 and 503 in turn; `/moved` 302 to `/health`; `/loop`
/// 302 to itself; `/auth` 200 with the bearer token, else 401.
fn respond(
    path: &str,
    auth: Option<&str>,
    flaps: &AtomicU32,
) -> (u16, Option<&'static str>, &'static str) {
    match path {
        "/health" => (200, None, "status: ok"),
        "/down" => (503, None, "status: down"),
        "/degraded" => (200, None, "status: degraded"),
        "/flap" => {
            if flaps.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                (200, None, "status: ok")
            } else {
                (503, None, "status: down")
            }
        }
        "/moved" => (302, Some("/health"), ""),
        "/loop" => (302, Some("/loop"), ""),
        "/auth" if auth == Some(&format!("Bearer {TOKEN}")[..]) => (200, None, "status: ok"),
        "/auth" => (401, None, "unauthorised"),
        _ => (404, None, "not found"),
    }
}

/// Starts the server on its own thread and runtime (real time), with TLS when `tls` holds a
/// server configuration.
fn server(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let flaps = Arc::new(AtomicU32::new(0));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let flaps = flaps.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let flaps = flaps.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            if path == "/slow" {
                                tokio::time::sleep(Duration::from_secs(10)).await;
                            }
                            let (status, location, body) = respond(&path, auth.as_deref(), &flaps);
                            let mut response = Response::builder().status(status);
                            if let Some(l) = location {
                                response = response.header("location", l);
                            }
                            Ok::<_, Infallible>(
                                response
                                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                                    .unwrap(),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, svc).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, svc).await;
                        }
                    }
                });
            }
        });
    });
    addr
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

fn probe(check: HttpCheck) -> HttpProbe {
    HttpProbe::new(check).unwrap()
}

#[tokio::test]
async fn healthy_endpoint_is_healthy() {
    let addr = server(None);
    let p = probe(HttpCheck::default());
    assert_eq!(p.name(), "http");
    assert_eq!(
        p.check(&url(addr, "/health")).await.unwrap(),
        HealthStatus::Healthy
    );
    let outcome = p.check_detailed(&url(addr, "/health")).await.unwrap();
    assert_eq!(outcome.http_status, Some(200));
    assert!(outcome.reason.is_empty());

    // A body match: present passes, absent fails with the reason.
    let p = probe(HttpCheck::default().with_body_contains("status: ok"));
    assert_eq!(
        p.check(&url(addr, "/health")).await.unwrap(),
        HealthStatus::Healthy
    );
    let outcome = p.check_detailed(&url(addr, "/degraded")).await.unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert!(
        outcome.reason.contains("without `status: ok`"),
        "{}",
        outcome.reason
    );

    // HEAD works too.
    let p = probe(HttpCheck::default().with_method("HEAD"));
    assert_eq!(
        p.check(&url(addr, "/health")).await.unwrap(),
        HealthStatus::Healthy
    );
}

#[tokio::test]
async fn unhealthy_endpoint_is_unhealthy_with_the_reason() {
    let addr = server(None);
    let p = probe(HttpCheck::default());
    let outcome = p.check_detailed(&url(addr, "/down")).await.unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert_eq!(outcome.http_status, Some(503));
    assert!(
        outcome.reason.contains("answered 503 (expected 200-299)"),
        "{}",
        outcome.reason
    );
    assert_eq!(
        p.check(&url(addr, "/nowhere")).await.unwrap(),
        HealthStatus::Unhealthy
    );

    // The expected range is the check's: a 503 can be what "up" means.
    let p = probe(HttpCheck::default().with_expect_status("500-599".parse().unwrap()));
    assert_eq!(
        p.check(&url(addr, "/down")).await.unwrap(),
        HealthStatus::Healthy
    );
    assert_eq!(
        p.check(&url(addr, "/health")).await.unwrap(),
        HealthStatus::Unhealthy
    );

    // Nobody listening: unhealthy, not an error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let p = probe(HttpCheck::default().with_timeout(Duration::from_secs(2)));
    let outcome = p
        .check_detailed(&format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert!(
        outcome.reason.contains("cannot connect"),
        "{}",
        outcome.reason
    );
}

#[tokio::test]
async fn slow_endpoint_times_out_as_unhealthy() {
    let addr = server(None);
    let p = probe(HttpCheck::default().with_timeout(Duration::from_millis(300)));
    let outcome = p.check_detailed(&url(addr, "/slow")).await.unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert_eq!(outcome.http_status, None);
    assert!(
        outcome.reason.contains("no answer within 300ms"),
        "{}",
        outcome.reason
    );
}

/// On the simulated cloud's paused clock, time jumps whenever the runtime is idle: a probe
/// that waited on that clock would time out at once. It runs on real time instead.
#[tokio::test(start_paused = true)]
async fn probe_on_a_paused_clock_waits_for_the_real_answer() {
    let addr = server(None);
    let p = probe(HttpCheck::default().with_timeout(Duration::from_secs(5)));
    for _ in 0..3 {
        assert_eq!(
            p.check(&url(addr, "/health")).await.unwrap(),
            HealthStatus::Healthy
        );
    }
}

#[tokio::test]
async fn flapping_endpoint_is_reported_as_it_answers_or_needs_consecutive_successes() {
    let addr = server(None);
    // One request per check: each answer is reported as it is, never cached.
    let p = probe(HttpCheck::default());
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(p.check(&url(addr, "/flap")).await.unwrap());
    }
    use HealthStatus::{Healthy, Unhealthy};
    assert_eq!(seen, [Healthy, Unhealthy, Healthy, Unhealthy]);

    // Three consecutive successes needed: the flapping endpoint never passes.
    let p = probe(HttpCheck::default().with_consecutive(3, Duration::from_millis(20)));
    for _ in 0..3 {
        let outcome = p.check_detailed(&url(addr, "/flap")).await.unwrap();
        assert_eq!(outcome.status, Unhealthy);
        assert!(
            outcome.reason.contains("of 3 consecutive healthy answers"),
            "{}",
            outcome.reason
        );
    }
    // A steady endpoint does.
    assert_eq!(p.check(&url(addr, "/health")).await.unwrap(), Healthy);
}

#[tokio::test]
async fn redirects_are_limited() {
    let addr = server(None);
    let p = probe(HttpCheck::default());
    assert_eq!(
        p.check(&url(addr, "/moved")).await.unwrap(),
        HealthStatus::Healthy
    );
    let outcome = p.check_detailed(&url(addr, "/loop")).await.unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert!(outcome.reason.contains("redirects"), "{}", outcome.reason);

    // Redirects not followed: the 302 itself is judged.
    let p = probe(HttpCheck::default().with_max_redirects(0));
    let outcome = p.check_detailed(&url(addr, "/moved")).await.unwrap();
    assert_eq!(outcome.http_status, Some(302));
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn per_target_checks_and_headers_from_the_environment() {
    let addr = server(None);
    std::env::set_var("DR_TEST_HC_TOKEN", format!("Bearer {TOKEN}"));
    let auth = url(addr, "/auth");
    let p = HttpProbe::builder()
        .with_check(
            &auth,
            HttpCheck::default().with_header_from_env("Authorization", "DR_TEST_HC_TOKEN"),
        )
        .build()
        .unwrap();
    assert_eq!(p.check(&auth).await.unwrap(), HealthStatus::Healthy);
    // Other targets use the default check, without the header.
    let other = format!("http://localhost:{}/auth", addr.port());
    let outcome = p.check_detailed(&other).await.unwrap();
    assert_eq!(outcome.http_status, Some(401));

    // A variable that is not set is refused when the probe is built, naming it.
    let err = HttpProbe::new(
        HttpCheck::default().with_header_from_env("Authorization", "DR_TEST_UNSET_VAR"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("DR_TEST_UNSET_VAR is not set"),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn credentials_never_appear_in_messages() {
    let addr = server(None);
    let p = probe(HttpCheck::default().with_timeout(Duration::from_millis(300)));
    for path in ["/down", "/slow", "/loop"] {
        let target = format!("http://ops:hunter2secret@{addr}{path}");
        let outcome = p.check_detailed(&target).await.unwrap();
        assert_eq!(outcome.status, HealthStatus::Unhealthy);
        assert!(
            !outcome.reason.contains("hunter2secret"),
            "{}",
            outcome.reason
        );
        assert!(outcome.reason.contains("ops:***@"), "{}", outcome.reason);
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let outcome = p
        .check_detailed(&format!("http://ops:hunter2secret@127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert!(
        !outcome.reason.contains("hunter2secret"),
        "{}",
        outcome.reason
    );

    // A target that is not an http(s) URL is an error, redacted too.
    let err = p
        .check("ftp://ops:hunter2secret@example.com/x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scheme `ftp`"), "{err}");
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
    let err = p.check("not a url").await.unwrap_err();
    assert_eq!(err.retry(), dr_core::Retry::Permanent);
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
fn test_pki() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dr test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    (ca.pem(), Arc::new(config))
}

#[tokio::test]
async fn tls_with_a_test_ca() {
    let (ca_pem, config) = test_pki();
    let addr = server(Some(config));
    let target = format!("https://localhost:{}/health", addr.port());

    // Trusting the test CA: healthy, by name and by IP address.
    let p = probe(HttpCheck::default().with_ca_pem(ca_pem.clone()));
    assert_eq!(p.check(&target).await.unwrap(), HealthStatus::Healthy);
    let by_ip = format!("https://127.0.0.1:{}/health", addr.port());
    assert_eq!(p.check(&by_ip).await.unwrap(), HealthStatus::Healthy);
    let down = format!("https://localhost:{}/down", addr.port());
    assert_eq!(p.check(&down).await.unwrap(), HealthStatus::Unhealthy);

    // Verification is on by default: the platform's roots do not know the test CA.
    let p = probe(HttpCheck::default());
    let outcome = p.check_detailed(&target).await.unwrap();
    assert_eq!(outcome.status, HealthStatus::Unhealthy);
    assert!(
        outcome.reason.to_lowercase().contains("certificate"),
        "{}",
        outcome.reason
    );

    // Another CA does not vouch for this server either.
    let (other_ca, _) = test_pki();
    let p = probe(HttpCheck::default().with_ca_pem(other_ca));
    assert_eq!(p.check(&target).await.unwrap(), HealthStatus::Unhealthy);

    // A CA that is not PEM is refused when the probe is built.
    let err = HttpProbe::new(HttpCheck::default().with_ca_pem("not a certificate")).unwrap_err();
    assert!(err.to_string().contains("ca_pem"), "{err}");
}

#[test]
fn checks_deserialise_from_configuration() {
    let check: HttpCheck = serde_yaml_ng::from_str(
        "{ method: HEAD, expect_status: 200-399, body_contains: ok, timeout: 2s, max_redirects: 0, consecutive: 2, interval: 500ms }",
    )
    .unwrap();
    assert_eq!(check.method, "HEAD");
    assert!(check.expect_status.contains(399));
    assert_eq!(check.timeout, Duration::from_secs(2));
    assert_eq!(check.interval, Duration::from_millis(500));
    let check: HttpCheck = serde_yaml_ng::from_str("{ expect_status: 204 }").unwrap();
    assert!(check.expect_status.contains(204) && !check.expect_status.contains(200));
    assert!(serde_yaml_ng::from_str::<HttpCheck>("{ expect_status: 700 }").is_err());
    assert!(serde_yaml_ng::from_str::<HttpCheck>("{ expect_status: 300-200 }").is_err());
    assert!(serde_yaml_ng::from_str::<HttpCheck>("{ methd: GET }").is_err());
}

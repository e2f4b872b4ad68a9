//! `ElastiCacheCaches` against a local HTTP server that answers scripted ElastiCache replies:
//! what moto does not model (pages of snapshots, snapshot times, snapshots not yet
//! available, throttling), and what the provider sends (no cluster filter on the listing,
//! one node of the snapshot's engine and node type on a restore, a signed request).

use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use dr_aws::ElastiCacheCaches;
use dr_core::provider::{CacheBackupState, CacheRestore, CacheState};
use dr_core::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The requests a server received: the `authorization` header and the body of each.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A server on 127.0.0.1 answering each request with `reply(body)` (status, XML).
async fn server(reply: fn(&str) -> (u16, String)) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as many body bytes as they announce.
            let (head, body) = loop {
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_string(), body.to_string());
                    }
                }
            };
            let auth = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let (status, xml) = reply(&body);
            log.lock().expect("log").push((auth, body));
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (endpoint, seen)
}

fn provider(endpoint: String) -> ElastiCacheCaches {
    let creds = Credentials::new("AKIDEXAMPLE", "not-a-secret", None, None, "scripted");
    let creds = SharedCredentialsProvider::new(creds);
    ElastiCacheCaches::new(Some(creds), Some(endpoint), None).expect("provider")
}

fn snapshot(name: &str, cluster: &str, status: &str, time: Option<&str>) -> String {
    let nodes = time.map_or(String::new(), |t| {
        format!("<NodeSnapshots><NodeSnapshot><SnapshotCreateTime>{t}</SnapshotCreateTime></NodeSnapshot></NodeSnapshots>")
    });
    format!(
        "<Snapshot><SnapshotName>{name}</SnapshotName><CacheClusterId>{cluster}</CacheClusterId>\
         <SnapshotStatus>{status}</SnapshotStatus><CacheNodeType>cache.r6g.large</CacheNodeType>\
         <Engine>valkey</Engine>{nodes}</Snapshot>"
    )
}

fn snapshots(marker: Option<&str>, items: &[String]) -> String {
    let marker = marker.map_or(String::new(), |m| format!("<Marker>{m}</Marker>"));
    format!(
        "<DescribeSnapshotsResponse><DescribeSnapshotsResult>{marker}<Snapshots>{}</Snapshots>\
         </DescribeSnapshotsResult></DescribeSnapshotsResponse>",
        items.concat()
    )
}

/// A `DescribeSnapshots` reply of the one snapshot `name` of `sessions`, in `status`.
fn one_snapshot(name: &str, status: &str) -> (u16, String) {
    let s = snapshot(name, "sessions", status, None);
    (200, snapshots(None, &[s]))
}

/// A `CreateCacheCluster` or `DescribeCacheClusters` reply of one cluster.
fn cluster_reply(action: &str, id: &str, status: &str) -> String {
    let cluster = format!(
        "<CacheCluster><CacheClusterId>{id}</CacheClusterId>\
         <CacheClusterStatus>{status}</CacheClusterStatus></CacheCluster>"
    );
    let inner = if action == "DescribeCacheClusters" {
        format!("<CacheClusters>{cluster}</CacheClusters>")
    } else {
        cluster
    };
    format!("<{action}Response><{action}Result>{inner}</{action}Result></{action}Response>")
}

fn error(code: &str) -> String {
    format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>scripted</Message></Error></ErrorResponse>")
}

#[tokio::test]
async fn every_page_is_read_and_backups_come_oldest_first_for_their_cache_only() {
    let (endpoint, seen) = server(|body| {
        let page = if body.contains("Marker=page-2") {
            snapshots(
                None,
                &[
                    snapshot(
                        "s-0400",
                        "sessions",
                        "available",
                        Some("2026-12-01T04:00:00Z"),
                    ),
                    snapshot("s-gone", "sessions", "deleting", None),
                ],
            )
        } else {
            snapshots(
                Some("page-2"),
                &[
                    snapshot(
                        "s-1000",
                        "sessions",
                        "creating",
                        Some("2026-12-01T10:00:00Z"),
                    ),
                    snapshot(
                        "carts-1",
                        "carts",
                        "available",
                        Some("2026-12-01T01:00:00Z"),
                    ),
                ],
            )
        };
        (200, page)
    })
    .await;
    let backups = provider(endpoint)
        .list_cache_backups("us-west-2", "sessions")
        .await
        .expect("listed");
    let listed: Vec<_> = backups.iter().map(|b| (b.name.as_str(), b.state)).collect();
    assert_eq!(
        listed,
        [
            ("s-0400", CacheBackupState::Available),
            ("s-1000", CacheBackupState::Creating)
        ]
    );
    assert!(backups.iter().all(|b| b.cache == "sessions"));
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 2, "two pages: {seen:?}");
    for (auth, body) in seen.iter() {
        assert!(
            body.starts_with("Action=DescribeSnapshots&Version=2015-02-02"),
            "{body}"
        );
        assert!(body.contains("MaxRecords=50"), "{body}");
        assert!(
            !body.contains("CacheClusterId"),
            "not filtered by cluster: {body}"
        );
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=")
                && auth.contains("/us-west-2/elasticache/aws4_request"),
            "signed for ElastiCache in the region: {auth}"
        );
    }
}

#[tokio::test]
async fn a_restore_creates_one_node_of_the_snapshots_engine_and_node_type() {
    let (endpoint, seen) = server(|body| {
        if body.starts_with("Action=DescribeSnapshots") {
            one_snapshot("s-0400", "available")
        } else {
            (
                200,
                cluster_reply("CreateCacheCluster", "sessions-dr", "creating"),
            )
        }
    })
    .await;
    let cache = provider(endpoint)
        .restore_cache("us-west-2", "Sessions-DR", "s-0400", None)
        .await
        .expect("restore started");
    // ElastiCache stores the id in lower case: the reply's cluster is the one asked for.
    assert_eq!(cache.id, "sessions-dr");
    assert_eq!(cache.state, CacheState::Creating);
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 2);
    assert!(seen[0].1.contains("SnapshotName=s-0400"), "{:?}", seen[0]);
    let create = &seen[1].1;
    for param in [
        "Action=CreateCacheCluster",
        "CacheClusterId=Sessions-DR",
        "SnapshotName=s-0400",
        "Engine=valkey",
        "NumCacheNodes=1",
        "CacheNodeType=cache.r6g.large",
    ] {
        assert!(create.contains(param), "{param} in {create}");
    }
}

#[tokio::test]
async fn a_backup_not_yet_available_or_unknown_is_refused_before_any_create() {
    let (endpoint, seen) = server(|body| {
        if body.contains("SnapshotName=s-copying") {
            one_snapshot("s-copying", "copying")
        } else {
            (404, error("SnapshotNotFoundFault"))
        }
    })
    .await;
    let caches = provider(endpoint);
    let e = caches
        .restore_cache("us-west-2", "dr", "s-copying", None)
        .await
        .expect_err("still copying");
    assert!(matches!(e, Error::InvalidState { .. }), "{e}");
    assert!(e.to_string().contains("copying"), "{e}");
    let e = caches
        .restore_cache("us-west-2", "dr", "s-nope", Some("cache.t4g.micro"))
        .await
        .expect_err("unknown");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("s-nope"), "{e}");
    let seen = seen.lock().expect("log");
    assert!(
        seen.iter()
            .all(|(_, b)| !b.starts_with("Action=CreateCacheCluster")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn throttling_is_retryable_and_a_nonsense_status_is_named() {
    let (endpoint, _) = server(|body| {
        if body.contains("CacheClusterId=odd") {
            (
                200,
                cluster_reply("DescribeCacheClusters", "odd", "levitating"),
            )
        } else {
            (400, error("Throttling"))
        }
    })
    .await;
    let caches = provider(endpoint);
    let e = caches
        .describe_cache("us-west-2", "busy")
        .await
        .expect_err("throttled");
    assert!(matches!(e, Error::Throttled { .. }), "{e}");
    assert!(e.is_retryable());
    let e = caches
        .describe_cache("us-west-2", "odd")
        .await
        .expect_err("unknown status");
    assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
    assert!(e.to_string().contains("levitating"), "{e}");
}

//! [`ElastiCacheCaches`]: [`CacheRestore`] over the ElastiCache API
//! (`DescribeCacheClusters`, `DescribeSnapshots`, `CreateCacheCluster`).
//!
//! ElastiCache is reached without `aws-sdk-elasticache`, through the crate's signed Query
//! client (`query.rs`), as EC2 is: three calls do not pay for one more SDK crate's build.

use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_xml::decode::{Document, ScopedDecoder};
use chrono::{DateTime, Utc};
use dr_core::provider::{
    CacheBackup, CacheBackupState, CacheCluster, CacheRestore, CacheState, Capabilities, Operation,
};
use dr_core::{Error, Result};

use crate::error::Ctx;
use crate::query::{data, root, text_at, QueryClient, Service};

const NAME: &str = "elasticache";
/// ElastiCache and the API version the requests are written for.
const SERVICE: Service = Service {
    name: NAME,
    api_version: "2015-02-02",
};
/// The engine of a restored cache when the snapshot names none.
const DEFAULT_ENGINE: &str = "redis";
/// Snapshots asked for per `DescribeSnapshots` page (ElastiCache allows 20 to 50).
const PAGE: &str = "50";

/// [`CacheRestore`] over ElastiCache, in any region (the endpoint is
/// `https://elasticache.<region>.amazonaws.com/` unless the configuration names one, as for
/// a local emulator).
///
/// * [`describe_cache`](CacheRestore::describe_cache): `DescribeCacheClusters` of one id with
///   `ShowCacheNodeInfo`; `CacheClusterNotFound` is `NotFound`. The endpoint is the first
///   cache node's `Address:Port`, or the cluster's configuration endpoint.
/// * [`list_cache_backups`](CacheRestore::list_cache_backups): `DescribeSnapshots` of the
///   region, every page, kept where the snapshot's `CacheClusterId` (or, for a cluster-mode
///   backup, its `ReplicationGroupId`) is the cache. The cache is not sent as a filter:
///   ElastiCache refuses it when the cluster is not in that region, and a backup copied to
///   the recovery region is one of a cluster of another region. A snapshot's time is the
///   earliest `SnapshotCreateTime` of its node snapshots; those with a time come oldest
///   first, after those without. Snapshots being deleted are left out: nothing can be
///   restored from them.
/// * [`restore_cache`](CacheRestore::restore_cache): `DescribeSnapshots` of the backup by
///   name (`NotFound` when it is not there, `InvalidState` when it is not `available`), then
///   `CreateCacheCluster` of one node from it, with the snapshot's engine (`redis` when it
///   names none) and the given node type or the snapshot's. `CacheClusterAlreadyExists` is
///   `AlreadyExists`: a resumed run finds the cache it restored before. The cache is made
///   in the region's default parameter and subnet groups; ElastiCache refuses to make one
///   node of a cluster-mode (sharded) backup (`InvalidRequest`).
///
/// Cluster states map as `creating`, `restoring` → `Creating`; `available` → `Available`;
/// `modifying`, `rebooting cluster nodes`, `snapshotting` → `Modifying`; `deleting`,
/// `deleted` → `Deleting`; `create-failed`, `restore-failed`, `incompatible-network` →
/// `Failed`. Snapshot states: `creating`, `copying`, `exporting` → `Creating`; `available`,
/// `restoring` → `Available`; `failed` → `Failed`. Any other state is an `InvalidResponse`
/// naming it.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{CacheBackupState, CacheRestore};
///
/// let caches = dr_aws::AwsConfig::from_env().await?.build_elasticache_caches()?;
/// let backups = caches.list_cache_backups("us-west-2", "shop-sessions").await?;
/// if let Some(newest) = backups.iter().rev().find(|b| b.state == CacheBackupState::Available) {
///     let cache = caches
///         .restore_cache("us-west-2", "shop-sessions-dr", &newest.name, None)
///         .await?;
///     println!("{} is {:?}", cache.id, cache.state);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ElastiCacheCaches {
    query: QueryClient,
}

impl ElastiCacheCaches {
    /// A provider signing with `credentials` (none: every call is refused as
    /// `Unauthorized`), sending to `endpoint` when given (a local emulator) or to each
    /// region's ElastiCache endpoint, each request bounded by `timeout` (default 30 s).
    ///
    /// # Errors
    /// `InvalidRequest` when the HTTP client cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// let caches = dr_aws::ElastiCacheCaches::new(None, None, None)?;
    /// assert_eq!(
    ///     caches.endpoint_for("us-west-2"),
    ///     "https://elasticache.us-west-2.amazonaws.com/"
    /// );
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn new(
        credentials: Option<SharedCredentialsProvider>,
        endpoint: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        Ok(ElastiCacheCaches {
            query: QueryClient::new(SERVICE, credentials, endpoint, timeout)?,
        })
    }

    /// Where requests for `region` go.
    ///
    /// # Examples
    ///
    /// ```
    /// let moto = dr_aws::ElastiCacheCaches::new(None, Some("http://127.0.0.1:5000".into()), None)?;
    /// assert_eq!(moto.endpoint_for("us-west-2"), "http://127.0.0.1:5000/");
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn endpoint_for(&self, region: &str) -> String {
        self.query.endpoint_for(region)
    }

    /// The snapshots of the region, every page.
    async fn snapshots(&self, region: &str, ctx: Ctx<'_>) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = marker.iter().map(|m| ("Marker", m.as_str()));
            let params = [("MaxRecords", PAGE)].into_iter().chain(page);
            let body = self.query.body("DescribeSnapshots", params);
            let text = self.query.call(region, body, ctx).await?;
            let (snaps, next) =
                parse_snapshots(&text).map_err(|m| self.query.invalid_response(ctx, m))?;
            out.extend(snaps);
            match next {
                // A service that answers the marker it was given would never end.
                Some(m) if marker.as_ref() != Some(&m) => marker = Some(m),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The cluster `id` of a `DescribeCacheClusters` or `CreateCacheCluster` reply, if it is
    /// there (ElastiCache stores ids in lower case: they are compared without case).
    fn cluster(
        &self,
        ctx: Ctx<'_>,
        text: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<CacheCluster>> {
        let clusters = parse_clusters(text).map_err(|m| self.query.invalid_response(ctx, m))?;
        clusters
            .into_iter()
            .find(|c| c.id.eq_ignore_ascii_case(id))
            .map(|c| c.into_cache(region))
            .transpose()
            .map_err(|m| self.query.invalid_response(ctx, m))
    }
}

/// A cluster as ElastiCache describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cluster {
    id: String,
    status: Option<String>,
    endpoint: Option<String>,
}

impl Cluster {
    fn into_cache(self, region: &str) -> std::result::Result<CacheCluster, String> {
        let id = self.id;
        let state = match self.status.as_deref() {
            Some("creating" | "restoring") => CacheState::Creating,
            Some("available") => CacheState::Available,
            Some("modifying" | "rebooting cluster nodes" | "snapshotting") => CacheState::Modifying,
            Some("deleting" | "deleted") => CacheState::Deleting,
            Some("create-failed" | "restore-failed" | "incompatible-network") => CacheState::Failed,
            Some(other) => {
                return Err(format!(
                    "cache cluster {id} has an unknown status {other:?}"
                ))
            }
            None => return Err(format!("cache cluster {id} has no status")),
        };
        Ok(CacheCluster {
            id,
            region: region.to_string(),
            state,
            endpoint: self.endpoint,
        })
    }
}

/// A snapshot as ElastiCache describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    name: String,
    cluster: Option<String>,
    group: Option<String>,
    status: String,
    engine: Option<String>,
    node_type: Option<String>,
    taken_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// Whether it was taken of the cache (or replication group) `cache`; ids compared
    /// without case, as ElastiCache stores them in lower case.
    fn of(&self, cache: &str) -> bool {
        [&self.cluster, &self.group]
            .into_iter()
            .flatten()
            .any(|id| id.eq_ignore_ascii_case(cache))
    }

    /// Its state, or `None` for a snapshot being deleted.
    fn state(&self) -> std::result::Result<Option<CacheBackupState>, String> {
        Ok(Some(match self.status.as_str() {
            "creating" | "copying" | "exporting" => CacheBackupState::Creating,
            "available" | "restoring" => CacheBackupState::Available,
            "failed" => CacheBackupState::Failed,
            "deleting" => return Ok(None),
            other => {
                return Err(format!(
                    "snapshot {} has an unknown status {other:?}",
                    self.name
                ))
            }
        }))
    }
}

/// Calls `f` on each child of the `<Action>Result` element of a reply whose root is
/// `<Action>Response` for one of `actions`, or says why the reply is not one.
fn each_in_result(
    text: &str,
    actions: &[&str],
    mut f: impl FnMut(&mut ScopedDecoder<'_, '_>) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut doc = Document::new(text);
    let (mut root, root_name) = root(&mut doc)?;
    let action = actions
        .iter()
        .find(|a| root_name.strip_suffix("Response") == Some(**a))
        .ok_or_else(|| format!("unexpected response element <{root_name}>"))?;
    let wanted = format!("{action}Result");
    while let Some(mut res) = root.next_tag() {
        if res.start_el().local() == wanted {
            while let Some(mut child) = res.next_tag() {
                f(&mut child)?;
            }
        }
    }
    Ok(())
}

/// The clusters of a `DescribeCacheClusters` reply (each `CacheCluster` of `CacheClusters`)
/// or of a `CreateCacheCluster` reply (its `CacheCluster`), or why it cannot be read.
fn parse_clusters(text: &str) -> std::result::Result<Vec<Cluster>, String> {
    let mut out = Vec::new();
    let actions = ["DescribeCacheClusters", "CreateCacheCluster"];
    each_in_result(text, &actions, |child| {
        match child.start_el().local() {
            "CacheCluster" => out.push(parse_cluster(child)?),
            "CacheClusters" => {
                while let Some(mut item) = child.next_tag() {
                    if item.start_el().local() == "CacheCluster" {
                        out.push(parse_cluster(&mut item)?);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// `Address:Port` of an `Endpoint` or `ConfigurationEndpoint` element, when it has both.
fn parse_endpoint(el: &mut ScopedDecoder<'_, '_>) -> std::result::Result<Option<String>, String> {
    let (mut address, mut port) = (None, None);
    while let Some(mut tag) = el.next_tag() {
        match tag.start_el().local() {
            "Address" => address = Some(data(&mut tag)?),
            "Port" => port = Some(data(&mut tag)?),
            _ => {}
        }
    }
    Ok(match (address, port) {
        (Some(a), Some(p)) if !a.is_empty() && !p.is_empty() => Some(format!("{a}:{p}")),
        _ => None,
    })
}

fn parse_cluster(el: &mut ScopedDecoder<'_, '_>) -> std::result::Result<Cluster, String> {
    let (mut id, mut status) = (None, None);
    let (mut node, mut configuration) = (None, None);
    while let Some(mut tag) = el.next_tag() {
        match tag.start_el().local() {
            "CacheClusterId" => id = Some(data(&mut tag)?),
            "CacheClusterStatus" => status = Some(data(&mut tag)?),
            "ConfigurationEndpoint" => configuration = parse_endpoint(&mut tag)?,
            "CacheNodes" => {
                while let Some(mut n) = tag.next_tag() {
                    while let Some(mut field) = n.next_tag() {
                        if field.start_el().local() == "Endpoint" && node.is_none() {
                            node = parse_endpoint(&mut field)?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Cluster {
        id: id.ok_or("a cache cluster without CacheClusterId")?,
        status,
        endpoint: node.or(configuration),
    })
}

/// The snapshots of a `DescribeSnapshots` reply and the marker of its next page, or why it
/// cannot be read.
fn parse_snapshots(text: &str) -> std::result::Result<(Vec<Snapshot>, Option<String>), String> {
    let mut out = Vec::new();
    each_in_result(text, &["DescribeSnapshots"], |child| {
        if child.start_el().local() == "Snapshots" {
            while let Some(mut item) = child.next_tag() {
                if item.start_el().local() == "Snapshot" {
                    out.push(parse_snapshot(&mut item)?);
                }
            }
        }
        Ok(())
    })?;
    Ok((out, text_at(text, &["DescribeSnapshotsResult", "Marker"])))
}

fn parse_snapshot(el: &mut ScopedDecoder<'_, '_>) -> std::result::Result<Snapshot, String> {
    let (mut name, mut cluster, mut group, mut status) = (None, None, None, None);
    let (mut engine, mut node_type) = (None, None);
    let mut times = Vec::new();
    while let Some(mut tag) = el.next_tag() {
        match tag.start_el().local() {
            "SnapshotName" => name = Some(data(&mut tag)?),
            "CacheClusterId" => cluster = Some(data(&mut tag)?).filter(|c| !c.is_empty()),
            "ReplicationGroupId" => group = Some(data(&mut tag)?).filter(|g| !g.is_empty()),
            "SnapshotStatus" => status = Some(data(&mut tag)?),
            "Engine" => engine = Some(data(&mut tag)?).filter(|e| !e.is_empty()),
            "CacheNodeType" => node_type = Some(data(&mut tag)?).filter(|t| !t.is_empty()),
            "NodeSnapshots" => {
                while let Some(mut n) = tag.next_tag() {
                    while let Some(mut field) = n.next_tag() {
                        if field.start_el().local() == "SnapshotCreateTime" {
                            times.push(data(&mut field)?);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let name = name.ok_or("a snapshot without SnapshotName")?;
    let mut taken_at = None;
    for t in times {
        let at = DateTime::parse_from_rfc3339(&t)
            .map_err(|e| {
                format!("snapshot {name} has an unreadable SnapshotCreateTime {t:?}: {e}")
            })?
            .with_timezone(&Utc);
        taken_at = Some(taken_at.map_or(at, |earliest: DateTime<Utc>| earliest.min(at)));
    }
    Ok(Snapshot {
        status: status.ok_or_else(|| format!("snapshot {name} has no SnapshotStatus"))?,
        name,
        cluster,
        group,
        engine,
        node_type,
        taken_at,
    })
}

fn resource(region: &str, what: &str) -> String {
    format!("{what} in {region}")
}

#[async_trait]
impl CacheRestore for ElastiCacheCaches {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([
            Operation::DescribeCache,
            Operation::ListCacheBackups,
            Operation::RestoreCache,
        ])
    }

    async fn describe_cache(&self, region: &str, id: &str) -> Result<CacheCluster> {
        let res = resource(region, &format!("cache {id}"));
        let ctx = self.query.ctx("describe", &res);
        let params = [("CacheClusterId", id), ("ShowCacheNodeInfo", "true")];
        let body = self.query.body("DescribeCacheClusters", params);
        let text = self.query.call(region, body, ctx).await?;
        self.cluster(ctx, &text, region, id)?
            .ok_or_else(|| Error::NotFound {
                provider: NAME.into(),
                resource: res.clone(),
            })
    }

    async fn list_cache_backups(&self, region: &str, cache: &str) -> Result<Vec<CacheBackup>> {
        let res = resource(region, &format!("backups of cache {cache}"));
        let ctx = self.query.ctx("list", &res);
        let mut out = Vec::new();
        for snap in self.snapshots(region, ctx).await? {
            if !snap.of(cache) {
                continue;
            }
            let Some(state) = snap
                .state()
                .map_err(|m| self.query.invalid_response(ctx, m))?
            else {
                continue;
            };
            out.push(CacheBackup {
                name: snap.name,
                cache: cache.to_string(),
                region: region.to_string(),
                state,
                taken_at: snap.taken_at,
            });
        }
        // Stable: those without a time keep the reply's order, before the others.
        out.sort_by_key(|b| b.taken_at);
        Ok(out)
    }

    async fn restore_cache(
        &self,
        region: &str,
        id: &str,
        backup: &str,
        node_type: Option<&str>,
    ) -> Result<CacheCluster> {
        let backup_res = resource(region, &format!("cache backup {backup}"));
        let ctx = self.query.ctx("describe", &backup_res);
        let body = self
            .query
            .body("DescribeSnapshots", [("SnapshotName", backup)]);
        let text = self.query.call(region, body, ctx).await?;
        let (snaps, _) = parse_snapshots(&text).map_err(|m| self.query.invalid_response(ctx, m))?;
        let snap = snaps
            .into_iter()
            .find(|s| s.name == backup)
            .ok_or_else(|| Error::NotFound {
                provider: NAME.into(),
                resource: backup_res.clone(),
            })?;
        let state = snap
            .state()
            .map_err(|m| self.query.invalid_response(ctx, m))?;
        if state != Some(CacheBackupState::Available) {
            return Err(Error::InvalidState {
                provider: NAME.into(),
                resource: backup_res.clone(),
                state: snap.status.clone(),
                operation: format!("restore cache {id} from it"),
            });
        }
        let res = resource(region, &format!("cache {id}"));
        let ctx = self.query.ctx("restore", &res);
        let node_type =
            node_type
                .or(snap.node_type.as_deref())
                .ok_or_else(|| Error::InvalidRequest {
                    provider: NAME.into(),
                    operation: format!("restore {res}"),
                    message: format!(
                        "no node type: the plan names none and backup {backup} records none"
                    ),
                })?;
        let engine = snap.engine.as_deref().unwrap_or(DEFAULT_ENGINE);
        let params = [
            ("CacheClusterId", id),
            ("SnapshotName", backup),
            ("Engine", engine),
            ("NumCacheNodes", "1"),
            ("CacheNodeType", node_type),
        ];
        let body = self.query.body("CreateCacheCluster", params);
        let text = self.query.call(region, body, ctx).await?;
        let cache = self.cluster(ctx, &text, region, id)?.ok_or_else(|| {
            self.query
                .invalid_response(ctx, format!("no cache cluster {id} in the reply"))
        })?;
        tracing::info!(
            region,
            cache = id,
            backup,
            engine,
            node_type,
            state = ?cache.state,
            "cache restore started"
        );
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeCacheClustersResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeCacheClustersResult>
    <CacheClusters>
      <CacheCluster>
        <CacheClusterId>shop-sessions-dr</CacheClusterId>
        <ConfigurationEndpoint><Address>cfg.example</Address><Port>6380</Port></ConfigurationEndpoint>
        <CacheClusterStatus>available</CacheClusterStatus>
        <CacheNodes>
          <CacheNode>
            <CacheNodeId>0001</CacheNodeId>
            <Endpoint><Address>shop-sessions-dr.abc.0001.usw2.cache.amazonaws.com</Address><Port>6379</Port></Endpoint>
          </CacheNode>
          <CacheNode>
            <CacheNodeId>0002</CacheNodeId>
            <Endpoint><Address>second.example</Address><Port>6379</Port></Endpoint>
          </CacheNode>
        </CacheNodes>
        <Engine>redis</Engine>
      </CacheCluster>
    </CacheClusters>
  </DescribeCacheClustersResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DescribeCacheClustersResponse>"#;

    #[test]
    fn a_cluster_is_read_with_its_first_node_endpoint() {
        let clusters = parse_clusters(CLUSTER).expect("parsed");
        assert_eq!(
            clusters,
            [Cluster {
                id: "shop-sessions-dr".into(),
                status: Some("available".into()),
                endpoint: Some("shop-sessions-dr.abc.0001.usw2.cache.amazonaws.com:6379".into()),
            }]
        );
        let cache = clusters[0].clone().into_cache("us-west-2").expect("known");
        assert_eq!(cache.state, CacheState::Available);
        assert_eq!(cache.region, "us-west-2");
    }

    #[test]
    fn a_created_cluster_without_nodes_has_the_configuration_endpoint_or_none() {
        let text = "<CreateCacheClusterResponse><CreateCacheClusterResult><CacheCluster>\
            <CacheClusterId>c</CacheClusterId><CacheClusterStatus>creating</CacheClusterStatus>\
            <ConfigurationEndpoint><Address>cfg.example</Address><Port>6379</Port></ConfigurationEndpoint>\
            </CacheCluster></CreateCacheClusterResult></CreateCacheClusterResponse>";
        let c = parse_clusters(text).expect("parsed");
        assert_eq!(c[0].endpoint.as_deref(), Some("cfg.example:6379"));
        assert_eq!(
            c[0].clone().into_cache("r").expect("known").state,
            CacheState::Creating
        );
        let bare = "<CreateCacheClusterResponse><CreateCacheClusterResult><CacheCluster>\
            <CacheClusterId>c</CacheClusterId><CacheClusterStatus>available</CacheClusterStatus>\
            </CacheCluster></CreateCacheClusterResult></CreateCacheClusterResponse>";
        assert_eq!(parse_clusters(bare).expect("parsed")[0].endpoint, None);
    }

    #[test]
    fn every_cluster_status_is_mapped_and_an_unknown_one_named() {
        for (status, state) in [
            ("creating", CacheState::Creating),
            ("restoring", CacheState::Creating),
            ("available", CacheState::Available),
            ("modifying", CacheState::Modifying),
            ("rebooting cluster nodes", CacheState::Modifying),
            ("snapshotting", CacheState::Modifying),
            ("deleting", CacheState::Deleting),
            ("deleted", CacheState::Deleting),
            ("create-failed", CacheState::Failed),
            ("restore-failed", CacheState::Failed),
            ("incompatible-network", CacheState::Failed),
        ] {
            let c = Cluster {
                id: "c".into(),
                status: Some(status.into()),
                endpoint: None,
            };
            assert_eq!(c.into_cache("r").expect(status).state, state, "{status}");
        }
        let odd = Cluster {
            id: "c-odd".into(),
            status: Some("melting".into()),
            endpoint: None,
        };
        let e = odd.into_cache("r").expect_err("unknown");
        assert!(e.contains("c-odd") && e.contains("melting"), "{e}");
    }

    fn bare_snapshot(name: &str, status: &str) -> Snapshot {
        Snapshot {
            name: name.into(),
            cluster: None,
            group: None,
            status: status.into(),
            engine: None,
            node_type: None,
            taken_at: None,
        }
    }

    const SNAPSHOTS: &str = r#"<DescribeSnapshotsResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeSnapshotsResult>
    <Marker>page-2</Marker>
    <Snapshots>
      <Snapshot>
        <SnapshotName>sessions-0400</SnapshotName>
        <CacheClusterId>shop-sessions</CacheClusterId>
        <SnapshotStatus>available</SnapshotStatus>
        <CacheNodeType>cache.r6g.large</CacheNodeType>
        <Engine>redis</Engine>
        <NodeSnapshots>
          <NodeSnapshot><CacheNodeId>0001</CacheNodeId><SnapshotCreateTime>2026-12-01T04:00:05.000Z</SnapshotCreateTime></NodeSnapshot>
          <NodeSnapshot><CacheNodeId>0002</CacheNodeId><SnapshotCreateTime>2026-12-01T04:00:01Z</SnapshotCreateTime></NodeSnapshot>
        </NodeSnapshots>
      </Snapshot>
      <Snapshot>
        <SnapshotName>grouped</SnapshotName>
        <ReplicationGroupId>shop-sessions</ReplicationGroupId>
        <SnapshotStatus>copying</SnapshotStatus>
      </Snapshot>
    </Snapshots>
  </DescribeSnapshotsResult>
</DescribeSnapshotsResponse>"#;

    #[test]
    fn snapshots_are_read_with_their_earliest_node_time_and_the_marker() {
        let (snaps, marker) = parse_snapshots(SNAPSHOTS).expect("parsed");
        assert_eq!(marker.as_deref(), Some("page-2"));
        assert_eq!(snaps.len(), 2);
        assert_eq!(snaps[0].name, "sessions-0400");
        assert_eq!(snaps[0].node_type.as_deref(), Some("cache.r6g.large"));
        assert_eq!(snaps[0].engine.as_deref(), Some("redis"));
        assert_eq!(
            snaps[0].taken_at.map(|t| t.to_rfc3339()),
            Some("2026-12-01T04:00:01+00:00".to_string())
        );
        assert_eq!(snaps[0].state(), Ok(Some(CacheBackupState::Available)));
        assert!(snaps[0].of("shop-sessions") && !snaps[0].of("other"));
        assert!(snaps[0].of("Shop-Sessions"), "ids are stored in lower case");
        // A cluster-mode backup belongs to its replication group, and has no time here.
        assert!(snaps[1].of("shop-sessions"));
        assert_eq!(snaps[1].taken_at, None);
        assert_eq!(snaps[1].state(), Ok(Some(CacheBackupState::Creating)));
    }

    #[test]
    fn the_last_page_has_no_marker_and_deleting_snapshots_are_left_out() {
        let text = "<DescribeSnapshotsResponse><DescribeSnapshotsResult><Snapshots>\
            <Snapshot><SnapshotName>s</SnapshotName><CacheClusterId>c</CacheClusterId>\
            <SnapshotStatus>deleting</SnapshotStatus></Snapshot>\
            </Snapshots></DescribeSnapshotsResult></DescribeSnapshotsResponse>";
        let (snaps, marker) = parse_snapshots(text).expect("parsed");
        assert_eq!(marker, None);
        assert_eq!(snaps[0].state(), Ok(None));
        let empty = "<DescribeSnapshotsResponse><DescribeSnapshotsResult><Marker></Marker>\
            <Snapshots/></DescribeSnapshotsResult></DescribeSnapshotsResponse>";
        assert_eq!(parse_snapshots(empty), Ok((Vec::new(), None)));
        for (status, state) in [
            ("creating", CacheBackupState::Creating),
            ("exporting", CacheBackupState::Creating),
            ("restoring", CacheBackupState::Available),
            ("failed", CacheBackupState::Failed),
        ] {
            let s = bare_snapshot("s", status);
            assert_eq!(s.state(), Ok(Some(state)), "{status}");
        }
    }

    #[test]
    fn nonsense_is_refused_naming_what_is_wrong() {
        let e = parse_snapshots("not xml at all").expect_err("not XML");
        assert!(e.contains("not XML") || e.contains("unexpected"), "{e}");
        let e = parse_clusters("<DescribeSnapshotsResponse/>").expect_err("wrong root");
        assert!(e.contains("<DescribeSnapshotsResponse>"), "{e}");
        let e = parse_snapshots(
            "<DescribeSnapshotsResponse><DescribeSnapshotsResult><Snapshots><Snapshot>\
             <SnapshotName>s-1</SnapshotName><SnapshotStatus>available</SnapshotStatus>\
             <NodeSnapshots><NodeSnapshot><SnapshotCreateTime>yesterday</SnapshotCreateTime>\
             </NodeSnapshot></NodeSnapshots></Snapshot></Snapshots></DescribeSnapshotsResult>\
             </DescribeSnapshotsResponse>",
        )
        .expect_err("bad time");
        assert!(e.contains("s-1") && e.contains("yesterday"), "{e}");
        let e = parse_snapshots(
            "<DescribeSnapshotsResponse><DescribeSnapshotsResult><Snapshots><Snapshot>\
             <SnapshotName>s-2</SnapshotName></Snapshot></Snapshots></DescribeSnapshotsResult>\
             </DescribeSnapshotsResponse>",
        )
        .expect_err("no status");
        assert!(e.contains("s-2") && e.contains("SnapshotStatus"), "{e}");
        let e = parse_clusters(
            "<DescribeCacheClustersResponse><DescribeCacheClustersResult><CacheClusters>\
             <CacheCluster><CacheClusterStatus>available</CacheClusterStatus></CacheCluster>\
             </CacheClusters></DescribeCacheClustersResult></DescribeCacheClustersResponse>",
        )
        .expect_err("no id");
        assert!(e.contains("CacheClusterId"), "{e}");
        let odd = bare_snapshot("s-3", "evaporating");
        let e = odd.state().expect_err("unknown");
        assert!(e.contains("s-3") && e.contains("evaporating"), "{e}");
    }

    #[test]
    fn an_error_response_is_classified_by_its_code() {
        use crate::error::{classify, Class};
        let text = r#"<ErrorResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/"><Error><Type>Sender</Type><Code>SnapshotNotFoundFault</Code><Message>Snapshot x not found.</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        let (code, message) = crate::query::error_code(text);
        assert_eq!(code.as_deref(), Some("SnapshotNotFoundFault"));
        assert_eq!(message, "Snapshot x not found.");
        for (code, class) in [
            ("CacheClusterNotFound", Class::NotFound),
            ("SnapshotNotFoundFault", Class::NotFound),
            ("CacheClusterAlreadyExists", Class::AlreadyExists),
            ("InvalidSnapshotState", Class::InvalidState),
            ("InvalidSnapshotStateFault", Class::InvalidState),
            ("InvalidCacheClusterState", Class::InvalidState),
            ("Throttling", Class::Throttled),
        ] {
            assert_eq!(classify(Some(code), Some(400)), class, "{code}");
        }
    }
}

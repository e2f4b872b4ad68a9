//! [`Ec2Volumes`]: [`VolumeSnapshots`] over the EC2 API (`CreateSnapshot`,
//! `DescribeSnapshots`).
//!
//! EC2 is reached without `aws-sdk-ec2`: that crate alone takes longer to build than the rest
//! of this crate's SDK clients together (see `BENCHMARKS.md`), for three calls. The requests
//! go through the crate's signed Query client (`query.rs`: `aws-smithy-query`, `aws-sigv4`,
//! `reqwest`, `aws-smithy-xml`); errors through the crate's one classification of AWS error
//! codes.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_xml::decode::{Document, ScopedDecoder};
use dr_core::provider::VolumeSnapshots;
use dr_core::provider::{Capabilities, Operation, VolumeSnapshot, VolumeSnapshotState};
use dr_core::{Error, Result};

use crate::error::Ctx;
use crate::query::{data, root, text_at, QueryClient, Service};

const NAME: &str = "ec2";
/// EC2 and the API version the requests are written for.
const SERVICE: Service = Service {
    name: NAME,
    api_version: "2016-11-15",
};

/// [`VolumeSnapshots`] over EC2, in any region (the endpoint is
/// `https://ec2.<region>.amazonaws.com/` unless the configuration names one, as for a local
/// emulator).
///
/// * [`create_volume_snapshot`](VolumeSnapshots::create_volume_snapshot): `CreateSnapshot` of
///   the volume with its description, the tags applied with the snapshot in the same call
///   (`TagSpecification` of resource type `snapshot`), so a snapshot never exists untagged.
///   EC2 takes no idempotency token for it: the caller finds an earlier snapshot by its tags
///   (`find_volume_snapshots`) before creating one, as the security-incident step does.
/// * [`describe_volume_snapshot`](VolumeSnapshots::describe_volume_snapshot):
///   `DescribeSnapshots` of one id; `InvalidSnapshot.NotFound` is `NotFound`.
/// * [`find_volume_snapshots`](VolumeSnapshots::find_volume_snapshots): `DescribeSnapshots`
///   owned by this account (`Owner = self`), filtered by `volume-id` and by every tag, every
///   page.
///
/// EC2 states map as `pending` → `Pending`, `completed` → `Completed`, `error` → `Error`;
/// `recoverable` and `recovering` (an archived snapshot coming back) are `Pending`.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::collections::BTreeMap;
/// use dr_core::provider::VolumeSnapshots;
///
/// let ec2 = dr_aws::AwsConfig::from_env().await?.build_ec2_volumes()?;
/// let tags = BTreeMap::from([("dr-incident".to_string(), "inc-42".to_string())]);
/// let snap = ec2
///     .create_volume_snapshot("us-east-1", "vol-0abc", "evidence for inc-42", &tags)
///     .await?;
/// let found = ec2.find_volume_snapshots("us-east-1", "vol-0abc", &tags).await?;
/// assert!(found.iter().any(|s| s.id == snap.id));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Ec2Volumes {
    query: QueryClient,
}

impl Ec2Volumes {
    /// A provider signing with `credentials` (none: every call is refused as
    /// `Unauthorized`), sending to `endpoint` when given (a local emulator) or to each
    /// region's EC2 endpoint, each request bounded by `timeout` (default 30 s).
    ///
    /// # Errors
    /// `InvalidRequest` when the HTTP client cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// let ec2 = dr_aws::Ec2Volumes::new(None, Some("http://127.0.0.1:5000".into()), None)?;
    /// assert_eq!(ec2.endpoint_for("us-east-1"), "http://127.0.0.1:5000/");
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn new(
        credentials: Option<SharedCredentialsProvider>,
        endpoint: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        Ok(Ec2Volumes {
            query: QueryClient::new(SERVICE, credentials, endpoint, timeout)?,
        })
    }

    /// Where requests for `region` go.
    pub fn endpoint_for(&self, region: &str) -> String {
        self.query.endpoint_for(region)
    }

    fn parse(&self, ctx: Ctx<'_>, text: &str, region: &str) -> Result<Vec<VolumeSnapshot>> {
        parse_snapshots(text, region).map_err(|message| self.query.invalid_response(ctx, message))
    }
}

/// The snapshots in a `CreateSnapshot` response (one, at the root) or a
/// `DescribeSnapshots` response (each `item` of `snapshotSet`), or why it cannot be read.
fn parse_snapshots(text: &str, region: &str) -> std::result::Result<Vec<VolumeSnapshot>, String> {
    let mut doc = Document::new(text);
    let (mut root, root_name) = root(&mut doc)?;
    match root_name.as_str() {
        "CreateSnapshotResponse" => Ok(vec![parse_snapshot(&mut root, region)?]),
        "DescribeSnapshotsResponse" => {
            let mut out = Vec::new();
            while let Some(mut child) = root.next_tag() {
                if child.start_el().local() == "snapshotSet" {
                    while let Some(mut item) = child.next_tag() {
                        if item.start_el().local() == "item" {
                            out.push(parse_snapshot(&mut item, region)?);
                        }
                    }
                }
            }
            Ok(out)
        }
        other => Err(format!("unexpected response element <{other}>")),
    }
}

/// The token of the next page of a `DescribeSnapshots` response, if any.
fn next_token(text: &str) -> Option<String> {
    text_at(text, &["nextToken"])
}

fn parse_snapshot(
    el: &mut ScopedDecoder<'_, '_>,
    region: &str,
) -> std::result::Result<VolumeSnapshot, String> {
    let mut id = None;
    let mut volume = None;
    let mut status = None;
    let mut tags = BTreeMap::new();
    while let Some(mut tag) = el.next_tag() {
        match tag.start_el().local() {
            "snapshotId" => id = Some(data(&mut tag)?),
            "volumeId" => volume = Some(data(&mut tag)?),
            "status" => status = Some(data(&mut tag)?),
            "tagSet" => {
                while let Some(mut item) = tag.next_tag() {
                    let (mut key, mut value) = (None, String::new());
                    while let Some(mut kv) = item.next_tag() {
                        match kv.start_el().local() {
                            "key" => key = Some(data(&mut kv)?),
                            "value" => value = data(&mut kv)?,
                            _ => {}
                        }
                    }
                    if let Some(key) = key {
                        tags.insert(key, value);
                    }
                }
            }
            _ => {}
        }
    }
    let id = id.ok_or("a snapshot without snapshotId")?;
    let state = match status.as_deref() {
        Some("completed") => VolumeSnapshotState::Completed,
        Some("pending" | "recoverable" | "recovering") => VolumeSnapshotState::Pending,
        Some("error") => VolumeSnapshotState::Error,
        Some(other) => return Err(format!("snapshot {id} has an unknown status {other:?}")),
        None => return Err(format!("snapshot {id} has no status")),
    };
    Ok(VolumeSnapshot {
        volume: volume.ok_or_else(|| format!("snapshot {id} has no volumeId"))?,
        id,
        region: region.to_string(),
        state,
        tags,
    })
}

fn resource(region: &str, what: &str) -> String {
    format!("{what} in {region}")
}

#[async_trait]
impl VolumeSnapshots for Ec2Volumes {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([
            Operation::CreateVolumeSnapshot,
            Operation::DescribeVolumeSnapshot,
            Operation::FindVolumeSnapshots,
        ])
    }

    async fn create_volume_snapshot(
        &self,
        region: &str,
        volume: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot> {
        let res = resource(region, &format!("volume {volume}"));
        let ctx = self.query.ctx("create snapshot of", &res);
        let mut params = vec![
            ("VolumeId".to_string(), volume),
            ("Description".to_string(), description),
        ];
        if !tags.is_empty() {
            params.push(("TagSpecification.1.ResourceType".into(), "snapshot"));
            for (n, (k, v)) in tags.iter().enumerate() {
                let n = n + 1;
                params.push((format!("TagSpecification.1.Tag.{n}.Key"), k.as_str()));
                params.push((format!("TagSpecification.1.Tag.{n}.Value"), v.as_str()));
            }
        }
        let body = self.query.body("CreateSnapshot", params);
        let text = self.query.call(region, body, ctx).await?;
        let mut snaps = self.parse(ctx, &text, region)?;
        let snap = snaps.pop().ok_or_else(|| Error::InvalidResponse {
            provider: NAME.into(),
            operation: format!("create snapshot of {res}"),
            message: "no snapshot in the response".into(),
        })?;
        if snap.volume != volume {
            return Err(Error::InvalidResponse {
                provider: NAME.into(),
                operation: format!("create snapshot of {res}"),
                message: format!("the snapshot {} is of volume {}", snap.id, snap.volume),
            });
        }
        tracing::info!(region, volume, snapshot = %snap.id, "volume snapshot created");
        Ok(snap)
    }

    async fn describe_volume_snapshot(&self, region: &str, id: &str) -> Result<VolumeSnapshot> {
        let res = resource(region, &format!("snapshot {id}"));
        let ctx = self.query.ctx("describe", &res);
        let body = self.query.body("DescribeSnapshots", [("SnapshotId.1", id)]);
        let text = self.query.call(region, body, ctx).await?;
        self.parse(ctx, &text, region)?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::NotFound {
                provider: NAME.into(),
                resource: res.clone(),
            })
    }

    async fn find_volume_snapshots(
        &self,
        region: &str,
        volume: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<VolumeSnapshot>> {
        let res = resource(region, &format!("snapshots of volume {volume}"));
        let ctx = self.query.ctx("find", &res);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut filters = vec![
            ("Owner.1".to_string(), "self".to_string()),
            ("Filter.1.Name".into(), "volume-id".into()),
            ("Filter.1.Value.1".into(), volume.into()),
        ];
        for (i, (k, v)) in tags.iter().enumerate() {
            let n = i + 2;
            filters.push((format!("Filter.{n}.Name"), format!("tag:{k}")));
            filters.push((format!("Filter.{n}.Value.1"), v.clone()));
        }
        loop {
            let page = token.iter().map(|t| ("NextToken".to_string(), t.clone()));
            let body = self
                .query
                .body("DescribeSnapshots", filters.iter().cloned().chain(page));
            let text = self.query.call(region, body, ctx).await?;
            // Filtered again here: a reply must not widen what was asked for.
            out.extend(self.parse(ctx, &text, region)?.into_iter().filter(|s| {
                s.volume == volume && tags.iter().all(|(k, v)| s.tags.get(k) == Some(v))
            }));
            match next_token(&text) {
                Some(t) if token.as_ref() != Some(&t) => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateSnapshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <snapshotId>snap-1234567890abcdef0</snapshotId>
  <volumeId>vol-1234567890abcdef0</volumeId>
  <status>pending</status>
  <startTime>2026-12-01T20:00:00.000Z</startTime>
  <progress>60%</progress>
  <ownerId>111122223333</ownerId>
  <volumeSize>30</volumeSize>
  <description>evidence</description>
  <tagSet><item><key>dr-incident</key><value>inc-42</value></item></tagSet>
</CreateSnapshotResponse>"#;

    #[test]
    fn a_created_snapshot_is_read_with_its_tags() {
        let snaps = parse_snapshots(CREATED, "us-east-1").expect("parsed");
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0].id, "snap-1234567890abcdef0");
        assert_eq!(snaps[0].volume, "vol-1234567890abcdef0");
        assert_eq!(snaps[0].state, VolumeSnapshotState::Pending);
        assert_eq!(
            snaps[0].tags.get("dr-incident").map(String::as_str),
            Some("inc-42")
        );
    }

    #[test]
    fn a_described_page_and_its_token_are_read() {
        let text = r#"<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>x</requestId>
  <snapshotSet>
    <item><snapshotId>snap-a</snapshotId><volumeId>vol-1</volumeId><status>completed</status></item>
    <item><snapshotId>snap-b</snapshotId><volumeId>vol-1</volumeId><status>error</status><tagSet/></item>
  </snapshotSet>
  <nextToken>page-2</nextToken>
</DescribeSnapshotsResponse>"#;
        let snaps = parse_snapshots(text, "eu-west-1").expect("parsed");
        let states: Vec<_> = snaps.iter().map(|s| (s.id.as_str(), s.state)).collect();
        assert_eq!(
            states,
            [
                ("snap-a", VolumeSnapshotState::Completed),
                ("snap-b", VolumeSnapshotState::Error)
            ]
        );
        assert_eq!(next_token(text).as_deref(), Some("page-2"));
        assert_eq!(next_token(CREATED), None);
    }

    #[test]
    fn nonsense_is_refused_naming_what_is_wrong() {
        let e = parse_snapshots("not xml at all", "r").expect_err("not XML");
        assert!(e.contains("not XML") || e.contains("unexpected"), "{e}");
        let e = parse_snapshots("<Other/>", "r").expect_err("wrong root");
        assert!(e.contains("<Other>"), "{e}");
        let e = parse_snapshots(
            "<CreateSnapshotResponse><snapshotId>snap-x</snapshotId><volumeId>v</volumeId><status>melting</status></CreateSnapshotResponse>",
            "r",
        )
        .expect_err("unknown status");
        assert!(e.contains("snap-x") && e.contains("melting"), "{e}");
        let e = parse_snapshots(
            "<CreateSnapshotResponse><volumeId>v</volumeId></CreateSnapshotResponse>",
            "r",
        )
        .expect_err("no id");
        assert!(e.contains("snapshotId"), "{e}");
    }
}

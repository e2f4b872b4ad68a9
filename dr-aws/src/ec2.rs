//! [`Ec2Volumes`]: [`VolumeSnapshots`] over the EC2 API (`CreateSnapshot`,
//! `DescribeSnapshots`).
//!
//! EC2 is reached without `aws-sdk-ec2`: that crate alone takes longer to build than the rest
//! of this crate's SDK clients together (see `BENCHMARKS.md`), for three calls. The request is
//! written with `aws-smithy-query` (the SDK's own query-protocol writer), signed with
//! `aws-sigv4` (the SDK's signer) using the credentials the SDK configuration resolves, sent
//! with `reqwest`, and its XML read with `aws-smithy-xml` (the SDK's own decoder). Errors go
//! through the crate's one classification of AWS error codes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder};
use dr_core::provider::VolumeSnapshots;
use dr_core::provider::{Capabilities, Operation, VolumeSnapshot, VolumeSnapshotState};
use dr_core::{Error, Result};

use crate::error::{classify, map_class, Ctx};

const NAME: &str = "ec2";
/// The EC2 API version the requests are written for.
const API_VERSION: &str = "2016-11-15";
/// How long one request may take when the configuration sets no operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of a response read.
const MAX_RESPONSE: usize = 8 << 20;

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
    http: reqwest::Client,
    endpoint: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    timeout: Option<Duration>,
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
        // The library ships ring as its TLS crypto; keep one a program installed itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let limit = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(limit)
            .connect_timeout(limit)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::InvalidRequest {
                provider: NAME.into(),
                operation: "build the EC2 HTTP client".into(),
                message: e.to_string(),
            })?;
        Ok(Ec2Volumes {
            http,
            endpoint,
            credentials,
            timeout,
        })
    }

    /// Where requests for `region` go.
    pub fn endpoint_for(&self, region: &str) -> String {
        match &self.endpoint {
            Some(e) => format!("{}/", e.trim_end_matches('/')),
            None => format!("https://ec2.{region}.amazonaws.com/"),
        }
    }

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    /// Signs and sends one request; the response body of a success.
    async fn call(&self, region: &str, body: String, ctx: Ctx<'_>) -> Result<String> {
        let identity = self.identity().await?;
        let url = self.endpoint_for(region);
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [("host", host.as_str()), ("content-type", content_type)];
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.invalid(ctx, format!("signing parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| self.invalid(ctx, format!("the request cannot be signed: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| self.invalid(ctx, format!("the request cannot be signed: {e}")))?
            .into_parts();
        let mut request = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in instructions.headers() {
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| self.invalid(ctx, format!("signed header {name} is not valid")))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| self.transport(ctx, e))?;
        let status = response.status().as_u16();
        let text = read_limited(response)
            .await
            .map_err(|e| self.transport(ctx, e))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let (code, message) = error_code(&text);
        Err(map_class(
            ctx,
            classify(code.as_deref(), Some(status)),
            code,
            message,
        ))
    }

    async fn identity(&self) -> Result<Identity> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| Error::Unauthorized {
                provider: NAME.into(),
                message: "no AWS credentials are configured".into(),
            })?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Unauthorized {
                provider: NAME.into(),
                message: crate::error::describe_credentials_error(&e),
            })?;
        Ok(creds.into())
    }

    fn invalid(&self, ctx: Ctx<'_>, message: String) -> Error {
        Error::InvalidRequest {
            provider: NAME.into(),
            operation: ctx.operation.into(),
            message: format!("{}: {message}", ctx.resource),
        }
    }

    fn transport(&self, ctx: Ctx<'_>, e: reqwest::Error) -> Error {
        let operation = format!("{} {}", ctx.operation, ctx.resource);
        if e.is_timeout() {
            Error::Timeout {
                operation: format!("{NAME} {operation}"),
                after: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            }
        } else if e.is_connect() {
            Error::Refused {
                provider: NAME.into(),
                operation,
                source: Some(Box::new(e.without_url())),
            }
        } else {
            Error::Unavailable {
                provider: NAME.into(),
                operation,
                source: Some(Box::new(e.without_url())),
            }
        }
    }

    fn parse(&self, ctx: Ctx<'_>, text: &str, region: &str) -> Result<Vec<VolumeSnapshot>> {
        parse_snapshots(text, region).map_err(|message| Error::InvalidResponse {
            provider: NAME.into(),
            operation: format!("{} {}", ctx.operation, ctx.resource),
            message,
        })
    }
}

/// Reads at most [`MAX_RESPONSE`] bytes of a response as text.
async fn read_limited(
    mut response: reqwest::Response,
) -> std::result::Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `Code` and `Message` of an EC2 error response
/// (`<Response><Errors><Error><Code>…`), if it has them.
fn error_code(text: &str) -> (Option<String>, String) {
    fn find(text: &str, tag: &str) -> Option<String> {
        let mut doc = Document::new(text);
        let mut root = doc.root_element().ok()?;
        find_in(&mut root, tag)
    }
    fn find_in(el: &mut ScopedDecoder<'_, '_>, tag: &str) -> Option<String> {
        while let Some(mut child) = el.next_tag() {
            if child.start_el().local() == tag {
                return try_data(&mut child).ok().map(|d| d.to_string());
            }
            if let Some(found) = find_in(&mut child, tag) {
                return Some(found);
            }
        }
        None
    }
    (
        find(text, "Code"),
        find(text, "Message").unwrap_or_default(),
    )
}

/// The snapshots in a `CreateSnapshot` response (one, at the root) or a
/// `DescribeSnapshots` response (each `item` of `snapshotSet`), or why it cannot be read.
fn parse_snapshots(text: &str, region: &str) -> std::result::Result<Vec<VolumeSnapshot>, String> {
    let mut doc = Document::new(text);
    let mut root = doc
        .root_element()
        .map_err(|e| format!("the response is not XML: {e}"))?;
    let root_name = root.start_el().local().to_string();
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
    let mut doc = Document::new(text);
    let mut root = doc.root_element().ok()?;
    while let Some(mut child) = root.next_tag() {
        if child.start_el().local() == "nextToken" {
            return try_data(&mut child)
                .ok()
                .map(|d| d.to_string())
                .filter(|t| !t.is_empty());
        }
    }
    None
}

fn parse_snapshot(
    el: &mut ScopedDecoder<'_, '_>,
    region: &str,
) -> std::result::Result<VolumeSnapshot, String> {
    let mut id = None;
    let mut volume = None;
    let mut status = None;
    let mut tags = BTreeMap::new();
    let data = |tag: &mut ScopedDecoder<'_, '_>| {
        try_data(tag)
            .map(|d| d.to_string())
            .map_err(|e| format!("unreadable element: {e}"))
    };
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
        let ctx = self.ctx("create snapshot of", &res);
        // The writer borrows its parameter names: they are made first.
        let names: Vec<(String, String)> = (1..=tags.len())
            .map(|n| {
                (
                    format!("TagSpecification.1.Tag.{n}.Key"),
                    format!("TagSpecification.1.Tag.{n}.Value"),
                )
            })
            .collect();
        let mut body = String::new();
        let mut w = aws_smithy_query::QueryWriter::new(&mut body, "CreateSnapshot", API_VERSION);
        w.prefix("VolumeId").string(volume);
        w.prefix("Description").string(description);
        if !tags.is_empty() {
            w.prefix("TagSpecification.1.ResourceType")
                .string("snapshot");
            for ((key, value), (k, v)) in names.iter().zip(tags) {
                w.prefix(key).string(k);
                w.prefix(value).string(v);
            }
        }
        w.finish();
        let text = self.call(region, body, ctx).await?;
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
        let ctx = self.ctx("describe", &res);
        let mut body = String::new();
        let mut w = aws_smithy_query::QueryWriter::new(&mut body, "DescribeSnapshots", API_VERSION);
        w.prefix("SnapshotId.1").string(id);
        w.finish();
        let text = self.call(region, body, ctx).await?;
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
        let ctx = self.ctx("find", &res);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        // The writer borrows its parameter names: they are made first.
        let names: Vec<(String, String, String)> = tags
            .keys()
            .enumerate()
            .map(|(i, k)| {
                let n = i + 2;
                (
                    format!("Filter.{n}.Name"),
                    format!("Filter.{n}.Value.1"),
                    format!("tag:{k}"),
                )
            })
            .collect();
        loop {
            let mut body = String::new();
            let mut w =
                aws_smithy_query::QueryWriter::new(&mut body, "DescribeSnapshots", API_VERSION);
            w.prefix("Owner.1").string("self");
            w.prefix("Filter.1.Name").string("volume-id");
            w.prefix("Filter.1.Value.1").string(volume);
            for ((name, value, tag), v) in names.iter().zip(tags.values()) {
                w.prefix(name).string(tag);
                w.prefix(value).string(v);
            }
            if let Some(t) = &token {
                w.prefix("NextToken").string(t);
            }
            w.finish();
            let text = self.call(region, body, ctx).await?;
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

    #[test]
    fn an_error_response_gives_its_code_and_message() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVolume.NotFound</Code><Message>The volume 'vol-x' does not exist.</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        let (code, message) = error_code(text);
        assert_eq!(code.as_deref(), Some("InvalidVolume.NotFound"));
        assert!(message.contains("vol-x"), "{message}");
        assert_eq!(
            error_code("<html>bad gateway</html>"),
            (None, String::new())
        );
    }
}

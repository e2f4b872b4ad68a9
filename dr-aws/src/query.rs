//! A signed AWS Query-protocol client, for the services reached without their SDK crate
//! (EC2, ElastiCache): the request is written with `aws-smithy-query` (the SDK's own
//! query-protocol writer), signed with `aws-sigv4` (the SDK's signer) using the credentials
//! the SDK configuration resolves, sent with `reqwest`, and its XML read with
//! `aws-smithy-xml` (the SDK's own decoder). Errors go through the crate's one
//! classification of AWS error codes.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_query::QueryWriter;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder};
use dr_core::{Error, Result};

use crate::error::{classify, map_class, Ctx};

/// How long one request may take when the configuration sets no operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of a response read.
const MAX_RESPONSE: usize = 8 << 20;

/// A Query-protocol service: its name (the provider's name, the signing name and the first
/// label of its regional endpoint) and the API version its requests are written for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    pub(crate) name: &'static str,
    pub(crate) api_version: &'static str,
}

/// Signs and sends Query requests to one service, in any region.
#[derive(Debug, Clone)]
pub(crate) struct QueryClient {
    service: Service,
    http: reqwest::Client,
    endpoint: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    timeout: Option<Duration>,
}

impl QueryClient {
    /// A client signing with `credentials` (none: every call is `Unauthorized`), sending to
    /// `endpoint` when given or to each region's endpoint of the service, each request
    /// bounded by `timeout` (default 30 s).
    pub(crate) fn new(
        service: Service,
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
                provider: service.name.into(),
                operation: format!("build the {} HTTP client", service.name),
                message: e.to_string(),
            })?;
        Ok(QueryClient {
            service,
            http,
            endpoint,
            credentials,
            timeout,
        })
    }

    /// Where requests for `region` go.
    pub(crate) fn endpoint_for(&self, region: &str) -> String {
        match &self.endpoint {
            Some(e) => format!("{}/", e.trim_end_matches('/')),
            None => format!("https://{}.{region}.amazonaws.com/", self.service.name),
        }
    }

    /// The context of one call, for its errors.
    pub(crate) fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: self.service.name,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    /// The body of an `action` request with the parameters `params` (name, value), in order.
    pub(crate) fn body<N: AsRef<str>, V: AsRef<str>>(
        &self,
        action: &str,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> String {
        // The writer borrows the parameter names for as long as it lives.
        let params: Vec<(N, V)> = params.into_iter().collect();
        let mut body = String::new();
        let mut w = QueryWriter::new(&mut body, action, self.service.api_version);
        for (name, value) in &params {
            w.prefix(name.as_ref()).string(value.as_ref());
        }
        w.finish();
        body
    }

    /// Signs and sends one request; the response body of a success.
    pub(crate) async fn call(&self, region: &str, body: String, ctx: Ctx<'_>) -> Result<String> {
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
            .name(self.service.name)
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
                provider: self.service.name.into(),
                message: "no AWS credentials are configured".into(),
            })?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Unauthorized {
                provider: self.service.name.into(),
                message: crate::error::describe_credentials_error(&e),
            })?;
        Ok(creds.into())
    }

    /// An `InvalidRequest` about the call `ctx`.
    pub(crate) fn invalid(&self, ctx: Ctx<'_>, message: String) -> Error {
        Error::InvalidRequest {
            provider: self.service.name.into(),
            operation: ctx.operation.into(),
            message: format!("{}: {message}", ctx.resource),
        }
    }

    /// An `InvalidResponse` about the call `ctx`.
    pub(crate) fn invalid_response(&self, ctx: Ctx<'_>, message: String) -> Error {
        Error::InvalidResponse {
            provider: self.service.name.into(),
            operation: format!("{} {}", ctx.operation, ctx.resource),
            message,
        }
    }

    fn transport(&self, ctx: Ctx<'_>, e: reqwest::Error) -> Error {
        let operation = format!("{} {}", ctx.operation, ctx.resource);
        if e.is_timeout() {
            Error::Timeout {
                operation: format!("{} {operation}", self.service.name),
                after: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            }
        } else if e.is_connect() {
            Error::Refused {
                provider: self.service.name.into(),
                operation,
                source: Some(Box::new(e.without_url())),
            }
        } else {
            Error::Unavailable {
                provider: self.service.name.into(),
                operation,
                source: Some(Box::new(e.without_url())),
            }
        }
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

/// The `Code` and `Message` of an error response, wherever they stand in it (EC2:
/// `<Response><Errors><Error><Code>…`; the other Query services:
/// `<ErrorResponse><Error><Code>…`), if it has them.
pub(crate) fn error_code(text: &str) -> (Option<String>, String) {
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

/// The root element of a reply and its name, or why the reply is not XML.
pub(crate) fn root<'inp, 'a>(
    doc: &'a mut Document<'inp>,
) -> std::result::Result<(ScopedDecoder<'inp, 'a>, String), String> {
    let root = doc
        .root_element()
        .map_err(|e| format!("the response is not XML: {e}"))?;
    let name = root.start_el().local().to_string();
    Ok((root, name))
}

/// The text of an element.
pub(crate) fn data(el: &mut ScopedDecoder<'_, '_>) -> std::result::Result<String, String> {
    try_data(el)
        .map(|d| d.to_string())
        .map_err(|e| format!("unreadable element: {e}"))
}

/// The text of the element at `path` below the root of a reply (the first of each name),
/// when it is there and not empty: a page token.
pub(crate) fn text_at(text: &str, path: &[&str]) -> Option<String> {
    fn walk(el: &mut ScopedDecoder<'_, '_>, path: &[&str]) -> Option<String> {
        let (first, rest) = path.split_first()?;
        while let Some(mut child) = el.next_tag() {
            if child.start_el().local() == *first {
                return if rest.is_empty() {
                    try_data(&mut child).ok().map(|d| d.to_string())
                } else {
                    walk(&mut child, rest)
                };
            }
        }
        None
    }
    let mut doc = Document::new(text);
    let mut root = doc.root_element().ok()?;
    walk(&mut root, path).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found_in_either_shape() {
        let ec2 = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVolume.NotFound</Code><Message>The volume 'vol-x' does not exist.</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        let (code, message) = error_code(ec2);
        assert_eq!(code.as_deref(), Some("InvalidVolume.NotFound"));
        assert!(message.contains("vol-x"), "{message}");
        let query = r#"<ErrorResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/"><Error><Type>Sender</Type><Code>CacheClusterNotFound</Code><Message>Cache cluster c-1 not found.</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        let (code, message) = error_code(query);
        assert_eq!(code.as_deref(), Some("CacheClusterNotFound"));
        assert_eq!(message, "Cache cluster c-1 not found.");
        assert_eq!(
            error_code("<html>bad gateway</html>"),
            (None, String::new())
        );
        assert_eq!(error_code("not xml"), (None, String::new()));
    }

    #[test]
    fn text_at_follows_the_path_and_skips_empty_text() {
        let text = "<R><Result><Marker>m-2</Marker><Items/></Result><nextToken></nextToken></R>";
        assert_eq!(text_at(text, &["Result", "Marker"]).as_deref(), Some("m-2"));
        assert_eq!(text_at(text, &["Marker"]), None, "not at the root");
        assert_eq!(text_at(text, &["nextToken"]), None, "empty");
        assert_eq!(text_at("garbage", &["Marker"]), None);
    }

    #[test]
    fn endpoints_follow_the_service_or_the_configured_one() {
        let service = Service {
            name: "elasticache",
            api_version: "2015-02-02",
        };
        let aws = QueryClient::new(service, None, None, None).expect("client");
        assert_eq!(
            aws.endpoint_for("us-west-2"),
            "https://elasticache.us-west-2.amazonaws.com/"
        );
        let local = QueryClient::new(service, None, Some("http://127.0.0.1:5000/".into()), None)
            .expect("client");
        assert_eq!(local.endpoint_for("us-west-2"), "http://127.0.0.1:5000/");
        assert_eq!(
            local.body("DescribeCacheClusters", [("CacheClusterId", "a b")]),
            "Action=DescribeCacheClusters&Version=2015-02-02&CacheClusterId=a%20b"
        );
    }
}

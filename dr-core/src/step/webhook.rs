//! The `webhook` step kind: one HTTP request (warm a cache, flip a feature flag, purge a CDN,
//! page a vendor), through `reqwest`.
//!
//! Parameters in a plan:
//!
//! ```yaml
//! steps:
//!   - id: purge-cdn
//!     kind: webhook
//!     after: [dns switched]
//!     params:
//!       method: POST                    # default POST
//!       url: https://cdn.example.com/purge
//!       headers:
//!         Authorization: { env: CDN_TOKEN }   # read when the step runs; never printed
//!         X-Team: sre                          # header values are secrets too: never printed
//!       body: { paths: ["/*"] }         # JSON, optional
//!       expect_status: [200, 202]       # default: any 2xx
//! ```
//!
//! A response outside `expect_status` fails the step: a 429 or a connection refused is
//! [`Error::Refused`]/[`Error::Throttled`] (certainly not applied, so even a non-idempotent
//! webhook may be sent again), a 5xx or a timeout after sending is
//! [`Error::Unavailable`]/[`Error::Timeout`] (effect unknown), any other status is permanent.
//! The status and the first 4 KiB of the body are kept for the report.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Call, Role, StepAction, StepContext};
use crate::{Error, Result, Secret};

/// How much of a response body the report keeps.
pub const BODY_CAP: usize = 4096;

/// A header value: a literal (a secret all the same) or the name of an environment variable
/// read when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// Read from the environment variable when the step runs.
    Env {
        /// The variable's name.
        env: String,
    },
    /// The value itself (never printed).
    Literal(Secret),
}

impl HeaderValue {
    pub(crate) fn resolve(&self, header: &str) -> Result<Secret> {
        match self {
            HeaderValue::Literal(s) => Ok(s.clone()),
            HeaderValue::Env { env } => {
                std::env::var(env)
                    .map(Secret::new)
                    .map_err(|_| Error::Unauthorized {
                        provider: "webhook".into(),
                        message: format!("header {header}: environment variable {env} is not set"),
                    })
            }
        }
    }

    fn shown(&self) -> String {
        match self {
            HeaderValue::Env { env } => format!("${env}"),
            HeaderValue::Literal(_) => "***".into(),
        }
    }
}

/// One HTTP request. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// HTTP method (default `POST`).
    #[serde(default = "default_method")]
    pub method: String,
    /// The URL. Credentials in it (`user:password@`) are redacted wherever it is shown.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Statuses that count as success (default: any 2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    /// Whether sending it twice is harmless (default `true`: a webhook that is not must say
    /// so, and is then retried only when its request certainly was not applied).
    #[serde(default = "yes")]
    pub idempotent: bool,
}

fn default_method() -> String {
    "POST".into()
}

fn yes() -> bool {
    true
}

/// `scheme://user:***@host/…`: the URL with any password hidden.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

pub(crate) fn client() -> Result<reqwest::Client> {
    // The library ships ring as its TLS crypto; keep one a program installed itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| Error::Other {
            provider: "webhook".into(),
            operation: "build the HTTP client".into(),
            retry: crate::Retry::Permanent,
            source: e.without_url_message().into(),
        })
}

impl Webhook {
    /// The `webhook` kind of plan steps.
    ///
    /// # Errors
    /// Malformed parameters, an unknown method or a URL that does not parse (the URL is
    /// shown redacted).
    pub fn from_params(params: &serde_json::Value) -> std::result::Result<Action, String> {
        let hook: Webhook = super::registry::params(params)?;
        reqwest::Method::from_bytes(hook.method.as_bytes())
            .map_err(|_| format!("invalid parameter `method`: `{}`", hook.method))?;
        let url = reqwest::Url::parse(&hook.url).map_err(|e| {
            format!(
                "invalid parameter `url`: {e} (`{}`)",
                crate::step::webhook::redact_url(&hook.url)
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid parameter `url`: scheme `{}` (http or https)",
                url.scheme()
            ));
        }
        Ok(Action::new(hook))
    }

    fn accepted(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }

    fn target(&self) -> String {
        format!("{} {}", self.method, redact_url(&self.url))
    }
}

pub(crate) fn send_error(e: &reqwest::Error, target: &str, limit: Duration) -> Error {
    let operation = format!("request {target}");
    // Never include the URL from reqwest's own message: it may carry credentials.
    let source: crate::BoxError = e.without_url_message().into();
    if e.is_connect() {
        Error::Refused {
            provider: "webhook".into(),
            operation,
            source: Some(source),
        }
    } else if e.is_timeout() {
        Error::Timeout {
            operation,
            after: limit,
        }
    } else {
        Error::Unavailable {
            provider: "webhook".into(),
            operation,
            source: Some(source),
        }
    }
}

trait WithoutUrl {
    fn without_url_message(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_message(&self) -> String {
        let mut inner: Option<&dyn std::error::Error> = std::error::Error::source(self);
        let mut msg = String::new();
        while let Some(e) = inner {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&e.to_string());
            inner = e.source();
        }
        if msg.is_empty() {
            msg = if self.is_connect() {
                "connection failed".into()
            } else if self.is_timeout() {
                "timed out".into()
            } else {
                "request failed".into()
            };
        }
        msg
    }
}

#[async_trait]
impl StepAction for Webhook {
    fn kind(&self) -> &str {
        "webhook"
    }
    fn params(&self) -> serde_json::Value {
        let headers: BTreeMap<&str, String> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.shown()))
            .collect();
        serde_json::json!({
            "method": self.method,
            "url": redact_url(&self.url),
            "headers": headers,
            "body": self.body,
            "expect_status": self.expect_status,
            "idempotent": self.idempotent,
        })
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::new(Role::Http, "request", self.target())]
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let target = self.target();
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            Error::InvalidRequest {
                provider: "webhook".into(),
                operation: "request".into(),
                message: format!("invalid method `{}`", self.method),
            }
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.headers {
            let secret = value.resolve(name)?;
            let invalid = |what: &str| Error::InvalidRequest {
                provider: "webhook".into(),
                operation: "request".into(),
                message: format!("header {name}: {what}"),
            };
            let key = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid header name"))?;
            let mut header = reqwest::header::HeaderValue::from_str(secret.expose())
                .map_err(|_| invalid("value is not a valid header value"))?;
            header.set_sensitive(true);
            headers.insert(key, header);
        }
        let (url, body, limit) = (self.url.clone(), self.body.clone(), ctx.remaining());
        let what = format!("request {target}");
        let (status, retry_after, text) = super::off_clock(what, limit, move || async move {
            let mut request = client()?.request(method, &url).headers(headers);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let mut response = request
                .send()
                .await
                .map_err(|e| send_error(&e, &target, limit))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .contains_key(reqwest::header::RETRY_AFTER);
            let mut text = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = BODY_CAP.saturating_sub(text.len());
                if room == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&chunk[..chunk.len().min(room)]));
            }
            Ok((status, retry_after, text))
        })
        .await?;
        let target = self.target();
        ctx.output = Some(serde_json::json!({ "status": status, "body": text }));
        if self.accepted(status) {
            return Ok(());
        }
        let operation = format!("request {target}");
        Err(match status {
            429 => Error::Throttled {
                provider: "webhook".into(),
                operation,
            },
            503 if retry_after => Error::Refused {
                provider: "webhook".into(),
                operation,
                source: Some(format!("status {status}").into()),
            },
            500..=599 => Error::Unavailable {
                provider: "webhook".into(),
                operation,
                source: Some(format!("status {status}").into()),
            },
            _ => Error::InvalidRequest {
                provider: "webhook".into(),
                operation: "request".into(),
                message: format!("{target} answered {status}"),
            },
        })
    }
}

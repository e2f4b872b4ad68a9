//! An HTTP(S) [`HealthProbe`] on `reqwest` (rustls on ring): the `curl -f https://…/health`
//! every runbook ends with.
//!
//! One [`HttpCheck`] says what "healthy" means — method, expected status range, an optional
//! body match, timeout, redirects followed, how many consecutive successes one check needs —
//! and [`HttpProbe`] applies it to every target, or a target's own check when one was given.
//! TLS certificates are verified against the platform's roots by default; a check with a
//! custom CA (`ca_pem`) trusts exactly that CA. Credentials in a target URL
//! (`user:password@`) and in header values never appear in a message or a log line: the URL
//! is shown with `***` for its password, headers by name only.
//!
//! A target that cannot be reached, answers outside the expected range, times out or does
//! not contain the expected text is [`HealthStatus::Unhealthy`]; [`HttpProbe::check_detailed`]
//! says why. Only a target that is not an `http(s)` URL is an error.
//!
//! Requests run on a runtime of their own in a blocking thread, so a probe gives real
//! answers even when the run's clock is the simulated cloud's paused one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Capabilities, HealthProbe, HealthStatus, Operation};
use crate::redact::safe;
use crate::{Error, Result, Retry};

/// Durations written as `5s`, `500ms` (or seconds as a number).
mod human_serde {
    use std::time::Duration;

    use crate::HumanDuration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&HumanDuration(*d), s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        <HumanDuration as serde::Deserialize>::deserialize(d).map(HumanDuration::get)
    }
}

/// The provider name in errors and logs.
const PROVIDER: &str = "http";

/// How much of a response body a body match reads, at most.
pub const BODY_MATCH_CAP: usize = 64 * 1024;

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: usize = 3;

/// An inclusive range of HTTP status codes (default `200-299`).
///
/// Written `200`, `200-399` or `{ min: 200, max: 399 }` in a configuration file.
///
/// # Examples
///
/// ```
/// use dr_core::provider::StatusRange;
///
/// let r: StatusRange = "200-399".parse().unwrap();
/// assert!(r.contains(302));
/// assert!(!r.contains(404));
/// assert_eq!(StatusRange::default().to_string(), "200-299");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    /// Lowest accepted status.
    pub min: u16,
    /// Highest accepted status.
    pub max: u16,
}

impl Default for StatusRange {
    fn default() -> Self {
        StatusRange { min: 200, max: 299 }
    }
}

impl StatusRange {
    /// Whether `status` is in the range.
    pub fn contains(&self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

impl std::str::FromStr for StatusRange {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let code = |t: &str| -> std::result::Result<u16, String> {
            match t.trim().parse::<u16>() {
                Ok(v) if (100..=599).contains(&v) => Ok(v),
                _ => Err(format!(
                    "invalid status `{}`: write a code from 100 to 599, or a range such as `200-399`",
                    safe(t.trim())
                )),
            }
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let v = code(s)?;
                (v, v)
            }
        };
        if min > max {
            return Err(format!("invalid status range `{min}-{max}`: {min} > {max}"));
        }
        Ok(StatusRange { min, max })
    }
}

impl Serialize for StatusRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Text(String),
            Range { min: u16, max: u16 },
        }
        let text = match Raw::deserialize(d)? {
            Raw::Code(c) => c.to_string(),
            Raw::Text(t) => t,
            Raw::Range { min, max } => format!("{min}-{max}"),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What one health check means for an [`HttpProbe`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::provider::HttpCheck;
///
/// let check = HttpCheck::default()
///     .with_method("HEAD")
///     .with_expect_status("200-399".parse().unwrap())
///     .with_timeout(Duration::from_secs(2));
/// assert_eq!(check.method, "HEAD");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// HTTP method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Statuses that count as healthy (default `200-299`).
    #[serde(default)]
    pub expect_status: StatusRange,
    /// Text the response body must contain (within its first [`BODY_MATCH_CAP`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Per-request timeout, connection included (default 5 s).
    #[serde(default = "default_timeout", with = "human_serde")]
    pub timeout: Duration,
    /// Redirects followed, at most (default 3; 0 follows none, and a redirect is then
    /// judged by its own status).
    #[serde(default = "default_redirects")]
    pub max_redirects: usize,
    /// Consecutive healthy answers one check needs (default 1): with more, a flapping
    /// endpoint is reported unhealthy.
    #[serde(default = "one")]
    pub consecutive: u32,
    /// Pause between the requests of one check when `consecutive` > 1 (default 1 s).
    #[serde(default = "default_interval", with = "human_serde")]
    pub interval: Duration,
    /// Request headers, each read from the environment variable named (`Authorization:
    /// HC_TOKEN`) when the probe is built; values are never shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_env: BTreeMap<String, String>,
    /// A PEM CA certificate (bundle) to trust instead of the platform's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_redirects() -> usize {
    DEFAULT_MAX_REDIRECTS
}
fn one() -> u32 {
    1
}
fn default_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: default_method(),
            expect_status: StatusRange::default(),
            body_contains: None,
            timeout: DEFAULT_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            consecutive: 1,
            interval: default_interval(),
            headers_from_env: BTreeMap::new(),
            ca_pem: None,
        }
    }
}

impl HttpCheck {
    /// The HTTP method.
    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }
    /// The statuses that count as healthy.
    pub fn with_expect_status(mut self, range: StatusRange) -> Self {
        self.expect_status = range;
        self
    }
    /// Text the body must contain.
    pub fn with_body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }
    /// The per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Redirects followed, at most.
    pub fn with_max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }
    /// Consecutive healthy answers needed, `interval` apart.
    pub fn with_consecutive(mut self, n: u32, interval: Duration) -> Self {
        self.consecutive = n.max(1);
        self.interval = interval;
        self
    }
    /// A header read from environment variable `env` when the probe is built.
    pub fn with_header_from_env(
        mut self,
        header: impl Into<String>,
        env: impl Into<String>,
    ) -> Self {
        self.headers_from_env.insert(header.into(), env.into());
        self
    }
    /// A PEM CA certificate to trust instead of the platform's roots.
    pub fn with_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    fn invalid(message: String) -> Error {
        Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: "configure the probe".into(),
            message,
        }
    }

    /// Builds the client for this check.
    fn client(&self) -> Result<Prepared> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| Self::invalid(format!("invalid method `{}`", safe(&self.method))))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, env) in &self.headers_from_env {
            let value = std::env::var(env).map_err(|_| Error::Unauthorized {
                provider: PROVIDER.into(),
                message: format!(
                    "header {}: environment variable {} is not set",
                    safe(name),
                    safe(env)
                ),
            })?;
            let key = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Self::invalid(format!("`{}` is not a header name", safe(name))))?;
            let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                Self::invalid(format!(
                    "header {}: the value of {} is not a valid header value",
                    safe(name),
                    safe(env)
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        // The library ships ring as its TLS crypto; keep one a program installed itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redirects = if self.max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(self.max_redirects)
        };
        let mut builder = reqwest::Client::builder()
            .redirect(redirects)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            // Each check runs on a runtime of its own: no connection outlives it.
            .pool_max_idle_per_host(0)
            .default_headers(headers);
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|_| Self::invalid("`ca_pem` holds no PEM certificate".into()))?;
            if certs.is_empty() {
                return Err(Self::invalid("`ca_pem` holds no PEM certificate".into()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| Error::Other {
            provider: PROVIDER.into(),
            operation: "build the HTTP client".into(),
            retry: Retry::Permanent,
            source: chain(&e).into(),
        })?;
        Ok(Prepared {
            client,
            method,
            check: self.clone(),
        })
    }
}

/// A check with its client.
#[derive(Debug, Clone)]
struct Prepared {
    client: reqwest::Client,
    method: reqwest::Method,
    check: HttpCheck,
}

/// The answer to one probe, with the reason when it is not healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeOutcome {
    /// Healthy or unhealthy.
    pub status: HealthStatus,
    /// The last HTTP status received, if any.
    pub http_status: Option<u16>,
    /// Why the target is not healthy (credentials redacted); empty when healthy.
    pub reason: String,
}

/// The HTTP(S) health probe.
///
/// One [`HttpCheck`] says what "healthy" means — method, expected status range, an optional
/// body match, timeout, redirects followed, how many consecutive successes one check needs —
/// and [`HttpProbe`] applies it to every target, or a target's own check when one was given.
/// TLS certificates are verified against the platform's roots by default; a check with a
/// custom CA (`ca_pem`) trusts exactly that CA. Credentials in a target URL
/// (`user:password@`) and in header values never appear in a message or a log line: the URL
/// is shown with `***` for its password, headers by name only.
///
/// A target that cannot be reached, answers outside the expected range, times out or does
/// not contain the expected text is [`HealthStatus::Unhealthy`]; [`HttpProbe::check_detailed`]
/// says why. Only a target that is not an `http(s)` URL is an error.
///
/// Requests run on a runtime of their own in a blocking thread, so a probe gives real
/// answers even when the run's clock is the simulated cloud's paused one.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{HealthProbe, HealthStatus, HttpCheck, HttpProbe};
///
/// let probe = HttpProbe::builder()
///     .with_default(HttpCheck::default().with_body_contains("ok"))
///     .with_check("https://api.example.com/health", HttpCheck::default().with_method("HEAD"))
///     .build()?;
/// let status = probe.check("https://api.example.com/health").await?;
/// println!("{status:?}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpProbe {
    default: Arc<Prepared>,
    by_target: Arc<HashMap<String, Prepared>>,
}

/// Builds an [`HttpProbe`].
#[derive(Debug, Clone, Default)]
pub struct HttpProbeBuilder {
    default: HttpCheck,
    by_target: BTreeMap<String, HttpCheck>,
}

impl HttpProbeBuilder {
    /// The check for targets without one of their own.
    pub fn with_default(mut self, check: HttpCheck) -> Self {
        self.default = check;
        self
    }

    /// The check for one target URL.
    pub fn with_check(mut self, target: impl Into<String>, check: HttpCheck) -> Self {
        self.by_target.insert(target.into(), check);
        self
    }

    /// The probe.
    ///
    /// # Errors
    /// `InvalidRequest` for an invalid method, header or CA; `Unauthorized` when a header's
    /// environment variable is not set.
    pub fn build(self) -> Result<HttpProbe> {
        let default = self.default.client()?;
        let mut by_target = HashMap::new();
        for (target, check) in self.by_target {
            by_target.insert(target, check.client()?);
        }
        Ok(HttpProbe {
            default: Arc::new(default),
            by_target: Arc::new(by_target),
        })
    }
}

impl HttpProbe {
    /// A builder with the default check.
    pub fn builder() -> HttpProbeBuilder {
        HttpProbeBuilder::default()
    }

    /// A probe applying `check` to every target.
    ///
    /// # Errors
    /// As [`HttpProbeBuilder::build`].
    pub fn new(check: HttpCheck) -> Result<HttpProbe> {
        Self::builder().with_default(check).build()
    }

    /// Probes `target` once (with `consecutive` requests when so configured) and says why
    /// it is not healthy.
    ///
    /// # Errors
    /// `InvalidRequest` when `target` is not an `http` or `https` URL (shown redacted).
    pub async fn check_detailed(&self, target: &str) -> Result<ProbeOutcome> {
        let url = reqwest::Url::parse(target).map_err(|e| Error::InvalidRequest {
            provider: PROVIDER.into(),
            operation: Operation::Probe.name().into(),
            message: format!("`{}` is not a URL: {e}", safe(target)),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: Operation::Probe.name().into(),
                message: format!(
                    "`{}`: scheme `{}` (http or https)",
                    safe(target),
                    safe(url.scheme())
                ),
            });
        }
        let prepared = self
            .by_target
            .get(target)
            .cloned()
            .unwrap_or_else(|| (*self.default).clone());
        let shown = shown_url(&url);
        let c = &prepared.check;
        let limit = (c.timeout + c.interval) * c.consecutive + Duration::from_secs(1);
        let what = format!("probe {shown}");
        crate::step::off_clock(what, limit, move || async move {
            let mut last = None;
            for i in 0..prepared.check.consecutive {
                if i > 0 {
                    tokio::time::sleep(prepared.check.interval).await;
                }
                let outcome = once(&prepared, url.clone(), &shown).await;
                if outcome.status != HealthStatus::Healthy {
                    let mut outcome = outcome;
                    if prepared.check.consecutive > 1 {
                        outcome.reason = format!(
                            "{} (after {i} of {} consecutive healthy answers)",
                            outcome.reason, prepared.check.consecutive
                        );
                    }
                    return Ok(outcome);
                }
                last = Some(outcome);
            }
            Ok(last.unwrap_or(ProbeOutcome {
                status: HealthStatus::Unknown,
                http_status: None,
                reason: "no request made".into(),
            }))
        })
        .await
    }
}

/// The URL with its password hidden, for messages.
fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some(crate::redact::MASK));
    }
    safe(u.as_str())
}

/// One request.
async fn once(p: &Prepared, url: reqwest::Url, shown: &str) -> ProbeOutcome {
    let unhealthy = |http_status: Option<u16>, reason: String| ProbeOutcome {
        status: HealthStatus::Unhealthy,
        http_status,
        reason,
    };
    let mut response = match p.client.request(p.method.clone(), url).send().await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() {
                format!(
                    "no answer within {}",
                    humantime::format_duration(p.check.timeout)
                )
            } else if e.is_redirect() {
                format!(
                    "more than {} redirects (or a redirect loop)",
                    p.check.max_redirects
                )
            } else if e.is_connect() {
                format!("cannot connect: {}", chain(&e))
            } else {
                format!("request failed: {}", chain(&e))
            };
            return unhealthy(None, format!("{} {shown}: {what}", p.method));
        }
    };
    let status = response.status().as_u16();
    if !p.check.expect_status.contains(status) {
        return unhealthy(
            Some(status),
            format!(
                "{} {shown} answered {status} (expected {})",
                p.method, p.check.expect_status
            ),
        );
    }
    if let Some(needle) = &p.check.body_contains {
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_MATCH_CAP.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= BODY_MATCH_CAP {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let what = if e.is_timeout() {
                        format!(
                            "body not received within {}",
                            humantime::format_duration(p.check.timeout)
                        )
                    } else {
                        format!("reading the body: {}", chain(&e))
                    };
                    return unhealthy(Some(status), format!("{} {shown}: {what}", p.method));
                }
            }
        }
        if !String::from_utf8_lossy(&body).contains(needle.as_str()) {
            return unhealthy(
                Some(status),
                format!(
                    "{} {shown} answered {status} without `{}` in its body",
                    p.method,
                    safe(needle)
                ),
            );
        }
    }
    ProbeOutcome {
        status: HealthStatus::Healthy,
        http_status: Some(status),
        reason: String::new(),
    }
}

/// The error's causes, without reqwest's own message (which carries the URL, credentials
/// included), redacted.
fn chain(e: &reqwest::Error) -> String {
    let mut inner: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut msg = String::new();
    while let Some(err) = inner {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&err.to_string());
        inner = err.source();
    }
    if msg.is_empty() {
        msg = "request failed".into();
    }
    crate::step::redact_userinfo(&crate::redact::clean(&msg))
}

#[async_trait]
impl HealthProbe for HttpProbe {
    fn name(&self) -> &str {
        PROVIDER
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Probe])
    }
    async fn check(&self, target: &str) -> Result<HealthStatus> {
        let outcome = self.check_detailed(target).await?;
        if outcome.status != HealthStatus::Healthy {
            tracing::info!(reason = %outcome.reason, "health probe: unhealthy");
        }
        Ok(outcome.status)
    }
}

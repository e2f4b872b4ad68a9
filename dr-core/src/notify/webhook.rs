//! A [`Notifier`] that posts JSON to incoming-webhook URLs (Slack, Microsoft Teams, or any
//! service that takes a JSON body), through the same HTTP client as `webhook` steps.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::provider::{Capabilities, Notification, Notifier, Operation, Severity};
use crate::step::webhook::{client, redact_url, send_error};
use crate::{Error, Result, Secret};

const PROVIDER: &str = "webhook-notifier";

/// The JSON body a channel expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Slack incoming webhooks: `{"text": "*title*\nbody"}`.
    #[default]
    Slack,
    /// Microsoft Teams connectors: a `MessageCard` with a title, text and a colour by
    /// severity.
    Teams,
    /// `{"channel", "severity", "title", "body"}`, for services of your own.
    Json,
}

impl WebhookFormat {
    /// The body for `notification` sent to `channel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::notify::WebhookFormat;
    /// use dr_core::provider::{Notification, Severity};
    ///
    /// let n = Notification { severity: Severity::Info, title: "Resolved".into(), body: "ok".into() };
    /// assert_eq!(WebhookFormat::Slack.body("ops", &n)["text"], "*Resolved*\nok");
    /// assert_eq!(WebhookFormat::Teams.body("ops", &n)["@type"], "MessageCard");
    /// ```
    pub fn body(self, channel: &str, n: &Notification) -> serde_json::Value {
        match self {
            WebhookFormat::Slack => serde_json::json!({
                "text": format!("*{}*\n{}", n.title, n.body),
            }),
            WebhookFormat::Teams => serde_json::json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": n.title,
                "title": n.title,
                "text": n.body.replace('\n', "  \n"),
                "themeColor": match n.severity {
                    Severity::Info => "2EB67D",
                    Severity::Warning => "ECB22E",
                    Severity::Critical => "E01E5A",
                },
            }),
            WebhookFormat::Json => serde_json::json!({
                "channel": channel,
                "severity": n.severity,
                "title": n.title,
                "body": n.body,
            }),
        }
    }
}

#[derive(Clone)]
struct Hook {
    url: Secret,
    format: WebhookFormat,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("url", &"***")
            .field("format", &self.format)
            .finish()
    }
}

/// Posts each notification as JSON to its channel's incoming-webhook URL.
///
/// Webhook URLs carry their credential in the path, so they are held as [`Secret`]s: never
/// logged, never in an error. A 2xx answer is success; 429 is [`Error::Throttled`], a
/// connection refused or a 503 with `Retry-After` [`Error::Refused`] (certainly not
/// delivered: safe to send again), other 5xx [`Error::Unavailable`], any other status
/// permanent.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::notify::{WebhookFormat, WebhookNotifier};
/// use dr_core::provider::{Notification, Notifier, Severity};
/// use dr_core::Secret;
///
/// let slack = WebhookNotifier::new()
///     .channel("incidents", Secret::new(std::env::var("SLACK_WEBHOOK_URL").unwrap_or_default()), WebhookFormat::Slack);
/// let note = Notification { severity: Severity::Critical, title: "Investigating".into(), body: "region us-east-1 is down".into() };
/// slack.notify("incidents", &note).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    hooks: BTreeMap<String, Hook>,
    timeout: Duration,
}

impl Default for WebhookNotifier {
    fn default() -> Self {
        WebhookNotifier {
            hooks: BTreeMap::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookNotifier {
    /// A notifier with no channels and a 10 s timeout per request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Posts notifications for `channel` to `url` in `format`.
    pub fn channel(
        mut self,
        channel: impl Into<String>,
        url: Secret,
        format: WebhookFormat,
    ) -> Self {
        self.hooks.insert(channel.into(), Hook { url, format });
        self
    }

    /// The timeout of one request (real time, also when the run's clock is simulated).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The channels it posts to.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.hooks.keys().map(String::as_str)
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Notify])
    }

    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()> {
        let hook = self.hooks.get(channel).ok_or_else(|| Error::NotFound {
            provider: PROVIDER.into(),
            resource: format!("channel {channel}"),
        })?;
        let url = hook.url.expose().to_string();
        let shown = format!("POST {} (channel {channel})", redact_secret_path(&url));
        let body = hook.format.body(channel, notification);
        let limit = self.timeout;
        let target = shown.clone();
        let (status, retry_after) =
            crate::step::off_clock(format!("notify {shown}"), limit, move || async move {
                let response = client()?
                    .post(&url)
                    .timeout(limit)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| send_error(&e, &target, limit))?;
                let retry_after = response
                    .headers()
                    .contains_key(reqwest::header::RETRY_AFTER);
                Ok((response.status().as_u16(), retry_after))
            })
            .await?;
        let operation = format!("notify {shown}");
        match status {
            200..=299 => Ok(()),
            429 => Err(Error::Throttled {
                provider: PROVIDER.into(),
                operation,
            }),
            // Overloaded and saying so: certainly not delivered.
            503 if retry_after => Err(Error::Refused {
                provider: PROVIDER.into(),
                operation,
                source: Some(format!("status {status}").into()),
            }),
            500..=599 => Err(Error::Unavailable {
                provider: PROVIDER.into(),
                operation,
                source: Some(format!("status {status}").into()),
            }),
            _ => Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: "notify".into(),
                message: format!("{shown} answered {status}"),
            }),
        }
    }
}

/// The URL with its path hidden (incoming-webhook URLs carry their token in the path).
fn redact_secret_path(url: &str) -> String {
    match reqwest::Url::parse(&redact_url(url)) {
        Ok(mut u) => {
            u.set_path("/***");
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_never_shown() {
        let shown = redact_secret_path("https://hooks.slack.com/services/T000/B000/XXXX?x=1");
        assert_eq!(shown, "https://hooks.slack.com/***");
        let n = WebhookNotifier::new().channel(
            "ops",
            Secret::new("https://hooks.example.com/T/secret-token"),
            WebhookFormat::Slack,
        );
        assert!(!format!("{n:?}").contains("secret-token"));
    }

    #[tokio::test]
    async fn unknown_channel_is_not_found() {
        let n = Notification {
            severity: Severity::Info,
            title: "t".into(),
            body: "b".into(),
        };
        let err = WebhookNotifier::new()
            .notify("nowhere", &n)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
}

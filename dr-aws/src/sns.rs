//! [`SnsNotifier`]: [`Notifier`] over Amazon SNS topics.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use dr_core::provider::{Capabilities, Notification, Notifier, Operation, Severity};
use dr_core::{Error, Result};

use crate::error::{map_sdk, Ctx};

const NAME: &str = "sns";

/// SNS limits a subject to 100 characters.
const SUBJECT_MAX: usize = 100;

/// [`Notifier`] over Amazon SNS: each channel is a topic (by ARN), each notification one
/// `Publish` with the title as subject (cut to SNS's 100 characters, on one line), the body
/// as message, and the severity as the `severity` message attribute (subscriptions can
/// filter on it: page for `critical`, email the rest).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{Notification, Notifier, Severity};
///
/// let aws = dr_aws::AwsConfig::from_env().await?;
/// let sns = aws.build_sns().topic("oncall", "arn:aws:sns:us-east-1:123456789012:oncall");
/// let note = Notification { severity: Severity::Critical, title: "Investigating".into(), body: "us-east-1 is down".into() };
/// sns.notify("oncall", &note).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topics: BTreeMap<String, String>,
    timeout: Option<Duration>,
}

impl SnsNotifier {
    /// A notifier over `client` with no topics.
    pub fn new(client: Client) -> Self {
        SnsNotifier {
            client,
            topics: BTreeMap::new(),
            timeout: None,
        }
    }

    /// Publishes notifications for `channel` to the topic `arn`.
    pub fn topic(mut self, channel: impl Into<String>, arn: impl Into<String>) -> Self {
        self.topics.insert(channel.into(), arn.into());
        self
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn subject(title: &str) -> String {
    // One line of printable ASCII-safe text, at most 100 characters.
    let line: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if line.chars().count() <= SUBJECT_MAX {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(SUBJECT_MAX - 1).collect();
    cut.push('…');
    cut
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Notify])
    }

    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()> {
        let arn = self.topics.get(channel).ok_or_else(|| Error::NotFound {
            provider: NAME.into(),
            resource: format!("channel {channel}"),
        })?;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(severity(notification.severity))
            .build()
            .map_err(|e| Error::InvalidRequest {
                provider: NAME.into(),
                operation: "publish".into(),
                message: e.to_string(),
            })?;
        let resource = format!("topic {arn}");
        self.client
            .publish()
            .topic_arn(arn)
            .subject(subject(&notification.title))
            .message(&notification.body)
            .message_attributes("severity", attribute)
            .send()
            .await
            .map_err(|e| {
                map_sdk(
                    Ctx {
                        provider: NAME,
                        operation: "publish",
                        resource: &resource,
                        timeout: self.timeout,
                    },
                    e,
                )
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fit_sns() {
        assert_eq!(subject("a\nb"), "a b");
        let long = "x".repeat(150);
        assert_eq!(subject(&long).chars().count(), SUBJECT_MAX);
    }
}

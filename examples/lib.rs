//! Shared pieces of the scenario programs (the `[[example]]` targets of this crate):
//! locating the bundled plans, printing live progress, and a simulated on-call engineer
//! who answers approval gates.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dr_core::executor::{ApprovalHook, ApprovalRequest, Decision, RunEvent};
use tokio::sync::mpsc::UnboundedReceiver;

/// The directory of the bundled plans (`examples/plans`).
pub fn plans_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Where progress lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Standard output (human runs).
    Stdout,
    /// Standard error (when stdout carries JSON).
    Stderr,
}

/// Prints every event as `+HH:MM:SS  line`, offsets from `start`, until the channel closes.
pub async fn print_progress(mut rx: UnboundedReceiver<RunEvent>, start: DateTime<Utc>, sink: Sink) {
    while let Some(event) = rx.recv().await {
        let offset = (event.at() - start).to_std().unwrap_or_default().as_secs();
        let line = format!(
            "+{:02}:{:02}:{:02}  {event}\n",
            offset / 3600,
            (offset / 60) % 60,
            offset % 60
        );
        let _ = match sink {
            Sink::Stdout => std::io::stdout().write_all(line.as_bytes()),
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        };
    }
}

/// A simulated on-call engineer: approves every gate after `delay` of (virtual) time.
#[derive(Debug, Clone)]
pub struct SimulatedOnCall {
    /// How long the engineer takes to answer.
    pub delay: Duration,
}

#[async_trait]
impl ApprovalHook for SimulatedOnCall {
    async fn decide(&self, request: &ApprovalRequest) -> dr_core::Result<Decision> {
        tokio::time::sleep(self.delay).await;
        tracing::info!(step = %request.step, "approved by the simulated on-call engineer");
        Ok(Decision::Approve)
    }
}

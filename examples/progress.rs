//! What people see while a run is under way, and the report's format at the end.
//!
//! * [`EventsFormat::Live`]: a live multi-line view (one line per running step under an
//!   overall bar, through `indicatif`), the default when stderr is a terminal;
//! * [`EventsFormat::Plain`]: one `+HH:MM:SS  line` per event, the default otherwise;
//! * [`EventsFormat::Json`]: one JSON object per event and line (`--events json`).
//!
//! [`ReportFormat`] picks the report printed at the end: text, JSON or Markdown
//! (`--report md`, with the post-incident review).

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use dr_core::executor::{RunEvent, RunReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Console;

/// How progress events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventsFormat {
    /// [`Live`](Self::Live) when stderr is a terminal (and the console is the process's
    /// own), else [`Plain`](Self::Plain).
    #[default]
    Auto,
    /// One line per event.
    Plain,
    /// A live multi-line view on stderr.
    Live,
    /// One JSON object per event and line.
    Json,
}

impl FromStr for EventsFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(EventsFormat::Auto),
            "plain" | "text" => Ok(EventsFormat::Plain),
            "live" => Ok(EventsFormat::Live),
            "json" => Ok(EventsFormat::Json),
            _ => Err("write one of `auto`, `plain`, `live`, `json`".into()),
        }
    }
}

impl EventsFormat {
    /// Resolves [`Auto`](Self::Auto) for `console`.
    pub fn resolve(self, console: &Console) -> EventsFormat {
        match self {
            EventsFormat::Auto
                if console.is_stdio() && std::io::IsTerminal::is_terminal(&std::io::stderr()) =>
            {
                EventsFormat::Live
            }
            EventsFormat::Auto => EventsFormat::Plain,
            other => other,
        }
    }
}

/// How the report is printed at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    /// The text report.
    #[default]
    Text,
    /// The JSON report (stdout holds only it).
    Json,
    /// The Markdown report with its post-incident review (stdout holds only it).
    Markdown,
}

impl FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(ReportFormat::Text),
            "json" => Ok(ReportFormat::Json),
            "md" | "markdown" => Ok(ReportFormat::Markdown),
            _ => Err("write one of `text`, `json`, `md`".into()),
        }
    }
}

impl ReportFormat {
    /// The report rendered in this format.
    pub fn render(self, report: &RunReport) -> String {
        match self {
            ReportFormat::Text => format!("\n{report}"),
            ReportFormat::Json => report.to_json(),
            ReportFormat::Markdown => report.to_markdown(),
        }
    }
}

/// `+HH:MM:SS  line` for one event.
pub fn plain_line(event: &RunEvent, start: DateTime<Utc>) -> String {
    let offset = (event.at() - start).to_std().unwrap_or_default().as_secs();
    format!(
        "+{:02}:{:02}:{:02}  {event}",
        offset / 3600,
        (offset / 60) % 60,
        offset % 60
    )
}

/// One JSON object for one event.
pub fn json_line(event: &RunEvent) -> String {
    serde_json::to_string(event)
        .unwrap_or_else(|e| format!("{{\"event\":\"error\",\"message\":\"{e}\"}}"))
}

/// The live view: an overall bar (`steps done / steps`) and one line per running step.
#[derive(Debug)]
pub struct LiveView {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
    start: Option<DateTime<Utc>>,
}

impl LiveView {
    /// A live view drawn to `target` (`ProgressDrawTarget::stderr()` in a terminal).
    pub fn new(target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("recovery");
        LiveView {
            multi,
            overall,
            running: HashMap::new(),
            start: None,
        }
    }

    /// Steps done (succeeded, failed or skipped) so far.
    pub fn done(&self) -> u64 {
        self.overall.position()
    }

    /// Steps running now, by id.
    pub fn running(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.running.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    fn step_bar(&mut self, step: &str) -> ProgressBar {
        if let Some(bar) = self.running.get(step) {
            return bar.clone();
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:<32} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(step.to_string());
        self.running.insert(step.to_string(), bar.clone());
        bar
    }

    fn finish(&mut self, step: &str, line: String) {
        if let Some(bar) = self.running.remove(step) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        // Finished steps scroll above the live lines.
        let _ = self.multi.println(line);
        self.overall.inc(1);
    }

    /// Shows one event.
    pub fn show(&mut self, event: &RunEvent) {
        let start = *self.start.get_or_insert(event.at());
        let line = plain_line(event, start);
        match event {
            RunEvent::RunStarted { steps, .. } => {
                self.overall.set_length(*steps as u64);
                self.overall.set_message(event.to_string());
            }
            RunEvent::StepStarted { step, attempt, .. } => {
                let bar = self.step_bar(step);
                bar.set_message(if *attempt == 1 {
                    "running".to_string()
                } else {
                    format!("attempt {attempt}")
                });
                bar.tick();
            }
            RunEvent::StepRetrying {
                step,
                attempt,
                error,
                ..
            } => {
                let bar = self.step_bar(step);
                bar.set_message(format!("attempt {attempt} failed ({error}), retrying"));
            }
            RunEvent::ApprovalRequested { step, .. } => {
                let bar = self.step_bar(step);
                bar.set_message("waiting for approval");
            }
            RunEvent::StepSucceeded { step, .. }
            | RunEvent::StepFailed { step, .. }
            | RunEvent::StepSkipped { step, .. } => self.finish(step, line),
            RunEvent::RunFinished { .. } => {
                for (_, bar) in self.running.drain() {
                    bar.finish_and_clear();
                }
                self.overall.finish_with_message(event.to_string());
            }
            _ => {
                let _ = self.multi.println(line);
            }
        }
    }
}

/// Shows every event in `format` until the channel closes. Plain and JSON lines go to
/// stdout, or to stderr when `to_stderr` (stdout then carries the report); the live view is
/// always on stderr.
pub async fn show_progress(
    mut rx: UnboundedReceiver<RunEvent>,
    start: DateTime<Utc>,
    console: Console,
    to_stderr: bool,
    format: EventsFormat,
) {
    let emit = |line: &str| {
        if to_stderr {
            console.err(line);
        } else {
            console.out(line);
        }
    };
    match format.resolve(&console) {
        EventsFormat::Live => {
            let mut view = LiveView::new(ProgressDrawTarget::stderr());
            while let Some(event) = rx.recv().await {
                view.show(&event);
            }
        }
        EventsFormat::Json => {
            while let Some(event) = rx.recv().await {
                emit(&json_line(&event));
            }
        }
        EventsFormat::Auto | EventsFormat::Plain => {
            while let Some(event) = rx.recv().await {
                emit(&plain_line(&event, start));
            }
        }
    }
}

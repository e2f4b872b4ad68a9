//! The report of a run as Markdown: readable on its own (a wiki page, a ticket, a drill's
//! evidence), with a post-incident review laid out as the runbooks ask — what happened and
//! when, what worked, what did not, and action items left for people to fill in.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{RunReport, StepReport, StepStatus};
use crate::duration::human;

/// Text for one Markdown table cell: pipes escaped, line breaks folded, control characters
/// dropped, and capped in length so an error message cannot swallow the table.
fn cell(text: &str) -> String {
    const CAP: usize = 300;
    let mut out = String::with_capacity(text.len().min(CAP) + 8);
    for (n, c) in text.chars().enumerate() {
        if n == CAP {
            out.push('…');
            break;
        }
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `+HH:MM:SS` from `start` to `t`.
fn offset(start: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (t - start).to_std().unwrap_or_default().as_secs();
    format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".to_string(), human)
}

fn took(s: &StepReport) -> Option<Duration> {
    match (s.started_at, s.finished_at) {
        (Some(a), Some(b)) => (b - a).to_std().ok(),
        _ => None,
    }
}

fn result(s: &StepReport) -> String {
    let attempts = |n: u32| format!("{n} attempt{}", if n == 1 { "" } else { "s" });
    match s.status {
        StepStatus::Succeeded if s.already_done => "ok (already done)".into(),
        StepStatus::Succeeded => format!("ok ({})", attempts(s.attempts)),
        StepStatus::Failed => format!("**FAILED** ({})", attempts(s.attempts)),
        StepStatus::Skipped => "skipped".into(),
        StepStatus::NotRun => "not run".into(),
    }
}

/// The steps in the order they started; those that never started last, in graph order.
fn timeline(report: &RunReport) -> Vec<&StepReport> {
    let mut steps: Vec<&StepReport> = report.steps.iter().collect();
    steps.sort_by_key(|s| (s.started_at.is_none(), s.started_at));
    steps
}

/// Writes the targets table (services against RTO and RPO).
fn targets_table(out: &mut String, report: &RunReport) {
    let _ = writeln!(
        out,
        "| Service | RTO target | Achieved RTO | RPO target | Achieved RPO | Met |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|:---:|");
    for s in &report.services {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&s.name),
            human(s.rto_target),
            opt(s.achieved_rto),
            human(s.rpo_target),
            opt(s.achieved_rpo),
            if s.met { "✅ met" } else { "❌ missed" }
        );
    }
}

/// Writes the timeline table.
fn timeline_table(out: &mut String, report: &RunReport) {
    let _ = writeln!(out, "| At | Step | Kind | Result | Took | Data loss |");
    let _ = writeln!(out, "|---|---|---|---|---:|---:|");
    for s in timeline(report) {
        let at = s
            .started_at
            .map_or_else(|| "—".into(), |t| offset(report.started_at, t));
        let _ = writeln!(
            out,
            "| {at} | `{}` | {} | {} | {} | {} |",
            cell(&s.id),
            cell(&s.action),
            result(s),
            opt(took(s)),
            opt(s.data_loss)
        );
    }
}

/// Writes the critical path as a numbered list.
fn critical_path_list(out: &mut String, report: &RunReport) {
    for (n, id) in report.critical_path.iter().enumerate() {
        let how = report
            .step(id)
            .map(|s| format!(" — {}, took {}", result(s), opt(took(s))))
            .unwrap_or_default();
        let _ = writeln!(out, "{}. `{}`{how}", n + 1, cell(id));
    }
}

impl RunReport {
    /// The report as a Markdown document readable on its own: summary, targets against
    /// what was achieved, the timeline, the critical path, errors, risks, and a
    /// post-incident review (what happened and when, what worked well, what needs
    /// improvement, action items left blank for people, documentation updates).
    ///
    /// Every value from a step or a provider is escaped for a table cell; secrets never
    /// appear in a report.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(executor: dr_core::executor::Executor, graph: dr_core::RecoveryGraph) {
    /// let report = executor.run(&graph).await;
    /// std::fs::write("recovery.md", report.to_markdown()).unwrap();
    /// # }
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.write_markdown(&mut out, 1);
        out
    }

    /// [`to_markdown`](Self::to_markdown) with the title at heading `level` (1 = `#`, 2 =
    /// `##`, …), for documents that embed the report (a drill's evidence).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(report: dr_core::executor::RunReport) {
    /// let section = report.to_markdown_at(2);
    /// assert!(section.starts_with("## Recovery run"));
    /// # }
    /// ```
    pub fn to_markdown_at(&self, level: usize) -> String {
        let mut out = String::new();
        self.write_markdown(&mut out, level.max(1));
        out
    }

    fn write_markdown(&self, out: &mut String, level: usize) {
        let h = |n: usize| "#".repeat(level + n);
        let _ = writeln!(
            out,
            "{} Recovery run: {} / {}\n",
            h(0),
            cell(&self.plan),
            cell(&self.scenario)
        );
        let degraded = if self.degraded { " (degraded)" } else { "" };
        let targets = if self.targets_met() {
            "all met"
        } else {
            "**not all met**"
        };
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Outcome | **{}**{degraded} |", self.outcome);
        let _ = writeln!(out, "| Targets | {targets} |");
        let _ = writeln!(out, "| Started | {} |", self.started_at.to_rfc3339());
        let _ = writeln!(out, "| Finished | {} |", self.finished_at.to_rfc3339());
        let _ = writeln!(
            out,
            "| Recovery time | {} (forecast {}) |",
            human(self.achieved_rto),
            human(self.forecast_rto)
        );
        if let Some(id) = &self.run_id {
            let resumed = if self.resumed {
                " (resumed from its journal)"
            } else {
                ""
            };
            let _ = writeln!(out, "| Run | `{}`{resumed} |", cell(id));
        }
        let _ = writeln!(out, "| Retries | {} |", self.retries);
        let _ = writeln!(out, "| Steps | {} |\n", self.steps.len());

        if !self.services.is_empty() {
            let _ = writeln!(out, "{} Targets\n", h(1));
            targets_table(out, self);
            out.push('\n');
        }

        let _ = writeln!(out, "{} Timeline\n", h(1));
        let _ = writeln!(out, "Offsets from the start of the run.\n");
        timeline_table(out, self);
        out.push('\n');

        if !self.critical_path.is_empty() {
            let _ = writeln!(out, "{} Critical path\n", h(1));
            critical_path_list(out, self);
            out.push('\n');
        }

        let errors: Vec<&StepReport> = self.steps.iter().filter(|s| s.error.is_some()).collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "{} Errors\n", h(1));
            for s in errors {
                if let Some(e) = &s.error {
                    let _ = writeln!(out, "- `{}` ({}): {}", cell(&s.id), s.status, cell(e));
                }
            }
            out.push('\n');
        }

        if !self.overrides.is_empty() {
            let _ = writeln!(out, "{} Safety gates overridden\n", h(1));
            for o in &self.overrides {
                let _ = writeln!(
                    out,
                    "- `{}` ({} gate): {}",
                    cell(&o.step),
                    cell(&o.gate),
                    cell(&o.detail)
                );
            }
            out.push('\n');
        }

        if !self.compensated.is_empty() {
            let _ = writeln!(out, "{} Compensation (in reverse order)\n", h(1));
            for c in &self.compensated {
                let what = match &c.reason {
                    None => "undone".to_string(),
                    Some(r) => format!("**not undone**: {}", cell(r)),
                };
                let _ = writeln!(out, "- `{}` ({}): {what}", cell(&c.step), cell(&c.action));
            }
            out.push('\n');
        }

        if !self.evidence.is_empty() {
            let _ = writeln!(out, "{} Evidence (kept, never deleted by the run)\n", h(1));
            let _ = writeln!(out, "| evidence | size | SHA-256 | step |");
            let _ = writeln!(out, "|---|---|---|---|");
            for e in &self.evidence {
                use crate::step::security::Evidence;
                let (what, size, sha) = match &e.evidence {
                    Evidence::Object {
                        store,
                        key,
                        size,
                        sha256,
                    } => (
                        format!("object `{}/{}`", cell(store), cell(key)),
                        format!("{size} bytes"),
                        format!("`{}`", cell(sha256)),
                    ),
                    Evidence::VolumeSnapshot { region, volume, id } => (
                        format!(
                            "volume snapshot `{}` of `{}/{}`",
                            cell(id),
                            cell(region),
                            cell(volume)
                        ),
                        "-".to_string(),
                        "-".to_string(),
                    ),
                };
                let _ = writeln!(out, "| {what} | {size} | {sha} | `{}` |", cell(&e.step));
            }
            out.push('\n');
        }

        if let Some(e) = &self.error {
            let _ = writeln!(out, "{} Run error\n\n{}\n", h(1), cell(e));
        }

        if !self.risks.is_empty() {
            let _ = writeln!(out, "{} Risks found before the run\n", h(1));
            for r in &self.risks {
                match &r.service {
                    Some(svc) => {
                        let _ = writeln!(out, "- [{}] {}", cell(svc), cell(&r.message));
                    }
                    None => {
                        let _ = writeln!(out, "- {}", cell(&r.message));
                    }
                }
            }
            out.push('\n');
        }

        self.write_review(out, level + 1);
    }

    fn write_review(&self, out: &mut String, level: usize) {
        let h = |n: usize| "#".repeat(level + n);
        let _ = writeln!(out, "{} Post-incident review\n", h(0));

        // 1. What happened, and when.
        let _ = writeln!(out, "{} What happened\n", h(1));
        let _ = writeln!(
            out,
            "- {}: recovery run of scenario `{}` started.",
            self.started_at.to_rfc3339(),
            cell(&self.scenario)
        );
        let mut recovered: Vec<(Duration, &str)> = self
            .services
            .iter()
            .filter_map(|s| s.achieved_rto.map(|d| (d, s.name.as_str())))
            .collect();
        recovered.sort();
        for (d, name) in &recovered {
            let at = self.started_at + chrono::Duration::from_std(*d).unwrap_or_default();
            let _ = writeln!(
                out,
                "- {}: service `{}` recovered ({} after the start).",
                at.to_rfc3339(),
                cell(name),
                human(*d)
            );
        }
        for s in self.steps.iter().filter(|s| s.status == StepStatus::Failed) {
            let at = s.finished_at.unwrap_or(self.finished_at);
            let _ = writeln!(
                out,
                "- {}: step `{}` failed: {}",
                at.to_rfc3339(),
                cell(&s.id),
                cell(s.error.as_deref().unwrap_or("unknown error"))
            );
        }
        let _ = writeln!(
            out,
            "- {}: run finished, **{}**{}.",
            self.finished_at.to_rfc3339(),
            self.outcome,
            if self.degraded { " (degraded)" } else { "" }
        );
        let lost: Vec<String> = self
            .services
            .iter()
            .map(|s| match s.achieved_rpo {
                Some(d) if d.is_zero() => format!("`{}` none", cell(&s.name)),
                Some(d) => format!("`{}` up to {}", cell(&s.name), human(d)),
                None => format!("`{}` unknown", cell(&s.name)),
            })
            .collect();
        if !lost.is_empty() {
            let _ = writeln!(out, "\nImpact — data-loss window: {}.", lost.join(", "));
        }
        let _ = writeln!(out, "\nRoot cause: _to be written by the incident team._\n");

        // 2. What worked well.
        let _ = writeln!(out, "{} What worked well\n", h(1));
        let mut worked = Vec::new();
        for s in self.services.iter().filter(|s| s.met) {
            worked.push(format!(
                "Service `{}` recovered within its targets (RTO {} of {}, RPO {} of {}).",
                cell(&s.name),
                opt(s.achieved_rto),
                human(s.rto_target),
                opt(s.achieved_rpo),
                human(s.rpo_target)
            ));
        }
        let retried_ok: Vec<&StepReport> = self
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Succeeded && s.attempts > 1)
            .collect();
        for s in &retried_ok {
            worked.push(format!(
                "Step `{}` succeeded after {} attempts (retries absorbed temporary errors).",
                cell(&s.id),
                s.attempts
            ));
        }
        let already = self.steps.iter().filter(|s| s.already_done).count();
        if already > 0 {
            worked.push(format!(
                "{already} step(s) found their effect already in place and were not repeated."
            ));
        }
        if self.achieved_rto <= self.forecast_rto && self.succeeded() {
            worked.push(format!(
                "The recovery took {}, within the forecast of {}.",
                human(self.achieved_rto),
                human(self.forecast_rto)
            ));
        }
        if worked.is_empty() {
            worked.push("_Nothing recorded by the run; add what the team saw._".into());
        }
        for w in worked {
            let _ = writeln!(out, "- {w}");
        }
        out.push('\n');

        // 3. What needs improvement.
        let _ = writeln!(out, "{} What needs improvement\n", h(1));
        let mut gaps = Vec::new();
        for s in self.services.iter().filter(|s| !s.met) {
            let why = match (s.achieved_rto, s.achieved_rpo) {
                (None, _) => "was not recovered".to_string(),
                (Some(rto), _) if rto > s.rto_target => format!(
                    "missed its RTO: {} against {}",
                    human(rto),
                    human(s.rto_target)
                ),
                (_, Some(rpo)) if rpo > s.rpo_target => format!(
                    "missed its RPO: {} of data lost against {}",
                    human(rpo),
                    human(s.rpo_target)
                ),
                (_, None) => "lost an unknown amount of data".to_string(),
                _ => "missed a target".to_string(),
            };
            gaps.push(format!("Service `{}` {why}.", cell(&s.name)));
        }
        for s in &self.steps {
            match s.status {
                StepStatus::Failed => gaps.push(format!(
                    "Step `{}` ({}) failed: {}",
                    cell(&s.id),
                    cell(&s.action),
                    cell(s.error.as_deref().unwrap_or("unknown error"))
                )),
                StepStatus::Skipped => gaps.push(format!(
                    "Step `{}` was skipped: {}",
                    cell(&s.id),
                    cell(s.error.as_deref().unwrap_or("a dependency did not succeed"))
                )),
                StepStatus::NotRun => gaps.push(format!(
                    "Step `{}` did not run (the run stopped first).",
                    cell(&s.id)
                )),
                StepStatus::Succeeded => {}
            }
        }
        if self.achieved_rto > self.forecast_rto {
            gaps.push(format!(
                "The recovery took {}, longer than the forecast of {}: review the estimates.",
                human(self.achieved_rto),
                human(self.forecast_rto)
            ));
        }
        if self.retries > 0 {
            gaps.push(format!(
                "{} retr{} were needed: check the providers' error rates.",
                self.retries,
                if self.retries == 1 { "y" } else { "ies" }
            ));
        }
        for r in &self.risks {
            gaps.push(format!("Risk found before the run: {}", cell(&r.message)));
        }
        if gaps.is_empty() {
            gaps.push("_Nothing recorded by the run; add what the team saw._".into());
        }
        for g in gaps {
            let _ = writeln!(out, "- {g}");
        }
        out.push('\n');

        // 4. Action items: for people.
        let _ = writeln!(out, "{} Action items\n", h(1));
        let _ = writeln!(
            out,
            "| Action | Kind (short-term / long-term) | Owner | Due |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for _ in 0..3 {
            let _ = writeln!(out, "| | | | |");
        }
        out.push('\n');

        // 5. Documentation.
        let _ = writeln!(out, "{} Documentation updates\n", h(1));
        let _ = writeln!(out, "- [ ] Update the recovery plan and its estimates");
        let _ = writeln!(out, "- [ ] Update the runbook procedures");
        let _ = writeln!(out, "- [ ] Share the lessons learned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{Outcome, ServiceReport};

    fn step(id: &str, at: i64, status: StepStatus, attempts: u32) -> StepReport {
        let t0 = DateTime::UNIX_EPOCH;
        StepReport {
            id: id.into(),
            action: "promote_replica".into(),
            depends_on: vec![],
            service: Some("api".into()),
            started_at: Some(t0 + chrono::Duration::seconds(at)),
            finished_at: Some(t0 + chrono::Duration::seconds(at + 60)),
            attempts,
            status,
            already_done: false,
            error: (status == StepStatus::Failed).then(|| "boom | with\npipe".to_string()),
            data_loss: Some(Duration::from_secs(30)),
            output: None,
        }
    }

    fn report(outcome: Outcome, steps: Vec<StepReport>, met: bool) -> RunReport {
        RunReport {
            outcome,
            degraded: false,
            plan: "shop".into(),
            scenario: "region-failover".into(),
            started_at: DateTime::UNIX_EPOCH,
            finished_at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(600),
            forecast_rto: Duration::from_secs(500),
            achieved_rto: Duration::from_secs(600),
            critical_path: steps.iter().map(|s| s.id.clone()).collect(),
            services: vec![ServiceReport {
                name: "api".into(),
                rto_target: Duration::from_secs(900),
                forecast_rto: Duration::from_secs(500),
                achieved_rto: met.then_some(Duration::from_secs(600)),
                rpo_target: Duration::from_secs(300),
                achieved_rpo: Some(Duration::from_secs(30)),
                met,
            }],
            steps,
            risks: vec![],
            retries: 2,
            run_id: Some("run-1".into()),
            resumed: true,
            fencing_token: None,
            overrides: vec![crate::executor::OverrideReport {
                step: "db/promote".into(),
                gate: "rpo".into(),
                detail: "api: data-loss window 20m accepted".into(),
            }],
            compensated: vec![crate::executor::CompensationReport {
                step: "dns".into(),
                action: "switch_dns".into(),
                compensated: true,
                reason: None,
            }],
            evidence: vec![crate::executor::EvidenceReport {
                step: "api/export".into(),
                evidence: crate::step::security::Evidence::Object {
                    store: "evidence".into(),
                    key: "evidence/shop/x.yaml".into(),
                    size: 42,
                    sha256: "ab12".into(),
                },
            }],
            error: None,
        }
    }

    #[test]
    fn evidence_is_listed_with_its_size_and_checksum() {
        let r = report(
            Outcome::Succeeded,
            vec![step("db/promote", 0, StepStatus::Succeeded, 3)],
            true,
        );
        let md = r.to_markdown();
        assert!(
            md.contains("## Evidence (kept, never deleted by the run)"),
            "{md}"
        );
        assert!(
            md.contains(
                "| object `evidence/evidence/shop/x.yaml` | 42 bytes | `ab12` | `api/export` |"
            ),
            "{md}"
        );
        let text = r.to_string();
        assert!(
            text.contains("object evidence/evidence/shop/x.yaml (42 bytes, sha256 ab12)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
        assert_eq!(json["evidence"][0]["sha256"], "ab12");
        assert_eq!(json["evidence"][0]["step"], "api/export");
    }

    #[test]
    fn sections_in_the_runbook_order() {
        let r = report(
            Outcome::Succeeded,
            vec![
                step("db/promote", 0, StepStatus::Succeeded, 3),
                step("dns/switch", 60, StepStatus::Succeeded, 1),
            ],
            true,
        );
        let md = r.to_markdown();
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("no `{s}` in\n{md}"));
        assert!(at("# Recovery run: shop / region-failover") < at("## Targets"));
        assert!(at("## Targets") < at("## Timeline"));
        assert!(at("## Timeline") < at("## Critical path"));
        assert!(at("## Post-incident review") < at("### What happened"));
        assert!(at("### What happened") < at("### What worked well"));
        assert!(at("### What worked well") < at("### What needs improvement"));
        assert!(at("### What needs improvement") < at("### Action items"));
        assert!(
            md.contains("| api | 15m | 10m | 5m | 30s | ✅ met |"),
            "{md}"
        );
        assert!(md.contains("| +00:01:00 | `dns/switch` |"), "{md}");
        assert!(md.contains("Step `db/promote` succeeded after 3 attempts"));
        assert!(md.contains("2 retries were needed"));
        assert!(
            md.contains("| Run | `run-1` (resumed from its journal) |"),
            "{md}"
        );
        assert!(md.contains("- `db/promote` (rpo gate): api: data-loss window 20m accepted"));
        assert!(md.contains("- `dns` (switch_dns): undone"), "{md}");
        // Action items are left for people: blank rows only.
        let items = &md[at("### Action items")..at("### Documentation updates")];
        assert_eq!(items.matches("| | | | |").count(), 3, "{items}");
    }

    #[test]
    fn failures_are_listed_and_escaped() {
        let r = report(
            Outcome::Failed,
            vec![step("db/promote", 0, StepStatus::Failed, 2)],
            false,
        );
        let md = r.to_markdown();
        assert!(md.contains("**FAILED** (2 attempts)"), "{md}");
        assert!(md.contains("Service `api` was not recovered."), "{md}");
        assert!(md.contains("boom \\| with pipe"), "{md}");
        assert!(!md.contains("boom | with"), "{md}");
        assert!(
            md.contains("| api | 15m | — | 5m | 30s | ❌ missed |"),
            "{md}"
        );
    }
}

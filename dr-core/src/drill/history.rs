//! Drill history: reports kept in a directory, and the trend of achieved RTO and RPO per
//! service over the last drills.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DrillReport;
use crate::duration::human;
use crate::{Error, Result};

/// One drill's result for one service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrendPoint {
    /// When the drill started.
    pub at: DateTime<Utc>,
    /// The drill's tag.
    pub tag: String,
    /// Achieved RTO (`None`: not recovered).
    #[serde(rename = "achieved_rto_seconds", with = "crate::duration::seconds_opt")]
    pub achieved_rto: Option<Duration>,
    /// Achieved RPO (`None`: unknown).
    #[serde(rename = "achieved_rpo_seconds", with = "crate::duration::seconds_opt")]
    pub achieved_rpo: Option<Duration>,
    /// Both targets met.
    pub met: bool,
}

/// One service's results over the drills, oldest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceTrend {
    /// Service name.
    pub service: String,
    /// RTO target (of the latest drill).
    #[serde(rename = "rto_target_seconds", with = "crate::duration::seconds")]
    pub rto_target: Duration,
    /// RPO target (of the latest drill).
    #[serde(rename = "rpo_target_seconds", with = "crate::duration::seconds")]
    pub rpo_target: Duration,
    /// The drills.
    pub points: Vec<TrendPoint>,
}

impl ServiceTrend {
    /// Latest achieved RTO minus the first one's, in seconds (negative: faster); `None`
    /// when either was not recovered or there is one drill.
    pub fn rto_change_seconds(&self) -> Option<f64> {
        let first = self.points.first()?.achieved_rto?;
        let last = self.points.last()?.achieved_rto?;
        (self.points.len() > 1).then_some(last.as_secs_f64() - first.as_secs_f64())
    }
}

/// What one stored record holds (the summary of a [`DrillReport`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Record {
    tag: String,
    plan: String,
    scenario: String,
    started_at: DateTime<Utc>,
    passed: bool,
    services: Vec<RecordService>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct RecordService {
    name: String,
    #[serde(with = "crate::duration::seconds")]
    rto_target: Duration,
    #[serde(with = "crate::duration::seconds_opt")]
    achieved_rto: Option<Duration>,
    #[serde(with = "crate::duration::seconds")]
    rpo_target: Duration,
    #[serde(with = "crate::duration::seconds_opt")]
    achieved_rpo: Option<Duration>,
    met: bool,
}

/// Drill reports kept in a directory: each drill's full JSON report
/// (`{started}-{tag}.json`) and Markdown report (`.md`) beside a summary record
/// (`.record.json`) the trend is read from.
///
/// # Examples
///
/// ```no_run
/// # fn demo(report: dr_core::drill::DrillReport) -> dr_core::Result<()> {
/// use dr_core::drill::DrillHistory;
///
/// let history = DrillHistory::open("drills/")?;
/// history.append(&report)?;
/// println!("{}", history.summary(5)?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DrillHistory {
    dir: PathBuf,
}

fn io(what: String, e: std::io::Error) -> Error {
    Error::io(what, e)
}

impl DrillHistory {
    /// The history in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
        Ok(DrillHistory { dir })
    }

    /// Stores `report`; returns the path of its JSON report.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn append(&self, report: &DrillReport) -> Result<PathBuf> {
        let stem = format!(
            "{}-{}",
            report.started_at.format("%Y%m%dT%H%M%S%.3fZ"),
            report.tag
        );
        let record = Record {
            tag: report.tag.clone(),
            plan: report.plan.clone(),
            scenario: report.scenario.clone(),
            started_at: report.started_at,
            passed: report.passed,
            services: report
                .run
                .services
                .iter()
                .map(|s| RecordService {
                    name: s.name.clone(),
                    rto_target: s.rto_target,
                    achieved_rto: s.achieved_rto,
                    rpo_target: s.rpo_target,
                    achieved_rpo: s.achieved_rpo,
                    met: s.met,
                })
                .collect(),
        };
        let write = |ext: &str, text: String| {
            let path = self.dir.join(format!("{stem}.{ext}"));
            std::fs::write(&path, text)
                .map_err(|e| io(format!("writing {}", path.display()), e))
                .map(|()| path)
        };
        let json = write("json", report.to_json())?;
        write("md", report.to_markdown())?;
        let record = serde_json::to_string_pretty(&record).map_err(|e| Error::Other {
            provider: "drill".into(),
            operation: "serialise a drill record".into(),
            retry: crate::Retry::Permanent,
            source: e.into(),
        })?;
        write("record.json", record)?;
        Ok(json)
    }

    fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| io(format!("reading {}", self.dir.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| io(format!("reading {}", self.dir.display()), e))?
                .path();
            if !path.to_string_lossy().ends_with(".record.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| io(format!("reading {}", path.display()), e))?;
            match serde_json::from_str::<Record>(&text) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable drill record");
                }
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.tag.cmp(&b.tag)));
        Ok(out)
    }

    /// The trend per service over the last `last` drills (oldest first).
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn trend(&self, last: usize) -> Result<Vec<ServiceTrend>> {
        let records = self.records()?;
        let skip = records.len().saturating_sub(last);
        let mut by: BTreeMap<String, ServiceTrend> = BTreeMap::new();
        for r in records.into_iter().skip(skip) {
            for s in r.services {
                let t = by.entry(s.name.clone()).or_insert_with(|| ServiceTrend {
                    service: s.name.clone(),
                    rto_target: s.rto_target,
                    rpo_target: s.rpo_target,
                    points: Vec::new(),
                });
                t.rto_target = s.rto_target;
                t.rpo_target = s.rpo_target;
                t.points.push(TrendPoint {
                    at: r.started_at,
                    tag: r.tag.clone(),
                    achieved_rto: s.achieved_rto,
                    achieved_rpo: s.achieved_rpo,
                    met: s.met,
                });
            }
        }
        Ok(by.into_values().collect())
    }

    /// The trend over the last `last` drills as a Markdown table: per service, the achieved
    /// RTO and RPO of each drill (oldest first), the change of RTO, and how many met
    /// their targets.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn summary(&self, last: usize) -> Result<String> {
        let trend = self.trend(last)?;
        let mut out = String::new();
        let _ = writeln!(out, "| Service | RTO target | Achieved RTO (oldest → latest) | RPO target | Achieved RPO (oldest → latest) | RTO change | Met |");
        let _ = writeln!(out, "|---|---:|---|---:|---|---:|---:|");
        let opt = |d: Option<Duration>| d.map_or_else(|| "—".into(), human);
        for t in &trend {
            let rto: Vec<String> = t.points.iter().map(|p| opt(p.achieved_rto)).collect();
            let rpo: Vec<String> = t.points.iter().map(|p| opt(p.achieved_rpo)).collect();
            let change = t.rto_change_seconds().map_or_else(
                || "—".into(),
                |s| {
                    let d = human(Duration::from_secs_f64(s.abs()));
                    if s < 0.0 {
                        format!("−{d} (faster)")
                    } else if s > 0.0 {
                        format!("+{d} (slower)")
                    } else {
                        "none".into()
                    }
                },
            );
            let met = t.points.iter().filter(|p| p.met).count();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {change} | {met}/{} |",
                super::cell(&t.service),
                human(t.rto_target),
                rto.join(" → "),
                human(t.rpo_target),
                rpo.join(" → "),
                t.points.len()
            );
        }
        Ok(out)
    }
}

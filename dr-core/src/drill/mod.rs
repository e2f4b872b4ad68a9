//! Drills: recoveries rehearsed against isolated targets, with evidence.
//!
//! * [`ScenarioDrill`] runs a scenario of a plan against an isolated copy of its resources
//!   (databases restored from production's newest snapshot into test instances, workloads in
//!   a test namespace, test DNS records), never changing a production resource (a
//!   [`ProductionGuard`] layer refuses any such call, and the call log proves it), measures
//!   the achieved RTO and RPO per service against the targets, cleans up everything it
//!   created — and lists what it could not, with the reason — and writes its evidence as
//!   JSON and Markdown ([`DrillReport`]).
//! * [`BackupDrill`] restores a randomly chosen (seeded) recent backup into a test store,
//!   verifies its checksums and a data check, measures the restore time, cleans up.
//! * [`DrillHistory`] keeps drill reports in a directory and summarises the trend of
//!   achieved RTO and RPO per service.

mod backup;
mod guard;
mod history;
mod scenario;

use std::fmt::Write as _;

pub use backup::{BackupDrill, BackupDrillReport, DataCheck, StartsWith};
pub use guard::{Production, ProductionGuard};
pub use history::{DrillHistory, ServiceTrend, TrendPoint};
pub use scenario::{DrillError, DrillReport, ScenarioDrill};

/// Something a drill created and could not remove.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotCleaned {
    /// What (`database us-west-2/orders-drill`).
    pub resource: String,
    /// Why not.
    pub reason: String,
}

/// Text for a Markdown table cell or list item: pipes escaped, line breaks folded.
pub(crate) fn cell(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect::<String>()
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// Writes the cleanup section.
pub(crate) fn write_cleanup(
    out: &mut String,
    cleaned: &[String],
    not_cleaned: &[NotCleaned],
    h: &str,
) {
    let _ = writeln!(out, "{h} Cleanup\n");
    if cleaned.is_empty() && not_cleaned.is_empty() {
        let _ = writeln!(out, "Nothing was created.\n");
        return;
    }
    for c in cleaned {
        let _ = writeln!(out, "- ✅ removed {}", cell(c));
    }
    for n in not_cleaned {
        let _ = writeln!(
            out,
            "- ❌ **not removed**: {} — {}",
            cell(&n.resource),
            cell(&n.reason)
        );
    }
    out.push('\n');
}

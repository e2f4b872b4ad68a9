//! Loading plans from YAML, TOML and JSON with errors that point at the fault.

use std::fmt;
use std::path::Path;

use super::{lint, Plan};
use crate::redact::clean;

/// The largest plan file accepted: 16 MiB (a 20,000-service plan is about 5 MiB).
pub const MAX_PLAN_BYTES: usize = 16 << 20;

/// The deepest nesting of lists and maps accepted. A plan nests about six levels
/// (`services` → a service → `secret` → …); the limit leaves room for anchors and flow style
/// while refusing pathological input before it reaches the parser.
pub const MAX_DEPTH: usize = 64;

/// A plan file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format a file name's extension implies.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// One semantic problem in a plan, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Path of the field at fault (`services[api].depends_on`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", clean(&self.path), clean(&self.message))
    }
}

/// Why a plan could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The file could not be read.
    #[error("{}: cannot read plan: {}", clean(file), clean(&source.to_string()))]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no known format.
    #[error(
        "{}: unknown plan format (use .yaml, .yml, .toml or .json)",
        clean(file)
    )]
    UnknownFormat {
        /// The file.
        file: String,
    },
    /// The text is not a well-formed plan.
    #[error("{}", render_parse(file, *format, *line, *column, field.as_deref(), message))]
    Parse {
        /// The file (or `<string>`).
        file: String,
        /// Its format.
        format: Format,
        /// 1-based line of the fault, where the parser reports one.
        line: Option<usize>,
        /// 1-based column of the fault.
        column: Option<usize>,
        /// Path of the field at fault (`services[1].rto`).
        field: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// The file is larger than [`MAX_PLAN_BYTES`].
    #[error("{}: the plan is larger than the limit of {limit} bytes ({} MiB); split it or remove generated bulk", clean(file), limit >> 20)]
    TooLarge {
        /// The file.
        file: String,
        /// The limit ([`MAX_PLAN_BYTES`]).
        limit: usize,
    },
    /// The plan is well-formed but wrong: every problem found, not only the first.
    #[error("{}", render_invalid(file, problems, *omitted))]
    Invalid {
        /// The file (or the plan's name).
        file: String,
        /// The problems, at most [`MAX_PROBLEMS`](super::MAX_PROBLEMS).
        problems: Vec<Problem>,
        /// How many more problems were found and left out.
        omitted: usize,
    },
}

impl PlanError {
    /// The semantic problems, for [`PlanError::Invalid`]; empty otherwise.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PlanError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_parse(
    file: &str,
    format: Format,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    crate::document::render(file, format, "plan", line, column, field, message)
}

fn render_invalid(file: &str, problems: &[Problem], omitted: usize) -> String {
    let total = problems.len() + omitted;
    let mut s = format!(
        "{}: invalid plan ({total} problem{}):",
        clean(file),
        if total == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str(&format!("\n  - {}: {}", clean(&p.path), clean(&p.message)));
    }
    if omitted > 0 {
        s.push_str(&format!(
            "\n  … and {omitted} more problem{} not listed (fix these first)",
            if omitted == 1 { "" } else { "s" }
        ));
    }
    s
}

/// Reads a plan file: at most [`MAX_PLAN_BYTES`], UTF-8.
pub(super) fn read(path: &Path, file: &str, format: Format) -> Result<String, PlanError> {
    use crate::document::ReadError;
    crate::document::read(path, MAX_PLAN_BYTES, "a plan file").map_err(|e| match e {
        ReadError::Io(source) => PlanError::Read {
            file: file.to_string(),
            source,
        },
        ReadError::TooLarge => PlanError::TooLarge {
            file: file.to_string(),
            limit: MAX_PLAN_BYTES,
        },
        ReadError::NotUtf8(f) => PlanError::Parse {
            file: file.to_string(),
            format,
            line: f.line,
            column: f.column,
            field: f.field,
            message: f.message,
        },
    })
}

pub(super) fn parse(text: &str, format: Format, file: &str) -> Result<Plan, PlanError> {
    let parse_err = |line, column, field: Option<String>, message: String| PlanError::Parse {
        file: file.to_string(),
        format,
        line,
        column,
        field,
        message,
    };
    if text.len() > MAX_PLAN_BYTES {
        return Err(PlanError::TooLarge {
            file: file.to_string(),
            limit: MAX_PLAN_BYTES,
        });
    }
    if lint::is_empty(text, format) {
        return Err(parse_err(
            None,
            None,
            None,
            "the file is empty: a plan needs at least `name`, `regions`, `services` and `scenarios` (see examples/plans/region-failover.yaml)".into(),
        ));
    }
    if let Some(f) = lint::too_deep(text, format) {
        return Err(parse_err(Some(f.line), Some(f.column), f.field, f.message));
    }
    crate::document::deserialize(text, format).map_err(|fault| {
        // A plan-specific diagnosis (a misspelt key, a duration without a unit) where the
        // parser's own message is vague.
        match lint::diagnose(text, format, fault.line, &fault.message) {
            Some(f) => {
                let field = f.field.or(if f.keep_field { fault.field } else { None });
                parse_err(Some(f.line), Some(f.column), field, f.message)
            }
            None => parse_err(fault.line, fault.column, fault.field, fault.message),
        }
    })
}

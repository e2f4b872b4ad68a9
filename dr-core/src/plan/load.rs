//! Loading plans from YAML, TOML and JSON with errors that point at the fault.

use std::fmt;
use std::io::Read as _;
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
    let mut s = clean(file);
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
        if let Some(column) = column {
            s.push_str(&format!(":{column}"));
        }
    }
    s.push_str(&format!(": invalid {format} plan"));
    if let Some(field) = field.filter(|f| !f.is_empty() && *f != ".") {
        s.push_str(&format!(" at `{}`", clean(field)));
    }
    s.push_str(": ");
    s.push_str(&clean(message));
    s
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

/// Strips the location suffix some parsers append to their messages.
fn bare_message(msg: &str) -> String {
    let msg = msg.trim();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

/// Reads a plan file: at most [`MAX_PLAN_BYTES`], UTF-8.
pub(super) fn read(path: &Path, file: &str, format: Format) -> Result<String, PlanError> {
    let read_err = |source| PlanError::Read {
        file: file.to_string(),
        source,
    };
    if path.is_dir() {
        return Err(read_err(std::io::Error::other(
            "it is a directory; name a plan file (.yaml, .toml or .json)",
        )));
    }
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    f.take(MAX_PLAN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(PlanError::TooLarge {
            file: file.to_string(),
            limit: MAX_PLAN_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let prefix = String::from_utf8_lossy(&bytes[..valid]);
        let (line, column) = line_col(&prefix, valid);
        PlanError::Parse {
            file: file.to_string(),
            format,
            line: Some(line),
            column: Some(column),
            field: None,
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02x} at offset {valid}); save the plan as UTF-8",
                bytes.get(valid).copied().unwrap_or_default()
            ),
        }
    })
}

/// A field path from `serde_path_to_error`, without the placeholder of an unknown place.
fn field_path(path: String) -> Option<String> {
    let path = path
        .trim_end_matches(".?")
        .trim_end_matches('?')
        .to_string();
    (!path.is_empty() && path != ".").then_some(path)
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
    let refine = |line: Option<usize>, column, field, message: String| match lint::diagnose(
        text, format, line, &message,
    ) {
        Some(f) => {
            let field = f.field.or(if f.keep_field { field } else { None });
            parse_err(Some(f.line), Some(f.column), field, f.message)
        }
        None => parse_err(line, column, field, message),
    };
    match format {
        Format::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let loc = inner.location();
                // The YAML parser prefixes its own path; keep one.
                let message = bare_message(&inner.to_string());
                let message = match message.split_once(": ") {
                    Some((prefix, rest)) if field.starts_with(prefix) => rest.to_string(),
                    _ => message,
                };
                refine(
                    loc.as_ref().map(|l| l.line()),
                    loc.as_ref().map(|l| l.column()),
                    field_path(field),
                    message,
                )
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                refine(
                    Some(inner.line()),
                    Some(inner.column()),
                    field_path(field),
                    bare_message(&inner.to_string()),
                )
            })
        }
        Format::Toml => {
            let de = toml::Deserializer::new(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let (line, column) = match inner.span() {
                    Some(span) => {
                        let (l, c) = line_col(text, span.start);
                        (Some(l), Some(c))
                    }
                    None => (None, None),
                };
                refine(line, column, field_path(field), inner.message().to_string())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}

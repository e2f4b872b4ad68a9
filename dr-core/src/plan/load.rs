//! Loading plans from YAML, TOML and JSON with errors that point at the fault.

use std::fmt;
use std::path::Path;

use super::Plan;

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
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a plan could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The file could not be read.
    #[error("{file}: cannot read plan: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no known format.
    #[error("{file}: unknown plan format (use .yaml, .yml, .toml or .json)")]
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
    /// The plan is well-formed but wrong: every problem found, not only the first.
    #[error("{}", render_invalid(file, problems))]
    Invalid {
        /// The file (or the plan's name).
        file: String,
        /// All problems.
        problems: Vec<Problem>,
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
    let mut s = file.to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
        if let Some(column) = column {
            s.push_str(&format!(":{column}"));
        }
    }
    s.push_str(&format!(": invalid {format} plan"));
    if let Some(field) = field.filter(|f| !f.is_empty() && *f != ".") {
        s.push_str(&format!(" at `{field}`"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

fn render_invalid(file: &str, problems: &[Problem]) -> String {
    let mut s = format!(
        "{file}: invalid plan ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str(&format!("\n  - {p}"));
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

pub(super) fn parse(text: &str, format: Format, file: &str) -> Result<Plan, PlanError> {
    let parse_err = |line, column, field: Option<String>, message: String| PlanError::Parse {
        file: file.to_string(),
        format,
        line,
        column,
        field,
        message,
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
                parse_err(
                    loc.as_ref().map(|l| l.line()),
                    loc.as_ref().map(|l| l.column()),
                    Some(field),
                    message,
                )
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                parse_err(
                    Some(inner.line()),
                    Some(inner.column()),
                    Some(field),
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
                parse_err(line, column, Some(field), inner.message().to_string())
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

//! Reading and deserializing the documents users write — plans, providers files, incident
//! files — from YAML, TOML or JSON, with the line, column and field of a fault.
//!
//! Each document type wraps these in its own error (a plan's [`PlanError`](crate::plan::PlanError)
//! says "invalid YAML plan"), so every loader reports faults the same way.
//!
//! ```
//! use dr_core::document::{deserialize, Format};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Doc {
//!     name: String,
//! }
//! let doc: Doc = deserialize("name: shop\n", Format::Yaml).unwrap();
//! assert_eq!(doc.name, "shop");
//! let fault = deserialize::<Doc>("name: shop\nnmae: typo\n", Format::Yaml).err().unwrap();
//! assert_eq!(fault.line, Some(2));
//! assert!(fault.message.contains("unknown field `nmae`"), "{}", fault.message);
//! ```

use std::io::Read as _;
use std::path::Path;

pub use crate::plan::Format;

/// Where and why a document could not be deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// 1-based line, where the parser reports one.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// Path of the field at fault (`services[1].rto`), where known.
    pub field: Option<String>,
    /// What is wrong, without the parser's own location suffix.
    pub message: String,
}

impl Fault {
    /// The fault as one line: `FILE:LINE:COLUMN: invalid FORMAT WHAT at `FIELD`: MESSAGE`,
    /// each part shown only where known, and every part cleaned of secrets and control
    /// characters (`what` names the document: `plan`, `providers file`).
    ///
    /// ```
    /// use dr_core::document::{Fault, Format};
    /// let f = Fault { line: Some(3), column: Some(1), field: Some("lag".into()), message: "bad".into() };
    /// assert_eq!(f.render("i.yaml", Format::Yaml, "incident file"), "i.yaml:3:1: invalid YAML incident file at `lag`: bad");
    /// ```
    pub fn render(&self, file: &str, format: Format, what: &str) -> String {
        render(
            file,
            format,
            what,
            self.line,
            self.column,
            self.field.as_deref(),
            &self.message,
        )
    }
}

/// [`Fault::render`] from its parts.
pub fn render(
    file: &str,
    format: Format,
    what: &str,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    use crate::redact::clean;
    let mut s = clean(file);
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
        if let Some(column) = column {
            s.push_str(&format!(":{column}"));
        }
    }
    s.push_str(&format!(": invalid {format} {what}"));
    if let Some(field) = field.filter(|f| !f.is_empty() && *f != ".") {
        s.push_str(&format!(" at `{}`", clean(field)));
    }
    s.push_str(": ");
    s.push_str(&clean(message));
    s
}

/// Why a document file could not be read as text.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read (or it is a directory).
    Io(std::io::Error),
    /// The file is larger than the limit given.
    TooLarge,
    /// The file is not UTF-8; the fault names where.
    NotUtf8(Fault),
}

/// Reads `path` as UTF-8 text of at most `limit` bytes; `what` names the document in the
/// message for a directory (`a plan file`).
///
/// # Errors
/// [`ReadError`].
///
/// ```
/// let dir = std::env::temp_dir();
/// let err = dr_core::document::read(&dir, 1024, "a plan file").err().unwrap();
/// assert!(matches!(err, dr_core::document::ReadError::Io(_)));
/// ```
pub fn read(path: &Path, limit: usize, what: &str) -> Result<String, ReadError> {
    if path.is_dir() {
        return Err(ReadError::Io(std::io::Error::other(format!(
            "it is a directory; name {what} (.yaml, .toml or .json)"
        ))));
    }
    let f = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let prefix = String::from_utf8_lossy(&bytes[..valid]);
        let (line, column) = line_col(&prefix, valid);
        ReadError::NotUtf8(Fault {
            line: Some(line),
            column: Some(column),
            field: None,
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02x} at offset {valid}); save it as UTF-8",
                bytes.get(valid).copied().unwrap_or_default()
            ),
        })
    })
}

/// Deserializes `text` in `format`, naming the line, column and field of a fault.
///
/// # Errors
/// The [`Fault`].
pub fn deserialize<T: serde::de::DeserializeOwned>(text: &str, format: Format) -> Result<T, Fault> {
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
                Fault {
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    field: field_path(field),
                    message,
                }
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                Fault {
                    line: Some(inner.line()),
                    column: Some(inner.column()),
                    field: field_path(field),
                    message: bare_message(&inner.to_string()),
                }
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
                Fault {
                    line,
                    column,
                    field: field_path(field),
                    message: inner.message().to_string(),
                }
            })
        }
    }
}

/// A field path from `serde_path_to_error`, without the placeholder of an unknown place.
fn field_path(path: String) -> Option<String> {
    let path = path
        .trim_end_matches(".?")
        .trim_end_matches('?')
        .to_string();
    (!path.is_empty() && path != ".").then_some(path)
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
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        n: u32,
    }

    #[test]
    fn every_format_names_the_field_and_line() {
        for (text, format, line) in [
            ("name: a\nn: -1\n", Format::Yaml, 2),
            ("{\"name\": \"a\",\n \"n\": -1}", Format::Json, 2),
            ("name = \"a\"\nn = -1\n", Format::Toml, 2),
        ] {
            let fault = deserialize::<Doc>(text, format).unwrap_err();
            assert_eq!(fault.field.as_deref(), Some("n"), "{format}: {fault:?}");
            assert_eq!(fault.line, Some(line), "{format}: {fault:?}");
        }
    }

    #[test]
    fn not_utf8_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, b"name: a\nn: \xff\n").unwrap();
        let ReadError::NotUtf8(f) = read(&path, 1024, "a plan file").unwrap_err() else {
            panic!("not a UTF-8 error")
        };
        assert_eq!((f.line, f.column), (Some(2), Some(4)));
        std::fs::write(&path, vec![b'a'; 2000]).unwrap();
        assert!(matches!(
            read(&path, 1024, "a plan file"),
            Err(ReadError::TooLarge)
        ));
    }
}

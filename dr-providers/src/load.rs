//! Loading a providers file from YAML, TOML or JSON, with errors that point at the fault.

use std::io::Read as _;
use std::path::Path;

use dr_core::plan::Format;

use crate::{ProvidersConfig, ProvidersError};

/// The largest providers file accepted: 1 MiB.
pub const MAX_PROVIDERS_BYTES: usize = 1 << 20;

impl ProvidersConfig {
    /// Loads a providers file; the format comes from the extension (`.yaml`, `.yml`,
    /// `.toml`, `.json`).
    ///
    /// # Errors
    /// [`ProvidersError::Read`], [`ProvidersError::UnknownFormat`],
    /// [`ProvidersError::TooLarge`], or [`ProvidersError::Parse`] with the line, column and
    /// field at fault (a credential written in plain text is one).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let config = dr_providers::ProvidersConfig::load("providers.yaml".as_ref())?;
    /// # Ok::<(), dr_providers::ProvidersError>(())
    /// ```
    pub fn load(path: &Path) -> Result<ProvidersConfig, ProvidersError> {
        let file = path.display().to_string();
        let format = Format::from_path(path)
            .ok_or_else(|| ProvidersError::UnknownFormat { file: file.clone() })?;
        let read_err = |source| ProvidersError::Read {
            file: file.clone(),
            source,
        };
        if path.is_dir() {
            return Err(read_err(std::io::Error::other(
                "it is a directory; name a providers file (.yaml, .toml or .json)",
            )));
        }
        let f = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        f.take(MAX_PROVIDERS_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() > MAX_PROVIDERS_BYTES {
            return Err(ProvidersError::TooLarge {
                file,
                limit: MAX_PROVIDERS_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ProvidersError::Parse {
            file: file.clone(),
            format,
            line: None,
            column: None,
            field: None,
            message: format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Self::parse(&text, format, &file)
    }

    /// Parses YAML text.
    ///
    /// # Errors
    /// [`ProvidersError::Parse`].
    pub fn from_yaml(text: &str) -> Result<ProvidersConfig, ProvidersError> {
        Self::parse(text, Format::Yaml, "<string>")
    }

    /// Parses `text` in `format`; `file` names it in messages.
    ///
    /// # Errors
    /// [`ProvidersError::Parse`], [`ProvidersError::TooLarge`].
    pub fn parse(
        text: &str,
        format: Format,
        file: &str,
    ) -> Result<ProvidersConfig, ProvidersError> {
        if text.len() > MAX_PROVIDERS_BYTES {
            return Err(ProvidersError::TooLarge {
                file: file.into(),
                limit: MAX_PROVIDERS_BYTES,
            });
        }
        let err = |line, column, field: String, message: String| ProvidersError::Parse {
            file: file.into(),
            format,
            line,
            column,
            field: field_path(field),
            message: bare_message(&message),
        };
        if text.trim().is_empty() {
            return Err(err(
                None,
                None,
                String::new(),
                "the file is empty: map the plan's resources (see the dr-providers README), or write `default: simulated`".into(),
            ));
        }
        match format {
            Format::Yaml => {
                let de = serde_yaml_ng::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let field = e.path().to_string();
                    let inner = e.into_inner();
                    let loc = inner.location();
                    let message = inner.to_string();
                    // The YAML parser prefixes its own path; keep one.
                    let message = match message.split_once(": ") {
                        Some((prefix, rest)) if field.starts_with(prefix) => rest.to_string(),
                        _ => message,
                    };
                    err(
                        loc.as_ref().map(|l| l.line()),
                        loc.as_ref().map(|l| l.column()),
                        field,
                        message,
                    )
                })
            }
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let field = e.path().to_string();
                    let inner = e.into_inner();
                    err(
                        Some(inner.line()),
                        Some(inner.column()),
                        field,
                        inner.to_string(),
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
                    err(line, column, field, inner.message().to_string())
                })
            }
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
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

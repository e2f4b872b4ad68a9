//! Loading a providers file from YAML, TOML or JSON, with errors that point at the fault.

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
        use dr_core::document::ReadError;
        let file = path.display().to_string();
        let format = Format::from_path(path)
            .ok_or_else(|| ProvidersError::UnknownFormat { file: file.clone() })?;
        let text = dr_core::document::read(path, MAX_PROVIDERS_BYTES, "a providers file").map_err(
            |e| match e {
                ReadError::Io(source) => ProvidersError::Read {
                    file: file.clone(),
                    source,
                },
                ReadError::TooLarge => ProvidersError::TooLarge {
                    file: file.clone(),
                    limit: MAX_PROVIDERS_BYTES,
                },
                ReadError::NotUtf8(f) => ProvidersError::Parse {
                    file: file.clone(),
                    format,
                    line: f.line,
                    column: f.column,
                    field: f.field,
                    message: f.message,
                },
            },
        )?;
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
        if text.trim().is_empty() {
            return Err(ProvidersError::Parse {
                file: file.into(),
                format,
                line: None,
                column: None,
                field: None,
                message: "the file is empty: map the plan's resources (see the dr-providers README), or write `default: simulated`".into(),
            });
        }
        dr_core::document::deserialize(text, format).map_err(|f| ProvidersError::Parse {
            file: file.into(),
            format,
            line: f.line,
            column: f.column,
            field: f.field,
            message: f.message,
        })
    }
}

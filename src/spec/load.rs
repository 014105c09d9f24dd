//! Reading spec text (YAML or JSON) into a JSON tree.

use std::path::Path;

use serde_json::Value;

use super::SpecError;

/// Parses spec text, choosing JSON when the text starts like a JSON object and YAML otherwise.
///
/// YAML is read through `serde-saphyr`, which keeps integers that fit in `i64`/`u64` exact and
/// turns larger ones (the upstream file has `-9223372036854776000`) into `f64` instead of failing.
pub fn parse(text: &str) -> Result<Value, SpecError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| SpecError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?
    } else {
        serde_saphyr::from_str(trimmed).map_err(|e| SpecError::Parse {
            format: "YAML",
            message: e.to_string(),
        })?
    };
    if value.is_object() {
        Ok(value)
    } else {
        // A bare scalar or list parses but can never be an OpenAPI document.
        Err(SpecError::Malformed {
            pointer: String::new(),
            reason: "the document is not a mapping".to_string(),
        })
    }
}

/// Reads and parses a spec file.
pub fn read(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text)
}

//! Reading spec text (YAML or JSON) into a JSON tree, from a file or a URL.

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

/// The most bytes a fetched spec may have; OpenAI's whole spec is about 3 MB.
pub const MAX_FETCHED_SPEC: usize = 64 << 20;

/// Fetches spec text from an http(s) URL, refusing an answer that is not `200` or
/// grows past [`MAX_FETCHED_SPEC`].
pub async fn fetch(url: &str) -> Result<String, SpecError> {
    let failed = |reason: String| SpecError::Fetch {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut answer = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !answer.status().is_success() {
        return Err(failed(format!("HTTP {}", answer.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| failed(e.to_string()))? {
        if body.len() + chunk.len() > MAX_FETCHED_SPEC {
            return Err(failed(format!("larger than {MAX_FETCHED_SPEC} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| failed("not UTF-8 text".into()))
}

/// Refuses a document without a `paths` mapping: whatever else it holds, it describes
/// no operation, and a diff against it would report every operation removed.
pub fn check_paths(spec: &Value) -> Result<(), SpecError> {
    if spec.get("paths").is_some_and(Value::is_object) {
        Ok(())
    } else {
        Err(SpecError::Malformed {
            pointer: "/paths".into(),
            reason: "missing or not a mapping".into(),
        })
    }
}

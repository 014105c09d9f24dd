//! The validation layer, shared by the client and the emulator.
//!
//! - [`rules`]: what the API refuses, checked before a request is sent.
//! - [`schema`]: response checks' modes and findings, and the spec's schemas
//!   as JSON Schema.
//! - `compiled`: every response body checked against those schemas
//!   (feature `schema`, on by default; without it an answer is checked by
//!   the generated types' decoders and the semantic checks only).
//! - [`semantic`]: what each operation's answer must say beyond its schema.
//! - [`answers`]: what an answer must say about the request it answers.
//!
//! # Request rules
//!
//! | name | rule |
//! |---|---|
//! | `request.field.required` | A field the spec requires is present. |
//! | `request.field.type` | A field has the JSON type the spec declares. |
//! | `request.field.known` | No field beyond those the spec declares. |
//! | `create.filename.not_empty` | `filename` is not empty. |
//! | `create.filename.no_path_separator` | `filename` holds no `/` or `\`. |
//! | `create.filename.no_control_chars` | `filename` holds no control characters. |
//! | `create.purpose.accepted` | `purpose` is one the spec lists for `POST /uploads`. |
//! | `create.bytes.positive` | `bytes` is greater than zero. |
//! | `create.bytes.max_8gb` | `bytes` is at most 8 GB. |
//! | `create.mime_type.well_formed` | `mime_type` is `type/subtype`. |
//! | `create.mime_type.matches_purpose` | `batch` and `fine-tune` take JSON Lines. |
//! | `create.expires_after.anchor` | `expires_after.anchor` is `created_at`. |
//! | `create.expires_after.seconds` | `expires_after.seconds` is within 3600..=2592000. |
//! | `part.data.not_empty` | A part holds at least one byte. |
//! | `part.data.max_64mb` | A part holds at most 64 MB. |
//! | `upload.status.pending` | Parts and completion go to a pending Upload only. |
//! | `upload.not_expired` | The Upload has not passed its `expires_at`. |
//! | `part.total.max_8gb` | The parts so far hold at most 8 GB; `bytes` is checked at completion. |
//! | `complete.part_ids.not_empty` | `part_ids` lists at least one part. |
//! | `complete.part_ids.unique` | `part_ids` lists no part twice. |
//! | `complete.part_ids.belong` | Every listed id is a part of this Upload. |
//! | `complete.part_ids.sum_equals_bytes` | The listed parts add up to the declared `bytes`. |
//! | `complete.md5.format` | `md5` is 32 hexadecimal digits. |
//! | `cancel.status.not_completed` | A completed Upload cannot be cancelled. |
//! | `path.id.not_empty` | An id in the path (`upload_id`, `file_id`) is not empty. |
//! | `path.id.segment` | An id in the path is one segment: not `.`, `..`, nor holding `/`, `\`, `?`, `#`, `%` or a control character. |
//! | `list.limit.range` | `limit` of `GET /files` is within 1..=10000. |
//!
//! The first three are read from the spec's schema of each request body.
//!
//! The rules that need an Upload's state (`upload.*`, `part.total.*`,
//! `complete.part_ids.belong`, `…sum_equals_bytes`, `cancel.*`) run when the
//! caller passes a [`TrackedUpload`]: the emulator does.
//!
//! # Response checks
//!
//! In [`ValidationMode::Strict`] any departure from the spec is an error; in
//! [`ValidationMode::Lenient`] (the default) unknown fields and unknown enum
//! values are logged as warnings and kept. Beyond the schema: a new Upload is
//! `pending`, a cancelled one `cancelled`, a completed one `completed` with a
//! `file` whose `bytes` equal the Upload's (always errors); ids carry their
//! prefixes (`upload_`, `part_`, `file-`) and `expires_at` is not before
//! `created_at` (errors in strict mode, warnings in lenient mode).
//!
//! ```
//! use openai_uploads::validate::{rules, ValidationMode};
//! # #[cfg(feature = "schema")]
//! use openai_uploads::validate::SpecSchemas;
//! use serde_json::json;
//!
//! let refused = rules::check_create_upload(&json!({
//!     "filename": "train.jsonl", "purpose": "fine-tune",
//!     "bytes": 0, "mime_type": "text/jsonl",
//! }));
//! assert_eq!(refused[0].rule.name(), "create.bytes.positive");
//!
//! # #[cfg(feature = "schema")] {
//! let report = SpecSchemas::vendored().check(
//!     "UploadPart",
//!     &json!({"id": "part_1", "object": "upload.part", "created_at": "soon", "upload_id": "upload_1"}),
//!     ValidationMode::Strict,
//! );
//! assert_eq!(report.violations[0].to_string(), "/created_at: expected integer, found string");
//! # }
//! ```

pub mod answers;
#[cfg(feature = "schema")]
pub mod compiled;
pub mod rules;
pub mod schema;
pub mod semantic;

pub use answers::AnswerMismatch;
#[cfg(feature = "schema")]
pub use compiled::SpecSchemas;
pub use rules::{Rule, RuleViolation, TrackedUpload, UploadPhase};
pub use schema::{Conformance, SchemaViolation, ValidationMode};
pub use semantic::Operation;

use serde_json::Value;

/// Checks a response body of `operation` with HTTP `status` in `mode`:
/// schema conformance, then, for a success, the operation's semantics.
pub fn check_response(
    operation: Operation,
    status: u16,
    body: &Value,
    mode: ValidationMode,
) -> Conformance {
    let schema = if (200..300).contains(&status) {
        operation.success_schema()
    } else {
        Some("ErrorResponse")
    };
    let Some(schema) = schema else {
        return Conformance::default();
    };
    let mut report = check_schema(schema, body, mode);
    if (200..300).contains(&status) && report.is_ok() {
        semantic::check(operation, body, mode, &mut report);
    }
    report
}

/// Checks `body` against component `schema` of the vendored spec.
#[cfg(feature = "schema")]
fn check_schema(schema: &str, body: &Value, mode: ValidationMode) -> Conformance {
    SpecSchemas::vendored().check(schema, body, mode)
}

/// Without the compiled schemas, only the error envelope is checked here,
/// by decoding it; a successful answer is checked by the generated type's
/// decoder and by the semantic checks.
#[cfg(not(feature = "schema"))]
fn check_schema(schema: &str, body: &Value, _mode: ValidationMode) -> Conformance {
    let mut report = Conformance::default();
    if schema == "ErrorResponse"
        && let Err(e) = serde_json::from_value::<crate::types::ErrorResponse>(body.clone())
    {
        report.violations.push(SchemaViolation {
            pointer: String::new(),
            message: format!("not the error envelope: {e}"),
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_answer_must_be_the_envelope_with_or_without_compiled_schemas() {
        let envelope = json!({"error": {"type": "invalid_request_error", "message": "no", "param": null, "code": null}});
        let op = Operation::RetrieveFile;
        assert!(check_response(op, 404, &envelope, ValidationMode::Lenient).is_ok());
        let other = json!({"detail": "not found"});
        assert!(!check_response(op, 404, &other, ValidationMode::Lenient).is_ok());
    }
}

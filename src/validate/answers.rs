//! Answers checked against the request they answer.
//!
//! An answer can conform to the spec and still be about something else: an
//! Upload of another size, another Upload's part, another Upload's
//! completion. Each check here compares one field of an answer with what
//! was sent, and a disagreement names the field, the value sent and the
//! value received.
//!
//! | name | rule |
//! |---|---|
//! | `answer.create.filename` | A new Upload carries the `filename` sent. |
//! | `answer.create.purpose` | A new Upload carries the `purpose` sent. |
//! | `answer.create.bytes` | A new Upload declares the `bytes` sent. |
//! | `answer.part.upload_id` | A part belongs to the Upload it was sent to. |
//! | `answer.complete.id` | A completion answers for the Upload completed. |
//! | `answer.complete.filename` | The completed Upload keeps its `filename`. |
//! | `answer.complete.purpose` | The completed Upload keeps its `purpose`. |
//! | `answer.complete.bytes` | The completed Upload keeps its `bytes`. |
//! | `answer.complete.file.bytes` | The completed Upload's File holds its `bytes`. |
//! | `answer.complete.file.filename` | The completed Upload's File keeps its `filename`. |
//! | `answer.cancel.id` | A cancellation answers for the Upload cancelled. |

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::generated::types;

/// One field of an answer that disagrees with the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AnswerMismatch {
    /// The rule's name (`answer.complete.bytes`).
    pub rule: String,
    /// The field of the answer (`bytes`, `file.bytes`, `upload_id`).
    pub field: String,
    /// What was sent (or is known of the Upload).
    pub sent: String,
    /// What the answer says.
    pub received: String,
}

impl fmt::Display for AnswerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: sent {}, received {} (rule {})",
            self.field, self.sent, self.received, self.rule
        )
    }
}

/// What a client knows of an Upload it created: what it will compare a
/// completion's answer with.
#[derive(Clone, Copy, Debug)]
pub struct SentUpload<'a> {
    /// The Upload's id.
    pub id: &'a str,
    /// The `filename` it was created with.
    pub filename: &'a str,
    /// The `purpose` it was created with.
    pub purpose: &'a str,
    /// The `bytes` it was created with.
    pub bytes: i64,
}

fn compare(out: &mut Vec<AnswerMismatch>, rule: &str, field: &str, sent: String, received: String) {
    if sent != received {
        out.push(AnswerMismatch {
            rule: rule.to_string(),
            field: field.to_string(),
            sent,
            received,
        });
    }
}

/// Checks a `POST /uploads` answer against its request.
pub fn check_created(
    request: &types::CreateUploadRequest,
    answer: &types::Upload,
) -> Vec<AnswerMismatch> {
    let mut out = Vec::new();
    compare(
        &mut out,
        "answer.create.filename",
        "filename",
        request.filename.clone(),
        answer.filename.clone(),
    );
    compare(
        &mut out,
        "answer.create.purpose",
        "purpose",
        request.purpose.to_string(),
        answer.purpose.clone(),
    );
    compare(
        &mut out,
        "answer.create.bytes",
        "bytes",
        request.bytes.to_string(),
        answer.bytes.to_string(),
    );
    out
}

/// Checks a `POST /uploads/{upload_id}/parts` answer: the part is the
/// Upload's it was sent to.
pub fn check_part(upload_id: &str, answer: &types::UploadPart) -> Vec<AnswerMismatch> {
    let mut out = Vec::new();
    compare(
        &mut out,
        "answer.part.upload_id",
        "upload_id",
        upload_id.to_string(),
        answer.upload_id.clone(),
    );
    out
}

/// Checks a `POST /uploads/{upload_id}/complete` answer against the Upload
/// completed, and its File against the Upload.
pub fn check_completed(sent: SentUpload<'_>, answer: &types::Upload) -> Vec<AnswerMismatch> {
    let mut out = Vec::new();
    compare(
        &mut out,
        "answer.complete.id",
        "id",
        sent.id.to_string(),
        answer.id.clone(),
    );
    compare(
        &mut out,
        "answer.complete.filename",
        "filename",
        sent.filename.to_string(),
        answer.filename.clone(),
    );
    compare(
        &mut out,
        "answer.complete.purpose",
        "purpose",
        sent.purpose.to_string(),
        answer.purpose.clone(),
    );
    compare(
        &mut out,
        "answer.complete.bytes",
        "bytes",
        sent.bytes.to_string(),
        answer.bytes.to_string(),
    );
    if let Some(file) = &answer.file {
        compare(
            &mut out,
            "answer.complete.file.bytes",
            "file.bytes",
            sent.bytes.to_string(),
            file.bytes.to_string(),
        );
        compare(
            &mut out,
            "answer.complete.file.filename",
            "file.filename",
            sent.filename.to_string(),
            file.filename.clone(),
        );
    }
    out
}

/// Checks a `POST /uploads/{upload_id}/cancel` answer: it is about the
/// Upload cancelled.
pub fn check_cancelled(upload_id: &str, answer: &types::Upload) -> Vec<AnswerMismatch> {
    let mut out = Vec::new();
    compare(
        &mut out,
        "answer.cancel.id",
        "id",
        upload_id.to_string(),
        answer.id.clone(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upload(id: &str, bytes: i64, file_bytes: Option<i64>) -> types::Upload {
        let file = file_bytes.map(|b| {
            json!({"id": "file-1", "object": "file", "bytes": b, "created_at": 1,
                   "filename": "a.jsonl", "purpose": "batch", "status": "processed"})
        });
        serde_json::from_value(json!({
            "id": id, "object": "upload", "bytes": bytes, "created_at": 1,
            "expires_at": 3601, "filename": "a.jsonl", "purpose": "batch",
            "status": if file.is_some() { "completed" } else { "pending" },
            "file": file,
        }))
        .unwrap()
    }

    fn rules(found: &[AnswerMismatch]) -> Vec<&str> {
        found.iter().map(|m| m.rule.as_str()).collect()
    }

    #[test]
    fn a_create_answer_is_compared_field_by_field() {
        let request: types::CreateUploadRequest = serde_json::from_value(json!({
            "filename": "a.jsonl", "purpose": "batch", "bytes": 10, "mime_type": "text/jsonl"
        }))
        .unwrap();
        assert!(check_created(&request, &upload("upload_1", 10, None)).is_empty());
        let found = check_created(&request, &upload("upload_1", 11, None));
        assert_eq!(rules(&found), ["answer.create.bytes"]);
        assert_eq!(
            found[0].to_string(),
            "`bytes`: sent 10, received 11 (rule answer.create.bytes)"
        );
    }

    #[test]
    fn a_completion_names_each_field_that_disagrees() {
        let sent = SentUpload {
            id: "upload_1",
            filename: "a.jsonl",
            purpose: "batch",
            bytes: 10,
        };
        assert!(check_completed(sent, &upload("upload_1", 10, Some(10))).is_empty());
        let found = check_completed(sent, &upload("upload_2", 10, Some(9)));
        assert_eq!(
            rules(&found),
            ["answer.complete.id", "answer.complete.file.bytes"]
        );
        assert_eq!(
            rules(&check_cancelled("upload_1", &upload("upload_2", 10, None))),
            ["answer.cancel.id"]
        );
    }

    #[test]
    fn a_part_of_another_upload_is_named() {
        let part: types::UploadPart = serde_json::from_value(json!({
            "id": "part_1", "object": "upload.part", "created_at": 1, "upload_id": "upload_2"
        }))
        .unwrap();
        assert!(check_part("upload_2", &part).is_empty());
        let found = check_part("upload_1", &part);
        assert_eq!(rules(&found), ["answer.part.upload_id"]);
        assert_eq!(
            (found[0].sent.as_str(), found[0].received.as_str()),
            ("upload_1", "upload_2")
        );
    }
}

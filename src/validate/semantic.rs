//! Checks the schema cannot express: what each operation's answer must say.

use serde_json::Value;

use super::schema::{Conformance, SchemaViolation, ValidationMode};

/// Operations whose answers are checked, by the names progenitor gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /uploads`
    CreateUpload,
    /// `POST /uploads/{upload_id}/parts`
    AddUploadPart,
    /// `POST /uploads/{upload_id}/complete`
    CompleteUpload,
    /// `POST /uploads/{upload_id}/cancel`
    CancelUpload,
    /// `GET /files`
    ListFiles,
    /// `GET /files/{file_id}`
    RetrieveFile,
    /// `DELETE /files/{file_id}`
    DeleteFile,
    /// `GET /files/{file_id}/content`
    DownloadFile,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 8] = [
        Self::CreateUpload,
        Self::AddUploadPart,
        Self::CompleteUpload,
        Self::CancelUpload,
        Self::ListFiles,
        Self::RetrieveFile,
        Self::DeleteFile,
        Self::DownloadFile,
    ];

    /// The operation named `id` (progenitor's snake case, e.g. `create_upload`).
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.id() == id)
    }

    /// The operation's id in snake case (`create_upload`), as its method is named.
    pub fn id(self) -> &'static str {
        match self {
            Self::CreateUpload => "create_upload",
            Self::AddUploadPart => "add_upload_part",
            Self::CompleteUpload => "complete_upload",
            Self::CancelUpload => "cancel_upload",
            Self::ListFiles => "list_files",
            Self::RetrieveFile => "retrieve_file",
            Self::DeleteFile => "delete_file",
            Self::DownloadFile => "download_file",
        }
    }

    /// The component schema of a successful answer; `None` for raw bytes.
    pub fn success_schema(self) -> Option<&'static str> {
        match self {
            Self::CreateUpload | Self::CompleteUpload | Self::CancelUpload => Some("Upload"),
            Self::AddUploadPart => Some("UploadPart"),
            Self::ListFiles => Some("ListFilesResponse"),
            Self::RetrieveFile => Some("OpenAIFile"),
            Self::DeleteFile => Some("DeleteFileResponse"),
            Self::DownloadFile => None,
        }
    }
}

/// Adds the semantic checks of `operation`'s successful answer to `report`.
///
/// Broken promises of the API (a completed Upload without its File) are
/// violations in every mode; conventions (id prefixes, `expires_at` after
/// `created_at`) are violations in strict mode and warnings otherwise.
pub fn check(operation: Operation, body: &Value, mode: ValidationMode, report: &mut Conformance) {
    if mode == ValidationMode::Off {
        return;
    }
    let mut convention = |pointer: &str, message: String| {
        let v = SchemaViolation {
            pointer: pointer.to_string(),
            message,
        };
        match mode {
            ValidationMode::Strict => report.violations.push(v.clone()),
            _ => report.warnings.push(v),
        }
    };
    match operation {
        Operation::CreateUpload | Operation::CompleteUpload | Operation::CancelUpload => {
            upload_conventions(body, "", &mut convention);
            if let Some(file) = body.get("file").filter(|f| !f.is_null()) {
                file_conventions(file, "/file", &mut convention);
            }
        }
        Operation::AddUploadPart => {
            prefix(body, "", "id", "part_", &mut convention);
            prefix(body, "", "upload_id", "upload_", &mut convention);
        }
        Operation::ListFiles => {
            let files = body.get("data").and_then(Value::as_array);
            for (i, file) in files.into_iter().flatten().enumerate() {
                file_conventions(file, &format!("/data/{i}"), &mut convention);
            }
        }
        Operation::RetrieveFile => file_conventions(body, "", &mut convention),
        Operation::DeleteFile => prefix(body, "", "id", "file-", &mut convention),
        Operation::DownloadFile => {}
    }

    let mut broken = |pointer: &str, message: String| {
        report.violations.push(SchemaViolation {
            pointer: pointer.to_string(),
            message,
        })
    };
    let status = body.get("status").and_then(Value::as_str);
    match operation {
        Operation::CreateUpload if status != Some("pending") => broken(
            "/status",
            format!("a new Upload is pending, found {status:?}"),
        ),
        Operation::CancelUpload if status != Some("cancelled") => broken(
            "/status",
            format!("a cancelled Upload says cancelled, found {status:?}"),
        ),
        Operation::CompleteUpload => {
            if status != Some("completed") {
                broken(
                    "/status",
                    format!("a completed Upload says completed, found {status:?}"),
                );
            }
            match body.get("file").filter(|f| !f.is_null()) {
                None => broken("/file", "a completed Upload carries its File".into()),
                Some(file) => {
                    let declared = body.get("bytes").and_then(Value::as_i64);
                    let stored = file.get("bytes").and_then(Value::as_i64);
                    if declared != stored {
                        broken(
                            "/file/bytes",
                            format!(
                                "the File holds {stored:?} bytes, the Upload declared {declared:?}"
                            ),
                        );
                    }
                }
            }
        }
        _ => {}
    }
}

fn upload_conventions(body: &Value, at: &str, report: &mut impl FnMut(&str, String)) {
    prefix(body, at, "id", "upload_", report);
    expiry_after_creation(body, at, report);
}

fn file_conventions(body: &Value, at: &str, report: &mut impl FnMut(&str, String)) {
    prefix(body, at, "id", "file-", report);
    expiry_after_creation(body, at, report);
}

fn prefix(
    object: &Value,
    at: &str,
    field: &str,
    expected: &str,
    report: &mut impl FnMut(&str, String),
) {
    if let Some(id) = object.get(field).and_then(Value::as_str)
        && !id.starts_with(expected)
    {
        report(
            &format!("{at}/{field}"),
            format!("id {id:?} lacks the prefix `{expected}`"),
        );
    }
}

fn expiry_after_creation(body: &Value, at: &str, report: &mut impl FnMut(&str, String)) {
    let created = body.get("created_at").and_then(Value::as_i64);
    let expires = body.get("expires_at").and_then(Value::as_i64);
    if let (Some(created), Some(expires)) = (created, expires)
        && expires < created
    {
        report(
            &format!("{at}/expires_at"),
            format!("expires_at {expires} is before created_at {created}"),
        );
    }
}

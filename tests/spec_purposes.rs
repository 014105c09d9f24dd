#![cfg(feature = "schema")]
//! Every purpose `POST /uploads` accepts comes back in the File's answers, and those
//! answers pass the strict conformance check.

mod common;

use openai_uploads::types::{CreateUploadRequestPurpose, FilePurpose, OpenAiFile};
use openai_uploads::validate::{Operation, ValidationMode, check_response};
use serde_json::{Value, json};

fn file(purpose: &str) -> Value {
    json!({
        "id": "file-abc123",
        "object": "file",
        "bytes": 146,
        "created_at": 1_719_186_911,
        "filename": "eval.jsonl",
        "purpose": purpose,
        "status": "processed",
    })
}

fn completed(purpose: &str) -> Value {
    json!({
        "id": "upload_abc123",
        "object": "upload",
        "bytes": 146,
        "created_at": 1_719_184_911,
        "expires_at": 1_719_188_511,
        "filename": "eval.jsonl",
        "purpose": purpose,
        "status": "completed",
        "file": file(purpose),
    })
}

/// The purposes the generated request type accepts.
fn request_purposes() -> Vec<String> {
    let schema = schemars::schema_for!(CreateUploadRequestPurpose);
    let values = schema
        .schema
        .enum_values
        .expect("the request's purpose is a closed enum");
    values
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn an_answer_whose_file_purpose_is_evals_passes_the_strict_check() {
    let report = check_response(
        Operation::RetrieveFile,
        200,
        &file("evals"),
        ValidationMode::Strict,
    );
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let report = check_response(
        Operation::CompleteUpload,
        200,
        &completed("evals"),
        ValidationMode::Strict,
    );
    assert!(report.is_ok(), "{:?}", report.violations);
    let decoded: OpenAiFile = serde_json::from_value(file("evals")).expect("decodes");
    assert_eq!(decoded.purpose, FilePurpose::Evals);
}

#[test]
fn every_purpose_an_upload_accepts_is_echoed_back_strictly() {
    let purposes = request_purposes();
    assert!(purposes.iter().any(|p| p == "user_data") && purposes.iter().any(|p| p == "evals"));
    for purpose in &purposes {
        for (operation, body) in [
            (Operation::RetrieveFile, file(purpose)),
            (Operation::CompleteUpload, completed(purpose)),
            (
                Operation::ListFiles,
                json!({
                    "object": "list", "data": [file(purpose)],
                    "first_id": "file-abc123", "last_id": "file-abc123", "has_more": false,
                }),
            ),
        ] {
            let report = check_response(operation, 200, &body, ValidationMode::Strict);
            assert!(
                report.is_ok(),
                "{purpose} in {operation}: {:?}",
                report.violations
            );
        }
        assert!(FilePurpose::from(purpose.as_str()).is_known(), "{purpose}");
    }
}

#[test]
fn a_purpose_no_upload_accepts_still_departs_from_the_spec() {
    let report = check_response(
        Operation::RetrieveFile,
        200,
        &file("not-a-purpose"),
        ValidationMode::Strict,
    );
    assert!(!report.is_ok());
}

/// A strict client uploads for each purpose the request accepts, to the emulator, and
/// reads the File back: no answer departs from the spec.
#[cfg(feature = "emulator")]
#[tokio::test]
async fn strict_uploads_for_every_purpose_complete_and_read_back() {
    use openai_uploads::Config;
    use openai_uploads::upload::Purpose;

    let emulator = common::emulator_with(Default::default()).await;
    let client = Config::new()
        .with_api_key("any-key")
        .with_base_url(emulator.base_url())
        .with_validation(ValidationMode::Strict)
        .client()
        .expect("client builds");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = common::write_file(dir.path(), "data.jsonl", b"{\"a\": 1}\n");
    for purpose in request_purposes() {
        let upload = client
            .upload_file(&path)
            .purpose(Purpose::try_from(purpose.as_str()).expect("a request purpose"))
            .mime_type("application/jsonl")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{purpose}: {e}"));
        let file = upload.file.expect("a completed Upload carries its File");
        assert_eq!(file.purpose.as_str(), purpose);
        assert!(file.purpose.is_known(), "{purpose}");
        let read = client
            .retrieve_file(&file.id)
            .await
            .unwrap_or_else(|e| panic!("{purpose}: {e}"));
        assert_eq!(read.purpose.as_str(), purpose);
    }
}

/// `openai --strict uploads upload --purpose evals|user_data` against the embedded
/// emulator: exit 0, the File carries the purpose, and nothing is said on standard error.
#[cfg(feature = "cli")]
#[test]
fn the_command_uploads_for_added_purposes_strictly_without_a_warning() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = common::write_file(dir.path(), "data.jsonl", b"{\"a\": 1}\n");
    for purpose in ["evals", "user_data"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_openai"))
            .args([
                "--emulator",
                "--strict",
                "--format",
                "json",
                "uploads",
                "upload",
            ])
            .arg(&path)
            .args(["--purpose", purpose])
            .output()
            .expect("the command runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{purpose}: {stderr}");
        assert!(stderr.trim().is_empty(), "{purpose}: {stderr}");
        let upload: Value = serde_json::from_slice(&output.stdout).expect("a JSON Upload");
        assert_eq!(upload["status"], "completed");
        assert_eq!(upload["file"]["purpose"], purpose);
    }
}

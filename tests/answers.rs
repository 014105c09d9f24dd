#![cfg(feature = "emulator")]
//! Answers that conform to the spec but are about something else: a lying
//! proxy in front of the emulator rewrites chosen answers, and the one-call
//! upload must stop with an error naming the field, what was sent and what
//! came back, never with a completed Upload.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::sync::Arc;

use axum::http::Method;
use openai_uploads::emulator::{Emulator, Faults};
use openai_uploads::upload::{Purpose, UploadBuilder};
use openai_uploads::validate::ValidationMode;
use openai_uploads::{Client, Config, Error};
use proxy::{LyingProxy, Rewrite};

const KEY: &str = "sk-answers-test-secret";
const PART: u64 = 4096;

fn config_at(base_url: &str) -> Config {
    Config::new().with_api_key(KEY).with_base_url(base_url)
}

fn client_at(base_url: &str) -> Client {
    config_at(base_url).client().expect("client builds")
}

fn strict_client_at(base_url: &str) -> Client {
    config_at(base_url)
        .with_validation(ValidationMode::Strict)
        .client()
        .expect("client builds")
}

/// An upload of `path` in parts of `PART`.
fn upload(client: &Client, path: &std::path::Path) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
}

/// Uploads 3.5 parts of bytes through a proxy rewriting answers with
/// `rewrite`, and returns the error and the emulator.
async fn upload_through(rewrite: Rewrite) -> (Error, Emulator, Vec<u8>) {
    let emulator = common::emulator_with(Faults::default()).await;
    let proxy = LyingProxy::start(emulator.base_url(), rewrite).await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(3 * PART + PART / 2, 41);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let error = upload(&client_at(&proxy.base_url), &path)
        .concurrency(2)
        .send()
        .await
        .expect_err("a disagreeing answer is no success");
    (error, emulator, bytes)
}

/// The one mismatch of `error`, wherever it is wrapped.
fn mismatch(error: &Error) -> (String, String, String, String) {
    match error {
        Error::Mismatch { mismatches, .. } => {
            assert_eq!(mismatches.len(), 1, "{mismatches:?}");
            let m = &mismatches[0];
            (
                m.rule.clone(),
                m.field.clone(),
                m.sent.clone(),
                m.received.clone(),
            )
        }
        Error::Part { cause, .. } => mismatch(cause),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

fn cancels(emulator: &Emulator) -> Vec<String> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .map(|r| r.path)
        .collect()
}

fn is(method: &Method, path: &str, want: &Method, suffix: &str) -> bool {
    method == want && path.ends_with(suffix)
}

#[tokio::test]
async fn a_create_answer_declaring_another_size_stops_before_any_part_and_cancels() {
    let (error, emulator, bytes) = upload_through(Arc::new(|method, path, value| {
        if is(method, path, &Method::POST, "/v1/uploads") {
            value["bytes"] = (value["bytes"].as_i64().unwrap() + 1).into();
        }
    }))
    .await;
    let (rule, field, sent, received) = mismatch(&error);
    assert_eq!(rule, "answer.create.bytes");
    assert_eq!(field, "bytes");
    assert_eq!(sent, bytes.len().to_string());
    assert_eq!(received, (bytes.len() + 1).to_string());
    let message = error.to_string();
    assert!(
        message.contains("create_upload") && message.contains("`bytes`"),
        "{message}"
    );
    assert!(emulator.received_parts().is_empty(), "no part was sent");
    assert_eq!(
        cancels(&emulator).len(),
        1,
        "the Upload created is cancelled"
    );
}

#[tokio::test]
async fn a_part_answer_of_another_upload_stops_the_upload_and_cancels_it() {
    let (error, emulator, _) = upload_through(Arc::new(|method, path, value| {
        if is(method, path, &Method::POST, "/parts") {
            value["upload_id"] = "upload_someone_else".into();
        }
    }))
    .await;
    let (rule, field, sent, received) = mismatch(&error);
    assert_eq!(
        (rule.as_str(), field.as_str()),
        ("answer.part.upload_id", "upload_id")
    );
    assert!(sent.starts_with("upload_") && sent != received, "{sent}");
    assert_eq!(received, "upload_someone_else");
    assert!(matches!(error, Error::Part { .. }), "{error:?}");
    assert!(emulator.completions().is_empty(), "never completed");
    let cancelled = cancels(&emulator);
    assert_eq!(cancelled, [format!("/v1/uploads/{sent}/cancel")]);
}

#[tokio::test]
async fn a_completion_reporting_one_byte_more_is_an_error_naming_bytes() {
    let (error, emulator, bytes) = upload_through(Arc::new(|method, path, value| {
        if is(method, path, &Method::POST, "/complete") {
            let more = value["bytes"].as_i64().unwrap() + 1;
            value["bytes"] = more.into();
            // The File agrees with the lie, so the spec's own checks pass.
            value["file"]["bytes"] = more.into();
        }
    }))
    .await;
    let Error::Mismatch { mismatches, .. } = &error else {
        panic!("expected a mismatch, got {error:?}");
    };
    let fields: Vec<_> = mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["bytes", "file.bytes"]);
    assert_eq!(mismatches[0].sent, bytes.len().to_string());
    assert_eq!(mismatches[0].received, (bytes.len() + 1).to_string());
    assert_eq!(emulator.completions().len(), 1);
}

#[tokio::test]
async fn a_completion_of_another_upload_is_an_error_naming_each_field() {
    let (error, _emulator, _) = upload_through(Arc::new(|method, path, value| {
        if is(method, path, &Method::POST, "/complete") {
            value["id"] = "upload_other".into();
            value["filename"] = "other.bin".into();
            value["purpose"] = "batch".into();
        }
    }))
    .await;
    let Error::Mismatch { mismatches, .. } = &error else {
        panic!("expected a mismatch, got {error:?}");
    };
    let fields: Vec<_> = mismatches
        .iter()
        .map(|m| (m.field.as_str(), m.received.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("id", "upload_other"),
            ("filename", "other.bin"),
            ("purpose", "batch")
        ]
    );
    assert_eq!(mismatches[1].sent, "data.bin");
    assert_eq!(mismatches[2].sent, "assistants");
}

#[tokio::test]
async fn an_honest_proxy_changes_nothing() {
    let emulator = common::emulator_with(Faults::default()).await;
    let proxy = LyingProxy::start(emulator.base_url(), Arc::new(|_, _, _| {})).await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(3 * PART + 1, 42);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let client = client_at(&proxy.base_url);
    let done = upload(&client, &path)
        .send()
        .await
        .expect("the proxy forwards faithfully");
    let file = done.file.expect("a File");
    assert_eq!(common::download(&client, &file.id).await, bytes);
    assert!(cancels(&emulator).is_empty());
}

#[tokio::test]
async fn strict_mode_on_a_completed_upload_whose_answer_breaks_the_spec_says_completed() {
    let emulator = common::emulator_with(Faults::default()).await;
    let proxy = LyingProxy::start(
        emulator.base_url(),
        Arc::new(|method, path, value| {
            if is(method, path, &Method::POST, "/complete") {
                value["file"]["status"] = "mystery".into();
            }
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(2 * PART, 43);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let error = upload(&strict_client_at(&proxy.base_url), &path)
        .state_file(&state)
        .send()
        .await
        .expect_err("strict mode refuses the answer");
    let Error::CompletedNonConforming {
        upload_id,
        upload: Some(upload),
        violations,
    } = &error
    else {
        panic!("expected a completed Upload with a finding, got {error:?}");
    };
    assert!(error.to_string().contains("completed"), "{error}");
    assert!(
        violations.iter().any(|v| v.pointer == "/file/status"),
        "{violations:?}"
    );
    assert_eq!(&upload.id, upload_id);
    let file = upload.file.as_ref().expect("the File");
    assert_eq!(
        common::download(&client_at(emulator.base_url()), &file.id).await,
        bytes
    );
    assert!(
        cancels(&emulator).is_empty(),
        "a completed Upload is never cancelled"
    );
    assert!(!state.exists(), "nothing is left to resume");
}

#[tokio::test]
async fn strict_mode_refuses_a_field_the_spec_does_not_declare_in_a_completion_answer() {
    // Decoding into the generated Upload drops an undeclared field; the
    // strict check must see the answer as it was received.
    let emulator = common::emulator_with(Faults::default()).await;
    let proxy = LyingProxy::start(
        emulator.base_url(),
        Arc::new(|method, path, value| {
            if is(method, path, &Method::POST, "/complete") {
                value["undeclared_field"] = true.into();
            }
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(2 * PART, 44);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let error = upload(&strict_client_at(&proxy.base_url), &path)
        .send()
        .await
        .expect_err("strict mode refuses an undeclared field");
    let Error::CompletedNonConforming {
        upload: Some(completed),
        violations,
        ..
    } = &error
    else {
        panic!("expected a completed Upload with a finding, got {error:?}");
    };
    assert!(
        violations
            .iter()
            .any(|v| format!("{} {}", v.pointer, v.message).contains("undeclared_field")),
        "{violations:?}"
    );
    assert!(completed.file.is_some(), "the completed Upload is kept");
    assert!(cancels(&emulator).is_empty());

    // The same answer passes a lenient client.
    let lenient = upload(&client_at(&proxy.base_url), &path)
        .send()
        .await
        .expect("lenient mode takes it");
    assert!(lenient.file.is_some());
}

#[tokio::test]
async fn strict_mode_refusing_a_part_answer_does_not_call_the_part_failed() {
    let emulator = common::emulator_with(Faults::default()).await;
    let proxy = LyingProxy::start(
        emulator.base_url(),
        Arc::new(|method, path, value| {
            if is(method, path, &Method::POST, "/parts") {
                value["undeclared"] = true.into();
            }
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", &common::content(2 * PART, 44));
    let error = upload(&strict_client_at(&proxy.base_url), &path)
        .concurrency(1)
        .send()
        .await
        .expect_err("strict mode refuses the answer");
    assert!(
        matches!(
            error,
            Error::Conformance {
                operation: openai_uploads::validate::Operation::AddUploadPart,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("undeclared"), "{message}");
    assert!(
        !message.contains("failed"),
        "the part was stored: {message}"
    );
    assert!(
        !emulator.received_parts().is_empty(),
        "the server took a part"
    );
    assert!(emulator.completions().is_empty());
    assert_eq!(cancels(&emulator).len(), 1, "strict mode stops the upload");
}

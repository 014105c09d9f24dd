#![cfg(all(feature = "emulator", feature = "schema"))]
//! The emulator over real loopback HTTP: the client against it, and raw
//! requests for what the client's own pre-flight checks would never send.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use openai_uploads::emulator::{Emulator, EmulatorConfig, FaultScope, Faults};
use openai_uploads::types::{
    CompleteUploadRequest, CreateUploadRequest, CreateUploadRequestPurpose, Upload, UploadStatus,
};
use openai_uploads::validate::{SpecSchemas, ValidationMode};
use openai_uploads::{Client, Config, Error, PartBody};
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

async fn emulator() -> Emulator {
    common::emulator_with(Faults::default()).await
}

fn client(emulator: &Emulator) -> Client {
    common::client_of(emulator, "test-key")
}

fn upload_request(bytes: u64) -> CreateUploadRequest {
    CreateUploadRequest {
        filename: "train.jsonl".into(),
        purpose: CreateUploadRequestPurpose::FineTune,
        bytes: bytes as i64,
        mime_type: "text/jsonl".into(),
        expires_after: None,
    }
}

async fn create(client: &Client, bytes: u64) -> Upload {
    client
        .create_upload(&upload_request(bytes))
        .await
        .expect("upload created")
        .into_inner()
}

async fn add_part(client: &Client, upload_id: &str, data: &'static [u8]) -> String {
    client
        .add_upload_part(upload_id, PartBody::from_bytes(data))
        .await
        .expect("part stored")
        .into_inner()
        .id
}

fn complete_request(part_ids: &[&str], md5: Option<String>) -> CompleteUploadRequest {
    CompleteUploadRequest {
        part_ids: part_ids.iter().map(|id| id.to_string()).collect(),
        md5,
    }
}

/// Completes `upload_id` with `part_ids` and an optional md5, which must succeed.
async fn complete(
    client: &Client,
    upload_id: &str,
    part_ids: &[&str],
    md5: Option<String>,
) -> Upload {
    client
        .complete_upload(upload_id, &complete_request(part_ids, md5))
        .await
        .expect("completed")
        .into_inner()
}

async fn download_error(client: &Client, file_id: &str) -> Error {
    match client.download_file(file_id).await {
        Ok(_) => panic!("{file_id} downloaded"),
        Err(e) => e,
    }
}

/// The crate's error for a failed call, which must be the API's envelope.
fn api_error(error: Error) -> (u16, openai_uploads::types::ApiError) {
    let envelope = error
        .api_error()
        .unwrap_or_else(|| panic!("expected an API error, got {error:?}"))
        .clone();
    (error.status().expect("an API error has a status"), envelope)
}

fn assert_api_error(error: Error, status: u16, param: Option<&str>, code: &str) {
    let (got_status, error) = api_error(error);
    assert_eq!(got_status, status, "{error:?}");
    assert_eq!(error.param.as_deref(), param, "{error:?}");
    assert_eq!(error.code.as_deref(), Some(code), "{error:?}");
}

/// A raw answer: status, headers and the body parsed as JSON.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Raw {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("answer body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {bytes:?}"));
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts an error envelope that conforms to the spec, and returns its `error`.
    fn envelope(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        let report =
            SpecSchemas::vendored().check("ErrorResponse", &self.body, ValidationMode::Strict);
        assert!(report.is_ok(), "{:?}: {}", report.violations, self.body);
        let error = &self.body["error"];
        assert_eq!(error["type"], kind, "{}", self.body);
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{}",
            self.body
        );
        error
    }

    /// Asserts a 400 `invalid_request_error` naming `param` and `code`.
    fn refused(&self, param: &str, code: Option<&str>) {
        let error = self.envelope(400, "invalid_request_error");
        assert_eq!(error["param"], param, "{}", self.body);
        assert_eq!(error["code"].as_str(), code, "{}", self.body);
    }
}

fn raw_client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn raw_post_json(emulator: &Emulator, path: &str, body: &Value) -> Raw {
    let response = raw_client()
        .post(format!("{}{path}", emulator.base_url()))
        .bearer_auth("test-key")
        .json(body)
        .send()
        .await
        .expect("request sent");
    Raw::from(response).await
}

async fn raw_post_form(
    emulator: &Emulator,
    upload_id: &str,
    form: reqwest::multipart::Form,
) -> Raw {
    let response = raw_client()
        .post(format!("{}/uploads/{upload_id}/parts", emulator.base_url()))
        .bearer_auth("test-key")
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    Raw::from(response).await
}

fn data_form(data: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "data",
        reqwest::multipart::Part::bytes(data).file_name("part"),
    )
}

fn valid_create() -> Value {
    json!({
        "filename": "train.jsonl",
        "purpose": "fine-tune",
        "bytes": 100,
        "mime_type": "text/jsonl",
    })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test]
async fn create_refuses_every_broken_rule() {
    let emulator = emulator().await;
    let cases = [
        (
            with(valid_create(), "filename", json!("")),
            "filename",
            "create.filename.not_empty",
        ),
        (
            with(valid_create(), "filename", json!("dir/train.jsonl")),
            "filename",
            "create.filename.no_path_separator",
        ),
        (
            with(valid_create(), "filename", json!("dir\\train.jsonl")),
            "filename",
            "create.filename.no_path_separator",
        ),
        (
            with(valid_create(), "filename", json!("train\u{7}.jsonl")),
            "filename",
            "create.filename.no_control_chars",
        ),
        (
            with(valid_create(), "purpose", json!("assistants_output")),
            "purpose",
            "create.purpose.accepted",
        ),
        (
            with(valid_create(), "bytes", json!(0)),
            "bytes",
            "create.bytes.positive",
        ),
        (
            with(valid_create(), "bytes", json!(-5)),
            "bytes",
            "create.bytes.positive",
        ),
        (
            with(valid_create(), "bytes", json!(8 * 1024 * MIB + 1)),
            "bytes",
            "create.bytes.max_8gb",
        ),
        (
            with(valid_create(), "mime_type", json!("jsonl")),
            "mime_type",
            "create.mime_type.well_formed",
        ),
        (
            with(valid_create(), "mime_type", json!("text/plain")),
            "mime_type",
            "create.mime_type.matches_purpose",
        ),
        (
            with(
                valid_create(),
                "expires_after",
                json!({"anchor": "last_active_at", "seconds": 3600}),
            ),
            "expires_after.anchor",
            "create.expires_after.anchor",
        ),
        (
            with(
                valid_create(),
                "expires_after",
                json!({"anchor": "created_at", "seconds": 3599}),
            ),
            "expires_after.seconds",
            "create.expires_after.seconds",
        ),
        (
            with(
                valid_create(),
                "expires_after",
                json!({"anchor": "created_at", "seconds": 2_592_001}),
            ),
            "expires_after.seconds",
            "create.expires_after.seconds",
        ),
        (
            with(valid_create(), "colour", json!("blue")),
            "colour",
            "request.field.known",
        ),
        (
            with(valid_create(), "bytes", json!("100")),
            "bytes",
            "request.field.type",
        ),
        (
            with(valid_create(), "filename", json!(7)),
            "filename",
            "request.field.type",
        ),
        (
            json!({"purpose": "batch", "bytes": 1, "mime_type": "text/jsonl"}),
            "filename",
            "request.field.required",
        ),
    ];
    for (body, param, code) in cases {
        let raw = raw_post_json(&emulator, "/uploads", &body).await;
        raw.refused(param, Some(code));
    }

    let response = raw_client()
        .post(format!("{}/uploads", emulator.base_url()))
        .bearer_auth("test-key")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request sent");
    let raw = Raw::from(response).await;
    let error = raw.envelope(400, "invalid_request_error");
    assert!(
        error["message"].as_str().unwrap().contains("JSON"),
        "{}",
        raw.body
    );

    let raw = raw_post_json(&emulator, "/uploads", &json!([1, 2])).await;
    raw.refused("(body)", Some("request.field.type"));
}

#[tokio::test]
async fn create_accepts_the_limits() {
    let emulator = emulator().await;
    let cases = [
        with(valid_create(), "bytes", json!(8 * 1024 * MIB)),
        with(
            valid_create(),
            "expires_after",
            json!({"anchor": "created_at", "seconds": 3600}),
        ),
        with(
            valid_create(),
            "expires_after",
            json!({"anchor": "created_at", "seconds": 2_592_000}),
        ),
        with(
            with(valid_create(), "purpose", json!("vision")),
            "mime_type",
            json!("image/png"),
        ),
        with(
            valid_create(),
            "mime_type",
            json!("application/x-ndjson; charset=utf-8"),
        ),
    ];
    for body in cases {
        let raw = raw_post_json(&emulator, "/uploads", &body).await;
        assert_eq!(raw.status, 200, "{body} -> {}", raw.body);
        assert_eq!(raw.body["status"], "pending");
        assert_eq!(raw.body["bytes"], body["bytes"]);
    }
}

#[tokio::test]
async fn parts_the_emulator_refuses() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::start(EmulatorConfig::default().with_data_dir(data_dir.path()))
        .await
        .expect("emulator starts");
    let stored_parts = || {
        std::fs::read_dir(data_dir.path().join("parts"))
            .expect("parts directory")
            .count()
    };
    let client = client(&emulator);
    let upload = create(&client, 10).await;

    raw_post_form(&emulator, &upload.id, data_form(Vec::new()))
        .await
        .refused("data", Some("part.data.not_empty"));

    raw_post_form(&emulator, &upload.id, reqwest::multipart::Form::new())
        .await
        .refused("data", None);

    let raw = raw_post_form(
        &emulator,
        &upload.id,
        reqwest::multipart::Form::new().text("notes", "hello"),
    )
    .await;
    raw.refused("notes", None);

    let raw = raw_post_form(
        &emulator,
        &upload.id,
        data_form(b"01234".to_vec()).text("notes", "x"),
    )
    .await;
    raw.refused("notes", None);

    let raw = raw_post_form(
        &emulator,
        &upload.id,
        data_form(b"01".to_vec()).part(
            "data",
            reqwest::multipart::Part::bytes(&b"23"[..]).file_name("part"),
        ),
    )
    .await;
    raw.refused("data", None);

    let response = raw_client()
        .post(format!(
            "{}/uploads/{}/parts",
            emulator.base_url(),
            upload.id
        ))
        .bearer_auth("test-key")
        .json(&json!({"data": "0123"}))
        .send()
        .await
        .expect("request sent");
    Raw::from(response)
        .await
        .envelope(400, "invalid_request_error");

    // None of the refused parts may count against the declared bytes or stay on disk.
    assert_eq!(stored_parts(), 0);
    assert!(
        emulator.received_parts().is_empty(),
        "{:?}",
        emulator.received_parts()
    );
    let id = add_part(&client, &upload.id, b"0123456789").await;
    assert_eq!(stored_parts(), 1);
    let done = client
        .complete_upload(&upload.id, &complete_request(&[&id], None))
        .await
        .expect("the 10 declared bytes complete the Upload")
        .into_inner();
    assert_eq!(done.status, UploadStatus::Completed);
    let file = done.file.expect("completed Upload has a File");
    assert_eq!(common::download(&client, &file.id).await, b"0123456789");
}

/// A part of 64 MiB + 1 byte, streamed so the client never holds it whole.
fn oversized_part() -> reqwest::multipart::Part {
    let len = 64 * MIB + 1;
    let chunk = Bytes::from(vec![b'x'; 256 * 1024]);
    let mut left = len;
    let stream = futures::stream::iter(std::iter::from_fn(move || {
        (left > 0).then(|| {
            let n = left.min(chunk.len() as u64);
            left -= n;
            Ok::<_, std::io::Error>(chunk.slice(..n as usize))
        })
    }));
    reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
        .file_name("part")
}

#[tokio::test]
async fn part_over_64_mib_is_refused() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 128 * MIB).await;

    let local = client
        .add_upload_part(
            &upload.id,
            PartBody::from_stream(
                futures::stream::empty::<Result<Bytes, std::io::Error>>(),
                64 * MIB + 1,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(local, Error::InvalidRequest(ref v) if v[0].rule.name() == "part.data.max_64mb"),
        "the client refuses it before sending"
    );

    let raw = raw_post_form(
        &emulator,
        &upload.id,
        reqwest::multipart::Form::new().part("data", oversized_part()),
    )
    .await;
    raw.refused("data", Some("part.data.max_64mb"));
    assert!(emulator.received_parts().is_empty());
}

#[tokio::test]
async fn parts_go_to_pending_uploads_only() {
    let emulator = emulator().await;
    let client = client(&emulator);

    let completed = create(&client, 3).await;
    let id = add_part(&client, &completed.id, b"abc").await;
    complete(&client, &completed.id, &[&id], None).await;
    let late = client
        .add_upload_part(&completed.id, PartBody::from_bytes(&b"d"[..]))
        .await
        .unwrap_err();
    assert_api_error(late, 400, Some("upload_id"), "upload.status.pending");
    let again = client
        .complete_upload(&completed.id, &complete_request(&[&id], None))
        .await
        .unwrap_err();
    assert_api_error(again, 400, Some("upload_id"), "upload.status.pending");

    let cancelled = create(&client, 3).await;
    let cancel = client
        .cancel_upload(&cancelled.id)
        .await
        .expect("cancelled")
        .into_inner();
    assert_eq!(cancel.status, UploadStatus::Cancelled);
    let late = client
        .add_upload_part(&cancelled.id, PartBody::from_bytes(&b"d"[..]))
        .await
        .unwrap_err();
    assert_api_error(late, 400, Some("upload_id"), "upload.status.pending");
}

#[tokio::test]
async fn expired_upload_takes_no_parts() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 4).await;
    let early = add_part(&client, &upload.id, b"ab").await;

    emulator.clock().advance(3601);
    let late = client
        .add_upload_part(&upload.id, PartBody::from_bytes(&b"cd"[..]))
        .await
        .unwrap_err();
    assert_api_error(late, 400, Some("upload_id"), "upload.not_expired");
    let complete = client
        .complete_upload(&upload.id, &complete_request(&[&early], None))
        .await
        .unwrap_err();
    assert_api_error(complete, 400, Some("upload_id"), "upload.not_expired");

    let cancelled = client
        .cancel_upload(&upload.id)
        .await
        .expect("an expired Upload can be cancelled")
        .into_inner();
    assert_eq!(cancelled.status, UploadStatus::Cancelled);
}

#[tokio::test]
async fn complete_refuses_bad_part_lists() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 6).await;
    let a = add_part(&client, &upload.id, b"abc").await;
    let b = add_part(&client, &upload.id, b"def").await;
    let other = create(&client, 3).await;
    let foreign = add_part(&client, &other.id, b"xyz").await;
    let path = format!("/uploads/{}/complete", upload.id);

    raw_post_json(&emulator, &path, &json!({"part_ids": []}))
        .await
        .refused("part_ids", Some("complete.part_ids.not_empty"));
    raw_post_json(&emulator, &path, &json!({"part_ids": [a, a]}))
        .await
        .refused("part_ids[1]", Some("complete.part_ids.unique"));
    raw_post_json(&emulator, &path, &json!({"part_ids": [a, b], "md5": "abc"}))
        .await
        .refused("md5", Some("complete.md5.format"));
    raw_post_json(
        &emulator,
        &path,
        &json!({"part_ids": [a, b], "md5": "g".repeat(32)}),
    )
    .await
    .refused("md5", Some("complete.md5.format"));
    raw_post_json(&emulator, &path, &json!({"part_ids": [a, b], "sha": "x"}))
        .await
        .refused("sha", Some("request.field.known"));
    raw_post_json(&emulator, &path, &json!({"part_ids": a}))
        .await
        .refused("part_ids", Some("request.field.type"));

    let refused = client
        .complete_upload(&upload.id, &complete_request(&[&a, &foreign], None))
        .await
        .unwrap_err();
    assert_api_error(
        refused,
        400,
        Some("part_ids[1]"),
        "complete.part_ids.belong",
    );
    let refused = client
        .complete_upload(&upload.id, &complete_request(&[&a], None))
        .await
        .unwrap_err();
    assert_api_error(
        refused,
        400,
        Some("part_ids"),
        "complete.part_ids.sum_equals_bytes",
    );

    let wrong = common::hex(&Md5::digest(b"abcdeF"));
    let refused = client
        .complete_upload(&upload.id, &complete_request(&[&a, &b], Some(wrong)))
        .await
        .unwrap_err();
    let (status, error) = api_error(refused);
    assert_eq!(
        (status, error.param.as_deref()),
        (400, Some("md5")),
        "{error:?}"
    );

    // Every refusal above left the Upload pending and complete-able.
    let right = common::hex(&Md5::digest(b"abcdef")).to_uppercase();
    let done = client
        .complete_upload(&upload.id, &complete_request(&[&a, &b], Some(right)))
        .await
        .expect("the right md5 is accepted, whatever its case")
        .into_inner();
    assert_eq!(done.status, UploadStatus::Completed);
    let file = done.file.expect("completed Upload has a File");
    assert_eq!(file.bytes, 6);
    assert_eq!(common::download(&client, &file.id).await, b"abcdef");
}

#[tokio::test]
async fn parts_are_assembled_in_the_order_of_part_ids() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 2).await;
    let b = add_part(&client, &upload.id, b"B").await;
    let a = add_part(&client, &upload.id, b"A").await;
    let done = complete(
        &client,
        &upload.id,
        &[&a, &b],
        Some(common::hex(&Md5::digest(b"AB"))),
    )
    .await;
    let file = done.file.expect("completed Upload has a File");
    assert_eq!(common::download(&client, &file.id).await, b"AB");
}

#[tokio::test]
async fn a_discarding_emulator_counts_bytes_and_keeps_the_rules() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::start(
        EmulatorConfig::default()
            .with_data_dir(data_dir.path())
            .with_discard_content(true),
    )
    .await
    .expect("emulator starts");
    let client = client(&emulator);
    let upload = create(&client, 5).await;
    let a = add_part(&client, &upload.id, b"abc").await;
    // Past the declared bytes: taken, and left out of the completion below.
    let orphan = add_part(&client, &upload.id, b"xyz").await;
    let b = add_part(&client, &upload.id, b"de").await;
    let over = client
        .complete_upload(&upload.id, &complete_request(&[&a, &orphan], None))
        .await
        .unwrap_err();
    assert_api_error(
        over,
        400,
        Some("part_ids"),
        "complete.part_ids.sum_equals_bytes",
    );
    let short = client
        .complete_upload(&upload.id, &complete_request(&[&a], None))
        .await
        .unwrap_err();
    assert_api_error(
        short,
        400,
        Some("part_ids"),
        "complete.part_ids.sum_equals_bytes",
    );

    // No bytes are kept to check an md5 against, so any md5 passes.
    let done = complete(
        &client,
        &upload.id,
        &[&a, &b],
        Some(common::hex(&Md5::digest(b"other"))),
    )
    .await;
    assert_eq!(done.status, UploadStatus::Completed);
    let file = done.file.expect("completed Upload has a File");
    assert_eq!(file.bytes, 5);
    let parts: Vec<u64> = emulator.received_parts().iter().map(|p| p.bytes).collect();
    assert_eq!(parts, [3, 3, 2]);
    let stored = std::fs::read_dir(data_dir.path().join("parts"))
        .expect("parts directory")
        .count();
    assert_eq!(stored, 0, "nothing is written");
    let (status, error) = api_error(download_error(&client, &file.id).await);
    assert_eq!(status, 400);
    assert!(error.message.contains("discards content"), "{error:?}");
}

/// The documented limit is 8 GB of parts; the declared `bytes` is checked at
/// completion, over the listed parts only. A part sent twice (a resume after
/// a crash) leaves an orphan that does no harm.
#[tokio::test]
async fn parts_past_the_declared_bytes_are_taken_and_only_listed_ones_count() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 10).await;
    let first = add_part(&client, &upload.id, b"01234").await;
    let again = add_part(&client, &upload.id, b"01234").await;
    let last = add_part(&client, &upload.id, b"56789").await;
    assert_eq!(emulator.received_parts().len(), 3);
    let done = complete(&client, &upload.id, &[&again, &last], None).await;
    assert_eq!(done.status, UploadStatus::Completed);
    let file = done.file.expect("a File");
    assert_eq!(file.bytes, 10);
    assert_eq!(common::download(&client, &file.id).await, b"0123456789");
    let recorded = emulator.completions();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].part_ids, [again, last]);
    assert!(!recorded[0].part_ids.contains(&first));
}

#[tokio::test]
async fn completed_upload_cannot_be_cancelled() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 1).await;
    let id = add_part(&client, &upload.id, b"x").await;
    complete(&client, &upload.id, &[&id], None).await;
    let refused = client.cancel_upload(&upload.id).await.unwrap_err();
    assert_api_error(
        refused,
        400,
        Some("upload_id"),
        "cancel.status.not_completed",
    );
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let missing = "upload_000000000000000000000000";

    let err = client
        .add_upload_part(missing, PartBody::from_bytes(&b"x"[..]))
        .await
        .unwrap_err();
    assert_api_error(err, 404, None, "not_found");
    let err = client
        .complete_upload(missing, &complete_request(&["part_1"], None))
        .await
        .unwrap_err();
    assert_api_error(err, 404, None, "not_found");
    let err = client.cancel_upload(missing).await.unwrap_err();
    assert_api_error(err, 404, None, "not_found");

    let file = "file-000000000000000000000000";
    assert_api_error(
        client.retrieve_file(file).await.unwrap_err(),
        404,
        None,
        "not_found",
    );
    assert_api_error(download_error(&client, file).await, 404, None, "not_found");
    assert_api_error(
        client.delete_file(file).await.unwrap_err(),
        404,
        None,
        "not_found",
    );
}

#[tokio::test]
async fn deleted_file_is_gone() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, 2).await;
    let id = add_part(&client, &upload.id, b"hi").await;
    let file = complete(&client, &upload.id, &[&id], None)
        .await
        .file
        .expect("completed Upload has a File");
    assert_eq!(
        client
            .retrieve_file(&file.id)
            .await
            .expect("retrieved")
            .bytes,
        2
    );

    let deleted = client
        .delete_file(&file.id)
        .await
        .expect("deleted")
        .into_inner();
    assert!(deleted.deleted);
    assert_eq!(deleted.id, file.id);
    assert_api_error(
        client.retrieve_file(&file.id).await.unwrap_err(),
        404,
        None,
        "not_found",
    );
    assert_api_error(
        download_error(&client, &file.id).await,
        404,
        None,
        "not_found",
    );
    assert_api_error(
        client.delete_file(&file.id).await.unwrap_err(),
        404,
        None,
        "not_found",
    );
}

#[tokio::test]
async fn requests_without_a_bearer_token_are_401() {
    let emulator = emulator().await;
    let url = format!("{}/uploads", emulator.base_url());
    let requests = [
        raw_client().post(&url).json(&valid_create()),
        raw_client()
            .post(&url)
            .header("authorization", "Bearer ")
            .json(&valid_create()),
        raw_client()
            .post(&url)
            .header("authorization", "Basic dGVzdDp0ZXN0")
            .json(&valid_create()),
    ];
    for request in requests {
        let raw = Raw::from(request.send().await.expect("request sent")).await;
        let error = raw.envelope(401, "invalid_request_error");
        assert_eq!(error["code"], "invalid_api_key");
    }
    // The same body with a token goes through, so the refusals above were about the token.
    let created = raw_post_json(&emulator, "/uploads", &valid_create()).await;
    assert_eq!(created.status, 200);
}

#[tokio::test]
async fn unmatched_routes_answer_in_the_envelope() {
    let emulator = emulator().await;
    for (method, path, status, code) in [
        (reqwest::Method::GET, "/v1/models", 404, "unknown_url"),
        (reqwest::Method::GET, "/", 404, "unknown_url"),
        (
            reqwest::Method::GET,
            "/v1/uploads",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::PUT,
            "/v1/files/file-1",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::GET,
            "/v1/uploads/upload_1/parts",
            405,
            "method_not_allowed",
        ),
    ] {
        let response = raw_client()
            .request(method.clone(), format!("http://{}{path}", emulator.addr()))
            .bearer_auth("test-key")
            .send()
            .await
            .expect("request sent");
        let raw = Raw::from(response).await;
        let error = raw.envelope(status, "invalid_request_error");
        assert_eq!(error["code"], code, "{method} {path}: {}", raw.body);
        assert!(
            error["message"].as_str().unwrap().contains(path),
            "{}",
            raw.body
        );
    }
}

#[tokio::test]
async fn strict_client_accepts_every_answer() {
    let emulator = emulator().await;
    let client = Config::new()
        .with_api_key("test-key")
        .with_base_url(emulator.base_url())
        .with_validation(ValidationMode::Strict)
        .client()
        .expect("client builds");

    let mut request = upload_request(5);
    request.expires_after = Some(openai_uploads::types::FileExpirationAfter {
        anchor: openai_uploads::types::FileExpirationAfterAnchor::CreatedAt,
        seconds: 7200,
    });
    let upload = client
        .create_upload(&request)
        .await
        .expect("create")
        .into_inner();
    assert_eq!(upload.status, UploadStatus::Pending);
    let a = add_part(&client, &upload.id, b"hel").await;
    let b = add_part(&client, &upload.id, b"lo").await;
    let done = client
        .complete_upload(
            &upload.id,
            &complete_request(&[&a, &b], Some(common::hex(&Md5::digest(b"hello")))),
        )
        .await
        .expect("complete")
        .into_inner();
    let file = done.file.expect("completed Upload has a File");
    let expires_at = file
        .expires_at
        .expect("expires_after gives the File an expiry");
    assert_eq!(expires_at - file.created_at, 7200);
    assert_eq!(
        client.retrieve_file(&file.id).await.expect("retrieve").id,
        file.id
    );
    assert_eq!(common::download(&client, &file.id).await, b"hello");
    assert!(client.delete_file(&file.id).await.expect("delete").deleted);

    let other = client
        .create_upload(&upload_request(1))
        .await
        .expect("create")
        .into_inner();
    let cancelled = client
        .cancel_upload(&other.id)
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.status, UploadStatus::Cancelled);
    assert!(cancelled.file.is_none());

    // Errors reach a strict client as the documented envelope, not as undocumented bodies.
    let missing = client
        .retrieve_file("file-000000000000000000000000")
        .await
        .unwrap_err();
    assert_api_error(missing, 404, None, "not_found");
}

#[tokio::test]
async fn every_nth_request_gets_a_server_error() {
    let emulator = common::emulator_with(Faults::default().with_server_error_every(3)).await;
    let client = client(&emulator);
    create(&client, 1).await;
    create(&client, 1).await;
    let failed = client.create_upload(&upload_request(1)).await.unwrap_err();
    let (status, error) = api_error(failed);
    assert_eq!(
        (status, error.type_.as_str()),
        (500, "server_error"),
        "{error:?}"
    );
    create(&client, 1).await;

    let faults: Vec<_> = emulator.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [None, None, Some("ServerError".to_string()), None]);

    assert_eq!(
        raw_post_json(&emulator, "/uploads", &valid_create())
            .await
            .status,
        200
    );
    let raw = raw_post_json(&emulator, "/uploads", &valid_create()).await;
    raw.envelope(500, "server_error");
}

#[tokio::test]
async fn rate_limit_announces_the_wait() {
    let emulator = common::emulator_with(
        Faults::default()
            .with_rate_limit_every(2)
            .with_retry_after(Duration::from_millis(1500)),
    )
    .await;
    let client = client(&emulator);
    create(&client, 1).await;
    let limited = client.create_upload(&upload_request(1)).await.unwrap_err();
    assert_eq!(limited.status(), Some(429), "{limited:?}");
    assert_eq!(limited.retry_after(), Some(Duration::from_millis(1500)));

    create(&client, 1).await;
    let raw = raw_post_json(&emulator, "/uploads", &valid_create()).await;
    let error = raw.envelope(429, "requests");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(raw.headers["retry-after"], "2");
    assert_eq!(raw.headers["retry-after-ms"], "1500");
}

#[tokio::test]
async fn dropped_part_is_a_transport_error_and_the_next_part_succeeds() {
    let emulator = common::emulator_with(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_drop_every(2),
    )
    .await;
    let client = client(&emulator);
    let upload = create(&client, 4).await;
    let first = add_part(&client, &upload.id, b"ab").await;
    let dropped = client
        .add_upload_part(&upload.id, PartBody::from_bytes(&b"cd"[..]))
        .await
        .unwrap_err();
    let dropped = dropped;
    assert!(matches!(dropped, Error::Transport(_)), "{dropped:?}");
    let second = add_part(&client, &upload.id, b"cd").await;
    let done = client
        .complete_upload(
            &upload.id,
            &complete_request(&[first.as_str(), second.as_str()], None),
        )
        .await
        .expect("the dropped part never counted")
        .into_inner();
    assert_eq!(
        common::download(&client, &done.file.expect("File").id).await,
        b"abcd"
    );

    let faults: Vec<_> = emulator
        .requests()
        .into_iter()
        .map(|r| (r.path.ends_with("/parts"), r.fault))
        .collect();
    assert_eq!(
        faults
            .iter()
            .filter(|(_, f)| f.is_some())
            .collect::<Vec<_>>(),
        [&(true, Some("DropConnection".to_string()))]
    );
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let latency = Duration::from_millis(300);
    let emulator = common::emulator_with(Faults::default().with_latency(latency)).await;
    let client = client(&emulator);
    let started = Instant::now();
    create(&client, 1).await;
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    emulator.set_faults(Faults::default());
    let started = Instant::now();
    let missing = client.retrieve_file("file-1").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    // Replacing the faults takes the latency away; generous bound for a busy machine.
    assert!(started.elapsed() < latency * 10, "{:?}", started.elapsed());
}

#[tokio::test]
async fn random_faults_repeat_with_the_seed() {
    async fn faults_seen(seed: u64) -> Vec<Option<String>> {
        let emulator =
            common::emulator_with(Faults::default().with_random_rate(0.5).with_seed(seed)).await;
        for _ in 0..24 {
            // A dropped connection is a transport error; only the fault record matters here.
            let _ = raw_client()
                .get(format!("{}/files/file-1", emulator.base_url()))
                .bearer_auth("test-key")
                .send()
                .await;
        }
        emulator.requests().into_iter().map(|r| r.fault).collect()
    }
    let first = faults_seen(7).await;
    let second = faults_seen(7).await;
    assert_eq!(first.len(), 24);
    assert_eq!(first, second);
    let faulted = first.iter().filter(|f| f.is_some()).count();
    assert!(0 < faulted && faulted < 24, "{first:?}");
    assert_ne!(
        first,
        faults_seen(8).await,
        "another seed, another sequence"
    );
}

#[tokio::test]
async fn concurrent_parts_are_all_stored() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let parts: Vec<Vec<u8>> = (0..8u8)
        .map(|i| vec![b'a' + i; 1000 + i as usize])
        .collect();
    let total: usize = parts.iter().map(Vec::len).sum();
    let upload = create(&client, total as u64).await;

    let sent = futures::future::join_all(
        parts
            .iter()
            .map(|data| client.add_upload_part(&upload.id, PartBody::from_bytes(data.clone()))),
    )
    .await;
    let ids: Vec<String> = sent
        .into_iter()
        .map(|r| r.expect("part stored").into_inner().id)
        .collect();
    assert_eq!(emulator.received_parts().len(), 8);

    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let expected = parts.concat();
    let done = complete(
        &client,
        &upload.id,
        &ids,
        Some(common::hex(&Md5::digest(&expected))),
    )
    .await;
    let file = done.file.expect("File");
    assert_eq!(file.bytes, total as i64);
    assert_eq!(common::download(&client, &file.id).await, expected);
}

/// Writes `len` deterministic pseudo-random bytes to `path`, returning their md5.
fn write_pseudo_random(path: &Path, len: u64) -> String {
    let mut file = std::io::BufWriter::with_capacity(
        4 * MIB as usize,
        std::fs::File::create(path).expect("temp file"),
    );
    let mut hasher = Md5::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            // splitmix64: cheap enough in a debug build, and no two parts alike.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n]).expect("write temp file");
        left -= n as u64;
    }
    file.flush().expect("flush temp file");
    common::hex(&hasher.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_of_256_mib_round_trips_with_its_md5() {
    const LEN: u64 = 256 * MIB;
    const PARTS: u64 = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.bin");
    let expected = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || write_pseudo_random(&path, LEN))
            .await
            .expect("file written")
    };

    let emulator = emulator().await;
    let client = client(&emulator);
    let upload = create(&client, LEN).await;
    let part_len = LEN / PARTS;
    let sends = (0..PARTS).map(|i| {
        let (client, path, upload_id) = (&client, &path, &upload.id);
        async move {
            let body = PartBody::from_file_range(path, i * part_len, part_len)
                .await
                .expect("file range opens");
            client
                .add_upload_part(upload_id, body)
                .await
                .expect("part stored")
                .into_inner()
                .id
        }
    });
    let ids = futures::future::join_all(sends).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert!(
        emulator
            .received_parts()
            .iter()
            .all(|p| p.bytes == part_len)
    );

    let done = client
        .complete_upload(&upload.id, &complete_request(&ids, Some(expected.clone())))
        .await
        .expect("the emulator agrees on the md5")
        .into_inner();
    let file = done.file.expect("File");
    assert_eq!(file.bytes, LEN as i64);

    let mut stream = client
        .download_file(&file.id)
        .await
        .expect("download starts")
        .into_inner();
    let mut hasher = Md5::new();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("download chunk");
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(received, LEN);
    assert_eq!(common::hex(&hasher.finalize()), expected);
}

async fn emulator_on(dir: &Path) -> Emulator {
    Emulator::start(EmulatorConfig::default().with_data_dir(dir))
        .await
        .expect("emulator starts on the data directory")
}

#[tokio::test]
async fn data_dir_keeps_files_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let content = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
    let (kept, deleted, before) = {
        let emulator = emulator_on(dir.path()).await;
        let client = client(&emulator);
        let mut files = Vec::new();
        for _ in 0..2 {
            let upload = create(&client, content.len() as u64).await;
            let a = add_part(&client, &upload.id, &content[..8]).await;
            let b = add_part(&client, &upload.id, &content[8..]).await;
            let md5 = common::md5_hex(content);
            let done = complete(&client, &upload.id, &[a.as_str(), b.as_str()], Some(md5)).await;
            files.push(done.file.expect("a File"));
        }
        client
            .delete_file(&files[1].id)
            .await
            .expect("deleted before the restart");
        emulator.stop().await;
        let kept = files.remove(0);
        (kept.id.clone(), files.remove(0).id, kept)
    };
    assert!(dir.path().join("emulator.sqlite3").exists());

    let emulator = emulator_on(dir.path()).await;
    let client = client(&emulator);
    let after = client
        .retrieve_file(&kept)
        .await
        .expect("the File survives the restart")
        .into_inner();
    assert_eq!(after, before);
    assert_eq!(common::download(&client, &kept).await, content);
    let (status, _) = api_error(client.retrieve_file(&deleted).await.expect_err("gone"));
    assert_eq!(status, 404, "a deleted File stays deleted");
}

#[tokio::test]
async fn data_dir_keeps_a_pending_uploads_parts_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let content = b"first part|second part";
    let (upload_id, first) = {
        let emulator = emulator_on(dir.path()).await;
        let client = client(&emulator);
        let upload = create(&client, content.len() as u64).await;
        let first = add_part(&client, &upload.id, &content[..11]).await;
        emulator.stop().await;
        (upload.id, first)
    };

    let emulator = emulator_on(dir.path()).await;
    let client = client(&emulator);
    let second = add_part(&client, &upload_id, &content[11..]).await;
    // The md5 is checked against the parts read back from disk.
    let done = complete(
        &client,
        &upload_id,
        &[first.as_str(), second.as_str()],
        Some(common::md5_hex(content)),
    )
    .await;
    assert_eq!(done.status, UploadStatus::Completed);
    let file = done.file.expect("a File");
    assert_eq!(common::download(&client, &file.id).await, content);

    // A wrong order is still refused by md5, so the parts really are the old bytes.
    let upload = create(&client, content.len() as u64).await;
    let a = add_part(&client, &upload.id, &content[..11]).await;
    emulator.stop().await;
    let emulator = emulator_on(dir.path()).await;
    let client = common::client_of(&emulator, "test-key");
    let b = add_part(&client, &upload.id, &content[11..]).await;
    let refused = client
        .complete_upload(
            &upload.id,
            &complete_request(&[b.as_str(), a.as_str()], Some(common::md5_hex(content))),
        )
        .await
        .expect_err("md5 of the wrong order");
    assert_eq!(api_error(refused).0, 400);
}

#[tokio::test]
async fn a_damaged_database_stops_the_start_rather_than_losing_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("emulator.sqlite3"),
        "{\"version\": 1, \"uploads\": [",
    )
    .expect("written");
    let error = Emulator::start(EmulatorConfig::default().with_data_dir(dir.path()))
        .await
        .err()
        .expect("refused");
    match &error {
        Error::Io { error: io, .. } => assert_eq!(io.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("expected a local file error, got {other:?}"),
    }
    assert!(error.to_string().contains("emulator.sqlite3"), "{error}");
}

#[tokio::test]
async fn a_list_limit_out_of_range_is_refused_by_the_same_rule_as_the_client() {
    let emulator = emulator().await;
    for (limit, refused) in [("0", true), ("10001", true), ("1", false), ("10000", false)] {
        let response = raw_client()
            .get(format!("{}/files?limit={limit}", emulator.base_url()))
            .bearer_auth("test-key")
            .send()
            .await
            .expect("request sent");
        let raw = Raw::from(response).await;
        if refused {
            raw.refused("limit", Some("list.limit.range"));
        } else {
            assert_eq!(raw.status, 200, "limit {limit}: {}", raw.body);
        }
    }
}

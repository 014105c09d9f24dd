//! The one error type at the boundary: every typed call refuses a rule it
//! breaks as `Error::InvalidRequest` before anything is sent, and a chained
//! report prints each cause once.

use std::error::Error as _;
use std::time::Duration;

use openai_uploads::types::{
    CompleteUploadRequest, CreateUploadRequest, CreateUploadRequestPurpose,
};
use openai_uploads::{Client, Config, Error, PartBody};
use tokio::net::TcpListener;

/// A client of a server that listens but must never be reached.
async fn unreached() -> (Client, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = Config::new()
        .with_api_key("sk-test")
        .with_base_url(format!("http://{}/v1", listener.local_addr().unwrap()))
        .client()
        .expect("client builds");
    (client, listener)
}

/// The rule and field of a pre-flight refusal; panics on any other error.
fn refusal<T>(result: Result<T, Error>) -> (String, String) {
    match result {
        Err(Error::InvalidRequest(violations)) => {
            let first = &violations[0];
            (first.rule.name().to_string(), first.field.clone())
        }
        Err(other) => panic!("expected a refusal before sending, got {other:?}"),
        Ok(_) => panic!("expected a refusal before sending, got an answer"),
    }
}

#[tokio::test]
async fn every_typed_call_refuses_a_broken_rule_before_sending() {
    let (client, listener) = unreached().await;
    let create = CreateUploadRequest {
        filename: "train.jsonl".into(),
        purpose: CreateUploadRequestPurpose::FineTune,
        bytes: 0,
        mime_type: "text/jsonl".into(),
        expires_after: None,
    };
    let complete = CompleteUploadRequest {
        part_ids: vec![],
        md5: None,
    };
    let refused = [
        (
            refusal(client.create_upload(&create).await),
            ("create.bytes.positive", "bytes"),
        ),
        (
            refusal(
                client
                    .add_upload_part("upload_1", PartBody::from_bytes(Vec::new()))
                    .await,
            ),
            ("part.data.not_empty", "data"),
        ),
        (
            refusal(client.complete_upload("upload_1", &complete).await),
            ("complete.part_ids.not_empty", "part_ids"),
        ),
        (
            refusal(client.cancel_upload("").await),
            ("path.id.not_empty", "upload_id"),
        ),
        (
            refusal(client.list_files(None, Some(0), None, None).await),
            ("list.limit.range", "limit"),
        ),
        (
            refusal(client.retrieve_file("").await),
            ("path.id.not_empty", "file_id"),
        ),
        (
            refusal(client.download_file("").await),
            ("path.id.not_empty", "file_id"),
        ),
        (
            refusal(client.delete_file("").await),
            ("path.id.not_empty", "file_id"),
        ),
    ];
    for ((rule, field), (want_rule, want_field)) in refused {
        assert_eq!((rule.as_str(), field.as_str()), (want_rule, want_field));
    }
    let reached = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(reached.is_err(), "a refused request reached the server");
}

/// The error and its sources, as a chained report prints them.
fn report(error: &Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text.to_ascii_lowercase()
}

#[tokio::test]
async fn a_chained_report_names_each_cause_once() {
    // Transport: nothing listens on the port any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Config::new()
        .with_api_key("sk-test")
        .with_base_url(format!("http://127.0.0.1:{port}/v1"))
        .client()
        .unwrap();
    let transport = client.retrieve_file("file-1").await.unwrap_err();
    assert!(matches!(transport, Error::Transport(_)), "{transport:?}");
    assert_eq!(
        report(&transport).matches("connection refused").count(),
        1,
        "{transport}"
    );

    // A local file, and the same inside a part.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let io = client.upload_file(&missing).send().await.unwrap_err();
    assert!(matches!(io, Error::Io { .. }), "{io:?}");
    let cause = "no such file or directory";
    assert_eq!(report(&io).matches(cause).count(), 1, "{io}");
    let part = Error::Part {
        part_number: 2,
        offset: 10,
        len: 10,
        cause: Box::new(io),
    };
    assert_eq!(report(&part).matches(cause).count(), 1, "{part}");
    assert!(
        report(&part).starts_with("part 2 (bytes 10..20) failed: "),
        "{part}"
    );
}

#[cfg(feature = "emulator")]
#[tokio::test]
async fn a_file_range_past_the_end_fails_the_send_and_stores_no_part() {
    let emulator = openai_uploads::emulator::Emulator::start(Default::default())
        .await
        .expect("emulator starts");
    let client = Config::new()
        .with_api_key("sk-test")
        .with_base_url(emulator.base_url())
        .client()
        .unwrap();
    let upload = client
        .create_upload(&CreateUploadRequest {
            filename: "a.jsonl".into(),
            purpose: CreateUploadRequestPurpose::FineTune,
            bytes: 1000,
            mime_type: "text/jsonl".into(),
            expires_after: None,
        })
        .await
        .expect("created");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.jsonl");
    std::fs::write(&path, vec![b'a'; 600]).unwrap();
    let body = PartBody::from_file_range(&path, 100, 900)
        .await
        .expect("the file opens");
    let error = client
        .add_upload_part(&upload.id, body)
        .await
        .expect_err("500 bytes of 900");
    assert!(report(&error).contains("ends after 500"), "{error}");
    assert!(emulator.received_parts().is_empty());
}

#![cfg(feature = "emulator")]
//! What the client puts on the wire: identity headers, the multipart body, and
//! no `api-version` header although the generated code adds one.

use openai_uploads::emulator::{Emulator, EmulatorConfig};
use openai_uploads::types::{CreateUploadRequest, CreateUploadRequestPurpose};
use openai_uploads::{Config, PartBody};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn config(base_url: &str) -> Config {
    Config::new()
        .with_organization("org-123")
        .with_project("proj-456")
        .with_api_key("sk-test-secret")
        .with_base_url(base_url)
}

fn upload_request(bytes: i64) -> CreateUploadRequest {
    CreateUploadRequest {
        filename: "train.jsonl".into(),
        purpose: CreateUploadRequestPurpose::FineTune,
        bytes,
        mime_type: "text/jsonl".into(),
        expires_after: None,
    }
}

#[tokio::test]
async fn identity_headers_and_multipart_body_reach_the_server() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let client = config(emulator.base_url()).client().expect("client builds");
    let data = b"{\"prompt\": \"hi\"}\n".to_vec();
    let upload = client
        .create_upload(&upload_request(data.len() as i64))
        .await
        .expect("upload created");
    client
        .add_upload_part(&upload.id, PartBody::from_bytes(data.clone()))
        .await
        .expect("part stored");

    let requests = emulator.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sk-test-secret")
        );
        assert_eq!(request.organization.as_deref(), Some("org-123"));
        assert_eq!(request.project.as_deref(), Some("proj-456"));
    }
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/v1/uploads")
    );
    assert_eq!(
        requests[0].content_type.as_deref(),
        Some("application/json")
    );

    let part = &requests[1];
    assert_eq!(part.path, format!("/v1/uploads/{}/parts", upload.id));
    let content_type = part.content_type.as_deref().unwrap_or_default();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {content_type:?}"));
    assert!(!boundary.is_empty());

    let parts = emulator.received_parts();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0].upload_id, upload.id);
    assert_eq!(parts[0].bytes, data.len() as u64);
}

/// Accepts connections, sends the lower-cased header names of each request
/// down `seen`, and answers every one with a 404 in OpenAI's envelope.
async fn capture_headers(listener: TcpListener, seen: mpsc::UnboundedSender<Vec<String>>) {
    const BODY: &str = r#"{"error":{"type":"invalid_request_error","message":"captured","param":null,"code":"not_found"}}"#;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut names = Vec::new();
        let mut content_length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                names.push(name);
            }
        }
        let mut body = vec![0u8; content_length];
        let _ = reader.read_exact(&mut body).await;
        let _ = seen.send(names);
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
            BODY.len()
        );
        let _ = reader.get_mut().write_all(answer.as_bytes()).await;
        let _ = reader.get_mut().shutdown().await;
    }
}

#[tokio::test]
async fn no_request_carries_an_api_version_header() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(capture_headers(listener, tx));
    let client = config(&base_url).client().expect("client builds");

    let answers = [
        client.create_upload(&upload_request(1)).await.err(),
        client
            .add_upload_part("upload_1", PartBody::from_bytes(&b"x"[..]))
            .await
            .err(),
        client
            .complete_upload(
                "upload_1",
                &openai_uploads::types::CompleteUploadRequest {
                    part_ids: vec!["part_1".into()],
                    md5: None,
                },
            )
            .await
            .err(),
        client.cancel_upload("upload_1").await.err(),
        client.retrieve_file("file-1").await.err(),
        client.download_file("file-1").await.err(),
        client.delete_file("file-1").await.err(),
    ];
    for answer in answers {
        let error = answer.expect("the capture server answers 404");
        assert_eq!(error.status(), Some(404), "{error:?}");
    }
    server.abort();

    let mut requests = Vec::new();
    while let Ok(names) = rx.try_recv() {
        requests.push(names);
    }
    assert_eq!(requests.len(), 7);
    for names in &requests {
        // The capture must see the headers that are there, or its silence proves nothing.
        assert!(names.iter().any(|n| n == "authorization"), "{names:?}");
        assert!(names.iter().any(|n| n == "openai-project"), "{names:?}");
        assert!(!names.iter().any(|n| n == "api-version"), "{names:?}");
    }
}

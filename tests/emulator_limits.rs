#![cfg(all(feature = "emulator", feature = "schema"))]
//! The emulator's caps, over real loopback HTTP: pending Uploads,
//! recordings, request bodies and connections.

mod common;

use openai_uploads::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

fn create_body() -> Value {
    json!({
        "filename": "train.jsonl",
        "purpose": "fine-tune",
        "bytes": 100,
        "mime_type": "text/jsonl",
    })
}

/// POSTs `body` as JSON to `path` with a key; the status, headers and JSON answer.
async fn post(
    emulator: &Emulator,
    path: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", emulator.base_url()))
        .bearer_auth("test-key")
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON answer");
    (status, headers, body)
}

#[tokio::test]
async fn creates_past_the_pending_cap_are_rate_limited_until_a_place_frees() {
    let emulator = start(EmulatorConfig::default().with_max_pending_uploads(3)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, _, upload) = post(&emulator, "/uploads", &create_body()).await;
        assert_eq!(status, 200, "{upload}");
        ids.push(upload["id"].as_str().expect("an id").to_string());
    }

    let (status, headers, body) = post(&emulator, "/uploads", &create_body()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains('3'),
        "the message names the cap: {body}"
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");

    // A cancelled Upload frees its place.
    let (status, _, _) = post(
        &emulator,
        &format!("/uploads/{}/cancel", ids[0]),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = post(&emulator, "/uploads", &create_body()).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = post(&emulator, "/uploads", &create_body()).await;
    assert_eq!(status, 429);

    // So do expired ones, once the emulator's clock passes their expiry.
    emulator
        .clock()
        .advance(openai_uploads::emulator::UPLOAD_LIFETIME_SECONDS);
    for _ in 0..3 {
        let (status, _, body) = post(&emulator, "/uploads", &create_body()).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, _) = post(&emulator, "/uploads", &create_body()).await;
    assert_eq!(status, 429);
}

/// GETs `path` with `key`, if any; the status and JSON answer.
async fn get(emulator: &Emulator, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", emulator.base_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("an answer");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not the JSON envelope ({e}): {text:?}"));
    (status, body)
}

#[tokio::test]
async fn recordings_keep_the_last_requests_cut_short_and_none_without_a_key() {
    let emulator = start(
        EmulatorConfig::default()
            .with_max_recordings(5)
            .with_max_recorded_bytes(64),
    )
    .await;
    let long_id = "f".repeat(3000);
    for i in 0..20 {
        let (status, _) = get(&emulator, &format!("/files/file-{i}-{long_id}"), Some("k")).await;
        assert_eq!(status, 404);
    }
    let requests = emulator.requests();
    assert_eq!(requests.len(), 5, "a ring of the last five");
    for (request, i) in requests.iter().zip(15..) {
        assert_eq!(request.path.len(), 64, "{}", request.path);
        assert!(
            request.path.starts_with(&format!("/v1/files/file-{i}-")),
            "{}",
            request.path
        );
    }

    for _ in 0..10 {
        let (status, _) = get(&emulator, "/files/file-anonymous", None).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        emulator.requests(),
        requests,
        "unauthenticated requests leave no trace"
    );

    let part_ids: Vec<String> = (0..1000).map(|i| format!("part_{i:024}")).collect();
    let (status, _, _) = post(
        &emulator,
        "/uploads/upload_missing/complete",
        &json!({ "part_ids": part_ids }),
    )
    .await;
    assert_eq!(status, 404);
    let completion = emulator
        .completions()
        .pop()
        .expect("the completion recorded");
    assert_eq!(completion.listed, 1000);
    assert_eq!(
        completion.part_ids,
        part_ids[..2],
        "as many ids as fit in 64 bytes"
    );
}

#[tokio::test]
async fn a_body_past_the_cap_is_refused_in_the_envelope() {
    let emulator = start(EmulatorConfig::default().with_max_body_bytes(1000)).await;
    let mut body = create_body();
    body["filename"] = Value::String("a".repeat(2000));
    let (status, _, answer) = post(&emulator, "/uploads", &body).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes"),
        "{answer}"
    );
    // Under the cap the same request goes through.
    let (status, _, answer) = post(&emulator, "/uploads", &create_body()).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn bad_ids_in_paths_and_a_bad_order_get_the_envelope() {
    let emulator = start(EmulatorConfig::default()).await;
    // Not UTF-8 once decoded.
    let (status, body) = get(&emulator, "/files/file-%FF%FE", Some("k")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "file_id", "{body}");
    // Two segments once decoded.
    let (status, body) = get(&emulator, "/files/a%2Fb/content", Some("k")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "path.id.segment", "{body}");
    let (status, _, body) = post(&emulator, "/uploads/a%2F..%2Fb/cancel", &json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "upload_id", "{body}");

    let (status, body) = get(&emulator, "/files?order=sideways", Some("k")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "order", "{body}");
    let (status, body) = get(&emulator, "/files?order=asc", Some("k")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_stop_a_normal_request() {
    use tokio::io::AsyncReadExt;
    const IDLE: usize = 1200;
    let emulator = start(
        EmulatorConfig::default()
            .with_max_connections(300)
            .with_header_read_timeout(std::time::Duration::from_secs(1)),
    )
    .await;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(
            tokio::net::TcpStream::connect(emulator.addr())
                .await
                .expect("connected"),
        );
    }

    // Four times the cap of silent connections are ahead of it in the queue.
    let answer = reqwest::Client::new()
        .get(format!("{}/files", emulator.base_url()))
        .bearer_auth("k")
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .expect("answered while idle connections are open");
    assert_eq!(answer.status(), 200);
    assert!(emulator.connections_accepted() > IDLE as u64);

    // The silent ones were closed by the emulator, not left open.
    let mut first = idle.swap_remove(0);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), first.read(&mut buf))
        .await
        .expect("closed within the deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_body_that_stops_sending_fails_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emulator =
        start(EmulatorConfig::default().with_idle_timeout(std::time::Duration::from_millis(300)))
            .await;
    let mut stream = tokio::net::TcpStream::connect(emulator.addr())
        .await
        .expect("connected");
    stream
        .write_all(
            b"POST /v1/uploads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"filename\"",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "no answer within the deadline");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("no bytes of the body"), "{answer}");
}

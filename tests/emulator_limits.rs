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

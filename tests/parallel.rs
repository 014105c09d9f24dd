#![cfg(feature = "emulator")]
//! Parts in parallel, against a network-shaped emulator over loopback:
//! connections per part in flight, parallel reads with md5 on, adaptive
//! parts in flight, a server that limits them, and the shaping itself.
//! Times are only compared with each other, never with a fixed figure.

mod common;

use std::time::{Duration, Instant};

use openai_uploads::emulator::{Emulator, EmulatorConfig, NetworkShape};
use openai_uploads::upload::{Purpose, RetryPolicy, UploadBuilder, UploadExt};
use openai_uploads::{Client, PartBody};

use common::{content, md5_hex, write_file};

const KIB: u64 = 1024;

async fn shaped(network: NetworkShape) -> Emulator {
    Emulator::start(EmulatorConfig {
        network,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

fn client(emulator: &Emulator) -> Client {
    common::client_of(emulator, "sk-test-parallel")
}

fn upload(client: &Client, path: &std::path::Path, part_size: u64) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(part_size)
}

/// The md5 the emulator received on completion.
fn md5_sent(emulator: &Emulator) -> Option<String> {
    emulator.completions().last().and_then(|c| c.md5.clone())
}

#[tokio::test]
async fn n_parts_in_flight_travel_on_n_connections() {
    let emulator = shaped(
        NetworkShape::default()
            .stream_rate(1_000_000)
            .round_trip(Duration::from_millis(20)),
    )
    .await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(16 * 64 * KIB, 1);
    let path = write_file(dir.path(), "data.bin", &bytes);
    upload(&client, &path, 64 * KIB)
        .concurrency(4)
        .send()
        .await
        .expect("uploaded");
    assert_eq!(emulator.most_parts_in_flight(), 4);
    let mut connections: Vec<u64> = emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/parts"))
        .map(|r| r.connection)
        .collect();
    connections.sort_unstable();
    connections.dedup();
    assert_eq!(connections.len(), 4, "one connection per part in flight");
    assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
}

#[tokio::test]
async fn with_md5_on_parts_stream_in_parallel() {
    // 4 MB/s per connection: one part of 512 KiB takes about 130 ms.
    let network = NetworkShape::default().stream_rate(4_000_000);
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(8 * 512 * KIB, 2);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let mut took = Vec::new();
    for concurrency in [1, 4] {
        let emulator = shaped(network.clone()).await;
        let client = client(&emulator);
        let started = Instant::now();
        upload(&client, &path, 512 * KIB)
            .concurrency(concurrency)
            .md5(true)
            .send()
            .await
            .expect("uploaded");
        took.push(started.elapsed());
        assert_eq!(emulator.most_parts_in_flight(), concurrency);
        assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
    }
    assert!(
        took[1] < took[0].mul_f64(0.6),
        "4 parts in flight ({:?}) are not faster than 1 ({:?})",
        took[1],
        took[0]
    );
}

#[tokio::test]
async fn by_default_parts_in_flight_grow_while_the_throughput_grows() {
    // Streams of 2 MB/s on a link of 24 MB/s: 12 streams fill it.
    let emulator = shaped(
        NetworkShape::default()
            .stream_rate(2_000_000)
            .link_rate(24_000_000),
    )
    .await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(96 * 256 * KIB, 3);
    let path = write_file(dir.path(), "data.bin", &bytes);
    upload(&client, &path, 256 * KIB)
        .send()
        .await
        .expect("uploaded");
    let most = emulator.most_parts_in_flight();
    assert!(most > 4, "grew from 4 to {most}");
    assert!(most <= 64);
    assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
}

#[tokio::test]
async fn a_server_limiting_parts_in_flight_is_met_not_fought() {
    let emulator = shaped(
        NetworkShape::default()
            .stream_rate(4_000_000)
            .max_parts_in_flight(3)
            .retry_after(Duration::from_millis(50)),
    )
    .await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(24 * 128 * KIB, 4);
    let path = write_file(dir.path(), "data.bin", &bytes);
    // A small budget: a client that kept more parts in flight than the
    // server takes would spend it.
    let retry = RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    upload(&client, &path, 128 * KIB)
        .retry(retry)
        .send()
        .await
        .expect("uploaded within each part's budget");
    assert_eq!(emulator.most_parts_in_flight(), 3);
    let throttled = emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/parts"))
        .count()
        - 24;
    assert!(throttled >= 1, "the limit was met at least once");
    assert!(
        throttled <= 6,
        "{throttled} parts throttled: the limit was fought"
    );
    assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
}

/// Sends `parts` parts of `len` bytes to a new Upload, `together` at once.
async fn send_parts(emulator: &Emulator, parts: usize, len: usize, together: bool) -> Duration {
    let client = client(emulator);
    let upload = client
        .create_upload(&openai_uploads::types::CreateUploadRequest {
            filename: "x.bin".into(),
            purpose: Purpose::Assistants,
            bytes: (parts * len) as i64,
            mime_type: "application/octet-stream".into(),
            expires_after: None,
        })
        .await
        .expect("created");
    let send = |i: usize| {
        let client = client.clone();
        let id = upload.id.clone();
        async move {
            client
                .add_upload_part(&id, PartBody::from_bytes(vec![i as u8; len]))
                .await
                .expect("part taken");
        }
    };
    let started = Instant::now();
    if together {
        futures::future::join_all((0..parts).map(send)).await;
    } else {
        for i in 0..parts {
            send(i).await;
        }
    }
    started.elapsed()
}

#[tokio::test]
async fn the_shaping_does_what_it_claims() {
    const LEN: usize = 256 * 1024;
    // A cap per connection: four connections move four bodies faster than one.
    let per_stream = shaped(NetworkShape::default().stream_rate(2_000_000)).await;
    let one = send_parts(&per_stream, 4, LEN, false).await;
    let four = send_parts(&per_stream, 4, LEN, true).await;
    assert!(
        four < one.mul_f64(0.6),
        "4 streams {four:?}, 1 stream {one:?}"
    );

    // A link as narrow as one stream: four connections gain nothing.
    let narrow = shaped(
        NetworkShape::default()
            .stream_rate(2_000_000)
            .link_rate(2_000_000),
    )
    .await;
    let one = send_parts(&narrow, 4, LEN, false).await;
    let four = send_parts(&narrow, 4, LEN, true).await;
    assert!(
        four > one.mul_f64(0.7),
        "4 streams {four:?}, 1 stream {one:?}"
    );

    // A round trip: every answer comes at least that long after its request.
    let far = shaped(NetworkShape::default().round_trip(Duration::from_millis(60))).await;
    let took = send_parts(&far, 2, 10, false).await;
    assert!(took >= Duration::from_millis(120), "{took:?}");
}

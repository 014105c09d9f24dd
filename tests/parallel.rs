#![cfg(feature = "emulator")]
//! Parts in parallel, against a network-shaped emulator over loopback:
//! connections per part in flight, parallel reads with md5 on, adaptive
//! parts in flight, a server that limits them, and the round trip.

mod common;

use std::time::{Duration, Instant};

use openai_uploads::Client;
use openai_uploads::emulator::{Emulator, EmulatorConfig, NetworkShape};
use openai_uploads::upload::{DEFAULT_CONCURRENCY, Purpose, RetryPolicy, UploadBuilder};

use common::{content, md5_hex, write_file};

const KIB: u64 = 1024;

async fn shaped(network: NetworkShape) -> Emulator {
    Emulator::start(EmulatorConfig::default().with_network(network))
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
    for concurrency in [1, 4] {
        let emulator = shaped(network.clone()).await;
        let client = client(&emulator);
        upload(&client, &path, 512 * KIB)
            .concurrency(concurrency)
            .md5(true)
            .send()
            .await
            .expect("uploaded");
        assert_eq!(emulator.most_parts_in_flight(), concurrency);
        assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
    }
}

#[tokio::test]
async fn by_default_parts_in_flight_grow_while_the_throughput_grows() {
    // Streams of 500 kB/s on a link of 24 MB/s: 48 streams fill it, three
    // times the count an upload starts with.
    let emulator = shaped(
        NetworkShape::default()
            .stream_rate(500_000)
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
    assert!(
        most > DEFAULT_CONCURRENCY,
        "grew from {DEFAULT_CONCURRENCY} to {most}"
    );
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
    let retry = RetryPolicy::default()
        .with_max_retries(3)
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(50));
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
    // The first wave meets the limit: of the parts started at once, those
    // past what the server takes are refused; after it, hardly any (a 429
    // now and then halves the count, which then grows back).
    let first_wave = DEFAULT_CONCURRENCY - 3;
    assert!(
        throttled <= first_wave + 6,
        "{throttled} parts throttled: the limit was fought"
    );
    assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
}

#[tokio::test]
async fn every_answer_comes_a_round_trip_after_its_request() {
    // The rates themselves are tested on the paused clock in
    // `emulator::shape`; here the round trip is seen over real HTTP.
    let far = shaped(NetworkShape::default().round_trip(Duration::from_millis(60))).await;
    let client = client(&far);
    let started = Instant::now();
    for _ in 0..2 {
        client
            .list_files(None, None, None, None)
            .await
            .expect("listed");
    }
    // The handshake and two answers: at least three round trips.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(180), "{took:?}");
}

#[tokio::test]
async fn a_server_limiting_parts_in_flight_sees_single_429s_after_the_first_wave() {
    let emulator = shaped(
        NetworkShape::default()
            .stream_rate(4_000_000)
            .max_parts_in_flight(4)
            .retry_after(Duration::from_millis(20)),
    )
    .await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let parts = 160;
    let bytes = content(parts * 64 * KIB, 6);
    let path = write_file(dir.path(), "data.bin", &bytes);
    upload(&client, &path, 64 * KIB)
        .send()
        .await
        .expect("uploaded");
    let throttled = emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/parts"))
        .count()
        - parts as usize;
    // Past the first wave, the count the wave showed is probed once per
    // several rounds (a cycle of about 40 parts here): at most one 429 per
    // 16 parts, never a wave.
    let first_wave = DEFAULT_CONCURRENCY - 4;
    let probes = parts as usize / 16;
    assert!(
        (first_wave..=first_wave + probes).contains(&throttled),
        "{throttled} part requests throttled"
    );
    assert_eq!(emulator.most_parts_in_flight(), 4);
    assert_eq!(md5_sent(&emulator), Some(md5_hex(&bytes)));
}

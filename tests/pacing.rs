#![cfg(feature = "emulator")]
//! The pace of parts in flight against a server that throttles, read from
//! the pace's own log lines.

mod common;

use std::time::Duration;

use openai_uploads::emulator::{Emulator, EmulatorConfig, FaultScope, Faults, NetworkShape};
use openai_uploads::upload::{DEFAULT_CONCURRENCY, Purpose, RetryPolicy};

use common::{content, md5_hex, write_file};

const KIB: u64 = 1024;

/// Log lines written while the test runs, at debug level.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The parts in flight each change of the pace set, in order.
    fn paces(&self) -> Vec<usize> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| l.split("parts_in_flight=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

#[tokio::test]
async fn a_429_on_one_part_request_in_ten_leaves_more_than_one_part_in_flight() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The only test of this file, so the only subscriber of its process.
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");

    let emulator = Emulator::start(
        EmulatorConfig::default()
            .with_network(NetworkShape::default().stream_rate(4_000_000))
            .with_faults(
                Faults::default()
                    .with_scope(FaultScope::PartsOnly)
                    .with_rate_limit_every(10)
                    .with_retry_after(Duration::from_millis(20)),
            ),
    )
    .await
    .expect("emulator starts");
    let client = common::client_of(&emulator, "sk-test-pacing");
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(240 * 64 * KIB, 5);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let retry = RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20));
    client
        .upload_file(&path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(64 * KIB)
        .retry(retry)
        .send()
        .await
        .expect("uploaded");
    let md5 = emulator.completions().last().and_then(|c| c.md5.clone());
    assert_eq!(md5, Some(md5_hex(&bytes)));
    let limited = emulator
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("RateLimit"))
        .count();
    assert!(limited >= 24, "one part request in ten refused: {limited}");

    let paces = captured.paces();
    assert!(
        paces.len() >= 8,
        "the pace changed with the 429s: {paces:?}"
    );
    // Halved on 429s, and grown back between them: never pinned at one.
    let mut late = paces[paces.len() * 3 / 4..].to_vec();
    late.sort_unstable();
    assert!(
        late[late.len() / 2] > 1,
        "the last quarter of the upload ran mostly one part at a time: {paces:?}"
    );
    assert!(
        paces
            .windows(2)
            .any(|w| w[1] > w[0] && w[0] < DEFAULT_CONCURRENCY),
        "the count grew back after a 429: {paces:?}"
    );
}

//! Streams a 1 GiB Upload through the in-process emulator and reports peak
//! memory, to show that neither side holds a part in memory.
//!
//! ```text
//! cargo run --release --features emulator --example emulator_memory
//! ```

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use openai_uploads::emulator::{Emulator, EmulatorConfig};
use openai_uploads::types::{
    CompleteUploadRequest, CreateUploadRequest, CreateUploadRequestPurpose,
};
use openai_uploads::{Config, PartBody};

const MIB: u64 = 1024 * 1024;
const PART_BYTES: u64 = 64 * MIB;
const PARTS: u64 = 16;
const CHUNK_BYTES: usize = 256 * 1024;
/// Parts in flight at once, as a real uploader would send them.
const CONCURRENCY: usize = 4;

/// A `/proc/self/status` figure in KiB (`VmHWM` is the peak resident set).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown".into(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// `len` pseudo-random bytes in chunks of `CHUNK_BYTES`, made as they are read.
fn generated(seed: u64, len: u64) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold((seed, len), |(mut state, left)| async move {
        if left == 0 {
            return None;
        }
        let n = left.min(CHUNK_BYTES as u64) as usize;
        let mut chunk = vec![0u8; n];
        for word in chunk.chunks_mut(8) {
            // splitmix64: cheap, and no chunk repeats, so nothing downstream can compress it away.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let bytes = (z ^ (z >> 31)).to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        Some((Ok(Bytes::from(chunk)), (state, left - n as u64)))
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let client = Config::new()
        .with_api_key("emulator")
        .with_base_url(emulator.base_url())
        .client()?;
    let before = proc_status_kib("VmHWM");
    println!("peak RSS before: {}", mib(before));

    let total = PART_BYTES * PARTS;
    let started = Instant::now();
    let upload = client
        .create_upload(&CreateUploadRequest {
            filename: "memory.bin".into(),
            purpose: CreateUploadRequestPurpose::Assistants,
            bytes: total as i64,
            mime_type: "application/octet-stream".into(),
            expires_after: None,
        })
        .await?
        .into_inner();

    let mut ids: Vec<(u64, String)> = futures::stream::iter(0..PARTS)
        .map(|i| {
            let (client, upload_id) = (&client, &upload.id);
            async move {
                let body = PartBody::from_stream(generated(i + 1, PART_BYTES), PART_BYTES);
                let part = client.add_upload_part(upload_id, body).await?;
                Ok::<_, openai_uploads::Error>((i, part.into_inner().id))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    ids.sort();

    println!("completing without md5 (the emulator would otherwise re-read 1 GiB to check it)");
    let done = client
        .complete_upload(
            &upload.id,
            &CompleteUploadRequest {
                part_ids: ids.into_iter().map(|(_, id)| id).collect(),
                md5: None,
            },
        )
        .await?
        .into_inner();
    let elapsed = started.elapsed();
    let file = done.file.ok_or("the completed Upload has no File")?;

    let after = proc_status_kib("VmHWM");
    println!(
        "uploaded {} MiB as {PARTS} parts of {} MiB ({CONCURRENCY} at a time) into {}",
        total / MIB,
        PART_BYTES / MIB,
        file.id
    );
    println!(
        "{:.2} s, {:.0} MiB/s",
        elapsed.as_secs_f64(),
        (total / MIB) as f64 / elapsed.as_secs_f64()
    );
    println!("peak RSS after: {}", mib(after));
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "peak RSS grew by {}",
            mib(Some(after.saturating_sub(before)))
        );
    }
    emulator.stop().await;
    Ok(())
}

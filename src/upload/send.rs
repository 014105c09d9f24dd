//! Sending one part: from a file, each attempt reads the part's own range
//! (showing each chunk to the md5's window); from a reader, the first
//! attempt streams from the reader and retries send the kept bytes. A
//! confirmation is recorded in the state file before it counts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::Progress;
use super::chunks::{BufferPool, Tap, file_range_stream};
use super::pace::Pacer;
use super::plan::PlannedPart;
use super::read::{Buffered, KeptPart};
use super::retry::{RetryPolicy, Stage, with_retries};
use super::state::ResumeState;
use crate::client::Client;
use crate::error::Error;
use crate::hooks::unix_now;
use crate::parts::PartBody;
use crate::validate::rules::{self, TrackedUpload};
use crate::validate::{Operation, answers};

/// What every part of one Upload shares.
pub(crate) struct Sender {
    pub client: Client,
    pub upload_id: String,
    /// The Upload as far as this client knows it: pending until it expires.
    pub upload: TrackedUpload,
    /// The file to read each attempt's range from; `None` for a reader.
    pub source_path: Option<PathBuf>,
    /// Sees every chunk read from the file: the md5's window.
    pub tap: Option<Tap>,
    /// For a reader: each part's bytes, kept until it is confirmed.
    pub kept: Mutex<HashMap<u32, watch::Receiver<KeptPart>>>,
    pub retry: RetryPolicy,
    pub progress: watch::Sender<Progress>,
    pub state: Option<(PathBuf, tokio::sync::Mutex<ResumeState>)>,
    /// Buffers of the chunks read for this upload.
    pub pool: BufferPool,
    /// The slots of the parts in flight.
    pub pacer: Arc<Pacer>,
}

/// Sends `part` until the server confirms it, the retries are spent, or it
/// is refused; returns its number and id.
pub(crate) async fn send_part(
    shared: Arc<Sender>,
    part: PlannedPart,
    first: Option<mpsc::Receiver<Buffered>>,
) -> Result<(u32, String), Error> {
    let span = tracing::info_span!(
        "part",
        number = part.number,
        offset = part.offset,
        len = part.len
    );
    let first = Mutex::new(first);
    let result = with_retries(&shared.retry, Stage::Filling, "add_upload_part", || {
        let first = first.lock().map(|mut f| f.take()).unwrap_or_default();
        let shared = shared.clone();
        async move {
            // Never a part to a dead Upload.
            let dead = rules::check_upload_pending(&shared.upload, unix_now());
            if !dead.is_empty() {
                return Err(Error::InvalidRequest(dead));
            }
            let slot = shared.pacer.slot().await;
            let body = match first {
                Some(rx) => stream_body(
                    futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|(chunk, _budget)| (Ok(chunk), rx))
                    }),
                    part.len,
                    &shared.progress,
                ),
                None => again(&shared, part).await?,
            };
            let counted = body.sent;
            let checksum = body.checksum;
            let answer = shared
                .client
                .add_upload_part(&shared.upload_id, body.body)
                .await;
            drop(slot);
            if let Err(error) = &answer {
                let lost = counted.load(Ordering::Relaxed);
                shared.progress.send_modify(|p| p.bytes_sent -= lost);
                if error.status() == Some(429) {
                    shared.pacer.throttled();
                }
            }
            answer.map(|r| (r.into_inner(), checksum.load(Ordering::Relaxed)))
        }
    })
    .instrument(span)
    .await
    .and_then(|(answer, checksum)| {
        let mismatches = answers::check_part(&shared.upload_id, &answer);
        if mismatches.is_empty() {
            Ok((answer.id, checksum))
        } else {
            Err(Error::Mismatch {
                operation: Operation::AddUploadPart,
                mismatches,
            })
        }
    });

    let (id, checksum) = result.map_err(|source| match source {
        // The server took the part; only its answer is refused (strict
        // mode), which is not a failed part.
        conformance @ Error::Conformance { .. } => conformance,
        source => Error::Part {
            part_number: part.number,
            offset: part.offset,
            len: part.len,
            cause: Box::new(source),
        },
    })?;
    if let Ok(mut kept) = shared.kept.lock() {
        kept.remove(&part.number);
    }
    // Saved before progress reports it, so a confirmed part is never lost to a crash.
    if let Some((path, state)) = &shared.state {
        let mut state = state.lock().await;
        state.parts.insert(part.number, id.clone());
        state.checksums.insert(part.number, checksum);
        state.save(path)?;
    }
    shared.progress.send_modify(|p| {
        p.bytes_confirmed += part.len;
        p.parts_confirmed += 1;
    });
    Ok((part.number, id))
}

struct CountedBody {
    body: PartBody,
    sent: Arc<AtomicU64>,
    /// CRC32C of the bytes handed to the connection so far.
    checksum: Arc<AtomicU32>,
}

/// A part body that reports the bytes it hands to the connection, and
/// their checksum.
fn stream_body<S>(chunks: S, len: u64, progress: &watch::Sender<Progress>) -> CountedBody
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let sent = Arc::new(AtomicU64::new(0));
    let checksum = Arc::new(AtomicU32::new(0));
    let (counter, crc) = (sent.clone(), checksum.clone());
    let progress = progress.clone();
    // One stream feeds one body, in order: the loads and stores never race.
    let stream = chunks.inspect_ok(move |chunk| {
        let n = chunk.len() as u64;
        counter.fetch_add(n, Ordering::Relaxed);
        crc.store(
            crc32c::crc32c_append(crc.load(Ordering::Relaxed), chunk),
            Ordering::Relaxed,
        );
        progress.send_modify(|p| p.bytes_sent += n);
    });
    CountedBody {
        body: PartBody::from_stream(stream, len),
        sent,
        checksum,
    }
}

/// The body of an attempt not fed by the reader: the byte range read from
/// the file, or the kept bytes.
async fn again(shared: &Sender, part: PlannedPart) -> Result<CountedBody, Error> {
    if let Some(path) = &shared.source_path {
        let chunks = file_range_stream(
            path,
            part.offset,
            part.len,
            shared.pool.clone(),
            shared.tap.clone(),
        )
        .await?;
        return Ok(stream_body(chunks, part.len, &shared.progress));
    }
    let ready = shared
        .kept
        .lock()
        .ok()
        .and_then(|kept| kept.get(&part.number).cloned());
    let mut ready =
        ready.ok_or_else(|| Error::Internal(format!("part {} has no kept bytes", part.number)))?;
    let kept = ready
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::Internal(format!("the reader stopped before part {}", part.number)))?
        .clone()
        .ok_or_else(|| Error::Internal(format!("part {} has no kept bytes", part.number)))?;
    let chunks = futures::stream::iter((0..kept.len()).map(move |i| Ok(kept[i].clone())));
    Ok(stream_body(chunks, part.len, &shared.progress))
}

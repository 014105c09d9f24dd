//! Part bytes written to the data directory as they arrive, in batches, and
//! read back in order to check an Upload's md5 at completion.

use std::path::Path;

use axum::http::StatusCode;

use super::failure::{ApiFailure, first_violation};
use crate::validate::rules;

/// Bytes of a part gathered before they are handed on: to the disk in one
/// blocking call, and to the running md5.
const WRITE_BATCH: usize = 1024 * 1024;

/// Writes a part arriving as chunks to `path`, refusing it past 64 MB.
///
/// Chunks are gathered into batches of about [`WRITE_BATCH`] and written with
/// blocking I/O off the runtime, one batch in flight while the next arrives:
/// no copy into an intermediate buffer, and one hop to a blocking thread per
/// batch rather than per network read.
///
/// Without a `path` the bytes are counted and dropped.
pub(crate) async fn write_part<S, E>(path: Option<&Path>, mut chunks: S) -> Result<u64, ApiFailure>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    let file = match path {
        Some(path) => Some(super::paths::create_part(path).map_err(|e| storing(&e))?),
        None => None,
    };
    // The file, handed back once the batch being written is on disk.
    let mut writing: Writing = Box::pin(std::future::ready(Ok(file)));
    let mut batch = Vec::new();
    let mut batched = 0;
    let mut len: u64 = 0;
    loop {
        let next = chunks.next().await;
        let end = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    format!("reading the multipart body: {e}"),
                )
            })?;
            len += chunk.len() as u64;
            // Refused as soon as it grows past the limit, not once read whole.
            if len > rules::MAX_PART_BYTES {
                first_violation(rules::check_part_size(len))?;
            }
            batched += chunk.len();
            batch.push(chunk);
            if batched < WRITE_BATCH {
                continue;
            }
        }
        if !batch.is_empty() {
            writing = match writing.await? {
                Some(file) => write_batch(file, std::mem::take(&mut batch)),
                None => {
                    batch.clear();
                    Box::pin(std::future::ready(Ok(None)))
                }
            };
            batched = 0;
        }
        if end {
            break;
        }
    }
    writing.await?;
    Ok(len)
}

/// A batch being written; it hands the file (if any) back when done.
type Writing = futures::future::BoxFuture<'static, Result<Option<std::fs::File>, ApiFailure>>;

/// Disk work on blocking threads at once, for all emulators of the process:
/// many parts arriving together wait their turn rather than each taking a
/// thread of Tokio's blocking pool (up to 512 of them).
const DISK_JOBS: usize = 16;

static DISK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DISK_JOBS);

/// Runs `work` on a blocking thread, once one of the [`DISK_JOBS`] places is free.
async fn on_disk<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    // The semaphore is never closed.
    let _place = DISK.acquire().await;
    tokio::task::spawn_blocking(work).await
}

fn write_batch(mut file: std::fs::File, batch: Vec<bytes::Bytes>) -> Writing {
    use std::io::Write;
    // A task of its own, so the batch is written while the next one arrives.
    let written = tokio::spawn(on_disk(
        move || -> std::io::Result<Option<std::fs::File>> {
            for chunk in &batch {
                file.write_all(chunk)?;
            }
            Ok(Some(file))
        },
    ));
    Box::pin(async move {
        written
            .await
            .map_err(|e| storing(&e))?
            .map_err(|e| storing(&e))?
            .map_err(|e| storing(&e))
    })
}

/// The md5 of the files at `paths`, read one after another on a blocking
/// thread: the bytes of an Upload in `part_ids` order.
///
/// Hashing at completion, rather than while parts arrive, holds nothing
/// per pending Upload: no thread, no buffer, no order to track.
pub(crate) async fn md5_of(paths: Vec<std::path::PathBuf>) -> Result<String, ApiFailure> {
    let reading = on_disk(move || -> std::io::Result<String> {
        use std::io::Read;
        let mut md5 = crate::digest::Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        for path in &paths {
            let mut file = super::paths::open_part(path)?;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
            }
        }
        Ok(crate::digest::hex(&md5.finalize()))
    });
    reading
        .await
        .map_err(|e| ApiFailure::internal(format!("reading parts: {e}")))?
        .map_err(|e| ApiFailure::internal(format!("reading parts: {e}")))
}

fn storing(error: &dyn std::fmt::Display) -> ApiFailure {
    ApiFailure::internal(format!("storing part: {error}"))
}

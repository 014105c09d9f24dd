//! The engine of the one-call upload: one reader, N part senders, completion.
//!
//! With md5 on, a single reader task reads the source once, in order (a file
//! on a blocking thread of its own), and streams each chunk into the first
//! attempt of the part it belongs to, and into the md5 thread. The reader
//! holds at most `concurrency × CHANNEL_CHUNKS` chunks of 1 MiB not yet sent,
//! and the md5 may lag `HASH_LAG_CHUNKS` behind: memory stays near 20 MiB
//! whatever the file and part sizes, in buffers reused from chunk to chunk.
//! Retries of a file part re-read its byte range. With md5 off, every part
//! reads its own range, so parts stream in parallel.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::plan::{PartPlan, PlannedPart};
use super::retry::{RetryPolicy, with_retries};
use super::state::{ResumeState, SourceIdentity};
use super::{Progress, Purpose};
use crate::chunks::{BufferPool, chunk_lengths, file_range_stream, read_file_ranges};
use crate::error::Error;
use crate::generated::{Client, types};
use crate::hooks::unix_now;
use crate::parts::PartBody;

/// Chunks buffered per part between the reader and its request; the reader
/// holds at most `concurrency × CHANNEL_CHUNKS` chunks not yet sent in all.
const CHANNEL_CHUNKS: usize = 4;
/// Chunks the md5 may fall behind the reader (16 MiB).
const HASH_LAG_CHUNKS: usize = 16;
/// A resumed Upload must have at least this long left to live.
const RESUME_MARGIN_SECONDS: i64 = 60;

/// Where the bytes come from.
pub(crate) enum Source {
    File(PathBuf),
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

pub(crate) struct Job {
    pub client: Client,
    pub source: SourceIdentity,
    pub plan: PartPlan,
    pub filename: String,
    pub purpose: Purpose,
    pub mime_type: String,
    pub expires_after: Option<i64>,
    pub concurrency: usize,
    pub md5: bool,
    pub retry: RetryPolicy,
    pub state_file: Option<PathBuf>,
    pub progress: watch::Sender<Progress>,
    pub cancel: CancellationToken,
}

/// A chunk on its way to a part's request, with its share of the read budget,
/// given back when the request takes the chunk.
type Buffered = (Bytes, OwnedSemaphorePermit);

/// Bytes of parts whose source cannot be read again, kept until confirmed.
type Retained = Arc<Mutex<HashMap<u32, watch::Receiver<Option<Arc<Vec<Bytes>>>>>>>;

struct Shared {
    client: Client,
    upload_id: String,
    source_path: Option<PathBuf>,
    retained: Retained,
    retry: RetryPolicy,
    progress: watch::Sender<Progress>,
    state: Option<(PathBuf, tokio::sync::Mutex<ResumeState>)>,
    /// Buffers of the chunks read for this upload.
    pool: BufferPool,
}

pub(crate) async fn run(job: Job, source: Source) -> Result<types::Upload, Error> {
    let span = tracing::info_span!(
        "upload",
        filename = %job.filename,
        bytes = job.plan.total(),
        parts = job.plan.len()
    );
    run_inner(job, source).instrument(span).await
}

async fn run_inner(job: Job, source: Source) -> Result<types::Upload, Error> {
    let (upload_id, confirmed, state) = open_upload(&job).await?;
    tracing::info!(upload_id = %upload_id, resumed_parts = confirmed.len(), "upload open");
    let cancel = job.cancel.clone();
    let client = job.client.clone();
    let state_path = job.state_file.clone();
    let work = drive(job, source, upload_id.clone(), confirmed, state);
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = cancel.cancelled() => Err(Error::Cancelled),
    };
    match outcome {
        Ok(upload) => {
            if let Some(path) = &state_path {
                let _ = std::fs::remove_file(path);
            }
            Ok(upload)
        }
        Err(error) => {
            tracing::warn!(upload_id = %upload_id, %error, "cancelling the Upload");
            let cancelled = with_retries(&RetryPolicy::default(), "cancel_upload", || async {
                client.cancel_upload(&upload_id).await.map_err(Error::from)
            })
            .await;
            if let Err(e) = cancelled {
                tracing::warn!(upload_id = %upload_id, error = %e, "could not cancel the Upload");
            }
            if let Some(path) = &state_path {
                let _ = std::fs::remove_file(path);
            }
            Err(error)
        }
    }
}

/// Creates the Upload, or takes up the one in the state file.
async fn open_upload(
    job: &Job,
) -> Result<(String, BTreeMap<u32, String>, Option<ResumeState>), Error> {
    if let Some(path) = &job.state_file
        && let Some(state) = ResumeState::load(path)?
    {
        if state.source != job.source {
            let was = &state.source;
            return Err(Error::Resume {
                path: path.clone(),
                message: format!(
                    "it describes {} ({} bytes, parts of {}, modified at {:?} ms), \
                     not this source; remove it to start anew",
                    was.filename, was.bytes, was.part_size, was.modified_ms
                ),
            });
        }
        if state.expires_at > unix_now() + RESUME_MARGIN_SECONDS {
            return Ok((state.upload_id.clone(), state.parts.clone(), Some(state)));
        }
        tracing::info!(upload_id = %state.upload_id, "the saved Upload has expired; starting anew");
    }
    let request = types::CreateUploadRequest {
        filename: job.filename.clone(),
        purpose: job.purpose,
        bytes: job.plan.total() as i64,
        mime_type: job.mime_type.clone(),
        expires_after: job.expires_after.map(|seconds| types::FileExpirationAfter {
            anchor: types::FileExpirationAfterAnchor::CreatedAt,
            seconds,
        }),
    };
    let upload = with_retries(&job.retry, "create_upload", || async {
        job.client
            .create_upload(&request)
            .await
            .map(|r| r.into_inner())
            .map_err(Error::from)
    })
    .await?;
    let state = job
        .state_file
        .as_ref()
        .map(|_| ResumeState::new(upload.id.clone(), upload.expires_at, job.source.clone()));
    if let (Some(path), Some(state)) = (&job.state_file, &state)
        && let Err(error) = state.save(path)
    {
        // Nothing will resume this Upload: leave nothing pending.
        let _ = job.client.cancel_upload(&upload.id).await;
        return Err(error);
    }
    Ok((upload.id, BTreeMap::new(), state))
}

async fn drive(
    job: Job,
    source: Source,
    upload_id: String,
    confirmed: BTreeMap<u32, String>,
    state: Option<ResumeState>,
) -> Result<types::Upload, Error> {
    let Job {
        client,
        plan,
        concurrency,
        md5,
        retry,
        state_file,
        progress,
        ..
    } = job;
    let already: u64 = confirmed
        .keys()
        .filter_map(|n| plan.part(*n))
        .map(|p| p.len)
        .sum();
    progress.send_modify(|p| {
        p.bytes_confirmed = already;
        p.bytes_sent = already;
        p.parts_confirmed = confirmed.len() as u32;
    });

    let source_path = match &source {
        Source::File(path) => Some(path.clone()),
        Source::Reader(_) => None,
    };
    let needs_reader = md5 || source_path.is_none();
    let remaining: Vec<PlannedPart> = plan
        .parts()
        .filter(|p| !confirmed.contains_key(&p.number))
        .collect();

    let retained: Retained = Arc::default();
    let pool = BufferPool::default();
    let mut first_bodies: HashMap<u32, mpsc::Receiver<Buffered>> = HashMap::new();
    let reader = if needs_reader {
        let mut senders = HashMap::new();
        let mut publishers = HashMap::new();
        for part in &remaining {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            senders.insert(part.number, tx);
            first_bodies.insert(part.number, rx);
            if source_path.is_none() {
                let (publish, subscribe) = watch::channel(None);
                publishers.insert(part.number, publish);
                retained
                    .lock()
                    .expect("retained lock")
                    .insert(part.number, subscribe);
            }
        }
        let reader = match source {
            Source::File(path) => {
                let ranges = plan.parts().map(|p| (p.offset, p.len)).collect();
                Chunks::File(read_file_ranges(&path, ranges, pool.clone()).await?)
            }
            Source::Reader(reader) => Chunks::Reader(reader, pool.clone()),
        };
        let plan = plan.clone();
        // Aborted when the upload ends early (a failed part, cancel, or the
        // future dropped), so the file is not read to its end for nothing.
        Some(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            read_once(
                reader,
                plan,
                senders,
                publishers,
                md5,
                source_path.clone(),
                Arc::new(Semaphore::new(concurrency.max(1) * CHANNEL_CHUNKS)),
            ),
        )))
    } else {
        None
    };

    let shared = Arc::new(Shared {
        client: client.clone(),
        upload_id: upload_id.clone(),
        source_path,
        retained,
        retry: retry.clone(),
        progress,
        state: state_file
            .zip(state)
            .map(|(p, s)| (p, tokio::sync::Mutex::new(s))),
        pool,
    });

    let sent = futures::stream::iter(remaining.into_iter().map(|part| {
        let first = first_bodies.remove(&part.number);
        let shared = shared.clone();
        async move { send_part(shared, part, first).await }
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<Vec<(u32, String)>>();

    let (sent, digest) = match reader {
        Some(reader) => {
            let reading = async {
                reader
                    .await
                    .map_err(|e| Error::Client(format!("reader task failed: {e}")))?
            };
            let (sent, digest) = tokio::try_join!(sent, reading)?;
            (sent, digest)
        }
        None => (sent.await?, None),
    };

    let mut ids = confirmed;
    ids.extend(sent);
    let part_ids: Vec<String> = ids.into_values().collect();
    let body = types::CompleteUploadRequest {
        part_ids,
        md5: digest.map(|d| crate::digest::hex(&d)),
    };
    let done = with_retries(&retry, "complete_upload", || async {
        client
            .complete_upload(&upload_id, &body)
            .await
            .map(|r| r.into_inner())
            .map_err(Error::from)
    })
    .await?;
    tracing::info!(upload_id = %upload_id, "upload completed");
    Ok(done)
}

/// The source read once, in order, as chunks that never span two parts.
enum Chunks {
    /// Read on a blocking thread.
    File(mpsc::Receiver<std::io::Result<Bytes>>),
    /// Read here.
    Reader(Box<dyn AsyncRead + Send + Unpin>, BufferPool),
}

impl Chunks {
    /// The next chunk, of `len` bytes.
    async fn next(&mut self, len: usize) -> std::io::Result<Bytes> {
        match self {
            Chunks::File(rx) => {
                let chunk = rx
                    .recv()
                    .await
                    .unwrap_or_else(|| Err(std::io::Error::other("the file reader stopped")))?;
                debug_assert_eq!(chunk.len(), len);
                Ok(chunk)
            }
            Chunks::Reader(reader, pool) => pool.read_async(reader, len).await,
        }
    }
}

/// Reads the source once, in order: hashes it and feeds each part's first attempt.
async fn read_once(
    mut reader: Chunks,
    plan: PartPlan,
    mut senders: HashMap<u32, mpsc::Sender<Buffered>>,
    mut publishers: HashMap<u32, watch::Sender<Option<Arc<Vec<Bytes>>>>>,
    md5: bool,
    path: Option<PathBuf>,
    budget: Arc<Semaphore>,
) -> Result<Option<[u8; 16]>, Error> {
    // Hashing runs on a thread of its own, up to HASH_LAG_CHUNKS behind the
    // reader, so that sending does not wait for the md5 nor the md5 for sending.
    let (to_hasher, hashing) = if md5 {
        let (tx, mut rx) = mpsc::channel::<Bytes>(HASH_LAG_CHUNKS);
        let thread = tokio::task::spawn_blocking(move || {
            let mut hasher = Md5::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
            }
            <[u8; 16]>::from(hasher.finalize())
        });
        (Some(tx), Some(thread))
    } else {
        (None, None)
    };
    let where_ = || path.clone().unwrap_or_else(|| PathBuf::from("<reader>"));
    for part in plan.parts() {
        let mut sender = senders.remove(&part.number);
        let publisher = publishers.remove(&part.number);
        let mut kept = publisher.as_ref().map(|_| Vec::new());
        for want in chunk_lengths(&[(part.offset, part.len)]) {
            let chunk = reader
                .next(want)
                .await
                .map_err(|e| Error::io(where_(), e))?;
            if let Some(tx) = &to_hasher {
                tx.send(chunk.clone())
                    .await
                    .map_err(|_| Error::Client("the md5 thread stopped".into()))?;
            }
            if let Some(kept) = kept.as_mut() {
                kept.push(chunk.clone());
            }
            // A closed channel means the first attempt failed; its retry reads
            // the range again, and the hash still needs these bytes.
            if let Some(tx) = &sender {
                let permit = budget
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Client("the read budget closed".into()))?;
                if tx.send((chunk, permit)).await.is_err() {
                    sender = None;
                }
            }
        }
        if let (Some(publisher), Some(kept)) = (publisher, kept) {
            let _ = publisher.send(Some(Arc::new(kept)));
        }
    }
    drop(to_hasher);
    match hashing {
        Some(thread) => thread
            .await
            .map(Some)
            .map_err(|e| Error::Client(format!("the md5 thread failed: {e}"))),
        None => Ok(None),
    }
}

async fn send_part(
    shared: Arc<Shared>,
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
    let result = with_retries(&shared.retry, "add_upload_part", || {
        let first = first.lock().expect("first body lock").take();
        let shared = shared.clone();
        async move {
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
            let answer = shared
                .client
                .add_upload_part(&shared.upload_id, body.body)
                .await
                .map_err(Error::from);
            if answer.is_err() {
                let lost = counted.load(std::sync::atomic::Ordering::Relaxed);
                shared.progress.send_modify(|p| p.bytes_sent -= lost);
            }
            answer.map(|r| r.into_inner().id)
        }
    })
    .instrument(span)
    .await;

    let id = result.map_err(|source| Error::Part {
        part_number: part.number,
        offset: part.offset,
        len: part.len,
        source: Box::new(source),
    })?;
    shared
        .retained
        .lock()
        .expect("retained lock")
        .remove(&part.number);
    // Saved before progress reports it, so a confirmed part is never lost to a crash.
    if let Some((path, state)) = &shared.state {
        let mut state = state.lock().await;
        state.parts.insert(part.number, id.clone());
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
    sent: Arc<std::sync::atomic::AtomicU64>,
}

/// A part body that reports the bytes it hands to the connection.
fn stream_body<S>(chunks: S, len: u64, progress: &watch::Sender<Progress>) -> CountedBody
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let progress = progress.clone();
    let stream = chunks.inspect_ok(move |chunk| {
        let n = chunk.len() as u64;
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        progress.send_modify(|p| p.bytes_sent += n);
    });
    CountedBody {
        body: PartBody::from_stream(stream, len),
        sent,
    }
}

/// The body of a retry: the byte range read again, or the kept bytes.
async fn again(shared: &Shared, part: PlannedPart) -> Result<CountedBody, Error> {
    if let Some(path) = &shared.source_path {
        let chunks = file_range_stream(path, part.offset, part.len, shared.pool.clone()).await?;
        return Ok(stream_body(chunks, part.len, &shared.progress));
    }
    let mut ready = shared
        .retained
        .lock()
        .expect("retained lock")
        .get(&part.number)
        .cloned()
        .ok_or_else(|| Error::Client(format!("part {} has no kept bytes", part.number)))?;
    let kept = ready
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::Client(format!("the reader stopped before part {}", part.number)))?
        .clone()
        .expect("waited for Some");
    let chunks = futures::stream::iter((0..kept.len()).map(move |i| Ok(kept[i].clone())));
    Ok(stream_body(chunks, part.len, &shared.progress))
}

//! Drives the stages: open the Upload, fill it (one reader, N part
//! senders), complete it, and on failure leave behind what a later run can
//! use. A resumed Upload the server refuses is replaced by a fresh one, once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use super::chunks::{BufferPool, Tap};
use super::hash::FileHasher;
use super::job::{Job, Source};
use super::pace::{Pacer, TICK};
use super::plan::PlannedPart;
use super::read::{CHANNEL_CHUNKS, Outlets, read_once};
use super::send::{Sender, send_part};
use super::session::{self, Session};
use super::snapshot::{Snapshot, range_crc32c};
use super::{DEFAULT_CONCURRENCY, MAX_CONCURRENCY, Progress};
use crate::error::Error;
use crate::generated::types;
use crate::validate::rules::TrackedUpload;

pub(crate) async fn run(job: Job, source: Source) -> Result<types::Upload, Error> {
    let span = tracing::info_span!(
        "upload",
        filename = %job.settings.filename,
        bytes = job.plan.total(),
        parts = job.plan.len()
    );
    run_inner(job, source).instrument(span).await
}

async fn run_inner(mut job: Job, source: Source) -> Result<types::Upload, Error> {
    let (path, mut reader) = match source {
        Source::File(path) => (Some(path), None),
        Source::Reader(reader) => (None, Some(reader)),
    };
    // The stages are boxed: each is a large state machine, and held inline
    // they would make every frame that polls this one as large (debug builds
    // overflow a 2 MiB thread stack on them).
    let mut session = Box::pin(session::open(&mut job)).await?;
    if session.resumed {
        if let Some(path) = &path {
            Box::pin(verify_resumed(&job, &mut session, path)).await?;
        }
        tracing::info!(
            upload_id = %session.upload_id,
            "resuming Upload {}: {} of {} parts already confirmed",
            session.upload_id,
            session.confirmed.len(),
            job.plan.len()
        );
    }
    let mut replaced = false;
    loop {
        tracing::debug!(upload_id = %session.upload_id, "upload open");
        let source = match (&path, reader.take()) {
            (Some(path), _) => Source::File(path.clone()),
            (None, Some(reader)) => Source::Reader(reader),
            (None, None) => return Err(Error::Internal("the reader was read already".into())),
        };
        match stoppable(&job, Box::pin(fill(&job, &session, source))).await {
            Ok(upload) => {
                if let Some(state) = &job.settings.state_file {
                    let _ = std::fs::remove_file(state);
                }
                job.progress.send_modify(|p| p.completed = true);
                tracing::info!(upload_id = %session.upload_id, "upload completed");
                return Ok(upload);
            }
            Err(error)
                if session.resumed
                    && !replaced
                    && path.is_some()
                    && job.settings.fresh_if_expired
                    && session::upload_refused(&error) =>
            {
                tracing::warn!(
                    upload_id = %session.upload_id,
                    %error,
                    "the saved Upload no longer takes the parts; cancelling it and starting a \
                     fresh Upload"
                );
                session::cancel(&job, &session.upload_id).await;
                session = Box::pin(session::create(&job)).await?;
                replaced = true;
            }
            // Only the saved Upload may be resumed: it is left as it is, with
            // the state file, for whoever decides what to do with it.
            Err(error)
                if session.resumed
                    && !replaced
                    && !job.settings.fresh_if_expired
                    && session::upload_refused(&error) =>
            {
                if let Some(state_file) = &job.settings.state_file {
                    let refusal = match &error {
                        Error::Part { cause, .. } => cause.to_string(),
                        other => other.to_string(),
                    };
                    return Err(Error::Resume {
                        path: state_file.clone(),
                        message: format!(
                            "the server no longer takes its Upload {} ({refusal}; by this \
                             machine's clock it expires at {}): nothing was completed; allow a \
                             fresh Upload, or remove the state file to start anew",
                            session.upload_id,
                            crate::error::unix_time(session.expires_at)
                        ),
                    });
                }
                return Err(Box::pin(session::give_up(&job, &session, error)).await);
            }
            Err(error) => return Err(Box::pin(session::give_up(&job, &session, error)).await),
        }
    }
}

/// A confirmed part's offset, length and recorded checksum.
type Recorded = (u64, u64, u32);

/// Reads again each part an earlier run confirmed, and forgets those whose
/// bytes no longer match the checksum recorded when they were sent: they
/// are sent again, and the File is made of the file as it is now.
async fn verify_resumed(job: &Job, session: &mut Session, path: &Path) -> Result<(), Error> {
    let Some(state) = session.state.as_mut() else {
        return Ok(());
    };
    // A part the plan lacks, or with no recorded checksum, cannot be vouched
    // for: it counts as changed.
    let ranges: Vec<(u32, Option<Recorded>)> = session
        .confirmed
        .keys()
        .map(|&n| {
            let part = job.plan.part(n);
            let sum = state.checksums.get(&n).copied();
            (n, part.zip(sum).map(|(p, sum)| (p.offset, p.len, sum)))
        })
        .collect();
    let file = path.to_path_buf();
    let changed = tokio::task::spawn_blocking(move || -> Result<Vec<u32>, Error> {
        let mut changed = Vec::new();
        for (number, recorded) in ranges {
            let same = match recorded {
                Some((offset, len, sum)) => range_crc32c(&file, offset, len)? == sum,
                None => false,
            };
            if !same {
                changed.push(number);
            }
        }
        Ok(changed)
    })
    .await
    .map_err(|e| Error::Internal(format!("the check of the resumed parts failed: {e}")))??;
    if changed.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        upload_id = %session.upload_id,
        "{} of the parts an earlier run sent differ from the file now (parts {:?}): sending \
         them again",
        changed.len(),
        changed
    );
    for number in &changed {
        session.confirmed.remove(number);
        state.parts.remove(number);
        state.checksums.remove(number);
    }
    if let Some(state_file) = &job.settings.state_file {
        state.save(state_file)?;
    }
    Ok(())
}

/// Runs `work` until it ends or the handle cancels or pauses it.
async fn stoppable<F>(job: &Job, work: F) -> Result<types::Upload, Error>
where
    F: Future<Output = Result<types::Upload, Error>>,
{
    tokio::select! {
        outcome = work => outcome,
        () = job.control.cancel.cancelled() => Err(Error::Cancelled),
        () = job.control.pause.cancelled() => Err(match job.settings.state_file {
            Some(_) => Error::Paused,
            None => Error::Cancelled,
        }),
    }
}

/// Measures the bytes sent every tick and lets the pacer adapt.
async fn pace(pacer: Arc<Pacer>, progress: watch::Receiver<Progress>) {
    let sent = || {
        let p = *progress.borrow();
        p.bytes_sent.saturating_sub(p.bytes_resumed)
    };
    let mut last = sent();
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = sent();
        pacer.measured(now.saturating_sub(last) as f64 / TICK.as_secs_f64());
        last = now;
    }
}

/// Sends the parts the session lacks and completes the Upload.
async fn fill(job: &Job, session: &Session, source: Source) -> Result<types::Upload, Error> {
    let plan = &job.plan;
    let confirmed = &session.confirmed;
    let already: u64 = confirmed
        .keys()
        .filter_map(|n| plan.part(*n))
        .map(|p| p.len)
        .sum();
    job.progress.send_modify(|p| {
        p.bytes_confirmed = already;
        p.bytes_sent = already;
        p.bytes_resumed = already;
        p.parts_confirmed = confirmed.len() as u32;
    });

    let pacer = Arc::new(job.pacer());
    let in_flight = job.settings.concurrency.unwrap_or(MAX_CONCURRENCY);
    let md5 = job.settings.md5;
    let remaining: Vec<PlannedPart> = plan
        .parts()
        .filter(|p| !confirmed.contains_key(&p.number))
        .collect();

    let pool = BufferPool::default();
    let mut kept = HashMap::new();
    let mut first_bodies = HashMap::new();
    let mut hasher = None;
    let mut reader = None;
    let source_path = match source {
        // Every part reads its own range; the md5 follows in file order.
        Source::File(path) => {
            if md5 {
                hasher = Some(FileHasher::start(&path, plan.total())?);
            }
            Some(path)
        }
        // Read once, in order, into the md5 and the parts' first attempts.
        Source::Reader(source) => {
            let mut outlets = Outlets {
                senders: HashMap::new(),
                publishers: HashMap::new(),
                budget: Arc::new(Semaphore::new(
                    job.settings.concurrency.unwrap_or(DEFAULT_CONCURRENCY) * CHANNEL_CHUNKS,
                )),
            };
            for part in &remaining {
                let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
                outlets.senders.insert(part.number, tx);
                first_bodies.insert(part.number, rx);
                let (publish, subscribe) = watch::channel(None);
                outlets.publishers.insert(part.number, publish);
                kept.insert(part.number, subscribe);
            }
            // Aborted when the upload ends early (a failed part, cancel, or
            // the future dropped), so the source is not read for nothing.
            reader = Some(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                read_once(source, pool.clone(), plan.clone(), outlets, md5),
            )));
            None
        }
    };
    let tap = hasher.as_ref().map(|hasher| {
        let window = hasher.window();
        Arc::new(move |offset, chunk: &bytes::Bytes| window.offer(offset, chunk)) as Tap
    });

    let sender = Arc::new(Sender {
        client: job.client.clone(),
        upload_id: session.upload_id.clone(),
        upload: TrackedUpload::pending(plan.total(), session.expires_at),
        source_path,
        tap,
        kept: std::sync::Mutex::new(kept),
        retry: job.settings.retry.clone(),
        progress: job.progress.clone(),
        state: job
            .settings
            .state_file
            .clone()
            .zip(session.state.clone())
            .map(|(p, s)| (p, tokio::sync::Mutex::new(s))),
        pool,
        pacer: pacer.clone(),
    });
    let _pacing = pacer.is_adaptive().then(|| {
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(pace(
            pacer,
            job.progress.subscribe(),
        )))
    });

    let sent = futures::stream::iter(remaining.into_iter().map(|part| {
        let first = first_bodies.remove(&part.number);
        let sender = sender.clone();
        async move { send_part(sender, part, first).await }
    }))
    .buffer_unordered(in_flight)
    .try_collect::<Vec<(u32, String)>>();

    let (sent, digest) = match (reader, hasher) {
        (Some(reader), _) => {
            let reading = async {
                reader
                    .await
                    .map_err(|e| Error::Internal(format!("reader task failed: {e}")))?
            };
            tokio::try_join!(sent, reading)?
        }
        (None, Some(hasher)) => {
            let sent = sent.await?;
            (sent, Some(hasher.finish().await?))
        }
        (None, None) => (sent.await?, None),
    };

    // The bytes sent are the file's only if it did not change meanwhile.
    if let (Some(path), Some(before)) = (&sender.source_path, &job.snapshot)
        && let Some(change) = before.change_to(&Snapshot::of(path)?)
    {
        return Err(Error::SourceChanged {
            path: path.clone(),
            change: Box::new(change),
            upload_id: session.upload_id.clone(),
        });
    }
    let mut ids = confirmed.clone();
    ids.extend(sent);
    let body = types::CompleteUploadRequest {
        part_ids: ids.into_values().collect(),
        md5: digest.map(|d| crate::digest::hex(&d)),
    };
    session::complete(job, session, &body).await
}

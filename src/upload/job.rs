//! The job description: the builder's settings, checked, and what the
//! stages share while the upload runs.

use std::path::PathBuf;

use tokio::io::AsyncRead;
use tokio::sync::watch;

use super::lock::StateLock;
use super::pace::Pacer;
use super::plan::{PartPlan, default_part_size};
use super::retry::RetryPolicy;
use super::snapshot::Snapshot;
use super::state::{ResumeState, SourceIdentity};
use super::{Control, DEFAULT_CONCURRENCY, MAX_CONCURRENCY, Progress, Purpose, guess_mime_type};
use crate::client::Client;
use crate::error::Error;

/// What the builder was given to read.
pub(crate) enum Input {
    Path(PathBuf),
    Reader(Box<dyn AsyncRead + Send + Unpin>, u64),
}

/// Where the bytes come from, once checked.
pub(crate) enum Source {
    /// A regular file, read again by each part's retry and by a fresh start.
    File(PathBuf),
    /// Read once, in order.
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

/// The settings of an upload, as the builder collects them.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub filename: String,
    pub purpose: Purpose,
    pub mime_type: Option<String>,
    /// `None` takes the default, or the part size of the state file.
    pub part_size: Option<u64>,
    /// `None` adapts.
    pub concurrency: Option<usize>,
    pub md5: bool,
    pub expires_after: Option<i64>,
    pub retry: RetryPolicy,
    pub state_file: Option<PathBuf>,
    pub fresh_if_expired: bool,
    /// Wait for another run holding the state file, rather than fail.
    pub wait_for_lock: bool,
}

impl Settings {
    pub(crate) fn new(filename: String) -> Self {
        Self {
            filename,
            purpose: Purpose::FineTune,
            mime_type: None,
            part_size: None,
            concurrency: None,
            md5: true,
            expires_after: None,
            retry: RetryPolicy::default(),
            state_file: None,
            fresh_if_expired: true,
            wait_for_lock: false,
        }
    }
}

/// One upload, ready to run: checked settings, the plan, and the state
/// file's contents if there is one.
pub(crate) struct Job {
    pub client: Client,
    pub settings: Settings,
    pub mime_type: String,
    pub plan: PartPlan,
    pub identity: SourceIdentity,
    /// The source file as it was when the job was prepared; `None` for a reader.
    pub snapshot: Option<Snapshot>,
    /// The state file as found when the job was prepared.
    pub saved: Option<ResumeState>,
    pub progress: watch::Sender<Progress>,
    pub control: Control,
    /// Held while the job lives: no other run uses its state file meanwhile.
    pub _lock: Option<StateLock>,
}

impl Job {
    /// The slots of the parts in flight, fixed or adaptive.
    pub(crate) fn pacer(&self) -> Pacer {
        match self.settings.concurrency {
            Some(parts) => Pacer::fixed(parts),
            None => Pacer::adaptive(DEFAULT_CONCURRENCY, MAX_CONCURRENCY),
        }
    }

    /// Checks the settings and the source, reads the state file, and plans
    /// the parts: everything that can be refused is refused here, before
    /// any request.
    pub(crate) async fn prepare(
        client: Client,
        input: Input,
        settings: Settings,
        progress: watch::Sender<Progress>,
        control: Control,
    ) -> Result<(Job, Source), Error> {
        if let Some(parts) = settings.concurrency
            && !(1..=MAX_CONCURRENCY).contains(&parts)
        {
            return Err(Error::InvalidSetting {
                setting: "concurrency",
                value: parts.to_string(),
                message: format!("must be from 1 to {MAX_CONCURRENCY} parts in flight"),
            });
        }
        let (source, len, modified_ms, snapshot) = match input {
            Input::Path(path) => {
                let meta = tokio::fs::metadata(&path)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                if !meta.is_file() {
                    return Err(Error::io(
                        &path,
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
                    ));
                }
                let modified_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64);
                let snapshot = Snapshot::from_metadata(&meta);
                (Source::File(path), meta.len(), modified_ms, Some(snapshot))
            }
            Input::Reader(reader, len) => (Source::Reader(reader), len, None, None),
        };
        let (lock, saved) = match &settings.state_file {
            Some(path) => {
                let lock = StateLock::acquire(path, settings.wait_for_lock).await?;
                let saved = ResumeState::load(path)?;
                if lock.waited && saved.is_none() {
                    tracing::warn!(
                        state_file = %path.display(),
                        "the run this one waited for has ended and left no state: its Upload \
                         completed or was cancelled; this run starts a new one"
                    );
                }
                (Some(lock), saved)
            }
            None => (None, None),
        };
        let part_size = settings
            .part_size
            .or(saved.as_ref().map(|s| s.source.part_size))
            .unwrap_or_else(|| default_part_size(len));
        let plan = PartPlan::new(len, part_size)?;
        let mime_type = settings
            .mime_type
            .clone()
            .unwrap_or_else(|| guess_mime_type(&settings.filename));
        let identity = SourceIdentity {
            filename: settings.filename.clone(),
            purpose: settings.purpose.to_string(),
            mime_type: mime_type.clone(),
            bytes: plan.total(),
            part_size: plan.part_size(),
            modified_ms,
        };
        if let (Some(path), Some(state)) = (&settings.state_file, &saved) {
            state.check(path, &identity, settings.part_size.is_some())?;
        }
        progress.send_modify(|p| {
            p.bytes_total = plan.total();
            p.parts_total = plan.len();
        });
        Ok((
            Job {
                client,
                settings,
                mime_type,
                plan,
                identity,
                snapshot,
                saved,
                progress,
                control,
                _lock: lock,
            },
            source,
        ))
    }
}

//! The one-call upload: a large file in, a completed Upload with its File out.
//!
//! [`UploadExt::upload_file`] plans the parts, creates the Upload, streams
//! the parts concurrently with the md5 computed in the same read pass, retries
//! transient failures, completes the Upload in order, and cancels it on the
//! server if anything fails for good. A [`UploadHandle`] reports progress and
//! cancels; a state file makes an interrupted upload resumable.
//!
//! ```no_run
//! use openai_uploads::Config;
//! use openai_uploads::upload::{Purpose, UploadExt};
//!
//! # async fn run() -> Result<(), openai_uploads::Error> {
//! let client = Config::from_env().client()?;
//! let (handle, upload) = client
//!     .upload_file("train.jsonl")
//!     .purpose(Purpose::FineTune)
//!     .concurrency(4)
//!     .state_file("train.jsonl.upload-state")
//!     .start();
//! let mut progress = handle.progress();
//! tokio::spawn(async move {
//!     while progress.changed().await.is_ok() {
//!         let p = *progress.borrow();
//!         eprintln!("{} / {} bytes", p.bytes_confirmed, p.bytes_total);
//!     }
//! });
//! let upload = upload.await?;
//! println!("{}", upload.file.expect("a completed Upload has its File").id);
//! # Ok(()) }
//! ```

mod many;
mod plan;
mod retry;
mod run;
mod state;

pub use many::{FileUpload, UploadFiles, UploadFilesExt, UploadFilesHandle, share_budget};
pub use plan::{DEFAULT_PART_SIZE, PartPlan, PlannedPart};
pub use retry::RetryPolicy;
pub use state::{ResumeState, SourceIdentity};

/// What an uploaded file is for (the purposes `POST /uploads` accepts).
pub use crate::generated::types::CreateUploadRequestPurpose as Purpose;

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio::io::AsyncRead;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::generated::{Client, types};
use run::{Job, Source};

/// Default number of parts in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How far an upload has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Size of the file.
    pub bytes_total: u64,
    /// Bytes handed to the network in attempts still standing or confirmed.
    pub bytes_sent: u64,
    /// Bytes in parts the server has confirmed.
    pub bytes_confirmed: u64,
    /// Number of parts.
    pub parts_total: u32,
    /// Parts the server has confirmed.
    pub parts_confirmed: u32,
}

/// Watches and steers a running upload.
#[derive(Clone, Debug)]
pub struct UploadHandle {
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
}

impl UploadHandle {
    /// A receiver of progress updates.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops the upload: parts in flight are abandoned, the Upload is cancelled
    /// on the server, and the upload's future returns [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// The one-call upload, on the generated [`Client`].
pub trait UploadExt {
    /// Uploads the file at `path`; the file name given to the API is its last component.
    fn upload_file(&self, path: impl AsRef<Path>) -> UploadBuilder;

    /// Uploads `len` bytes read from `reader` under `filename`.
    ///
    /// A reader cannot be read twice, so each part's bytes are kept in memory
    /// until the server confirms it, for retries: memory grows to about
    /// `(concurrency + 1) × part size`. Prefer [`upload_file`](Self::upload_file)
    /// for large files.
    fn upload_reader<R>(&self, reader: R, len: u64, filename: impl Into<String>) -> UploadBuilder
    where
        R: AsyncRead + Send + Unpin + 'static;
}

impl UploadExt for Client {
    fn upload_file(&self, path: impl AsRef<Path>) -> UploadBuilder {
        let path = path.as_ref().to_path_buf();
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        UploadBuilder::new(self.clone(), Input::Path(path), filename)
    }

    fn upload_reader<R>(&self, reader: R, len: u64, filename: impl Into<String>) -> UploadBuilder
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        UploadBuilder::new(
            self.clone(),
            Input::Reader(Box::new(reader), len),
            filename.into(),
        )
    }
}

enum Input {
    Path(PathBuf),
    Reader(Box<dyn AsyncRead + Send + Unpin>, u64),
}

/// Settings of one upload; [`send`](Self::send) or [`start`](Self::start) runs it.
#[must_use = "an upload does nothing until sent or started"]
pub struct UploadBuilder {
    client: Client,
    input: Input,
    filename: String,
    purpose: Purpose,
    mime_type: Option<String>,
    part_size: u64,
    concurrency: usize,
    md5: bool,
    expires_after: Option<i64>,
    retry: RetryPolicy,
    state_file: Option<PathBuf>,
}

impl UploadBuilder {
    fn new(client: Client, input: Input, filename: String) -> Self {
        Self {
            client,
            input,
            filename,
            purpose: Purpose::FineTune,
            mime_type: None,
            part_size: DEFAULT_PART_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            md5: true,
            expires_after: None,
            retry: RetryPolicy::default(),
            state_file: None,
        }
    }

    /// The file's purpose (default `fine-tune`).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// The MIME type; guessed from the file name's extension when not given.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// The file name given to the API.
    pub fn filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = filename.into();
        self
    }

    /// Bytes per part, at most 64 MB (the default).
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Parts in flight at once (default 4, at least 1).
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.concurrency = parts.max(1);
        self
    }

    /// Whether to send the file's md5 for the server to check (default on).
    pub fn md5(mut self, on: bool) -> Self {
        self.md5 = on;
        self
    }

    /// Expire the created File `seconds` after its creation (3600..=2592000).
    pub fn expires_after(mut self, seconds: i64) -> Self {
        self.expires_after = Some(seconds);
        self
    }

    /// Retry budget and pacing of every request.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keep resume state in `path`: an interrupted upload started again with
    /// the same file and state file sends only the parts not yet confirmed.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Runs the upload to completion.
    pub async fn send(self) -> Result<types::Upload, Error> {
        self.start().1.await
    }

    /// Starts the upload: a handle for progress and cancel, and the future
    /// that runs it (nothing happens until the future is polled).
    pub fn start(
        self,
    ) -> (
        UploadHandle,
        impl Future<Output = Result<types::Upload, Error>> + Send,
    ) {
        let (progress, receiver) = watch::channel(Progress::default());
        let cancel = CancellationToken::new();
        let handle = UploadHandle {
            progress: receiver,
            cancel: cancel.clone(),
        };
        (handle, self.run(progress, cancel))
    }

    async fn run(
        self,
        progress: watch::Sender<Progress>,
        cancel: CancellationToken,
    ) -> Result<types::Upload, Error> {
        let (source, len, modified_ms) = match self.input {
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
                (Source::File(path), meta.len(), modified_ms)
            }
            Input::Reader(reader, len) => (Source::Reader(reader), len, None),
        };
        let plan = PartPlan::new(len, self.part_size)?;
        let mime_type = self
            .mime_type
            .unwrap_or_else(|| guess_mime_type(&self.filename));
        progress.send_modify(|p| {
            p.bytes_total = plan.total();
            p.parts_total = plan.len();
        });
        run::run(
            Job {
                client: self.client,
                source: SourceIdentity {
                    filename: self.filename.clone(),
                    bytes: plan.total(),
                    part_size: plan.part_size(),
                    modified_ms,
                },
                plan,
                filename: self.filename,
                purpose: self.purpose,
                mime_type,
                expires_after: self.expires_after,
                concurrency: self.concurrency,
                md5: self.md5,
                retry: self.retry,
                state_file: self.state_file,
                progress,
                cancel,
            },
            source,
        )
        .await
    }
}

/// The MIME type for a file name: JSON Lines for `.jsonl`, else by extension.
pub fn guess_mime_type(filename: &str) -> String {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        return "text/jsonl".into();
    }
    mime_guess::from_path(filename)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

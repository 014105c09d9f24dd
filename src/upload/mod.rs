//! The one-call upload: a large file in, a completed Upload with its File out.
//!
//! [`Client::upload_file`] plans the parts, creates the Upload, streams
//! the parts concurrently with the md5 computed in the same read pass, retries
//! transient failures, and completes the Upload in order. A [`UploadHandle`]
//! reports progress, pauses and cancels.
//!
//! With a state file, nothing sent is lost to a crash, an outage or a pause:
//! a failure that a later run could mend (retries spent on transient errors,
//! the network gone, [`UploadHandle::pause`]) leaves the Upload pending and
//! the state file in place, and returns [`Error::Interrupted`] with the
//! Upload's id and expiry; the same upload run again sends only the missing
//! parts. Without a state file nothing could resume it, so a failure cancels
//! the Upload on the server. A refusal that no retry mends (a 4xx other than
//! 408, 409 and 429) cancels it in both cases.
//!
//! The stages live apart: `job` (the settings, checked), `session` (the
//! Upload's life: open or resume, complete, cancel), `read` (reading and
//! hashing), `send` (one part, with retries), and `run`, which drives them.
//!
//! ```no_run
//! use openai_uploads::Config;
//! use openai_uploads::upload::Purpose;
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

pub(crate) mod chunks;
mod hash;
mod job;
mod lock;
mod many;
mod one_call;
mod pace;
mod plan;
mod read;
mod retry;
mod run;
mod send;
mod session;
mod snapshot;
pub(crate) mod state;

pub use many::{FileUpload, UploadFiles, UploadFilesHandle, share_budget};
pub use plan::{
    MAX_PARTS, MIN_DEFAULT_PART_SIZE, MIN_PART_SIZE, PartPlan, PlannedPart, TARGET_PARTS,
    default_part_size,
};
pub use retry::{DEFAULT_MAX_ELAPSED, RetryPolicy, Stage};
pub use state::{ResumeState, SourceIdentity};

/// What an uploaded file is for (the purposes `POST /uploads` accepts).
pub use crate::generated::types::CreateUploadRequestPurpose as Purpose;

use std::future::Future;
use std::path::PathBuf;

use tokio::io::AsyncRead;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::Error;
use crate::generated::types;
use job::{Input, Settings};

/// Parts in flight when an upload starts, unless fixed with
/// [`UploadBuilder::concurrency`]; from there the count grows while the
/// measured throughput grows. Starting at 16 rather than ramping from a few
/// fills most links at once: growth costs a second per doubling, a large
/// share of a transfer of a few seconds, while a stream costs only its
/// connection and a bounded share of the chunk pool; a server that takes
/// fewer answers 429 and the count drops to what it took.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Most parts in flight one upload takes, adapted or fixed.
pub const MAX_CONCURRENCY: usize = 64;

/// How far an upload has come.
///
/// What is done is what the server confirmed: `bytes_confirmed` counts a
/// part only once its answer came back (and, with a state file, once it is
/// saved). Bytes handed to the network but not yet confirmed are in flight
/// ([`in_flight`](Self::in_flight)): they may still be lost. The upload is
/// done only when `completed` is set, after the Upload is completed: every
/// part confirmed is not yet a File.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Size of the file.
    pub bytes_total: u64,
    /// Bytes handed to the network in attempts still standing or confirmed,
    /// resumed ones included.
    pub bytes_sent: u64,
    /// Bytes in parts the server has confirmed, resumed ones included.
    pub bytes_confirmed: u64,
    /// Bytes confirmed by an earlier run and resumed: done, but not sent by
    /// this run (a rate counts `bytes_sent - bytes_resumed`).
    pub bytes_resumed: u64,
    /// Number of parts.
    pub parts_total: u32,
    /// Parts the server has confirmed, resumed ones included.
    pub parts_confirmed: u32,
    /// Whether the Upload is completed: set once, at the very end.
    pub completed: bool,
}

impl Progress {
    /// Bytes handed to the network and not yet confirmed.
    pub fn in_flight(&self) -> u64 {
        self.bytes_sent.saturating_sub(self.bytes_confirmed)
    }

    /// Bytes confirmed by this run: the ones a rate may count.
    pub fn confirmed_this_run(&self) -> u64 {
        self.bytes_confirmed.saturating_sub(self.bytes_resumed)
    }

    /// How much is done, in percent of the file: confirmed bytes only, and
    /// 100 only once the Upload is completed.
    pub fn percent_done(&self) -> u8 {
        if self.completed {
            return 100;
        }
        if self.bytes_total == 0 {
            return 0;
        }
        let percent = u128::from(self.bytes_confirmed) * 100 / u128::from(self.bytes_total);
        percent.min(99) as u8
    }
}

/// Watches and steers a running upload.
#[derive(Clone, Debug)]
pub struct UploadHandle {
    progress: watch::Receiver<Progress>,
    control: Control,
}

/// How a handle stops an upload.
#[derive(Clone, Debug, Default)]
pub(crate) struct Control {
    cancel: CancellationToken,
    pause: CancellationToken,
}

impl UploadHandle {
    /// A receiver of progress updates.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops the upload for good: parts in flight are abandoned, the Upload
    /// is cancelled on the server, the state file (if any) is removed, and
    /// the upload's future returns [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.control.cancel.cancel();
    }

    /// Stops the upload so that it can be resumed: parts in flight are
    /// abandoned, the Upload stays pending and the state file is kept; the
    /// future returns [`Error::Interrupted`]. Without a state file nothing
    /// could resume it, so this cancels as [`cancel`](Self::cancel) does.
    pub fn pause(&self) {
        self.control.pause.cancel();
    }
}

/// Settings of one upload; [`send`](Self::send) or [`start`](Self::start)
/// runs it. Settings outside their limits are refused when it runs, with
/// [`Error::InvalidSetting`] naming the setting and the limit, before
/// anything is sent; none is silently changed.
#[must_use = "an upload does nothing until sent or started"]
pub struct UploadBuilder {
    client: Client,
    input: Input,
    settings: Settings,
}

impl UploadBuilder {
    fn new(client: Client, input: Input, filename: String) -> Self {
        Self {
            client,
            input,
            settings: Settings::new(filename),
        }
    }

    /// An upload of the file at `path`, named by its last component.
    pub(crate) fn for_path(client: Client, path: PathBuf) -> Self {
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::new(client, Input::Path(path), filename)
    }

    /// An upload of `len` bytes from `reader`.
    pub(crate) fn for_reader(
        client: Client,
        reader: Box<dyn AsyncRead + Send + Unpin>,
        len: u64,
        filename: String,
    ) -> Self {
        Self::new(client, Input::Reader(reader, len), filename)
    }

    /// The file's purpose (default `fine-tune`).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.settings.purpose = purpose;
        self
    }

    /// The MIME type; guessed from the file name's extension when not given.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.settings.mime_type = Some(mime_type.into());
        self
    }

    /// The file name given to the API.
    pub fn filename(mut self, filename: impl Into<String>) -> Self {
        self.settings.filename = filename.into();
        self
    }

    /// Bytes per part, from [`MIN_PART_SIZE`] to 64 MB, cutting the file into
    /// at most [`MAX_PARTS`] parts. By default it follows the file's size
    /// ([`default_part_size`]); a resumed upload keeps the part size it was
    /// started with.
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.settings.part_size = Some(bytes);
        self
    }

    /// Fixes the parts in flight at `parts`, from 1 to [`MAX_CONCURRENCY`].
    /// By default the count adapts: it starts at [`DEFAULT_CONCURRENCY`],
    /// grows while the measured throughput grows, up to
    /// [`MAX_CONCURRENCY`], and drops to what the server takes when it
    /// answers 429.
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.settings.concurrency = Some(parts);
        self
    }

    /// Whether to send the file's md5 for the server to check (default on).
    pub fn md5(mut self, on: bool) -> Self {
        self.settings.md5 = on;
        self
    }

    /// Expire the created File `seconds` after its creation (3600..=2592000).
    pub fn expires_after(mut self, seconds: i64) -> Self {
        self.settings.expires_after = Some(seconds);
        self
    }

    /// Retry budget and pacing of every request.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// Keep resume state in `path`: an interrupted upload started again with
    /// the same file and state file sends only the parts not yet confirmed.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.state_file = Some(path.into());
        self
    }

    /// What to do when the Upload in the state file has expired, has too
    /// little time left, or is refused by the server: start a fresh Upload,
    /// saying so in a warning (`true`, the default), or fail with
    /// [`Error::Resume`] (`false`).
    pub fn fresh_if_expired(mut self, fresh: bool) -> Self {
        self.settings.fresh_if_expired = fresh;
        self
    }

    /// What to do when another run holds the state file: fail at once with
    /// [`Error::StateLocked`] (`false`, the default), or wait for that run to
    /// end (`true`). One run at a time per state file, so that two never
    /// fill the same Upload or make two Files of one file.
    pub fn wait_for_lock(mut self, wait: bool) -> Self {
        self.settings.wait_for_lock = wait;
        self
    }

    /// Runs the upload to completion.
    pub async fn send(self) -> Result<types::Upload, Error> {
        self.start().1.await
    }

    /// Starts the upload: a handle for progress, pause and cancel, and the
    /// future that runs it (nothing happens until the future is polled).
    pub fn start(
        self,
    ) -> (
        UploadHandle,
        impl Future<Output = Result<types::Upload, Error>> + Send,
    ) {
        let (progress, receiver) = watch::channel(Progress::default());
        let control = Control::default();
        let handle = UploadHandle {
            progress: receiver,
            control: control.clone(),
        };
        let run = async move {
            let (job, source) =
                job::Job::prepare(self.client, self.input, self.settings, progress, control)
                    .await?;
            // Boxed, so that the future handed out stays small.
            Box::pin(run::run(job, source)).await
        };
        (handle, run)
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

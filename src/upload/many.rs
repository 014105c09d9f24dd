//! Many files in one call: each file a one-call upload, all within one budget
//! of parts in flight.

use std::path::PathBuf;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{DEFAULT_CONCURRENCY, Purpose, RetryPolicy, UploadHandle};

use crate::client::Client;
use crate::error::Error;
use crate::generated::types;

/// The end of one file of [`UploadFiles`]: its path and its completed Upload or why it failed.
#[derive(Debug)]
pub struct FileUpload {
    /// The file, as given.
    pub path: PathBuf,
    /// The completed Upload, with its File, or the error that stopped this file.
    pub result: Result<types::Upload, Error>,
}

/// Watches and steers an upload of many files.
#[derive(Clone, Debug)]
pub struct UploadFilesHandle {
    files: Vec<(PathBuf, UploadHandle)>,
    stop: CancellationToken,
}

impl UploadFilesHandle {
    /// Each file with the handle of its own upload, in the order given.
    pub fn files(&self) -> &[(PathBuf, UploadHandle)] {
        &self.files
    }

    /// Stops every file: those running are cancelled as
    /// [`UploadHandle::cancel`] does, those not started yet never start (no
    /// Upload is created for them); each ends with [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.stop.cancel();
        for (_, handle) in &self.files {
            handle.cancel();
        }
    }
}

/// How many files run at once, and how many parts each keeps in flight, so
/// that `files × parts` never exceeds `budget`.
pub fn share_budget(files: usize, budget: usize) -> (usize, usize) {
    let budget = budget.max(1);
    let at_once = files.min(budget).max(1);
    (at_once, (budget / at_once).max(1))
}

/// Settings of an upload of many files; [`start`](Self::start) or
/// [`stream`](Self::stream) runs it.
///
/// The parts in flight share one budget, [`concurrency`](Self::concurrency)
/// (default 16), across all files: `min(files, budget)` files upload at once,
/// each with `budget / files at once` parts in flight (at least one), and the
/// next file starts when one ends. So the total of parts in flight never
/// exceeds the budget; a budget that does not divide evenly leaves the
/// remainder unused rather than exceed it.
///
/// A file that fails (missing, refused, out of retries) is reported in its
/// own [`FileUpload`] and does not stop the others.
#[must_use = "an upload does nothing until started"]
pub struct UploadFiles {
    client: Client,
    paths: Vec<PathBuf>,
    purpose: Purpose,
    mime_type: Option<String>,
    part_size: Option<u64>,
    budget: usize,
    md5: bool,
    expires_after: Option<i64>,
    retry: RetryPolicy,
}

impl UploadFiles {
    pub(crate) fn new(client: Client, paths: Vec<PathBuf>) -> Self {
        Self {
            client,
            paths,
            purpose: Purpose::FineTune,
            mime_type: None,
            part_size: None,
            budget: DEFAULT_CONCURRENCY,
            md5: true,
            expires_after: None,
            retry: RetryPolicy::default(),
        }
    }

    /// The files' purpose (default `fine-tune`).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// One MIME type for every file; else each is guessed from its name.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// Bytes per part for every file (by default each file's own, from its size).
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Parts in flight at once across all files (default 16). A budget of 0
    /// is refused by every file, with [`Error::InvalidSetting`].
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.budget = parts;
        self
    }

    /// Whether to send each file's md5 for the server to check (default on).
    pub fn md5(mut self, on: bool) -> Self {
        self.md5 = on;
        self
    }

    /// Expire each created File `seconds` after its creation (3600..=2592000).
    pub fn expires_after(mut self, seconds: i64) -> Self {
        self.expires_after = Some(seconds);
        self
    }

    /// Retry budget and pacing of every request.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Starts the uploads: a handle on them all, and the stream of the
    /// files' ends, in the order they end (nothing runs until the stream is
    /// polled).
    pub fn start(self) -> (UploadFilesHandle, impl Stream<Item = FileUpload> + Send) {
        let (at_once, per_file) = match self.budget {
            // Each file refuses it, naming the setting; nothing is sent.
            0 => (self.paths.len().max(1), 0),
            budget => share_budget(self.paths.len(), budget),
        };
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(self.paths.len());
        let mut runs = Vec::with_capacity(self.paths.len());
        for path in self.paths {
            let mut builder = self
                .client
                .upload_file(&path)
                .purpose(self.purpose)
                .concurrency(per_file)
                .md5(self.md5)
                .retry(self.retry.clone());
            if let Some(bytes) = self.part_size {
                builder = builder.part_size(bytes);
            }
            if let Some(mime) = &self.mime_type {
                builder = builder.mime_type(mime.clone());
            }
            if let Some(seconds) = self.expires_after {
                builder = builder.expires_after(seconds);
            }
            let (handle, upload) = builder.start();
            handles.push((path.clone(), handle));
            let stop = stop.clone();
            runs.push(async move {
                let result = if stop.is_cancelled() {
                    Err(Error::Cancelled)
                } else {
                    upload.await
                };
                FileUpload { path, result }
            });
        }
        let handle = UploadFilesHandle {
            files: handles,
            stop,
        };
        (
            handle,
            futures::stream::iter(runs).buffer_unordered(at_once),
        )
    }

    /// The stream of the files' ends, in the order they end.
    pub fn stream(self) -> impl Stream<Item = FileUpload> + Send {
        self.start().1
    }
}

#[cfg(test)]
mod tests {
    use super::share_budget;

    #[test]
    fn parts_in_flight_never_exceed_the_budget() {
        for files in 1..40 {
            for budget in 1..40 {
                let (at_once, per_file) = share_budget(files, budget);
                assert!(at_once >= 1 && per_file >= 1);
                assert!(at_once <= files);
                assert!(
                    at_once * per_file <= budget,
                    "{files} files, budget {budget}"
                );
            }
        }
        assert_eq!(share_budget(3, 8), (3, 2));
        assert_eq!(share_budget(10, 4), (4, 1));
        assert_eq!(share_budget(1, 4), (1, 4));
    }
}

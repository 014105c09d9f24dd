//! The one-call upload's entry points, on [`Client`]: a file, a reader, or
//! several files. They are written here, above the client, so that the
//! client knows nothing of the upload built on it.

use std::path::{Path, PathBuf};

use tokio::io::AsyncRead;

use super::{UploadBuilder, UploadFiles};
use crate::client::Client;

impl Client {
    /// The one-call upload of the file at `path`: its parts in parallel,
    /// md5 checked, retried, resumable with a state file (see
    /// [`upload`](crate::upload)). The file name given to the API is the
    /// path's last component.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use openai_uploads::upload::Purpose;
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let upload = client
    ///     .upload_file("train.jsonl")
    ///     .purpose(Purpose::FineTune)
    ///     .state_file("train.jsonl.upload-state")
    ///     .send()
    ///     .await?;
    /// println!("{}", upload.file.map(|f| f.id).unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub fn upload_file(&self, path: impl AsRef<Path>) -> UploadBuilder {
        UploadBuilder::for_path(self.clone(), path.as_ref().to_path_buf())
    }

    /// The one-call upload of `len` bytes read from `reader` under `filename`.
    ///
    /// A reader cannot be read twice, so each part's bytes are kept in memory
    /// until the server confirms it, for retries: memory grows to about
    /// `(concurrency + 1) × part size`. Prefer [`upload_file`](Self::upload_file)
    /// for large files.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let data = b"{\"custom_id\": \"1\"}\n";
    /// let upload = client
    ///     .upload_reader(&data[..], data.len() as u64, "batch.jsonl")
    ///     .send()
    ///     .await?;
    /// println!("{}", upload.id);
    /// # Ok(()) }
    /// ```
    pub fn upload_reader<R>(
        &self,
        reader: R,
        len: u64,
        filename: impl Into<String>,
    ) -> UploadBuilder
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        UploadBuilder::for_reader(self.clone(), Box::new(reader), len, filename.into())
    }

    /// Uploads the files at `paths`, each as [`upload_file`](Self::upload_file)
    /// would, within one budget of parts in flight (see [`UploadFiles`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// use futures::StreamExt;
    /// let mut files = std::pin::pin!(client.upload_files(["a.jsonl", "b.jsonl"]).stream());
    /// while let Some(done) = files.next().await {
    ///     match done.result {
    ///         Ok(upload) => println!("{}: {}", done.path.display(), upload.id),
    ///         Err(error) => eprintln!("{}: {error}", done.path.display()),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn upload_files<P: Into<PathBuf>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> UploadFiles {
        UploadFiles::new(self.clone(), paths.into_iter().map(Into::into).collect())
    }
}

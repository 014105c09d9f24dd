//! `openai files …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;

use super::output::Context;
use super::signal::stop_signal;
use super::{Api, Failure, spec_enum};
use crate::Client;
use crate::error::Error;
use crate::types;
use crate::upload::state::{directory_of, sync_dir};
use crate::validate::rules::MAX_LIST_LIMIT;
use crate::validate::{Operation, SchemaViolation};

/// `openai files`.
#[derive(Debug, Args)]
pub(super) struct FilesGroup {
    #[command(subcommand)]
    pub command: FilesCommand,
}

#[derive(Debug, Subcommand)]
pub(super) enum FilesCommand {
    /// Print a File's metadata (GET /files/{id}).
    #[command(
        after_help = "Example:\n  openai files retrieve --file-id file-abc --transform bytes"
    )]
    Retrieve {
        /// The File.
        #[arg(long)]
        file_id: String,
    },
    /// Write a File's bytes to standard output or a file (GET /files/{id}/content).
    #[command(after_help = "Example:\n  openai files content --file-id file-abc -o data.jsonl")]
    Content {
        /// The File.
        #[arg(long)]
        file_id: String,
        /// Write here instead of standard output (`-` for standard output); the file
        /// appears only once complete.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Delete a File (DELETE /files/{id}).
    #[command(after_help = "Example:\n  openai files delete --file-id file-abc")]
    Delete {
        /// The File.
        #[arg(long)]
        file_id: String,
    },
    /// List Files, newest first (GET /files).
    #[command(
        after_help = "Example:\n  openai files list --purpose fine-tune --limit 20 --transform data.#.id"
    )]
    List {
        /// Only Files with this purpose.
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_LIST_LIMIT),
            help = format!("Most Files in the page, 1..={MAX_LIST_LIMIT} [default: {MAX_LIST_LIMIT}]"))]
        limit: Option<i64>,
        /// Order by creation time [default: desc].
        #[arg(long, value_parser = spec_enum::<types::ListFilesOrder>())]
        order: Option<types::ListFilesOrder>,
        /// Start after this File id (the last of the previous page).
        #[arg(long, value_name = "FILE_ID")]
        after: Option<String>,
    },
}

pub(super) async fn run(api: &Api<'_>, command: FilesCommand) -> Result<ExitCode, Failure> {
    let client = api.client;
    let none = Context::default();
    match command {
        FilesCommand::Retrieve { file_id } => api.show(client.retrieve_file(&file_id), none).await,
        FilesCommand::Delete { file_id } => api.show(client.delete_file(&file_id), none).await,
        FilesCommand::List {
            purpose,
            limit,
            order,
            after,
        } => {
            api.show(
                client.list_files(after.as_deref(), limit, order, purpose.as_deref()),
                none,
            )
            .await
        }
        FilesCommand::Content { file_id, output } => {
            let answer = client
                .download_file(&file_id)
                .await
                .map_err(|e| api.fail(e, none))?;
            // hyper fails a body shorter than its Content-Length; without
            // one, only the File's own size tells a whole body from a cut one.
            let length_known = answer
                .headers()
                .contains_key(reqwest::header::CONTENT_LENGTH);
            let stream = answer.into_inner();
            match output.filter(|p| p != Path::new("-")) {
                None => {
                    copy(stream, tokio::io::stdout(), Path::new("<stdout>")).await?;
                }
                Some(path) => {
                    let expected = (!length_known).then_some((client, file_id.as_str()));
                    // Dropping the download on a signal drops its temporary
                    // file, which removes it.
                    tokio::select! {
                        written = write_whole(stream, &path, expected) => {
                            written.map_err(|e| api.fail(e, none))?;
                        }
                        signal = stop_signal() => {
                            super::terminal::eprint(&format!(
                                "openai: interrupted; {} was not written\n",
                                path.display()
                            ));
                            return Ok(ExitCode::from(signal.exit_code()));
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to a temporary file beside `path`, flushed to disk and renamed
/// over `path` at the end (the directory flushed too, as the resume state is), so a broken download never leaves a truncated
/// file behind (the temporary file is removed); errors name `path`, the
/// file asked for. With `expected`, a body of unknown length is first
/// checked against the File's `bytes`, asked of the server.
async fn write_whole(
    stream: progenitor_client::ByteStream,
    path: &Path,
    expected: Option<(&Client, &str)>,
) -> Result<(), Error> {
    let dir = directory_of(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".download");
    // A downloaded file gets the mode any new file gets (0666 less the
    // umask), not the owner-only mode of a temporary file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let (file, partial) = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, without_temporary_name(dir, e)))?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let written = copy(stream, &mut file, path).await?;
    if let Some((client, file_id)) = expected {
        let bytes = client.retrieve_file(file_id).await?.bytes;
        if u64::try_from(bytes).ok() != Some(written) {
            return Err(Error::Conformance {
                operation: Operation::DownloadFile,
                violations: vec![SchemaViolation {
                    pointer: String::new(),
                    message: format!(
                        "the content ended after {written} bytes with no Content-Length, \
                         but File {file_id} holds {bytes} bytes; {} was not written",
                        path.display()
                    ),
                }],
            });
        }
    }
    file.sync_all().await.map_err(|e| Error::io(path, e))?;
    partial
        .persist(path)
        .map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir).map_err(|e| Error::io(path, e))
}

/// The failure to make a temporary file in `dir`, without the temporary
/// file's name that `tempfile` adds (the user asked for another path): the
/// directory's own error when it cannot be reached, else the failure's kind.
fn without_temporary_name(dir: &Path, error: std::io::Error) -> std::io::Error {
    match std::fs::metadata(dir) {
        Err(reached) => reached,
        Ok(_) => std::io::Error::from(error.kind()),
    }
}

/// Copies the whole stream into `sink`; the number of bytes copied.
async fn copy(
    mut stream: progenitor_client::ByteStream,
    mut sink: impl tokio::io::AsyncWrite + Unpin,
    name: &Path,
) -> Result<u64, Error> {
    use tokio::io::AsyncWriteExt;
    let mut written = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::Transport)?;
        sink.write_all(&chunk)
            .await
            .map_err(|e| Error::io(name, e))?;
        written += chunk.len() as u64;
    }
    sink.flush().await.map_err(|e| Error::io(name, e))?;
    Ok(written)
}

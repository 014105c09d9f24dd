//! `openai uploads …` and `openai uploads:parts …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;

use super::output::Context;
use super::progress::{self, end_bar, show_progress};
use super::terminal;
use super::{Api, Failure, PARTIAL_FAILURE, silence_logs, spec_enum};
use crate::error::Error;
use crate::upload::{
    DEFAULT_CONCURRENCY, MAX_CONCURRENCY, MAX_PARTS, MIN_DEFAULT_PART_SIZE, MIN_PART_SIZE, Purpose,
    TARGET_PARTS,
};
use crate::validate::rules::{
    MAX_EXPIRES_AFTER_SECONDS, MAX_PART_BYTES, MIN_EXPIRES_AFTER_SECONDS,
};
use crate::{PartBody, types};

/// `--expires-after '{anchor: created_at, seconds: 7200}'` (YAML or JSON).
fn parse_expires_after(text: &str) -> Result<types::FileExpirationAfter, String> {
    serde_saphyr::from_str(text)
        .map_err(|e| format!("expected {{anchor: created_at, seconds: N}} as YAML or JSON: {e}"))
}

const SECONDS_RANGE: std::ops::RangeInclusive<i64> =
    MIN_EXPIRES_AFTER_SECONDS..=MAX_EXPIRES_AFTER_SECONDS;

/// When the created File expires, in any of the three spellings.
#[derive(Debug, Args)]
pub(super) struct ExpiresArgs {
    /// Expiry policy of the File as YAML or JSON: '{anchor: created_at, seconds: 7200}'.
    #[arg(long, value_name = "POLICY", value_parser = parse_expires_after,
        conflicts_with_all = ["expires_after_anchor", "expires_after_seconds_dotted", "expires_after_seconds"])]
    expires_after: Option<types::FileExpirationAfter>,
    /// Timestamp the expiry counts from.
    #[arg(long = "expires-after.anchor", id = "expires_after_anchor", value_name = "ANCHOR",
        value_parser = spec_enum::<types::FileExpirationAfterAnchor>(), requires = "expires_after_seconds_dotted")]
    anchor: Option<types::FileExpirationAfterAnchor>,
    #[arg(long = "expires-after.seconds", id = "expires_after_seconds_dotted", value_name = "SECONDS",
        help = format!("Seconds after the anchor that the File expires \
            ({MIN_EXPIRES_AFTER_SECONDS}..={MAX_EXPIRES_AFTER_SECONDS})"),
        value_parser = clap::value_parser!(i64).range(SECONDS_RANGE),
        conflicts_with = "expires_after_seconds")]
    seconds: Option<i64>,
    /// The same as --expires-after.seconds (this command's first spelling).
    #[arg(long = "expires-after-seconds", id = "expires_after_seconds", value_name = "SECONDS",
        value_parser = clap::value_parser!(i64).range(SECONDS_RANGE))]
    seconds_short: Option<i64>,
}

impl ExpiresArgs {
    fn policy(self) -> Option<types::FileExpirationAfter> {
        self.expires_after.or_else(|| {
            self.seconds
                .or(self.seconds_short)
                .map(|seconds| types::FileExpirationAfter {
                    anchor: self
                        .anchor
                        .unwrap_or(types::FileExpirationAfterAnchor::CreatedAt),
                    seconds,
                })
        })
    }
}

/// `--part-size`'s help, from the limits the plan enforces.
fn part_size_help() -> String {
    format!(
        "Bytes per part, from {MIN_PART_SIZE} to {MAX_PART_BYTES} (64 MiB; less than \
         {MIN_PART_SIZE} only as the whole of a smaller file), at most {MAX_PARTS} parts \
         [default: from the file's size, about {TARGET_PARTS} parts of {} to {} MiB; or the part \
         size of the resume state]",
        MIN_DEFAULT_PART_SIZE >> 20,
        MAX_PART_BYTES >> 20
    )
}

/// `--concurrency`'s help, from the limits the upload enforces.
fn concurrency_help() -> String {
    format!(
        "Fix the parts in flight, from 1 to {MAX_CONCURRENCY}, across all files [default: one \
         file adapts, from {DEFAULT_CONCURRENCY} up to {MAX_CONCURRENCY} while the throughput \
         grows, fewer when the server throttles; several files share {DEFAULT_CONCURRENCY}]"
    )
}

/// `--part-size`: a number of bytes a part may hold. A size under
/// [`MIN_PART_SIZE`] passes here, as the whole of a smaller file; the plan
/// refuses it for a larger one, naming the same minimum.
fn parse_part_size(text: &str) -> Result<u64, String> {
    let limits = || {
        format!(
            "a part holds from {MIN_PART_SIZE} to {MAX_PART_BYTES} bytes (64 MiB), or the whole \
             of a file smaller than {MIN_PART_SIZE}"
        )
    };
    match text.parse::<u64>() {
        Ok(bytes) if (1..=MAX_PART_BYTES).contains(&bytes) => Ok(bytes),
        Ok(_) => Err(limits()),
        Err(e) => Err(format!("not a number of bytes ({e}): {}", limits())),
    }
}

/// `openai uploads`.
#[derive(Debug, Args)]
pub(super) struct UploadsGroup {
    #[command(subcommand)]
    pub command: UploadsCommand,
}

/// `openai uploads:parts`.
#[derive(Debug, Args)]
pub(super) struct PartsGroup {
    #[command(subcommand)]
    pub command: PartsCommand,
}

#[derive(Debug, Subcommand)]
pub(super) enum UploadsCommand {
    /// Create an Upload (POST /uploads).
    #[command(
        after_help = "Example:\n  openai uploads create --filename data.jsonl --purpose fine-tune \\\n    --bytes 2147483648 --mime-type text/jsonl --expires-after.seconds 7200"
    )]
    Create {
        /// Name the File will carry.
        #[arg(long)]
        filename: String,
        /// What the File is for.
        #[arg(long, value_parser = spec_enum::<Purpose>())]
        purpose: Purpose,
        /// Exact size of the whole file in bytes.
        #[arg(long)]
        bytes: i64,
        /// MIME type of the file.
        #[arg(long)]
        mime_type: String,
        #[command(flatten)]
        expires: ExpiresArgs,
    },
    /// Parts of an Upload (also spelled `openai uploads:parts`).
    #[command(
        subcommand,
        after_help = "Example:\n  openai uploads parts create --upload-id upload_abc --data @part-1.bin"
    )]
    Parts(PartsCommand),
    /// Complete an Upload from its parts, in order (POST /uploads/{id}/complete).
    #[command(
        after_help = "Example:\n  openai uploads complete --upload-id upload_abc --part-id part_1 --part-id part_2 \\\n    --md5 $(md5sum data.jsonl | cut -d' ' -f1)"
    )]
    Complete {
        /// The Upload.
        #[arg(long)]
        upload_id: String,
        /// A part id; repeat in file order.
        #[arg(long = "part-id", required = true)]
        part_ids: Vec<String>,
        /// MD5 of the whole file, 32 hex digits, checked by the server.
        #[arg(long)]
        md5: Option<String>,
    },
    /// Cancel an Upload (POST /uploads/{id}/cancel).
    #[command(after_help = "Example:\n  openai uploads cancel --upload-id upload_abc")]
    Cancel {
        /// The Upload.
        #[arg(long)]
        upload_id: String,
    },
    /// Upload whole files in one command: parallel parts, md5, retries, progress.
    ///
    /// With several files (or a directory, or `-`), they upload side by side
    /// within one budget of --concurrency parts in flight; each completed
    /// Upload is printed as it finishes (`--format jsonl`: one per line), a
    /// failed file is named on standard error and does not stop the others,
    /// and the exit code is 5 if any failed.
    #[command(
        after_help = "Examples:\n  openai uploads upload data.jsonl --purpose fine-tune --resume data.state\n  openai --format jsonl uploads upload shards/ --purpose batch --concurrency 8\n  find . -name '*.jsonl' | openai uploads upload - --purpose fine-tune"
    )]
    Upload {
        /// Files to upload; a directory means its regular files, `-` a list of paths on
        /// standard input, one a line.
        #[arg(required = true, value_name = "FILE")]
        paths: Vec<PathBuf>,
        /// What the Files are for.
        #[arg(long, value_parser = spec_enum::<Purpose>())]
        purpose: Purpose,
        /// MIME type [default: guessed from each file's extension].
        #[arg(long)]
        mime_type: Option<String>,
        #[arg(long, value_name = "BYTES", help = part_size_help(), value_parser = parse_part_size)]
        part_size: Option<u64>,
        #[arg(long, help = concurrency_help(),
            value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY as u64))]
        concurrency: Option<u64>,
        /// Do not send the files' md5 for the server to check.
        #[arg(long)]
        no_md5: bool,
        #[command(flatten)]
        expires: ExpiresArgs,
        /// Resume state file (one file only): kept while the upload runs, so an
        /// upload interrupted (Ctrl-C, a killed process, a lost machine) and
        /// started again with the same file sends only the missing parts.
        /// Without it, Ctrl-C cancels the Upload.
        #[arg(long, value_name = "STATE")]
        resume: Option<PathBuf>,
        /// With --resume: fail, rather than start a fresh Upload, when the
        /// saved Upload has expired or the server no longer takes it.
        #[arg(long, requires = "resume")]
        resume_only: bool,
        /// With --resume: when another run is using the state file, wait for
        /// it to end rather than fail.
        #[arg(long, requires = "resume")]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum PartsCommand {
    /// Add a part (POST /uploads/{id}/parts), at most 64 MB.
    #[command(
        after_help = "Examples:\n  openai uploads:parts create --upload-id upload_abc --data @part-1.bin\n  head -c 1048576 data.jsonl | openai uploads parts create --upload-id upload_abc --data @-"
    )]
    Create {
        /// The Upload.
        #[arg(long)]
        upload_id: String,
        /// The part's bytes: `@FILE` or FILE reads a file, `@-` or `-` standard input;
        /// `\@NAME` is a file whose name starts with @.
        #[arg(long, value_name = "@FILE", value_parser = parse_data)]
        data: DataSource,
    },
}

/// Where a part's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum DataSource {
    Stdin,
    File(PathBuf),
}

/// `--data`: `@path`, `@-`, `\@literal`, `-`, or a plain path.
fn parse_data(text: &str) -> Result<DataSource, String> {
    let path = if let Some(literal) = text.strip_prefix("\\@") {
        format!("@{literal}")
    } else if let Some(referenced) = text.strip_prefix('@') {
        referenced.to_string()
    } else {
        text.to_string()
    };
    if path.is_empty() {
        return Err("expected @FILE, @- or a path".into());
    }
    Ok(if path == "-" && !text.starts_with('\\') {
        DataSource::Stdin
    } else {
        DataSource::File(PathBuf::from(path))
    })
}

pub(super) async fn run(api: &Api<'_>, command: UploadsCommand) -> Result<ExitCode, Failure> {
    let client = api.client;
    let none = Context::default();
    match command {
        UploadsCommand::Create {
            filename,
            purpose,
            bytes,
            mime_type,
            expires,
        } => {
            let request = types::CreateUploadRequest {
                filename,
                purpose,
                bytes,
                mime_type,
                expires_after: expires.policy(),
            };
            api.show(client.create_upload(&request), none).await
        }
        UploadsCommand::Parts(command) => run_parts(api, command).await,
        UploadsCommand::Complete {
            upload_id,
            part_ids,
            md5,
        } => {
            let context = Context {
                completing: md5.is_some(),
                ..none
            };
            let request = types::CompleteUploadRequest { part_ids, md5 };
            api.show(client.complete_upload(&upload_id, &request), context)
                .await
        }
        UploadsCommand::Cancel { upload_id } => {
            api.show(client.cancel_upload(&upload_id), none).await
        }
        UploadsCommand::Upload {
            paths,
            purpose,
            mime_type,
            part_size,
            concurrency,
            no_md5,
            expires,
            resume,
            resume_only,
            wait,
        } => {
            let settings = Settings {
                wait,
                purpose,
                mime_type,
                part_size,
                concurrency: concurrency.map(|n| n as usize),
                fresh_if_expired: !resume_only,
                md5: !no_md5,
                expires_after: expires.policy().map(|p| p.seconds),
            };
            let single = paths.len() == 1 && paths[0] != Path::new("-") && !paths[0].is_dir();
            if single {
                let path = paths.into_iter().next().expect("one path");
                return upload_one(api, path, settings, resume).await;
            }
            let mut files = expand(&paths).await?;
            if files.is_empty() {
                return Err(Failure::from(nothing_to_upload(&paths)));
            }
            match resume {
                None => upload_many(api, files, settings).await,
                Some(state) if files.len() == 1 => {
                    upload_one(api, files.remove(0), settings, Some(state)).await
                }
                Some(_) => Err(Failure::from(Error::Config {
                    field: "resume",
                    message: format!(
                        "--resume takes one file, and {} were given; upload several without it",
                        files.len()
                    ),
                })),
            }
        }
    }
}

pub(super) async fn run_parts(api: &Api<'_>, command: PartsCommand) -> Result<ExitCode, Failure> {
    match command {
        PartsCommand::Create { upload_id, data } => {
            let body = part_body(&data).await?;
            api.show(
                api.client.add_upload_part(&upload_id, body),
                Context::default(),
            )
            .await
        }
    }
}

async fn part_body(data: &DataSource) -> Result<PartBody, Error> {
    match data {
        DataSource::Stdin => {
            use tokio::io::AsyncReadExt;
            let mut bytes = Vec::new();
            tokio::io::stdin()
                .take(MAX_PART_BYTES + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| Error::io("<stdin>", e))?;
            Ok(PartBody::from_bytes(bytes))
        }
        DataSource::File(path) => {
            let len = tokio::fs::metadata(path)
                .await
                .map_err(|e| Error::io(path, e))?
                .len();
            PartBody::from_file_range(path, 0, len).await
        }
    }
}

/// The settings shared by every file of one `uploads upload`.
struct Settings {
    purpose: Purpose,
    mime_type: Option<String>,
    part_size: Option<u64>,
    /// `None`: one file adapts; several share the default budget.
    concurrency: Option<usize>,
    fresh_if_expired: bool,
    md5: bool,
    expires_after: Option<i64>,
    /// Wait for another run holding the state file.
    wait: bool,
}

async fn upload_one(
    api: &Api<'_>,
    path: PathBuf,
    settings: Settings,
    resume: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let context = Context {
        mime_guessed: settings.mime_type.is_none(),
        ..Context::default()
    };
    let mut builder = api
        .client
        .upload_file(&path)
        .purpose(settings.purpose)
        .md5(settings.md5)
        .fresh_if_expired(settings.fresh_if_expired)
        .retry(api.retry.clone())
        .wait_for_lock(settings.wait);
    if let Some(bytes) = settings.part_size {
        builder = builder.part_size(bytes);
    }
    if let Some(parts) = settings.concurrency {
        builder = builder.concurrency(parts);
    }
    if let Some(mime) = settings.mime_type {
        builder = builder.mime_type(mime);
    }
    if let Some(seconds) = settings.expires_after {
        builder = builder.expires_after(seconds);
    }
    if let Some(state) = &resume {
        builder = builder.state_file(state);
    }
    let (handle, upload) = builder.start();
    let bars = api.output.progress().then(progress::bars);
    let drawn = bars.as_ref().map(|bars| show_progress(bars, &handle, None));
    tokio::pin!(upload);
    let upload = tokio::select! {
        upload = &mut upload => upload,
        signal = super::signal::stop_signal() => {
            silence_logs();
            // With a state file the Upload stays pending for the next run
            // (the error says until when); without one it is cancelled.
            handle.pause();
            let stopped = upload.await;
            if let Some(drawn) = drawn {
                end_bar(drawn, false);
                // The bar leaves the cursor at the end of its line.
                terminal::eprint("\n");
            }
            match stopped {
                // Its message says until when and how to resume.
                Err(error @ Error::Interrupted { .. }) => {
                    terminal::eprint(&format!("openai: interrupted: {error}\n"));
                }
                Err(Error::Cancelled) => {
                    terminal::eprint("openai: interrupted; the Upload was cancelled\n");
                }
                // Finished, one way or another, before the stop took effect:
                // said as it is.
                Ok(upload) => {
                    api.output.print(&upload)?;
                    return Ok(ExitCode::SUCCESS);
                }
                Err(error) => {
                    if let Error::CompletedNonConforming { upload: Some(completed), .. } = &error {
                        api.output.print(completed.as_ref())?;
                    }
                    return Err(api.fail(error, context));
                }
            }
            return Ok(ExitCode::from(signal.exit_code()));
        }
    };
    if let Some(drawn) = drawn {
        end_bar(drawn, upload.is_ok());
        // The bars leave the cursor at the end of their last line.
        terminal::eprint("\n");
    }
    // A completion whose answer breaks the spec is still a completion: the
    // Upload is printed, and the error says it completed.
    if let Err(Error::CompletedNonConforming {
        upload: Some(completed),
        ..
    }) = &upload
    {
        api.output.print(completed.as_ref())?;
    }
    let upload = upload.map_err(|e| api.fail(e, context))?;
    api.output.print(&upload)?;
    Ok(ExitCode::SUCCESS)
}

/// The usage error of a command given no file: what it was given instead.
fn nothing_to_upload(paths: &[PathBuf]) -> Error {
    let given: Vec<String> = paths
        .iter()
        .map(|p| {
            if p == Path::new("-") {
                "standard input listed no paths".to_string()
            } else {
                format!("{} holds no regular files", p.display())
            }
        })
        .collect();
    Error::Config {
        field: "FILE",
        message: format!("nothing to upload: {}", given.join(", ")),
    }
}

/// Paths as given, with directories replaced by their regular files (sorted)
/// and `-` by the paths on standard input.
async fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            use tokio::io::AsyncReadExt;
            let mut text = String::new();
            tokio::io::stdin()
                .read_to_string(&mut text)
                .await
                .map_err(|e| Error::io("<stdin>", e))?;
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from),
            );
        } else if path.is_dir() {
            let mut files = Vec::new();
            let mut entries = tokio::fs::read_dir(path)
                .await
                .map_err(|e| Error::io(path, e))?;
            while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(path, e))? {
                let is_file = entry
                    .file_type()
                    .await
                    .map_err(|e| Error::io(entry.path(), e))?
                    .is_file();
                if is_file {
                    files.push(entry.path());
                }
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

async fn upload_many(
    api: &Api<'_>,
    paths: Vec<PathBuf>,
    settings: Settings,
) -> Result<ExitCode, Failure> {
    let total = paths.len();
    let mut many = api
        .client
        .upload_files(paths)
        .purpose(settings.purpose)
        .md5(settings.md5)
        .retry(api.retry.clone());
    if let Some(bytes) = settings.part_size {
        many = many.part_size(bytes);
    }
    if let Some(parts) = settings.concurrency {
        many = many.concurrency(parts);
    }
    if let Some(mime) = &settings.mime_type {
        many = many.mime_type(mime);
    }
    if let Some(seconds) = settings.expires_after {
        many = many.expires_after(seconds);
    }
    let (handle, outcomes) = many.start();
    let bars = api.output.progress().then(progress::bars);
    let mut drawn = std::collections::HashMap::new();
    if let Some(bars) = &bars {
        for (path, file) in handle.files() {
            drawn.insert(path.clone(), show_progress(bars, file, Some(path)));
        }
    }
    let total_bar = bars.as_ref().map(|bars| {
        let bar = bars.add(indicatif::ProgressBar::new(total as u64));
        bar.set_style(
            indicatif::ProgressStyle::with_template("total {pos}/{len} files, {msg} failed")
                .expect("static template"),
        );
        bar.set_message("0");
        bar
    });
    let mut failed = 0usize;
    let mut outcomes = std::pin::pin!(outcomes);
    loop {
        let outcome = tokio::select! {
            outcome = outcomes.next() => outcome,
            signal = super::signal::stop_signal() => {
                silence_logs();
                handle.cancel();
                while outcomes.next().await.is_some() {}
                drawn.into_values().for_each(|d| end_bar(d, false));
                terminal::eprint("\nopenai: interrupted; the unfinished Uploads were cancelled\n");
                return Ok(ExitCode::from(signal.exit_code()));
            }
        };
        let Some(outcome) = outcome else { break };
        if let Some(bar) = drawn.remove(&outcome.path) {
            end_bar(bar, outcome.result.is_ok());
        }
        match outcome.result {
            // Printed with the bars out of the way, when they are drawn.
            Ok(upload) => match &bars {
                Some(bars) => bars.suspend(|| api.output.print(&upload))?,
                None => api.output.print(&upload)?,
            },
            Err(error) => {
                failed += 1;
                // Completed, though its answer breaks the spec: printed too.
                if let Error::CompletedNonConforming {
                    upload: Some(completed),
                    ..
                } = &error
                {
                    match &bars {
                        Some(bars) => bars.suspend(|| api.output.print(completed.as_ref()))?,
                        None => api.output.print(completed.as_ref())?,
                    }
                }
                let context = Context {
                    mime_guessed: settings.mime_type.is_none(),
                    ..Context::default()
                };
                let failure = api.fail(error, context);
                // Printed above the bars by the route `lines_above` set.
                api.output
                    .print_error_about(Some(&outcome.path), &failure.error, failure.hint);
            }
        }
        if let Some(bar) = &total_bar {
            bar.inc(1);
            bar.set_message(failed.to_string());
        }
    }
    if let Some(bar) = total_bar {
        bar.finish();
        terminal::eprint("\n");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PARTIAL_FAILURE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_spellings() {
        let file = |p: &str| Ok(DataSource::File(PathBuf::from(p)));
        assert_eq!(parse_data("@part.bin"), file("part.bin"));
        assert_eq!(parse_data("part.bin"), file("part.bin"));
        assert_eq!(parse_data("@-"), Ok(DataSource::Stdin));
        assert_eq!(parse_data("-"), Ok(DataSource::Stdin));
        assert_eq!(parse_data("\\@odd"), file("@odd"));
        assert_eq!(parse_data("\\@-"), file("@-"));
        assert!(parse_data("@").is_err());
    }

    #[test]
    fn expires_after_flow_syntax() {
        let policy = parse_expires_after("{anchor: created_at, seconds: 7200}").unwrap();
        assert_eq!(policy.seconds, 7200);
        let policy = parse_expires_after(r#"{"anchor": "created_at", "seconds": 3600}"#).unwrap();
        assert_eq!(policy.seconds, 3600);
        assert!(parse_expires_after("{anchor: updated_at, seconds: 7200}").is_err());
    }

    #[test]
    fn purposes_come_from_the_spec() {
        let values = super::super::enum_values::<Purpose>();
        assert_eq!(
            values,
            [
                "assistants",
                "batch",
                "fine-tune",
                "vision",
                "user_data",
                "evals"
            ]
        );
    }
}

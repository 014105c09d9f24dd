//! `openai uploads …` and `openai uploads:parts …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;

use super::output::Context;
use super::{Api, Failure, PARTIAL_FAILURE, silence_logs, spec_enum};
use crate::error::Error;
use crate::upload::{Purpose, UploadHandle};
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
        /// Bytes per part, from 4096 to 67108864 (64 MB), at most 10000 parts
        /// [default: from the file's size, about 128 parts of 8 to 64 MiB; or
        /// the part size of the resume state].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_PART_BYTES))]
        part_size: Option<u64>,
        /// Fix the parts in flight, from 1 to 64, across all files [default:
        /// one file adapts, from 16 up to 64 while the throughput grows, fewer
        /// when the server throttles; several files share 16].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
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
            api.show(client.create_upload(&request).await, none)
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
            api.show(client.complete_upload(&upload_id, &request).await, context)
        }
        UploadsCommand::Cancel { upload_id } => {
            api.show(client.cancel_upload(&upload_id).await, none)
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
        } => {
            let settings = Settings {
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
                upload_one(api, path, settings, resume).await
            } else {
                if resume.is_some() {
                    return Err(Failure::from(Error::Config {
                        field: "resume",
                        message: "--resume takes one file; upload several without it".into(),
                    }));
                }
                let paths = expand(paths).await?;
                upload_many(api, paths, settings).await
            }
        }
    }
}

pub(super) async fn run_parts(api: &Api<'_>, command: PartsCommand) -> Result<ExitCode, Failure> {
    match command {
        PartsCommand::Create { upload_id, data } => {
            let body = part_body(&data).await?;
            api.show(
                api.client.add_upload_part(&upload_id, body).await,
                Context::default(),
            )
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
        .fresh_if_expired(settings.fresh_if_expired);
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
    let bars = api.output.progress().then(indicatif::MultiProgress::new);
    let _above = bars.as_ref().map(super::terminal::lines_above);
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
            }
            eprintln!();
            match stopped {
                // Its message says until when and how to resume.
                Err(error @ Error::Interrupted { .. }) => eprintln!("openai: interrupted: {error}"),
                _ => eprintln!("openai: interrupted; the Upload was cancelled"),
            }
            return Ok(ExitCode::from(signal.exit_code()));
        }
    };
    if let Some(drawn) = drawn {
        end_bar(drawn, upload.is_ok());
        // The bars leave the cursor at the end of their last line.
        eprintln!();
    }
    let upload = upload.map_err(|e| api.fail(e, context))?;
    api.output.print(&upload)?;
    Ok(ExitCode::SUCCESS)
}

/// Paths as given, with directories replaced by their regular files (sorted)
/// and `-` by the paths on standard input.
async fn expand(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, Error> {
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
            let mut entries = tokio::fs::read_dir(&path)
                .await
                .map_err(|e| Error::io(&path, e))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| Error::io(&path, e))?
            {
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
            out.push(path);
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
        .md5(settings.md5);
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
    let bars = api.output.progress().then(indicatif::MultiProgress::new);
    let _above = bars.as_ref().map(super::terminal::lines_above);
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
                eprintln!("\nopenai: interrupted; the unfinished Uploads were cancelled");
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
        eprintln!();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PARTIAL_FAILURE)
    })
}

/// Draws one progress bar on standard error while the upload runs; the
/// caller ends it with [`end_bar`].
fn show_progress(
    bars: &indicatif::MultiProgress,
    handle: &UploadHandle,
    path: Option<&Path>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let mut progress = handle.progress();
    let bar = bars.add(indicatif::ProgressBar::new(0));
    let name = path
        .map(|p| format!("{} ", p.display()))
        .unwrap_or_default();
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{name}{{bar:30}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} ETA {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let drawn = bar.clone();
    let task = tokio::spawn(async move {
        let mut resumed = 0;
        while progress.changed().await.is_ok() {
            let p = *progress.borrow_and_update();
            drawn.set_length(p.bytes_total);
            drawn.set_position(p.bytes_sent.min(p.bytes_total));
            // Bytes an earlier run sent are done, not speed.
            if p.bytes_resumed != resumed {
                resumed = p.bytes_resumed;
                drawn.reset_eta();
            }
            drawn.set_message(format!("parts {}/{}", p.parts_confirmed, p.parts_total));
        }
    });
    (bar, task)
}

/// Ends a file's bar: done, or marked failed.
fn end_bar((bar, task): (indicatif::ProgressBar, tokio::task::JoinHandle<()>), ok: bool) {
    task.abort();
    if ok {
        bar.set_position(bar.length().unwrap_or_default());
        bar.finish_with_message("done");
    } else {
        bar.abandon_with_message("failed");
    }
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

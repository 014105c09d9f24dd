//! The `openai` command. All printing of the crate lives here.
//!
//! Exit codes: 0 success; 1 the API refused or answered outside the spec, or
//! a request broke a rule before sending; 2 usage (bad flags, no key, bad
//! configuration); 3 transport (connection, timeout); 4 local files; 130
//! interrupted. `openai spec diff` has its own: 0 equal, 1 non-breaking
//! changes only, 2 breaking (and 4 when a spec cannot be read).
//!
//! Warnings (retries, answers that depart from the spec) go to standard error;
//! `OPENAI_LOG=error|warn|info|debug|trace` sets how much (default `warn`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde::Serialize;

use crate::emulator::{Emulator, EmulatorConfig};
use crate::error::Error;
use crate::upload::{Purpose, UploadExt};
use crate::validate::ValidationMode;
use crate::{Client, Config, PartBody, types};

/// Move large files into OpenAI through the Uploads API.
#[derive(Debug, Parser)]
#[command(name = "openai", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// API key; never printed.
    #[arg(long, global = true, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Base URL including /v1 [default: https://api.openai.com/v1].
    #[arg(long, global = true, env = "OPENAI_BASE_URL", hide_env_values = true)]
    base_url: Option<String>,
    /// Organisation, sent as OpenAI-Organization.
    #[arg(long, global = true, env = "OPENAI_ORG_ID", hide_env_values = true)]
    organization: Option<String>,
    /// Project, sent as OpenAI-Project.
    #[arg(long, global = true, env = "OPENAI_PROJECT_ID", hide_env_values = true)]
    project: Option<String>,
    /// Output format of the printed API objects.
    #[arg(long, global = true, value_enum, default_value_t = Format::Pretty)]
    format: Format,
    /// Check answers strictly against the spec (unknown fields and values fail).
    #[arg(long, global = true)]
    strict: bool,
    /// Run against an in-process local emulator: no key, no network.
    #[arg(long, global = true)]
    emulator: bool,
    /// Client certificate (PEM) for mutual TLS; needs --mtls-client-key-file (empty: none).
    #[arg(
        long,
        global = true,
        env = "OPENAI_MTLS_CLIENT_CERT_FILE",
        value_name = "FILE"
    )]
    mtls_client_cert_file: Option<std::ffi::OsString>,
    /// Private key (PEM) of the mutual TLS client certificate.
    #[arg(
        long,
        global = true,
        env = "OPENAI_MTLS_CLIENT_KEY_FILE",
        value_name = "FILE"
    )]
    mtls_client_key_file: Option<std::ffi::OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line of JSON.
    Json,
    /// Indented JSON.
    Pretty,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Uploads: create, add parts, complete, cancel, or all at once.
    #[command(subcommand)]
    Uploads(UploadsCommand),
    /// Files: retrieve, download, delete.
    #[command(subcommand)]
    Files(FilesCommand),
    /// The local emulator of the API.
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// Follow OpenAI's spec: extract the vendored subset, diff against it.
    #[command(subcommand)]
    Spec(SpecCommand),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PurposeArg {
    Assistants,
    Batch,
    #[value(name = "fine-tune")]
    FineTune,
    Vision,
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Self {
        match p {
            PurposeArg::Assistants => Purpose::Assistants,
            PurposeArg::Batch => Purpose::Batch,
            PurposeArg::FineTune => Purpose::FineTune,
            PurposeArg::Vision => Purpose::Vision,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UploadsCommand {
    /// Create an Upload (POST /uploads).
    Create {
        /// Name the File will carry.
        #[arg(long)]
        filename: String,
        /// What the File is for.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// Exact size of the whole file in bytes.
        #[arg(long)]
        bytes: i64,
        /// MIME type of the file.
        #[arg(long)]
        mime_type: String,
        /// Expire the File this many seconds after creation (3600..=2592000).
        #[arg(long)]
        expires_after_seconds: Option<i64>,
    },
    /// Parts of an Upload.
    #[command(subcommand)]
    Parts(PartsCommand),
    /// Complete an Upload from its parts, in order (POST /uploads/{id}/complete).
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
    Cancel {
        /// The Upload.
        #[arg(long)]
        upload_id: String,
    },
    /// Upload a whole file in one command: parallel parts, md5, retries, progress.
    Upload {
        /// The file to upload.
        path: PathBuf,
        /// What the File is for.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// MIME type [default: guessed from the extension].
        #[arg(long)]
        mime_type: Option<String>,
        /// Bytes per part, at most 67108864 (64 MB).
        #[arg(long, default_value_t = crate::upload::DEFAULT_PART_SIZE)]
        part_size: u64,
        /// Parts in flight at once.
        #[arg(long, default_value_t = crate::upload::DEFAULT_CONCURRENCY)]
        concurrency: usize,
        /// Do not send the file's md5 for the server to check.
        #[arg(long)]
        no_md5: bool,
        /// Expire the File this many seconds after creation (3600..=2592000).
        #[arg(long)]
        expires_after_seconds: Option<i64>,
        /// Resume state file: kept while the upload runs, so an upload
        /// interrupted (Ctrl-C, a killed process, a lost machine) and started
        /// again with the same file sends only the missing parts. Without it,
        /// Ctrl-C cancels the Upload.
        #[arg(long, value_name = "STATE")]
        resume: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PartsCommand {
    /// Add a part (POST /uploads/{id}/parts), at most 64 MB.
    Create {
        /// The Upload.
        #[arg(long)]
        upload_id: String,
        /// File holding the part's bytes, or - for standard input.
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FilesCommand {
    /// Print a File's metadata (GET /files/{id}).
    Retrieve {
        /// The File.
        #[arg(long)]
        file_id: String,
    },
    /// Write a File's bytes to standard output or a file (GET /files/{id}/content).
    Content {
        /// The File.
        #[arg(long)]
        file_id: String,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Delete a File (DELETE /files/{id}).
    Delete {
        /// The File.
        #[arg(long)]
        file_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum EmulatorCommand {
    /// Serve the emulator until interrupted.
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep Uploads (with their parts) and Files here, across restarts: an
        /// emulator started again on the same directory still has them
        /// [default: a temporary directory, gone when the emulator stops].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SpecCommand {
    /// Print the vendored operations of an upstream spec as OpenAPI 3.0.3 (JSON;
    /// `--format json` for one line).
    Extract {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1).
        #[arg(long)]
        upstream: PathBuf,
        /// Operation ids to keep, comma-separated [default: the vendored ones].
        #[arg(long, value_delimiter = ',')]
        operations: Vec<String>,
    },
    /// Compare the vendored spec with an upstream one; exit 0 equal, 1 non-breaking, 2 breaking.
    ///
    /// Differences recorded in openapi/differences.yaml (built in) are listed as
    /// kept on purpose and do not count, while upstream still says what was
    /// recorded. `--format json` prints the report as JSON.
    Diff {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1).
        #[arg(long)]
        upstream: PathBuf,
        /// The vendored spec [default: the one this binary was built from].
        #[arg(long)]
        vendored: Option<PathBuf>,
    },
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = std::env::var("OPENAI_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("openai: error: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("openai: error: {error}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// Exit code of a command stopped by Ctrl-C, as shells report SIGINT.
const INTERRUPTED: u8 = 130;

/// The exit code for an error (see the module docs).
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Config { .. } => 2,
        Error::Transport(_) => 3,
        Error::Io { .. } | Error::Resume { .. } | Error::Spec(_) => 4,
        Error::Cancelled => INTERRUPTED,
        Error::Part { source, .. } => exit_code(source),
        _ => 1,
    }
}

fn print(format: Format, value: &impl Serialize) -> Result<(), Error> {
    let text = match format {
        Format::Json => serde_json::to_string(value),
        Format::Pretty => serde_json::to_string_pretty(value),
    }
    .expect("API objects serialise");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
}

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let Cli { global, command } = cli;
    match command {
        Command::Emulator(EmulatorCommand::Serve { port, data_dir }) => {
            let emulator = Emulator::start(EmulatorConfig {
                port,
                data_dir,
                ..EmulatorConfig::default()
            })
            .await
            .map_err(|e| Error::io(format!("127.0.0.1:{port}"), e))?;
            eprintln!(
                "openai: emulator listening on {} (Ctrl-C to stop)",
                emulator.base_url()
            );
            tokio::select! {
                () = emulator.wait() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Spec(command) => spec(command, global.format),
        command => {
            // Kept alive for as long as the client talks to it.
            let (client, _emulator) = connect(&global).await?;
            match command {
                Command::Uploads(c) => uploads(&client, global.format, c).await?,
                Command::Files(c) => files(&client, global.format, c).await?,
                Command::Emulator(_) | Command::Spec(_) => unreachable!("handled above"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn connect(global: &Global) -> Result<(Client, Option<Emulator>), Error> {
    let mut config = Config::new().with_validation(if global.strict {
        ValidationMode::Strict
    } else {
        ValidationMode::Lenient
    });
    let emulator = if global.emulator {
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .map_err(|e| Error::io("127.0.0.1", e))?;
        config = config
            .with_base_url(emulator.base_url())
            .with_api_key("emulator");
        Some(emulator)
    } else {
        if let Some(key) = &global.api_key {
            config = config.with_api_key(key);
        }
        if let Some(url) = &global.base_url {
            config = config.with_base_url(url);
        }
        None
    };
    if let Some(org) = &global.organization {
        config = config.with_organization(org);
    }
    if let Some(project) = &global.project {
        config = config.with_project(project);
    }
    if let Some(cert) = &global.mtls_client_cert_file {
        config = config.with_client_cert_file(cert);
    }
    if let Some(key) = &global.mtls_client_key_file {
        config = config.with_client_key_file(key);
    }
    if !config.has_api_key() {
        return Err(Error::Config {
            field: "api_key",
            message: "not set: pass --api-key, set OPENAI_API_KEY, or use --emulator".into(),
        });
    }
    Ok((config.client()?, emulator))
}

async fn uploads(client: &Client, format: Format, command: UploadsCommand) -> Result<(), Error> {
    match command {
        UploadsCommand::Create {
            filename,
            purpose,
            bytes,
            mime_type,
            expires_after_seconds,
        } => {
            let request = types::CreateUploadRequest {
                filename,
                purpose: purpose.into(),
                bytes,
                mime_type,
                expires_after: expires_after_seconds.map(|seconds| types::FileExpirationAfter {
                    anchor: types::FileExpirationAfterAnchor::CreatedAt,
                    seconds,
                }),
            };
            print(format, &*client.create_upload(&request).await?)
        }
        UploadsCommand::Parts(PartsCommand::Create { upload_id, data }) => {
            let body = part_body(&data).await?;
            print(format, &*client.add_upload_part(&upload_id, body).await?)
        }
        UploadsCommand::Complete {
            upload_id,
            part_ids,
            md5,
        } => {
            let request = types::CompleteUploadRequest { part_ids, md5 };
            print(
                format,
                &*client.complete_upload(&upload_id, &request).await?,
            )
        }
        UploadsCommand::Cancel { upload_id } => {
            print(format, &*client.cancel_upload(&upload_id).await?)
        }
        UploadsCommand::Upload {
            path,
            purpose,
            mime_type,
            part_size,
            concurrency,
            no_md5,
            expires_after_seconds,
            resume,
        } => {
            let mut builder = client
                .upload_file(&path)
                .purpose(purpose.into())
                .part_size(part_size)
                .concurrency(concurrency)
                .md5(!no_md5);
            if let Some(mime) = mime_type {
                builder = builder.mime_type(mime);
            }
            if let Some(seconds) = expires_after_seconds {
                builder = builder.expires_after(seconds);
            }
            if let Some(state) = &resume {
                builder = builder.state_file(state);
            }
            let (handle, upload) = builder.start();
            let bar = std::io::stderr()
                .is_terminal()
                .then(|| show_progress(handle.progress()));
            tokio::pin!(upload);
            let upload = tokio::select! {
                upload = &mut upload => upload,
                _ = tokio::signal::ctrl_c() => match &resume {
                    // Leave the Upload pending and the state file in place.
                    Some(state) => {
                        eprintln!(
                            "\nopenai: interrupted; run the same command again to resume from {}",
                            state.display()
                        );
                        return Err(Error::Cancelled);
                    }
                    // The upload future cancels the Upload on the server; let it.
                    None => {
                        handle.cancel();
                        upload.await
                    }
                },
            };
            if let Some(bar) = bar {
                bar.abort();
                eprintln!();
            }
            print(format, &upload?)
        }
    }
}

/// Draws a progress bar on standard error until the upload ends.
fn show_progress(
    mut progress: tokio::sync::watch::Receiver<crate::upload::Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("static template"),
        );
        while progress.changed().await.is_ok() {
            let p = *progress.borrow_and_update();
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_sent.min(p.bytes_total));
            bar.set_message(format!("parts {}/{}", p.parts_confirmed, p.parts_total));
        }
        bar.finish();
    })
}

async fn part_body(data: &Path) -> Result<PartBody, Error> {
    if data == Path::new("-") {
        use tokio::io::AsyncReadExt;
        let limit = crate::validate::rules::MAX_PART_BYTES + 1;
        let mut bytes = Vec::new();
        tokio::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::io("<stdin>", e))?;
        return Ok(PartBody::from_bytes(bytes));
    }
    let len = tokio::fs::metadata(data)
        .await
        .map_err(|e| Error::io(data, e))?
        .len();
    PartBody::from_file_range(data, 0, len).await
}

async fn files(client: &Client, format: Format, command: FilesCommand) -> Result<(), Error> {
    match command {
        FilesCommand::Retrieve { file_id } => {
            print(format, &*client.retrieve_file(&file_id).await?)
        }
        FilesCommand::Delete { file_id } => print(format, &*client.delete_file(&file_id).await?),
        FilesCommand::Content { file_id, output } => {
            let stream = client.download_file(&file_id).await?.into_inner();
            match output {
                None => copy(stream, tokio::io::stdout(), Path::new("<stdout>")).await,
                Some(path) => {
                    // Written beside the target and renamed at the end, so a
                    // broken download never leaves a truncated file behind.
                    let mut partial = path.clone().into_os_string();
                    partial.push(".partial");
                    let partial = PathBuf::from(partial);
                    let file = tokio::fs::File::create(&partial)
                        .await
                        .map_err(|e| Error::io(&partial, e))?;
                    let copied = copy(stream, file, &partial).await;
                    match copied {
                        Ok(()) => tokio::fs::rename(&partial, &path)
                            .await
                            .map_err(|e| Error::io(&path, e)),
                        Err(e) => {
                            let _ = tokio::fs::remove_file(&partial).await;
                            Err(e)
                        }
                    }
                }
            }
        }
    }
}

async fn copy(
    mut stream: progenitor_client::ByteStream,
    mut sink: impl tokio::io::AsyncWrite + Unpin,
    name: &Path,
) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::Transport)?;
        sink.write_all(&chunk)
            .await
            .map_err(|e| Error::io(name, e))?;
    }
    sink.flush().await.map_err(|e| Error::io(name, e))
}

fn spec(command: SpecCommand, format: Format) -> Result<ExitCode, Error> {
    match command {
        SpecCommand::Extract {
            upstream,
            operations,
        } => {
            let upstream_spec = crate::spec::read(&upstream)?;
            let ids: Vec<&str> = if operations.is_empty() {
                crate::spec::DEFAULT_OPERATIONS.to_vec()
            } else {
                operations.iter().map(String::as_str).collect()
            };
            let extracted = crate::spec::extract(&upstream_spec, &ids)?;
            print(format, &extracted)?;
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Diff { upstream, vendored } => {
            let upstream_spec = crate::spec::read(&upstream)?;
            let vendored_spec = match &vendored {
                Some(path) => crate::spec::read(path)?,
                None => serde_json::from_str(crate::validate::schema::SPEC_JSON)
                    .expect("embedded spec is JSON"),
            };
            let report = crate::spec::Differences::vendored()?.apply(
                crate::spec::diff(&vendored_spec, &upstream_spec),
                &upstream_spec,
            );
            match format {
                Format::Json => print(Format::Pretty, &report)?,
                Format::Pretty => print!("{report}"),
            }
            Ok(ExitCode::from(report.exit_code() as u8))
        }
    }
}

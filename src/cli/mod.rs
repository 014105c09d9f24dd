//! The `openai` command. All printing of the crate lives here.
//!
//! One file per command group (`uploads`, `files`, `emulator`, `spec`) and
//! one for what is printed (`output`). The options that reach the API
//! (connection and output) are accepted before the command group and after
//! it (`openai --format jsonl uploads create …` and `openai uploads create …
//! --format jsonl`), and only on the groups that call the API.
//!
//! Exit codes: see [`EXIT_CODES`]. Warnings (retries, answers that depart
//! from the spec) go to standard error; `OPENAI_LOG=error|warn|info|debug|trace`
//! sets how much (default `warn`; `--debug` means `debug`, `--quiet` `error`).

// The doc comments of the command's definition are its help text, printed
// by clap, not rendered by rustdoc.
#![allow(rustdoc::bare_urls)]

mod emulator;
mod files;
mod output;
mod signal;
mod spec;
mod uploads;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::emulator::{Emulator, EmulatorConfig};
use crate::error::Error;
use crate::validate::ValidationMode;
use crate::{Client, Config};

use output::{Output, OutputArgs};

/// The help heading of the options the commands that call the API share.
const GLOBAL_OPTIONS: &str = "Global options";

/// The exit codes, as printed at the end of every command's help.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    the API refused, an answer broke the spec, or a request broke a rule before sending
  2    usage: bad flags or values, no API key, bad configuration
  3    transport: connection refused or broken, timeout
  4    local files: unreadable input, unwritable output, bad resume state
  5    partial failure: some of several files did not upload (the others did)
  130  interrupted (Ctrl-C)";

const ENVIRONMENT: &str = "\
Environment:
  OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID  as the flags
  OPENAI_LOG  error|warn|info|debug|trace: how much is logged on standard error [default: warn]";

/// Set once Ctrl-C has been answered: the command has said what happened,
/// so the warnings of the clean-up that follows (cancelling the Upload) are
/// not printed after it.
static LOGS_SILENCED: AtomicBool = AtomicBool::new(false);

/// Stops log lines from reaching standard error from now on.
fn silence_logs() {
    LOGS_SILENCED.store(true, Ordering::Relaxed);
}

/// Exit code of a command stopped by Ctrl-C, as shells report SIGINT.
const INTERRUPTED: u8 = 130;
/// Exit code when some files of several did not upload.
const PARTIAL_FAILURE: u8 = 5;
/// Exit code when the emulator's port is taken.
const ADDRESS_IN_USE: u8 = emulator::ADDRESS_IN_USE;

/// Move large files into OpenAI through the Uploads API.
#[derive(Debug, Parser)]
#[command(
    name = "openai",
    version,
    about,
    propagate_version = true,
    after_help = "Example:\n  openai --emulator uploads upload data.jsonl --purpose fine-tune"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

/// How the commands that call the API reach it.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = GLOBAL_OPTIONS)]
struct Global {
    /// API key; never printed.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Base URL including /v1 [default: https://api.openai.com/v1].
    #[arg(long, env = "OPENAI_BASE_URL", hide_env_values = true)]
    base_url: Option<String>,
    /// Organisation, sent as OpenAI-Organization.
    #[arg(long, env = "OPENAI_ORG_ID", hide_env_values = true)]
    organization: Option<String>,
    /// Project, sent as OpenAI-Project.
    #[arg(long, env = "OPENAI_PROJECT_ID", hide_env_values = true)]
    project: Option<String>,
    /// Check answers strictly against the spec (unknown fields and values fail).
    #[arg(long)]
    strict: bool,
    /// Run against an in-process local emulator: no key, no network. Not with --base-url;
    /// overrides OPENAI_BASE_URL.
    #[arg(long)]
    emulator: bool,
    /// Client certificate (PEM) for mutual TLS; needs --mtls-client-key-file (empty: none).
    #[arg(long, env = "OPENAI_MTLS_CLIENT_CERT_FILE", value_name = "FILE")]
    mtls_client_cert_file: Option<std::ffi::OsString>,
    /// Private key (PEM) of the mutual TLS client certificate.
    #[arg(long, env = "OPENAI_MTLS_CLIENT_KEY_FILE", value_name = "FILE")]
    mtls_client_key_file: Option<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Uploads: create, add parts, complete, cancel, or whole files at once.
    #[command(
        after_help = "Examples:\n  openai uploads upload data.jsonl --purpose fine-tune\n  openai uploads create --filename data.jsonl --purpose fine-tune --bytes 1024 --mime-type text/jsonl"
    )]
    Uploads(uploads::UploadsGroup),
    /// Parts of an Upload (the official CLI's spelling of `uploads parts`).
    #[command(
        name = "uploads:parts",
        after_help = "Example:\n  openai uploads:parts create --upload-id upload_abc --data @part-1.bin"
    )]
    UploadsParts(uploads::PartsGroup),
    /// Files: retrieve, content, delete, list.
    #[command(
        after_help = "Examples:\n  openai files list --transform data.#.id\n  openai files content --file-id file-abc -o data.jsonl"
    )]
    Files(files::FilesGroup),
    /// The local emulator of the API.
    #[command(
        subcommand,
        after_help = "Example:\n  openai emulator serve --port 8080 --scope parts --rate-limit-every 5"
    )]
    Emulator(emulator::EmulatorCommand),
    /// Follow OpenAI's spec: extract the vendored subset, diff against it.
    #[command(
        subcommand,
        after_help = "Example:\n  openai spec diff --upstream openapi.yaml"
    )]
    Spec(spec::SpecCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  openai completion bash > ~/.local/share/bash-completion/completions/openai"
    )]
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The command groups that call the API, which take the global options after them too.
const API_GROUPS: &[&str] = &["uploads", "uploads:parts", "files"];

/// The command line's definition: the derived one, with the global options
/// also accepted after the groups that call the API and every help ending in
/// the exit codes.
fn definition() -> clap::Command {
    let root = Cli::command();
    let globals: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(GLOBAL_OPTIONS))
        .map(|a| a.clone().global(true))
        .collect();
    let root = root.mut_subcommands(|mut sub| {
        if API_GROUPS.contains(&sub.get_name()) {
            sub = sub.args(globals.iter().cloned());
        }
        with_exit_codes(sub)
    });
    let example = root
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    root.after_help(format!("{example}\n\n{ENVIRONMENT}\n\n{EXIT_CODES}"))
}

/// Appends the exit codes to the help of `command` and of every command below it.
fn with_exit_codes(command: clap::Command) -> clap::Command {
    let before = command
        .get_after_help()
        .map(|h| format!("{}\n\n", h.to_string().trim_end()))
        .unwrap_or_default();
    let codes = if command.get_name() == "diff" {
        spec::DIFF_EXIT_CODES
    } else if command.get_name() == "serve" {
        emulator::SERVE_EXIT_CODES
    } else {
        EXIT_CODES
    };
    command
        .after_help(format!("{before}{codes}"))
        .mut_subcommands(with_exit_codes)
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let matches = definition().get_matches();
    // Checked here, not by clap's `conflicts_with`: that would also refuse an
    // OPENAI_BASE_URL set in the environment, which --emulator simply overrides,
    // and it cannot see the two flags on either side of the command group.
    let base_url_given = matches.value_source("base_url") == Some(ValueSource::CommandLine);
    if matches.get_flag("emulator") && base_url_given {
        definition()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "the argument '--emulator' cannot be used with '--base-url <BASE_URL>'",
            )
            .exit();
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let output = Output::from(&cli.output);
    let level = if cli.output.debug {
        tracing::Level::DEBUG
    } else if cli.output.quiet {
        tracing::Level::ERROR
    } else {
        std::env::var("OPENAI_LOG")
            .ok()
            .and_then(|v| v.parse::<tracing::Level>().ok())
            .unwrap_or(tracing::Level::WARN)
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| -> Box<dyn std::io::Write> {
            if LOGS_SILENCED.load(Ordering::Relaxed) {
                Box::new(std::io::sink())
            } else {
                Box::new(std::io::stderr())
            }
        })
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output.print_error(&Error::io("<async runtime>", e), None);
            return ExitCode::from(4);
        }
    };
    runtime.block_on(run(cli, output))
}

/// The exit code for an error (see [`EXIT_CODES`]).
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Config { .. } | Error::InvalidSetting { .. } => 2,
        Error::Transport(_) => 3,
        Error::Io { .. } | Error::Resume { .. } | Error::ResumeMismatch { .. } | Error::Spec(_) => {
            4
        }
        Error::Cancelled | Error::Paused => INTERRUPTED,
        Error::AddressInUse { .. } => ADDRESS_IN_USE,
        Error::Part { cause, .. } => exit_code(cause),
        Error::Interrupted { reason, .. } => exit_code(reason),
        _ => 1,
    }
}

/// A failed command: the error and what helps explain it.
struct Failure {
    error: Error,
    hint: Option<String>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self { error, hint: None }
    }
}

async fn run(cli: Cli, output: Output) -> ExitCode {
    let Cli {
        global, command, ..
    } = cli;
    let result = match command {
        Command::Emulator(command) => emulator::run(command).await.map_err(Failure::from),
        Command::Spec(command) => spec::run(command, cli.output.format).map_err(Failure::from),
        Command::Completion { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut definition(), "openai", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        command => match connect(&global).await {
            Err(error) => Err(Failure::from(error)),
            // The emulator is kept alive for as long as the client talks to it.
            Ok((client, _emulator)) => {
                let api = Api {
                    client: &client,
                    output: &output,
                    base_url: client.base_url().to_string(),
                };
                match command {
                    Command::Uploads(group) => uploads::run(&api, group.command).await,
                    Command::UploadsParts(group) => uploads::run_parts(&api, group.command).await,
                    Command::Files(group) => files::run(&api, group.command).await,
                    Command::Emulator(_) | Command::Spec(_) | Command::Completion { .. } => {
                        unreachable!("handled above")
                    }
                }
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(Failure { error, hint }) => {
            output.print_error(&error, hint);
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The values of a generated enum, read from its JSON schema, so that a
/// command's choices are the spec's and nothing else.
fn enum_values<T: schemars::JsonSchema>() -> Vec<&'static str> {
    let schema = schemars::schema_for!(T);
    schema
        .schema
        .enum_values
        .into_iter()
        .flatten()
        // Leaked once per process: clap's possible values are `'static`.
        .filter_map(|v| v.as_str().map(|s| &*s.to_string().leak()))
        .collect()
}

/// A value parser offering exactly the values of the generated enum `T`.
fn spec_enum<T>() -> impl clap::builder::TypedValueParser<Value = T>
where
    T: schemars::JsonSchema + std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Debug,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(enum_values::<T>())
        .map(|s| s.parse::<T>().expect("a value of the enum's schema parses"))
}

/// What a command that calls the API works with.
struct Api<'a> {
    client: &'a Client,
    output: &'a Output,
    base_url: String,
}

impl Api<'_> {
    /// A failure with the hint for its context.
    fn fail(&self, error: Error, context: output::Context<'_>) -> Failure {
        let context = output::Context {
            base_url: Some(&self.base_url),
            ..context
        };
        Failure {
            hint: output::hint(&error, context),
            error,
        }
    }

    /// Prints the answer of a call; a failed call becomes a failure with its hint.
    fn show<T: serde::Serialize, E: Into<Error>>(
        &self,
        answer: Result<progenitor_client::ResponseValue<T>, E>,
        context: output::Context<'_>,
    ) -> Result<ExitCode, Failure> {
        let value = answer.map_err(|e| self.fail(e.into(), context))?;
        self.output.print(&*value)?;
        Ok(ExitCode::SUCCESS)
    }
}

async fn connect(global: &Global) -> Result<(Client, Option<Emulator>), Error> {
    let mut config = Config::new().with_validation(if global.strict {
        ValidationMode::Strict
    } else {
        ValidationMode::Lenient
    });
    let emulator = if global.emulator {
        let emulator = Emulator::start(EmulatorConfig::default()).await?;
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

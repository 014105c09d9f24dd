//! The `openai` command. All printing of the crate lives here.
//!
//! One file per command group (`uploads`, `files`, `emulator`, `spec`) and
//! one for what is printed (`output`). The options that reach the API
//! (connection and output) are accepted before the command group and after
//! it (`openai --format jsonl uploads create …` and `openai uploads create …
//! --format jsonl`), and only on the groups that call the API.
//!
//! Exit codes: see [`EXIT_CODES`]. Warnings (retries, answers that depart
//! from the spec) go to standard error as one line each for people, or as
//! JSON lines when errors are printed as JSON or YAML; `--debug` (level
//! `debug`) and `OPENAI_LOG=error|warn|info|debug|trace` turn on tracing's
//! full output instead, and `--quiet` keeps only errors. Everything written
//! to standard error goes through the `terminal` module, which escapes control
//! characters.

// The doc comments of the command's definition are its help text, printed
// by clap, not rendered by rustdoc.
#![allow(rustdoc::bare_urls)]

mod emulator;
mod files;
mod output;
mod progress;
mod signal;
mod spec;
mod terminal;
mod uploads;

use std::process::ExitCode;
use std::time::Duration;

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
  0    success, also when the reader of standard output stops early (`| head`)
  1    the API refused, or an answer broke the spec or disagreed with the request
  2    usage: bad flags or values, a request a rule refuses before sending, no API key,
       bad configuration, nothing to upload, a state file another run holds
  3    transport: connection refused or broken, timeout
  4    local files: unreadable input, unwritable output, bad resume state
  5    partial failure: some of several files did not upload (the others did)
  6    a source file changed while it was being uploaded: nothing was completed
  130  interrupted (Ctrl-C, SIGINT); 143 SIGTERM; 129 SIGHUP";

/// The exit codes of `openai spec` and `spec extract`, which agree with
/// `spec diff`'s own ([`spec::DIFF_EXIT_CODES`]).
const SPEC_EXIT_CODES: &str = "\
Exit codes:
  0  success; spec diff: the specs are equal (besides the differences kept on purpose), or with
     --fail-on breaking, no breaking change
  1  spec diff: non-breaking changes only (not with --fail-on breaking)
  2  usage: bad flags or values; spec diff: breaking changes
  4  a spec cannot be read or fetched, or is malformed (no `paths`); spec update: upstream
     changed where a difference is recorded (nothing is written)";

const ENVIRONMENT: &str = "\
Environment:
  OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID  as the flags
  OPENAI_LOG  error|warn|info|debug|trace: tracing's full log on standard error from this level
              [default: warnings only, one line each]";

/// Stops log lines from reaching standard error from now on: once Ctrl-C
/// has been answered, the warnings of the clean-up that follows (cancelling
/// the Upload) are not printed after what the command said.
fn silence_logs() {
    terminal::silence_logs();
}

/// Exit code of a command stopped by Ctrl-C, as shells report SIGINT.
const INTERRUPTED: u8 = 130;
/// Exit code when some files of several did not upload.
const PARTIAL_FAILURE: u8 = 5;
/// Exit code when a source file changed while it was being uploaded.
const SOURCE_CHANGED: u8 = 6;
/// Exit code when the emulator's port is taken.
const ADDRESS_IN_USE: u8 = emulator::ADDRESS_IN_USE;

/// Move large files into OpenAI through the Uploads API.
#[derive(Debug, Parser)]
#[command(
    name = "openai",
    version,
    about,
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
    /// Fail an answer that sends no byte for this long.
    #[arg(long, value_name = "SECONDS", value_parser = seconds,
          default_value_t = crate::config::DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    idle_timeout: f64,
    /// Fail a JSON answer not whole this long after its request was sent.
    #[arg(long, value_name = "SECONDS", value_parser = seconds,
          default_value_t = crate::config::DEFAULT_ANSWER_TIMEOUT.as_secs_f64())]
    answer_timeout: f64,
    /// Retry a part whose body moves fewer than this many bytes per second over 30 s (0: never).
    #[arg(long, value_name = "BYTES",
          default_value_t = crate::config::DEFAULT_MIN_PART_RATE)]
    min_part_rate: u64,
    /// Start no retry of a request later than this after its first failure.
    #[arg(long, value_name = "SECONDS", value_parser = seconds,
          default_value_t = crate::upload::DEFAULT_MAX_ELAPSED.as_secs_f64())]
    retry_budget: f64,
}

/// A flag's number of seconds: finite and more than 0.
fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= 1e9 => Ok(value),
        Ok(_) => Err("must be more than 0 and at most 1e9 seconds".into()),
        Err(_) => Err("must be a number of seconds, such as 30 or 0.5".into()),
    }
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
    /// Follow OpenAI's spec: extract the vendored subset, diff against it, update it.
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
        let codes = if sub.get_name() == "spec" {
            SPEC_EXIT_CODES
        } else {
            EXIT_CODES
        };
        with_exit_codes(sub, codes)
    });
    let example = root
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    root.after_help(format!("{example}\n\n{ENVIRONMENT}\n\n{EXIT_CODES}"))
}

/// Appends `codes` to the help of `command` and of every command below it
/// (`spec diff` has its own).
fn with_exit_codes(command: clap::Command, codes: &'static str) -> clap::Command {
    let before = command
        .get_after_help()
        .map(|h| format!("{}\n\n", h.to_string().trim_end()))
        .unwrap_or_default();
    let codes = match command.get_name() {
        "diff" => spec::DIFF_EXIT_CODES,
        "update" => spec::UPDATE_EXIT_CODES,
        "serve" => emulator::SERVE_EXIT_CODES,
        _ => codes,
    };
    command
        .after_help(format!("{before}{codes}"))
        .mut_subcommands(|sub| with_exit_codes(sub, codes))
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let matches = match definition().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => return usage_error(&error),
    };
    // Checked here, not by clap's `conflicts_with`: that would also refuse an
    // OPENAI_BASE_URL set in the environment, which --emulator simply overrides,
    // and it cannot see the two flags on either side of the command group.
    let base_url_given = matches.value_source("base_url") == Some(ValueSource::CommandLine);
    if matches.get_flag("emulator") && base_url_given {
        return usage_error(&definition().error(
            clap::error::ErrorKind::ArgumentConflict,
            "the argument '--emulator' cannot be used with '--base-url <BASE_URL>'",
        ));
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let output = Output::from(&cli.output);
    if let Err(error) = start_logs(&cli.output, &output) {
        output.print_error(&error, None);
        return ExitCode::from(exit_code(&error));
    }
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

/// Exit code of a command line clap refuses.
const USAGE: u8 = 2;

/// Prints a command line clap refused (or `--help`, `--version`) and
/// returns its exit code. The refusal follows `--format-error`, read from
/// the raw arguments since they did not parse.
fn usage_error(error: &clap::Error) -> ExitCode {
    let code = ExitCode::from(error.exit_code().clamp(0, 255) as u8);
    if !error.use_stderr() {
        // Help and version; a closed standard output is no failure of theirs.
        let _ = error.print();
        return code;
    }
    match output::error_format_in_args(std::env::args_os()) {
        None => {
            let _ = error.print();
        }
        Some(format) => {
            let value = output::usage_json(error, USAGE);
            terminal::eprint(&output::render(&value, format, None, false));
        }
    }
    code
}

/// Installs the log subscriber: full tracing output with `--debug` or
/// `OPENAI_LOG`, else lines for people, or JSON lines beside JSON errors.
fn start_logs(args: &OutputArgs, output: &Output) -> Result<(), Error> {
    let from_env = match std::env::var("OPENAI_LOG") {
        Ok(text) if !text.is_empty() => {
            Some(text.parse::<tracing::Level>().map_err(|_| Error::Config {
                field: "OPENAI_LOG",
                message: format!(
                    "`{}` is not a level: use error, warn, info, debug or trace",
                    terminal::escape(&text)
                ),
            })?)
        }
        _ => None,
    };
    let (style, level) = match (args.debug, from_env) {
        (true, _) => (terminal::LogStyle::Full, tracing::Level::DEBUG),
        (false, Some(level)) => (terminal::LogStyle::Full, level),
        (false, None) => {
            let level = if args.quiet {
                tracing::Level::ERROR
            } else {
                tracing::Level::WARN
            };
            let style = if output.errors_for_programs() {
                terminal::LogStyle::Json
            } else {
                terminal::LogStyle::Human
            };
            (style, level)
        }
    };
    terminal::init_logs(style, level);
    Ok(())
}

/// The exit code for an error (see [`EXIT_CODES`]).
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Config { .. } | Error::InvalidSetting { .. } | Error::InvalidRequest(_) => USAGE,
        Error::StateLocked { .. } => USAGE,
        Error::Transport(_) | Error::TimedOut { .. } => 3,
        Error::Io { .. } | Error::Resume { .. } | Error::ResumeMismatch { .. } | Error::Spec(_) => {
            4
        }
        Error::Cancelled | Error::Paused => INTERRUPTED,
        Error::SourceChanged { .. } => SOURCE_CHANGED,
        // A rule refusing a part mid-upload (the Upload expired) is no fault of the command line.
        Error::Part { cause, .. } if matches!(**cause, Error::InvalidRequest(_)) => 1,
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
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut definition(), "openai", &mut script);
            output::write_stdout(&script)
                .map(|()| ExitCode::SUCCESS)
                .map_err(Failure::from)
        }
        command => match connect(&global).await {
            Err(error) => Err(Failure::from(error)),
            // The emulator is kept alive for as long as the client talks to it.
            Ok((client, _emulator)) => {
                let api = Api {
                    client: &client,
                    output: &output,
                    base_url: client.base_url().to_string(),
                    retry: crate::upload::RetryPolicy::default()
                        .with_max_elapsed(Duration::from_secs_f64(global.retry_budget)),
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
        // The reader of standard output has what it wanted (`| head`).
        Err(Failure { error, .. }) if output::is_closed_stdout(&error) => ExitCode::SUCCESS,
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
    /// The retries of every request of an upload.
    retry: crate::upload::RetryPolicy,
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

    /// Makes a call and prints its answer; a failed call becomes a failure
    /// with its hint. `--format raw` prints the answer's body as the server
    /// sent it.
    async fn show<T: serde::Serialize, E: Into<Error>>(
        &self,
        call: impl std::future::Future<Output = Result<progenitor_client::ResponseValue<T>, E>>,
        context: output::Context<'_>,
    ) -> Result<ExitCode, Failure> {
        let (answer, received) = crate::hooks::keeping_body(call).await;
        let value = answer.map_err(|e| self.fail(e.into(), context))?;
        match received {
            Some(body) if self.output.prints_as_received() => self.output.print_received(&body)?,
            _ => self.output.print(&*value)?,
        }
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
    config = config
        .with_idle_timeout(Duration::from_secs_f64(global.idle_timeout))
        .with_answer_timeout(Duration::from_secs_f64(global.answer_timeout))
        .with_min_part_rate(
            global.min_part_rate,
            crate::config::DEFAULT_PART_RATE_WINDOW,
        );
    if !config.has_api_key() {
        return Err(Error::Config {
            field: "api_key",
            message: "not set: pass --api-key, set OPENAI_API_KEY, or use --emulator".into(),
        });
    }
    Ok((config.client()?, emulator))
}

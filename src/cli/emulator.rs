//! `openai emulator …`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::emulator::{Emulator, EmulatorConfig, FaultScope, Faults};
use crate::error::Error;

#[derive(Debug, Subcommand)]
pub(crate) enum EmulatorCommand {
    /// Serve the emulator until interrupted.
    #[command(
        after_help = "Examples:\n  openai emulator serve --port 8080\n  openai emulator serve --scope parts --server-error-every 3 --latency 50\n\nThen, in another shell:\n  openai --base-url http://127.0.0.1:8080/v1 --api-key any uploads upload data.jsonl --purpose fine-tune"
    )]
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep parts and Files here [default: a temporary directory].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        faults: FaultArgs,
        /// Run the emulator's clock this many seconds ahead (negative: behind) of the
        /// system's, e.g. 3600 to see Uploads expire.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        clock_offset: i64,
    },
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub(crate) enum Scope {
    /// Every request.
    #[default]
    All,
    /// Only POST /uploads/{id}/parts.
    Parts,
}

/// Faults to inject; none by default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Faults")]
pub(crate) struct FaultArgs {
    /// Requests the faults apply to.
    #[arg(long, value_enum, default_value_t = Scope::All)]
    scope: Scope,
    /// Answer every Nth request in scope with 500.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    server_error_every: Option<u64>,
    /// Answer every Nth request in scope with 429 and Retry-After.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rate_limit_every: Option<u64>,
    /// Wait announced by a 429, in seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = non_negative)]
    retry_after: f64,
    /// Drop the connection of every Nth request in scope, mid-body.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    drop_every: Option<u64>,
    /// Probability, 0 to 1, that a request in scope meets a random fault (500, 429 or a
    /// dropped connection).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    random_rate: f64,
    /// Seed of the random faults: the same requests meet the same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Delay before every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency: u64,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err("expected a number of seconds, 0 or more".into()),
    }
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a probability from 0 to 1".into()),
    }
}

impl From<FaultArgs> for Faults {
    fn from(args: FaultArgs) -> Self {
        Faults {
            scope: match args.scope {
                Scope::All => FaultScope::AllRequests,
                Scope::Parts => FaultScope::PartsOnly,
            },
            server_error_every: args.server_error_every,
            rate_limit_every: args.rate_limit_every,
            retry_after: Duration::from_secs_f64(args.retry_after),
            drop_every: args.drop_every,
            random_rate: args.random_rate,
            seed: args.seed,
            latency: Duration::from_millis(args.latency),
        }
    }
}

pub(crate) async fn run(command: EmulatorCommand) -> Result<ExitCode, Error> {
    let EmulatorCommand::Serve {
        port,
        data_dir,
        faults,
        clock_offset,
    } = command;
    let emulator = Emulator::start(EmulatorConfig {
        port,
        data_dir,
        faults: faults.into(),
        ..EmulatorConfig::default()
    })
    .await
    .map_err(|e| Error::io(format!("127.0.0.1:{port}"), e))?;
    if clock_offset != 0 {
        emulator.clock().advance(clock_offset);
    }
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

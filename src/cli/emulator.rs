//! `openai emulator …`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::emulator::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PENDING_UPLOADS, DEFAULT_MAX_RECORDED_BYTES, DEFAULT_MAX_RECORDINGS, Emulator,
    EmulatorConfig, FaultScope, Faults, MAX_JSON_BODY_BYTES, NetworkShape,
};
use crate::error::Error;

/// Exit code of `emulator serve` when its port is taken by another process.
pub(super) const ADDRESS_IN_USE: u8 = 7;

/// The exit codes of `emulator serve`, printed at the end of its help.
pub(super) const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0    stopped by Ctrl-C, SIGTERM or SIGHUP (a temporary data directory is removed)
  2    usage: bad flags or values
  4    local files: the data directory cannot be used, or its records are damaged or not the
       emulator's
  7    the port is in use";

#[derive(Debug, Subcommand)]
pub(crate) enum EmulatorCommand {
    /// Serve the emulator until interrupted.
    #[command(
        after_help = "Examples:\n  openai emulator serve --port 8080\n  openai emulator serve --scope parts --server-error-every 3 --latency 50\n  openai emulator serve --stream-rate 20M --link-rate 160M --round-trip 30 --max-parts-in-flight 8\n\nThen, in another shell:\n  openai --base-url http://127.0.0.1:8080/v1 --api-key any uploads upload data.jsonl --purpose fine-tune"
    )]
    Serve {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep parts and Files here [default: a temporary directory].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Run the emulator's clock this many seconds ahead (negative: behind) of the
        /// system's, e.g. 3600 to see Uploads expire.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        clock_offset: i64,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        faults: FaultArgs,
        #[command(flatten)]
        network: NetworkArgs,
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

/// The caps that keep the emulator within bounds, whatever its clients do.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub(crate) struct LimitArgs {
    /// Most Uploads pending at once; a create past it is answered 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PENDING_UPLOADS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_pending_uploads: u64,
    /// Requests, parts and completions kept in memory for inspection, the last ones of each.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RECORDINGS as u64)]
    max_recordings: u64,
    /// Bytes kept of each recorded text (a path, a header, a completion's part_ids).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RECORDED_BYTES as u64)]
    max_recorded_bytes: u64,
    /// Most bytes read of a request body other than a part's; more is answered 413.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_JSON_BODY_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_body_bytes: u64,
    /// Connections served at once; past it, new ones wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Seconds a connection may take to send a request's head, or to start its next request,
    /// before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT.as_secs_f64(),
          value_parser = positive)]
    header_read_timeout: f64,
    /// Seconds a request's body may send nothing before the request fails.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs_f64(),
          value_parser = positive)]
    idle_timeout: f64,
}

impl LimitArgs {
    /// `config` with these caps.
    fn apply(self, config: EmulatorConfig) -> EmulatorConfig {
        config
            .with_max_pending_uploads(count(self.max_pending_uploads))
            .with_max_recordings(count(self.max_recordings))
            .with_max_recorded_bytes(count(self.max_recorded_bytes))
            .with_max_body_bytes(self.max_body_bytes)
            .with_max_connections(count(self.max_connections))
            .with_header_read_timeout(Duration::from_secs_f64(self.header_read_timeout))
            .with_idle_timeout(Duration::from_secs_f64(self.idle_timeout))
    }
}

/// A count from the command line; past `usize` it is as good as no cap.
fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
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
    /// Carry out this many completions, then drop each one's connection
    /// instead of answering.
    #[arg(long, value_name = "N", default_value_t = 0)]
    lose_completion_answers: u32,
}

/// The network between clients and the emulator; loopback as it is by default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Network shape")]
pub(crate) struct NetworkArgs {
    /// Most bytes per second one connection carries from the client (k, M, G
    /// suffixes: 20M is 20 MB/s).
    #[arg(long, value_name = "BYTES/S", value_parser = rate)]
    stream_rate: Option<u64>,
    /// Most bytes per second all connections together carry from clients.
    #[arg(long, value_name = "BYTES/S", value_parser = rate)]
    link_rate: Option<u64>,
    /// Round trip between client and emulator, in milliseconds: a new
    /// connection waits one, every answer one.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    round_trip: u64,
    /// Part requests served at once; more are answered 429 with Retry-After.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_parts_in_flight: Option<u64>,
    /// Retry-After of those 429s, in seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = non_negative)]
    in_flight_retry_after: f64,
}

/// Bytes per second, with an optional k, M or G (powers of 1000).
fn rate(text: &str) -> Result<u64, String> {
    let (digits, scale) = match text.chars().last() {
        Some('k' | 'K') => (&text[..text.len() - 1], 1e3),
        Some('M') => (&text[..text.len() - 1], 1e6),
        Some('G') => (&text[..text.len() - 1], 1e9),
        _ => (text, 1.0),
    };
    match digits.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok((v * scale) as u64),
        _ => Err("expected bytes per second above 0, such as 5000000 or 5M".into()),
    }
}

impl From<NetworkArgs> for NetworkShape {
    fn from(args: NetworkArgs) -> Self {
        let mut shape = NetworkShape::default()
            .round_trip(Duration::from_millis(args.round_trip))
            .retry_after(Duration::from_secs_f64(args.in_flight_retry_after));
        if let Some(rate) = args.stream_rate {
            shape = shape.stream_rate(rate);
        }
        if let Some(rate) = args.link_rate {
            shape = shape.link_rate(rate);
        }
        if let Some(parts) = args.max_parts_in_flight {
            shape = shape.max_parts_in_flight(parts as usize);
        }
        shape
    }
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err("expected a number of seconds, 0 or more".into()),
    }
}

/// Seconds above 0, small enough for a `Duration`.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && Duration::try_from_secs_f64(v).is_ok() => Ok(v),
        _ => Err("expected a number of seconds above 0".into()),
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
            lost_completion_answers: args.lose_completion_answers,
        }
    }
}

pub(crate) async fn run(command: EmulatorCommand) -> Result<ExitCode, Error> {
    let EmulatorCommand::Serve {
        port,
        data_dir,
        clock_offset,
        limits,
        faults,
        network,
    } = command;
    let config = EmulatorConfig {
        port,
        data_dir,
        faults: faults.into(),
        network: network.into(),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(limits.apply(config)).await?;
    if clock_offset != 0 {
        emulator.clock().advance(clock_offset);
    }
    let stop = super::signal::stop_signal();
    tokio::pin!(stop);
    // Polled once before the address is announced: the handlers are in
    // place before anyone who read it can send a signal.
    if futures::poll!(&mut stop).is_ready() {
        return Ok(ExitCode::SUCCESS);
    }
    super::terminal::eprint(&format!(
        "openai: emulator listening on {} (Ctrl-C or SIGTERM to stop)\n",
        emulator.base_url()
    ));
    // Returning drops the emulator, which removes its temporary directory.
    tokio::select! {
        () = emulator.wait() => {}
        _ = &mut stop => {}
    }
    Ok(ExitCode::SUCCESS)
}

//! `openai spec …`: follow OpenAI's spec.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{Format, print_verdict, render, write_stdout};
use crate::error::Error;

/// The exit codes of `openai spec diff`, printed at the end of its help.
pub(super) const DIFF_EXIT_CODES: &str = "\
Exit codes:
  0  the specs are equal
  1  non-breaking changes only
  2  breaking changes
  4  a spec cannot be read";

#[derive(Debug, Subcommand)]
pub(crate) enum SpecCommand {
    /// Print the vendored operations of an upstream spec as OpenAPI 3.0.3 (indented
    /// JSON; `--format jsonl` for one line, `yaml` for YAML).
    #[command(
        after_help = "Example:\n  openai spec extract --upstream openapi.yaml --operations createUpload,cancelUpload"
    )]
    Extract {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1).
        #[arg(long)]
        upstream: PathBuf,
        /// Operation ids to keep, comma-separated [default: the vendored ones].
        #[arg(long, value_delimiter = ',')]
        operations: Vec<String>,
        /// Output format.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Compare the vendored spec with an upstream one; exit 0 equal, 1 non-breaking, 2 breaking.
    ///
    /// Prints a report, breaking changes first; `--format json` prints it as JSON.
    #[command(after_help = "Example:\n  openai spec diff --upstream openapi.yaml --format json")]
    Diff {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1).
        #[arg(long)]
        upstream: PathBuf,
        /// The vendored spec [default: the one this binary was built from].
        #[arg(long)]
        vendored: Option<PathBuf>,
        /// Output format [default: a text report].
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

/// Runs a spec command; `outer` is a `--format` given before `spec`.
pub(crate) fn run(command: SpecCommand, outer: Option<Format>) -> Result<ExitCode, Error> {
    match command {
        SpecCommand::Extract {
            upstream,
            operations,
            format,
        } => {
            let upstream_spec = crate::spec::read(&upstream)?;
            let ids: Vec<&str> = if operations.is_empty() {
                crate::spec::DEFAULT_OPERATIONS.to_vec()
            } else {
                operations.iter().map(String::as_str).collect()
            };
            let extracted = crate::spec::extract(&upstream_spec, &ids)?;
            let format = format.or(outer).unwrap_or_default();
            write_stdout(render(&extracted, format, None, false).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Diff {
            upstream,
            vendored,
            format,
        } => {
            let upstream_spec = crate::spec::read(&upstream)?;
            let vendored_spec = match &vendored {
                Some(path) => crate::spec::read(path)?,
                None => crate::validate::schema::vendored_spec().clone(),
            };
            let report = crate::spec::Differences::vendored()?.apply(
                crate::spec::diff(&vendored_spec, &upstream_spec),
                &upstream_spec,
            );
            match format.or(outer) {
                None | Some(Format::Auto) => print_verdict(&report.to_string())?,
                Some(format) => print_verdict(&render(&report, format, None, false))?,
            }
            Ok(ExitCode::from(report.exit_code() as u8))
        }
    }
}

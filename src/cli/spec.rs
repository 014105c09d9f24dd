//! `openai spec …`: follow OpenAI's spec.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{Format, print_verdict, render, write_stdout};
use crate::error::Error;

/// The exit codes of `openai spec update`, printed at the end of its help.
pub(super) const UPDATE_EXIT_CODES: &str = "\
Exit codes:
  0  the spec was printed, or written with --write
  4  a spec or openapi/differences.yaml cannot be read, or upstream changed where a
     difference is recorded (nothing is written)";

/// The exit codes of `openai spec diff`, printed at the end of its help.
pub(super) const DIFF_EXIT_CODES: &str = "\
Exit codes:
  0  the specs are equal (besides the differences kept on purpose), or with
     --fail-on breaking, no breaking change
  1  non-breaking changes only (not with --fail-on breaking)
  2  breaking changes
  4  a spec cannot be read or fetched, or is malformed (no `paths`)";

/// Which changes make `spec diff` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Any change left to review: exit 1 (non-breaking only) or 2.
    Any,
    /// Breaking changes only: exit 2; non-breaking ones exit 0.
    Breaking,
}

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
    /// Rebuild the vendored spec from an upstream one and openapi/differences.yaml.
    ///
    /// Extracts the vendored operations (and any new one under /uploads or /files not
    /// recorded as left out), converts them to OpenAPI 3.0.3, writes in every recorded
    /// difference and keeps our descriptions. Prints the result, or replaces the spec
    /// with --write. Descriptions taken from upstream, where ours are missing, are
    /// marked for rewriting and listed on standard error. Refuses, writing nothing, when
    /// upstream changed where a difference is recorded.
    #[command(
        after_help = "Example:\n  openai spec update --upstream openapi.yaml --write && cargo build"
    )]
    Update {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1): a file, or an http(s) URL to fetch.
        #[arg(long)]
        upstream: String,
        /// The vendored spec: our words are read from it, and --write replaces it. The
        /// recorded differences are read from differences.yaml beside it.
        #[arg(long, default_value = "openapi/api-definition.yaml")]
        spec: PathBuf,
        /// Replace the vendored spec instead of printing the result.
        #[arg(long)]
        write: bool,
    },
    /// Compare the vendored spec with an upstream one; exit 0 equal, 1 non-breaking, 2 breaking.
    ///
    /// Prints a report: breaking changes first, then what they mean for the generated
    /// Rust types and the release they call for, then the differences kept on purpose,
    /// one line per reason. `--format json` prints it as JSON.
    #[command(
        after_help = "Examples:\n  openai spec diff --upstream openapi.yaml --format json\n  \
        openai spec diff --upstream https://example.com/openapi.yaml --fail-on breaking"
    )]
    Diff {
        /// OpenAI's spec (YAML or JSON, 3.0 or 3.1): a file, or an http(s) URL to fetch.
        #[arg(long)]
        upstream: String,
        /// Which changes give a non-zero exit: `any` (the default) or only `breaking` ones.
        #[arg(long, value_enum, default_value_t = FailOn::Any)]
        fail_on: FailOn,
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
        SpecCommand::Update {
            upstream,
            spec,
            write,
        } => {
            let upstream_spec = read_upstream(&upstream)?;
            let vendored = crate::spec::read(&spec)?;
            let differences_path = spec.with_file_name("differences.yaml");
            let text = std::fs::read_to_string(&differences_path)
                .map_err(|e| Error::io(&differences_path, e))?;
            let differences = crate::spec::Differences::parse(&text)?;
            let updated = crate::spec::update(&upstream_spec, &vendored, &differences)?;
            if write {
                write_atomically(&spec, &updated.yaml)?;
                super::terminal::eprint(&format!("wrote {}\n", spec.display()));
            } else {
                write_stdout(updated.yaml.as_bytes())?;
            }
            // What the new spec changes for users, before the build regenerates.
            let report = crate::spec::diff(&vendored, &updated.spec);
            if !report.is_empty() {
                super::terminal::eprint(&report.to_string());
            }
            if !updated.to_rewrite.is_empty() {
                super::terminal::eprint(&format!(
                    "{} description(s) taken from upstream, marked `{}`, to rewrite in our words:\n",
                    updated.to_rewrite.len(),
                    crate::spec::REWRITE_MARK.trim_end()
                ));
                for pointer in &updated.to_rewrite {
                    super::terminal::eprint(&format!("  {pointer}\n"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Diff {
            upstream,
            fail_on,
            vendored,
            format,
        } => {
            let upstream_spec = read_upstream(&upstream)?;
            let vendored_spec = match &vendored {
                Some(path) => crate::spec::read(path)?,
                None => crate::validate::schema::vendored_spec().clone(),
            };
            crate::spec::check_paths(&upstream_spec)?;
            crate::spec::check_paths(&vendored_spec)?;
            let report = crate::spec::Differences::vendored()?.apply(
                crate::spec::diff(&vendored_spec, &upstream_spec),
                &upstream_spec,
            );
            match format.or(outer) {
                None | Some(Format::Auto) => print_verdict(&report.to_string())?,
                Some(format) => {
                    let rust = report.rust_effects();
                    let json = JsonReport {
                        release: report.release_of(&rust),
                        rust,
                        report: &report,
                    };
                    print_verdict(&render(&json, format, None, false))?;
                }
            }
            let code = match (fail_on, report.exit_code()) {
                (FailOn::Breaking, 1) => 0,
                (_, code) => code,
            };
            Ok(ExitCode::from(code as u8))
        }
    }
}

/// `spec diff --format json`: the report with its summary in Rust terms.
#[derive(serde::Serialize)]
struct JsonReport<'r> {
    #[serde(flatten)]
    report: &'r crate::spec::DiffReport,
    rust: Vec<crate::spec::RustEffect>,
    release: crate::spec::Release,
}

/// Reads `--upstream`: an http(s) URL is fetched, anything else is a file.
fn read_upstream(source: &str) -> Result<serde_json::Value, Error> {
    if source.starts_with("http://") || source.starts_with("https://") {
        // The command runs on the multi-threaded runtime; this one fetch may block it.
        let text = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(crate::spec::fetch(source))
        })?;
        Ok(crate::spec::parse(&text)?)
    } else {
        Ok(crate::spec::read(std::path::Path::new(source))?)
    }
}

/// Replaces `path` with `text` through a temporary file beside it, so that a failure
/// leaves the old spec whole.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    let dir = crate::upload::state::directory_of(path);
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    // The temporary file is private; the spec keeps the mode it had.
    if let Ok(meta) = std::fs::metadata(path) {
        file.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| Error::io(file.path(), e))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| Error::io(file.path(), e))?;
    file.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

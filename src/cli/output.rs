//! Everything the command prints: API objects on stdout in the chosen format,
//! errors on stderr in theirs, and the hints that follow an error.
//!
//! Standard error is written only through [`terminal::eprint`], which escapes
//! control characters; standard output is escaped the same way when it is a
//! terminal, and left exact when it is a pipe or a file.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use super::terminal;
use crate::error::Error;
use crate::validate::rules::Rule;

/// The name standard output goes by in errors.
const STDOUT: &str = "<stdout>";

/// How an API object (or an error) is printed: see [`FORMATS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    #[default]
    Auto,
    Json,
    Jsonl,
    Pretty,
    Raw,
    Yaml,
}

/// What each format prints, for the help of `--format`.
const FORMATS: &str = "Format of the printed API objects: auto and json print indented JSON, the same \
on a terminal and in a pipe; jsonl one line per object (JSON Lines); pretty a view for people \
(`key: value`, lists numbered, control characters escaped), not JSON; raw the answer's body as \
the server sent it (with --transform, the part picked, as one compact line); yaml YAML";

/// Options of how results and errors are printed.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = super::GLOBAL_OPTIONS)]
pub(crate) struct OutputArgs {
    #[arg(long, value_enum, value_name = "FORMAT", help = FORMATS)]
    pub format: Option<Format>,
    /// Format of errors on standard error [default: one line of text, or --format's when
    /// that is json, jsonl, raw or yaml]; with a JSON or YAML one, warnings are JSON lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format_error: Option<Format>,
    /// Print only this part of each object, as a GJSON path (e.g. `file.id`).
    #[arg(long, value_name = "GJSON")]
    pub transform: Option<String>,
    /// Print only this part of each error, as a GJSON path (e.g. `error.code`).
    #[arg(long, value_name = "GJSON")]
    pub transform_error: Option<String>,
    /// Print a string result without JSON quotes, like `jq -r`.
    #[arg(short = 'r', long)]
    pub raw_output: bool,
    /// Log every request and answer on standard error (the API key redacted).
    #[arg(long)]
    pub debug: bool,
    /// No progress, no hints, no warnings: only results and errors.
    #[arg(short = 'q', long, conflicts_with = "debug")]
    pub quiet: bool,
}

/// Where and how results and errors go.
#[derive(Clone, Debug, Default)]
pub(crate) struct Output {
    pub format: Format,
    pub format_error: Format,
    pub transform: Option<String>,
    pub transform_error: Option<String>,
    pub raw_output: bool,
    pub quiet: bool,
}

/// The format of errors: `--format-error`, else `--format` when it is a
/// machine's (json, jsonl, raw, yaml), else text (`Auto`).
fn error_format(format: Option<Format>, format_error: Option<Format>) -> Format {
    format_error.unwrap_or(match format {
        Some(f @ (Format::Json | Format::Jsonl | Format::Raw | Format::Yaml)) => f,
        _ => Format::Auto,
    })
}

/// The format of errors asked for in a command line that did not parse, read
/// as [`error_format`] reads the parsed one; `None` for text.
pub(crate) fn error_format_in_args(args: impl IntoIterator<Item = OsString>) -> Option<Format> {
    let (mut format, mut format_error) = (None, None);
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let slot = match flag.as_str() {
            "--format" => &mut format,
            "--format-error" => &mut format_error,
            _ => continue,
        };
        if let Some(value) = inline.or_else(|| args.next()) {
            // An unknown value is itself the usage error; it falls back to text.
            *slot = Format::from_str(&value, true).ok().or(*slot);
        }
    }
    match error_format(format, format_error) {
        Format::Auto | Format::Pretty => None,
        machine => Some(machine),
    }
}

/// A command line clap refused, in the shape of the other errors:
/// `{"error": {type: "usage", message, param, code}, "status": null, "exit_code"}`.
pub(crate) fn usage_json(error: &clap::Error, exit_code: u8) -> Value {
    use clap::error::{ContextKind, ErrorKind};
    // The first paragraph of clap's text: what is wrong, without the usage;
    // for a group given no command, that would be the group's help.
    let rendered = error.render().to_string();
    let message = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a command is missing: see --help".to_string()
    } else {
        rendered
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_string()
    };
    let param = error
        .get(ContextKind::InvalidArg)
        .map(|arg| arg.to_string());
    let code = snake_case(&format!("{:?}", error.kind()));
    json!({
        "error": {"type": "usage", "message": message, "param": param, "code": code},
        "status": null,
        "exit_code": exit_code,
    })
}

/// `UnknownArgument` as `unknown_argument`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Writes `bytes` to standard output; a reader that went away is
/// [`is_closed_stdout`].
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(STDOUT, e))
}

/// Writes `text` to standard output, a reader that went away included: for
/// a command whose exit code is its verdict (`spec diff`), which a closed
/// standard output must not change.
pub(crate) fn print_verdict(text: &str) -> Result<(), Error> {
    match write_stdout(text.as_bytes()) {
        Err(error) if is_closed_stdout(&error) => Ok(()),
        done => done,
    }
}

/// Whether `error` is standard output closed by its reader (`| head`):
/// the command ends there, quietly, with exit 0.
pub(crate) fn is_closed_stdout(error: &Error) -> bool {
    matches!(error, Error::Io { path, error }
        if path == Path::new(STDOUT) && error.kind() == std::io::ErrorKind::BrokenPipe)
}

impl From<&OutputArgs> for Output {
    fn from(args: &OutputArgs) -> Self {
        let format = args.format.unwrap_or_default();
        let format_error = error_format(args.format, args.format_error);
        Self {
            format,
            format_error,
            transform: args.transform.clone(),
            transform_error: args.transform_error.clone(),
            raw_output: args.raw_output,
            quiet: args.quiet,
        }
    }
}

impl Output {
    /// Whether progress may be drawn: standard error is a terminal and not `--quiet`.
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// Whether errors are printed as one line of text (not JSON or YAML).
    pub fn errors_as_text(&self) -> bool {
        self.format_error == Format::Auto && self.transform_error.is_none()
    }

    /// Whether errors are printed for programs (JSON or YAML, not text or
    /// the `pretty` view): warnings then come as JSON lines.
    pub fn errors_for_programs(&self) -> bool {
        !self.errors_as_text() && self.format_error != Format::Pretty
    }

    /// Prints an API object on standard output; on a terminal, a string of
    /// the server's (`-r`, `pretty`) cannot act as terminal control.
    pub fn print(&self, value: &impl Serialize) -> Result<(), Error> {
        let text = render(
            value,
            self.format,
            self.transform.as_deref(),
            self.raw_output,
        );
        if std::io::stdout().is_terminal() {
            write_stdout(terminal::escape_text(&text).as_bytes())
        } else {
            write_stdout(text.as_bytes())
        }
    }

    /// Whether an answer is printed as the server sent it: `--format raw`,
    /// with no `--transform` to pick a part of it.
    pub(crate) fn prints_as_received(&self) -> bool {
        self.format == Format::Raw && self.transform.is_none()
    }

    /// Prints an answer's body byte for byte as received, with a line break
    /// after it if it has none; on a terminal its control characters are
    /// escaped, as every other output is.
    pub(crate) fn print_received(&self, body: &[u8]) -> Result<(), Error> {
        let mut text = body.to_vec();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        if std::io::stdout().is_terminal() {
            write_stdout(terminal::escape_text(&String::from_utf8_lossy(&text)).as_bytes())
        } else {
            write_stdout(&text)
        }
    }

    /// Prints an error on standard error, with a hint unless `--quiet`.
    pub fn print_error(&self, error: &Error, hint: Option<String>) {
        self.print_error_about(None, error, hint);
    }

    /// Prints an error about `subject` (one file of several): named before the
    /// message in text, as `path` in JSON; the hint on a line of its own in
    /// text, as `hint` in JSON.
    pub fn print_error_about(&self, subject: Option<&Path>, error: &Error, hint: Option<String>) {
        let hint = hint.filter(|_| !self.quiet);
        let text = if self.errors_as_text() {
            // The message may carry the server's words, line breaks included.
            let message = terminal::escape(&error.to_string()).into_owned();
            let error = match subject {
                // An I/O error names its path already.
                Some(path) if !message.starts_with(&path.display().to_string()) => {
                    format!("openai: error: {}: {message}\n", path.display())
                }
                _ => format!("openai: error: {message}\n"),
            };
            match hint {
                Some(hint) => format!("{error}openai: hint: {}\n", terminal::escape(&hint)),
                None => error,
            }
        } else {
            let format = match self.format_error {
                Format::Auto => Format::Jsonl,
                f => f,
            };
            let mut value = error_json(error);
            if let Some(path) = subject {
                value["path"] = Value::String(path.display().to_string());
            }
            // Inside the object: a program reading standard error meets only JSON.
            if let Some(hint) = hint {
                value["hint"] = Value::String(hint);
            }
            render(
                &value,
                format,
                self.transform_error.as_deref(),
                self.raw_output,
            )
        };
        terminal::eprint(&text);
    }
}

/// `value` as text in `format`, after an optional GJSON `transform`; ends in a newline.
pub(crate) fn render(
    value: &impl Serialize,
    format: Format,
    transform: Option<&str>,
    raw_output: bool,
) -> String {
    let mut value = serde_json::to_value(value).expect("printed values serialise");
    if let Some(path) = transform {
        let json = value.to_string();
        let picked = gjson::get(&json, path);
        // A path that finds nothing prints the whole object, as the official CLI does.
        if picked.exists() {
            value = serde_json::from_str(picked.json())
                .unwrap_or_else(|_| Value::String(picked.str().to_string()));
        }
    }
    if let (true, Value::String(s)) = (raw_output, &value) {
        return format!("{s}\n");
    }
    let mut text = match format {
        Format::Auto | Format::Json => {
            serde_json::to_string_pretty(&value).expect("JSON values serialise")
        }
        Format::Pretty => {
            let mut view = String::new();
            pretty(&value, 0, &mut view);
            view.trim_start_matches('\n').to_string()
        }
        Format::Jsonl | Format::Raw => value.to_string(),
        Format::Yaml => serde_saphyr::to_string(&value).expect("JSON values serialise as YAML"),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `value` for people, as the official CLI's `pretty` shows it: `key: value`
/// lines, nested objects indented by two spaces, list items numbered,
/// booleans as yes and no, strings with their control characters escaped.
/// Each object or list starts on a new line.
fn pretty(value: &Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let item = |label: String, value: &Value, out: &mut String| {
        out.push('\n');
        out.push_str(&indent);
        out.push_str(&label);
        match value {
            Value::Object(map) if !map.is_empty() => pretty(value, depth + 1, out),
            Value::Array(list) if !list.is_empty() => pretty(value, depth + 1, out),
            scalar => {
                out.push(' ');
                pretty(scalar, depth + 1, out);
            }
        }
    };
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("(empty)"),
        Value::Array(list) if list.is_empty() => out.push_str("(none)"),
        Value::Object(map) => {
            for (key, value) in map {
                item(format!("{}:", terminal::escape(key)), value, out);
            }
        }
        Value::Array(list) => {
            for (i, value) in list.iter().enumerate() {
                item(format!("{}.", i + 1), value, out);
            }
        }
        Value::String(s) if s.is_empty() => out.push_str("(empty)"),
        Value::String(s) => out.push_str(&terminal::escape(s)),
        Value::Bool(true) => out.push_str("yes"),
        Value::Bool(false) => out.push_str("no"),
        Value::Null => out.push_str("null"),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

/// An error as JSON: the API's envelope when the API answered, else the same
/// shape with this command's own `type`; plus the HTTP status and exit code.
pub(crate) fn error_json(error: &Error) -> Value {
    let exit_code = super::exit_code(error);
    match error {
        Error::Api { status, error, .. } => json!({
            "error": error,
            "status": status,
            "exit_code": exit_code,
        }),
        Error::Part { cause, .. } => {
            let mut inner = error_json(cause);
            inner["error"]["message"] = Value::String(error.to_string());
            inner
        }
        other => {
            let (kind, param, code) = match other {
                Error::InvalidRequest(violations) => (
                    "invalid_request",
                    violations.first().map(|v| v.field.clone()),
                    violations.first().map(|v| v.rule.name().to_string()),
                ),
                Error::UnexpectedResponse { .. } => ("unexpected_response", None, None),
                Error::Conformance { .. } => ("conformance", None, None),
                Error::Transport(_) => ("transport", None, None),
                Error::Config { field, .. } => ("configuration", Some(field.to_string()), None),
                Error::InvalidSetting { setting, .. } => {
                    ("invalid_setting", Some(setting.to_string()), None)
                }
                Error::Io { .. } | Error::Resume { .. } => ("local_file", None, None),
                Error::ResumeMismatch { field, .. } => {
                    ("local_file", Some(field.to_string()), None)
                }
                Error::Interrupted { upload_id, .. } => (
                    "interrupted",
                    Some("upload_id".to_string()),
                    Some(upload_id.clone()),
                ),
                Error::Cancelled | Error::Paused => ("interrupted", None, None),
                Error::Mismatch { mismatches, .. } => (
                    "answer_mismatch",
                    mismatches.first().map(|m| m.field.clone()),
                    mismatches.first().map(|m| m.rule.clone()),
                ),
                Error::SourceChanged { change, .. } => {
                    ("source_changed", Some(change.field.clone()), None)
                }
                Error::CompletionUnknown { upload_id, .. } => (
                    "completion_unknown",
                    Some("upload_id".to_string()),
                    Some(upload_id.clone()),
                ),
                Error::CompletedNonConforming { upload_id, .. } => (
                    "completed_nonconforming",
                    Some("upload_id".to_string()),
                    Some(upload_id.clone()),
                ),
                Error::StateLocked { .. } => ("state_locked", None, None),
                Error::TimedOut { bound, .. } => ("timeout", Some(bound.to_string()), None),
                Error::AnswerTooLarge { bound, .. } => {
                    ("answer_too_large", Some(bound.to_string()), None)
                }
                Error::Redirected { .. } => ("redirect", None, None),
                Error::AddressInUse { .. } => ("address_in_use", None, None),
                _ => ("error", None, None),
            };
            json!({
                "error": {
                    "type": kind,
                    "message": other.to_string(),
                    "param": param,
                    "code": code,
                },
                "status": other.status(),
                "exit_code": exit_code,
            })
        }
    }
}

/// What the user was doing when an error came, for hints.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Context<'a> {
    /// The base URL the client talked to.
    pub base_url: Option<&'a str>,
    /// `uploads complete` with an `--md5`.
    pub completing: bool,
    /// The MIME type was guessed from the file name, not given.
    pub mime_guessed: bool,
}

/// A hint for a user stuck on `error`, if there is a likely way out.
pub(crate) fn hint(error: &Error, context: Context<'_>) -> Option<String> {
    let error = match error {
        Error::Part { cause, .. } => cause,
        other => other,
    };
    match error {
        Error::Api {
            status: 404, error, ..
        }
        | Error::Api {
            status: 405, error, ..
        } => {
            let url = context.base_url?.trim_end_matches('/');
            let unrouted = error.code.as_deref() == Some("unknown_url")
                || error.message.contains("no route")
                || error.message.contains("Invalid URL");
            (unrouted && !url.ends_with("/v1"))
                .then(|| format!("the base URL {url} does not end in /v1; try --base-url {url}/v1"))
        }
        Error::Api { error, .. }
            if context.completing
                && (error.param.as_deref() == Some("md5")
                    || error.code.as_deref() == Some("md5_mismatch")) =>
        {
            Some(
                "the md5 is of the parts joined in the order of --part-id: check that the \
                 --part-id flags list the parts in file order"
                    .into(),
            )
        }
        Error::InvalidRequest(violations) if context.mime_guessed => violations
            .iter()
            .find(|v| v.rule == Rule::MimeTypeMatchesPurpose)
            .map(|v| {
                format!(
                    "the MIME type {} was guessed from the file name; pass --mime-type \
                     with one the purpose accepts",
                    v.value
                )
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_the_upload_name_their_own_type_and_field_in_json() {
        let locked = error_json(&Error::StateLocked {
            path: "a.state".into(),
        });
        assert_eq!(locked["error"]["type"], "state_locked");
        assert_eq!(locked["exit_code"], 2);

        let mismatch = error_json(&Error::Mismatch {
            operation: crate::validate::Operation::CompleteUpload,
            mismatches: vec![crate::validate::AnswerMismatch {
                rule: "answer.complete.bytes".into(),
                field: "bytes".into(),
                sent: "146".into(),
                received: "147".into(),
            }],
        });
        assert_eq!(mismatch["error"]["type"], "answer_mismatch");
        assert_eq!(mismatch["error"]["param"], "bytes");
        assert_eq!(mismatch["error"]["code"], "answer.complete.bytes");
        assert_eq!(mismatch["exit_code"], 1);
    }

    #[test]
    fn transform_picks_nested_paths_and_raw_output_drops_quotes() {
        let value = json!({"id": "upload_1", "file": {"id": "file-1", "bytes": 3}});
        assert_eq!(
            render(&value, Format::Json, Some("file.id"), false),
            "\"file-1\"\n"
        );
        assert_eq!(
            render(&value, Format::Json, Some("file.id"), true),
            "file-1\n"
        );
        assert_eq!(
            render(&value, Format::Jsonl, Some("file"), false),
            "{\"bytes\":3,\"id\":\"file-1\"}\n"
        );
        assert_eq!(
            render(&value, Format::Jsonl, Some("no.such.path"), false),
            format!("{value}\n")
        );
    }

    #[test]
    fn each_format_parses_back() {
        let value = json!({"id": "upload_1", "bytes": 5, "file": null, "list": [1, 2]});
        for format in [Format::Auto, Format::Json, Format::Jsonl, Format::Raw] {
            let text = render(&value, format, None, false);
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                value,
                "{format:?}"
            );
        }
        let yaml = render(&value, Format::Yaml, None, false);
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, value, "{yaml}");
    }

    #[test]
    fn pretty_is_a_view_for_people() {
        let value = json!({
            "id": "file-1",
            "deleted": false,
            "status_details": null,
            "file": {"bytes": 3, "filename": "a\u{1b}[2J.jsonl"},
            "parts": ["p1", "p2"],
            "none": [],
        });
        assert_eq!(
            render(&value, Format::Pretty, None, false),
            "deleted: no\nfile:\n  bytes: 3\n  filename: a\\u001b[2J.jsonl\nid: file-1\n\
             none: (none)\nparts:\n  1. p1\n  2. p2\nstatus_details: null\n"
        );
    }

    #[test]
    fn usage_errors_name_their_format_even_unparsed() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(error_format_in_args(args(&["openai", "--nope"])), None);
        assert_eq!(
            error_format_in_args(args(&["openai", "--format-error", "json", "--nope"])),
            Some(Format::Json)
        );
        assert_eq!(
            error_format_in_args(args(&["openai", "--format=yaml", "files"])),
            Some(Format::Yaml)
        );
        assert_eq!(
            error_format_in_args(args(&[
                "openai",
                "--format",
                "jsonl",
                "--format-error",
                "auto"
            ])),
            None
        );
        assert_eq!(
            error_format_in_args(args(&["openai", "--format", "pretty"])),
            None
        );
    }
}

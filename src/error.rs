//! The crate's single error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::generated::types;
use crate::validate::{AnswerMismatch, Operation, RuleViolation, SchemaViolation};

/// What a generated call returns on failure, before it becomes an [`Error`].
pub(crate) type GeneratedError = progenitor_client::Error<types::ErrorResponse>;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each variant naming what and where.
///
/// Every call of the crate returns it. Its message is whole: a variant
/// that wraps another error says that error's message once, in its own, and
/// [`source`](std::error::Error::source) does not return it again, so a
/// chained report prints each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks a documented rule; nothing was sent.
    #[error("request refused before sending: {}", join(.0))]
    InvalidRequest(Vec<RuleViolation>),

    /// The API answered with its error envelope.
    #[error("HTTP {status} {}: {}{}", .error.type_, .error.message, param_suffix(.error.param.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// OpenAI's `{"error": {type, message, param, code}}`.
        error: Box<types::ApiError>,
        /// How long the server asked to wait before retrying, if it did.
        retry_after: Option<Duration>,
        /// The `x-request-id` header, for support requests.
        request_id: Option<String>,
    },

    /// The server answered with a body that is not the documented one; the
    /// raw body is kept.
    #[error("HTTP {status} with an undocumented body: {body}")]
    UnexpectedResponse {
        /// HTTP status.
        status: u16,
        /// The raw body (truncated to 4 KiB).
        body: String,
        /// How long the server asked to wait before retrying, if it did.
        retry_after: Option<Duration>,
    },

    /// A successful answer departs from the vendored spec.
    #[error("response to {operation} does not conform to the spec: {}", join(.violations))]
    Conformance {
        /// The operation answered.
        operation: Operation,
        /// Where and how the body departs from the spec.
        violations: Vec<SchemaViolation>,
    },

    /// The connection failed, timed out, or broke while a body was read.
    /// The message names the cause (connection refused, unknown host, TLS,
    /// timed out) and the URL.
    #[error("transport: {}", transport_cause(.0))]
    Transport(reqwest::Error),

    /// The configuration is unusable.
    #[error("configuration: `{field}`: {message}")]
    Config {
        /// The setting at fault (`api_key`, `base_url`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// Reading or writing a local file failed.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },

    /// A part of a one-call upload failed: retries spent, or refused.
    #[error("part {part_number} (bytes {offset}..{}) failed: {cause}", .offset + .len)]
    Part {
        /// 1-based part number.
        part_number: u32,
        /// Offset of the part's first byte in the file.
        offset: u64,
        /// Length of the part.
        len: u64,
        /// Why it failed.
        cause: Box<Error>,
    },

    /// The upload was cancelled by its handle; the Upload was cancelled on the server.
    #[error("upload cancelled by the caller")]
    Cancelled,

    /// The upload was paused by its handle.
    #[error("the upload was paused")]
    Paused,

    /// A one-call upload with a state file stopped on a failure a later run
    /// can mend (retries spent on transient errors, the network gone, a
    /// pause): the Upload stays pending and the state file is kept. Running
    /// the same upload with the same state file before `expires_at` resumes it.
    #[error(
        "{reason}; Upload {upload_id} stays pending until {}: to resume, run the same command \
         again before then, with the state file {}",
        unix_time(*.expires_at),
        .state_file.display()
    )]
    Interrupted {
        /// The pending Upload.
        upload_id: String,
        /// When the Upload expires, Unix seconds; a resume must come before.
        expires_at: i64,
        /// The state file that resumes it.
        state_file: PathBuf,
        /// What stopped the upload.
        reason: Box<Error>,
    },

    /// A setting of a one-call upload is outside its limits; nothing was sent.
    #[error("setting `{setting}` = {value}: {message}")]
    InvalidSetting {
        /// The setting (`part_size`, `concurrency`), named as the builder
        /// method and, with dashes, as the CLI flag.
        setting: &'static str,
        /// The value given.
        value: String,
        /// The limit it breaks.
        message: String,
    },

    /// A resume state file cannot be used; it is left as it is.
    #[error("resume state {}: {message}", .path.display())]
    Resume {
        /// The state file.
        path: PathBuf,
        /// Why it cannot be used, and what to do.
        message: String,
    },

    /// A resume state file was written for different settings; it is left
    /// as it is.
    #[error(
        "resume state {}: it was written with {field} = {saved}, not {given}; {}",
        .path.display(),
        resume_hint(field, saved)
    )]
    ResumeMismatch {
        /// The state file.
        path: PathBuf,
        /// The setting that differs (`part_size`, `purpose`, …).
        field: &'static str,
        /// Its value in the state file.
        saved: String,
        /// Its value now.
        given: String,
    },

    /// A spec cannot be read, parsed or extracted.
    #[cfg(feature = "spec")]
    #[error("spec: {0}")]
    Spec(crate::spec::SpecError),

    /// A broken invariant of this crate (a task that stopped, a channel
    /// closed early, a request that could not be built): a bug to report,
    /// not a problem of the input.
    #[error("internal: {0}")]
    Internal(String),

    /// An answer is larger than the client reads into memory; the rest of
    /// it was not read.
    #[error(
        "the answer to {operation} (HTTP {status}) is larger than {limit} bytes, the most \
         `{bound}` lets the client read into memory; the rest was not read"
    )]
    AnswerTooLarge {
        /// The operation answered.
        operation: Operation,
        /// HTTP status of the answer.
        status: u16,
        /// The bound that was reached (`max_json_body_bytes`).
        bound: &'static str,
        /// Its value, in bytes.
        limit: u64,
    },

    /// A deadline of the client passed: no answer in time, no byte for too
    /// long, or a part's body slower than its minimum rate.
    #[error("{operation}: {what} (bound `{bound}`)")]
    TimedOut {
        /// The operation that was waited on.
        operation: Operation,
        /// The setting that bounds the wait (`answer_timeout`,
        /// `idle_timeout`, `min_part_rate`).
        bound: &'static str,
        /// The wait allowed (for `min_part_rate`, the window it is measured over).
        limit: Duration,
        /// What did not happen in time.
        what: String,
    },

    /// The server answered an API call with a redirect, which the client
    /// never follows: nothing was sent to the other address.
    #[error(
        "HTTP {status} redirect to {location:?} refused: API calls are never redirected, so \
         the key, organisation, project and body stay with the configured base URL"
    )]
    Redirected {
        /// HTTP status (301, 302, 303, 307, 308).
        status: u16,
        /// The `Location` header as sent, or empty when there was none.
        location: String,
    },

    /// An answer disagrees with the request it answers (another Upload,
    /// another size): each field named with what was sent and what came
    /// back. A one-call upload stops and cancels its Upload.
    #[error("the answer to {operation} disagrees with the request: {}", join(.mismatches))]
    Mismatch {
        /// The operation answered.
        operation: Operation,
        /// The fields that disagree.
        mismatches: Vec<AnswerMismatch>,
    },

    /// The source file changed while it was being uploaded: the Upload was
    /// not completed, and was cancelled (a rerun uploads the file as it is
    /// now).
    #[error(
        "{} changed while it was being uploaded ({change}): Upload {upload_id} was not \
         completed and is cancelled; run the command again to upload the file as it is now",
        .path.display()
    )]
    SourceChanged {
        /// The file.
        path: PathBuf,
        /// What changed.
        change: Box<SourceChange>,
        /// The Upload that was being filled.
        upload_id: String,
    },

    /// A completion's answer was lost and whether it completed the Upload
    /// cannot be told: no File is known to be this Upload's.
    #[error(
        "the completion of Upload {upload_id} was sent but its answer was lost, and its outcome \
         is unknown ({cause}); {}",
        candidates_hint(.candidates)
    )]
    CompletionUnknown {
        /// The Upload whose completion was sent.
        upload_id: String,
        /// Files that might be its File: same name, size and purpose,
        /// created since the Upload was.
        candidates: Vec<String>,
        /// What the retry of the completion met.
        cause: Box<Error>,
    },

    /// The server completed the Upload, but its answer departs from the
    /// spec (strict mode): the Upload is completed, not failed.
    #[error(
        "Upload {upload_id} completed, but the answer to complete_upload does not conform to \
         the spec: {}",
        join(.violations)
    )]
    CompletedNonConforming {
        /// The completed Upload.
        upload_id: String,
        /// The answer, decoded, when it could be.
        upload: Option<Box<types::Upload>>,
        /// Where the answer departs from the spec.
        violations: Vec<SchemaViolation>,
    },

    /// Another run holds the resume state file.
    #[error(
        "resume state {}: another run is using it (the file is locked); wait for that run to \
         end, or pass --wait to wait for it",
        .path.display()
    )]
    StateLocked {
        /// The state file.
        path: PathBuf,
    },

    /// The address the emulator was to listen on is taken by another process.
    #[cfg(feature = "emulator")]
    #[error(
        "{address}: address already in use: stop what listens there, or pick another port \
         (0 picks a free one)"
    )]
    AddressInUse {
        /// The address asked for.
        address: std::net::SocketAddr,
    },
}

/// What changed in a source file while it was being uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceChange {
    /// What changed: `size`, `modified`, `ctime`, `inode`, `device`, or
    /// `part N` for a part's bytes.
    pub field: String,
    /// Its value when the upload started (or when the part was sent).
    pub before: String,
    /// Its value now.
    pub after: String,
}

impl std::fmt::Display for SourceChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} was {}, is {}", self.field, self.before, self.after)
    }
}

#[cfg(feature = "spec")]
impl From<crate::spec::SpecError> for Error {
    fn from(error: crate::spec::SpecError) -> Self {
        Error::Spec(error)
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How to find out what became of an unanswered completion.
fn candidates_hint(candidates: &[String]) -> String {
    match candidates {
        [] => "no File is known to be its: look for it with `openai files list` before \
               uploading the file again"
            .to_string(),
        ids => format!(
            "it may be {} of {}: check with `openai files retrieve --file-id {}`",
            if ids.len() == 1 { "the File" } else { "one" },
            ids.join(", "),
            ids[0]
        ),
    }
}

/// What to do about a resume state written for other settings.
fn resume_hint(field: &str, saved: &str) -> String {
    match field {
        "bytes" | "modified" => "the source changed since the Upload was started, so its parts \
                                 no longer match: remove the state file to upload it anew"
            .to_string(),
        "part_size" => format!(
            "pass part_size {saved} (--part-size {saved}) to resume, or remove the state file to \
             start anew"
        ),
        _ => "the Upload was created with it and cannot change; pass the saved value to resume, \
              or remove the state file to start anew"
            .to_string(),
    }
}

/// Unix seconds as a UTC date and time.
pub(crate) fn unix_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{seconds} (Unix time)"))
}

/// What a transport error comes down to, found in its source chain, and
/// the URL it was for.
fn transport_cause(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut cause = None;
    let mut innermost = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            cause = cause.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some("connection refused".to_string()),
                std::io::ErrorKind::ConnectionReset => Some("connection reset".to_string()),
                std::io::ErrorKind::TimedOut => Some("timed out".to_string()),
                _ => None,
            });
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            cause = cause.or(Some("unknown host".to_string()));
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            cause = cause.or(Some(format!("TLS: {text}")));
        }
        innermost = text;
        next = source.source();
    }
    let cause = match cause {
        Some(cause) => cause,
        None if error.is_timeout() => "timed out".to_string(),
        None => innermost,
    };
    match error.url() {
        Some(url) => {
            let mut url = url.clone();
            url.set_query(None);
            format!("{cause} ({url})")
        }
        None => cause,
    }
}

fn param_suffix(param: Option<&str>) -> String {
    param.map(|p| format!(" (param `{p}`)")).unwrap_or_default()
}

impl Error {
    /// The HTTP status of the answer that caused the error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::UnexpectedResponse { status, .. } => Some(*status),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            Error::Part { cause, .. } => cause.status(),
            Error::Interrupted { reason, .. } => reason.status(),
            _ => None,
        }
    }

    /// The wait the server asked for with `Retry-After` or `retry-after-ms`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } | Error::UnexpectedResponse { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// OpenAI's error envelope, when the API sent one.
    pub fn api_error(&self) -> Option<&types::ApiError> {
        match self {
            Error::Api { error, .. } => Some(error),
            Error::Part { cause, .. } => cause.api_error(),
            Error::Interrupted { reason, .. } => reason.api_error(),
            _ => None,
        }
    }

    /// Whether no server could be reached at all: connection refused, an
    /// unknown host, a TLS failure. Retries rarely mend these.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_connect())
    }

    /// The pending Upload and its expiry, when the upload can be resumed.
    pub fn resumable(&self) -> Option<(&str, i64)> {
        match self {
            Error::Interrupted {
                upload_id,
                expires_at,
                ..
            } => Some((upload_id, *expires_at)),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// What the client hooks found about an answer.
#[derive(Clone, Debug)]
pub(crate) enum HookFailure {
    Conformance {
        operation: Operation,
        violations: Vec<SchemaViolation>,
    },
    Undocumented {
        status: u16,
        body: String,
        retry_after_ms: Option<u64>,
    },
    TooLarge {
        operation: Operation,
        status: u16,
        limit: u64,
    },
    TimedOut {
        operation: Operation,
        bound: &'static str,
        limit: Duration,
        what: String,
    },
    Redirected {
        status: u16,
        location: String,
    },
}

impl From<HookFailure> for Error {
    fn from(failure: HookFailure) -> Self {
        match failure {
            HookFailure::Conformance {
                operation,
                violations,
            } => Error::Conformance {
                operation,
                violations,
            },
            HookFailure::Undocumented {
                status,
                body,
                retry_after_ms,
            } => Error::UnexpectedResponse {
                status,
                body,
                retry_after: retry_after_ms.map(Duration::from_millis),
            },
            HookFailure::TooLarge {
                operation,
                status,
                limit,
            } => Error::AnswerTooLarge {
                operation,
                status,
                bound: "max_json_body_bytes",
                limit,
            },
            HookFailure::TimedOut {
                operation,
                bound,
                limit,
                what,
            } => Error::TimedOut {
                operation,
                bound,
                limit,
                what,
            },
            HookFailure::Redirected { status, location } => Error::Redirected { status, location },
        }
    }
}

/// Reads `retry-after-ms` (milliseconds) or `Retry-After` (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // `try_from_secs_f64`: a finite wait too long for a `Duration` (`1e300`)
    // is no usable answer, and must not panic.
    if let Some(wait) = text("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
    {
        return Some(wait);
    }
    let value = text("retry-after")?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

pub(crate) fn truncate_body(bytes: &[u8]) -> String {
    const LIMIT: usize = 4096;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LIMIT)]).into_owned();
    if bytes.len() > LIMIT {
        format!("{text}… ({} bytes in all)", bytes.len())
    } else {
        text
    }
}

impl Error {
    /// A generated call's failure of `operation`.
    pub(crate) fn from_generated(operation: Operation, error: GeneratedError) -> Self {
        match error {
            progenitor_client::Error::ErrorResponse(value) => {
                let status = value.status().as_u16();
                let retry_after = retry_after(value.headers());
                let request_id = value
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Error::Api {
                    status,
                    error: Box::new(value.into_inner().error),
                    retry_after,
                    request_id,
                }
            }
            progenitor_client::Error::CommunicationError(e)
            | progenitor_client::Error::InvalidUpgrade(e)
            | progenitor_client::Error::ResponseBodyError(e) => Error::Transport(e),
            progenitor_client::Error::InvalidResponsePayload(bytes, e) => Error::Conformance {
                operation,
                violations: vec![SchemaViolation {
                    pointer: String::new(),
                    message: format!("cannot decode ({e}): {}", truncate_body(&bytes)),
                }],
            },
            progenitor_client::Error::UnexpectedResponse(response) => Error::UnexpectedResponse {
                status: response.status().as_u16(),
                body: String::new(),
                retry_after: retry_after(response.headers()),
            },
            progenitor_client::Error::InvalidRequest(message) => Error::Internal(format!(
                "{operation}: the request could not be built: {message}"
            )),
            progenitor_client::Error::Custom(message) => {
                Error::Internal(format!("{operation}: {message}"))
            }
        }
    }
}

/// An API refusal with `status`, for the unit tests of decisions on errors.
#[cfg(test)]
pub(crate) fn api_error(status: u16, retry_after: Option<Duration>) -> Error {
    Error::Api {
        status,
        error: Box::new(types::ApiError {
            type_: "t".into(),
            message: "m".into(),
            param: None,
            code: None,
        }),
        retry_after,
        request_id: None,
    }
}

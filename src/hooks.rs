//! The generated client's hooks: spec checks on answers, and the one place a
//! generated call's failure becomes the crate's [`Error`].
//!
//! progenitor calls `pre`, `exec` and `post` around every request. `pre`
//! drops the `api-version` header the generator adds; `exec` reads each JSON
//! answer once, checks it against the spec and hands the generated code the
//! same bytes; `post` stops the call when `exec` found the answer wanting,
//! and leaves what it found for [`checked`] to return. Request rules are
//! applied before the call, by [`Client`](crate::Client).
//!
//! `exec` is also where the client keeps its bounds on the server: an
//! answer is read into memory only up to
//! [`MAX_JSON_BODY_BYTES`] (an error's up to [`MAX_ERROR_BODY_BYTES`]),
//! within its deadline and with no pause longer than the idle timeout; a
//! redirect is refused, never followed. A download is streamed, uncapped,
//! with the idle timeout on each chunk.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::ResponseBuilderExt;
use serde_json::Value;

use crate::config::ClientContext;
use crate::error::{Error, GeneratedError, HookFailure, retry_after, truncate_body};
use crate::generated::Client;
use crate::validate::rules::{MAX_ERROR_BODY_BYTES, MAX_JSON_BODY_BYTES};
use crate::validate::{self, Operation, ValidationMode};

/// How far away a deadline too long to compute is put: thirty years.
const NO_DEADLINE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// What `exec` found wrong with an answer, for `post` to raise.
#[derive(Clone)]
struct Finding(HookFailure);

tokio::task_local! {
    /// What `post` found while the call [`checked`] runs was being made.
    static FOUND: RefCell<Option<HookFailure>>;
    /// The last whole successful JSON answer received inside [`keeping_body`].
    static KEPT: RefCell<Option<Bytes>>;
}

/// Runs `call`, keeping the body of the last whole successful JSON answer it
/// received, byte for byte as the server sent it.
///
/// Decoding into the generated types drops what the spec does not declare;
/// the kept body still has it, for a strict check made after the decoding,
/// and for printing an answer exactly as received (`--format raw`). The
/// body is already in memory, capped, so keeping it costs a reference.
pub(crate) async fn keeping_body<T>(call: impl Future<Output = T>) -> (T, Option<Bytes>) {
    KEPT.scope(RefCell::new(None), async move {
        let out = call.await;
        (out, KEPT.with(|kept| kept.borrow_mut().take()))
    })
    .await
}

/// Runs one generated call of `operation`; a failure becomes the crate's
/// error, with what the hooks found about the answer carried as it is.
pub(crate) async fn checked<T>(
    operation: Operation,
    call: impl Future<Output = Result<T, GeneratedError>>,
) -> Result<T, Error> {
    FOUND
        .scope(RefCell::new(None), async move {
            call.await.map_err(
                |error| match FOUND.with(|found| found.borrow_mut().take()) {
                    Some(failure) => failure.into(),
                    None => Error::from_generated(operation, error),
                },
            )
        })
        .await
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl ClientHooks<ClientContext> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove("api-version");
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let Some(operation) = Operation::from_id(info.operation_id) else {
            return self.client().execute(request).await;
        };
        let context = self.inner();
        let (mode, bounds) = (context.validation, context.bounds);
        // The key lives in the client's default headers, never in the request: it
        // is named here only as redacted.
        let (method, url) = (request.method().clone(), request.url().clone());
        tracing::debug!(operation = info.operation_id, %method, %url, authorization = "Bearer [redacted]", "request");
        let started = Instant::now();
        // A part's body takes as long as the link needs: `parts` watches its
        // rate, and the answer after it. A download's head is waited on as any
        // byte of its body is; a JSON answer has one deadline for all of it.
        let (wait, bound) = match operation {
            Operation::DownloadFile => (bounds.idle_timeout, "idle_timeout"),
            _ => (bounds.answer_timeout, "answer_timeout"),
        };
        // A wait too long to add (`Duration::MAX` for "no deadline") is a
        // deadline in thirty years, not an overflow.
        let deadline = started
            .checked_add(wait)
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + NO_DEADLINE);
        let sent = self.client().execute(request);
        let response = if operation == Operation::AddUploadPart {
            sent.await?
        } else {
            match tokio::time::timeout_at(deadline, sent).await {
                Ok(response) => response?,
                Err(_) => {
                    return Ok(failed(HookFailure::TimedOut {
                        operation,
                        bound,
                        limit: wait,
                        what: format!("no answer within {wait:?}"),
                    }));
                }
            }
        };
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::debug!(
            operation = info.operation_id,
            %method,
            %url,
            status,
            ms = started.elapsed().as_millis() as u64,
            request_id,
            "answer"
        );
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Ok(failed(HookFailure::Redirected { status, location }));
        }
        let success = response.status().is_success();
        if success && operation == Operation::DownloadFile {
            return Ok(idle_bounded(response, bounds.idle_timeout));
        }

        let head = head_of(&response);
        let wait_after = retry_after(response.headers());
        let limit = if success {
            MAX_JSON_BODY_BYTES
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let too_large = HookFailure::TooLarge {
            operation,
            status,
            limit,
        };
        if success && response.content_length().is_some_and(|n| n > limit) {
            return Ok(failed(too_large));
        }
        let read = read_capped(response, limit, bounds.idle_timeout);
        let read = if operation == Operation::AddUploadPart {
            read.await
        } else {
            tokio::time::timeout_at(deadline, read)
                .await
                .unwrap_or(Err(Stop::Deadline))
        };
        let (body, whole) = match read {
            Ok(Capped::Whole(body)) => (body, true),
            Ok(Capped::Cut(body)) => (body, false),
            Err(Stop::Transport(e)) => return Err(e),
            Err(Stop::Idle) => {
                return Ok(failed(HookFailure::TimedOut {
                    operation,
                    bound: "idle_timeout",
                    limit: bounds.idle_timeout,
                    what: format!("no byte of the answer for {:?}", bounds.idle_timeout),
                }));
            }
            Err(Stop::Deadline) => {
                return Ok(failed(HookFailure::TimedOut {
                    operation,
                    bound,
                    limit: wait,
                    what: format!("the answer was not whole within {wait:?}"),
                }));
            }
        };
        let finding = match (success, whole) {
            (true, false) => Some(Finding(too_large)),
            (false, false) => Some(Finding(HookFailure::Undocumented {
                status,
                body: format!(
                    "{} (more than {limit} bytes; the rest was not read)",
                    truncate_body(&body)
                ),
                retry_after_ms: wait_after.map(|w| w.as_millis() as u64),
            })),
            (true, true) if mode == ValidationMode::Off => None,
            _ => judge(operation, status, &body, mode, wait_after),
        };
        if success && whole {
            let _ = KEPT.try_with(|kept| *kept.borrow_mut() = Some(body.clone()));
        }
        let mut rebuilt = head
            .body(body)
            .expect("status, version and headers come from a valid response");
        if let Some(finding) = finding {
            rebuilt.extensions_mut().insert(finding);
        }
        Ok(reqwest::Response::from(rebuilt))
    }

    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        match result
            .as_ref()
            .ok()
            .and_then(|r| r.extensions().get::<Finding>())
        {
            Some(Finding(failure)) => {
                let message = Error::from(failure.clone()).to_string();
                // Outside `checked` (never, while the generated client stays
                // private) the message still says what was found.
                let _ = FOUND.try_with(|found| *found.borrow_mut() = Some(failure.clone()));
                Err(progenitor_client::Error::Custom(message))
            }
            None => Ok(()),
        }
    }
}

/// Raises `failure` from a call made outside `exec` (a part's watch): the
/// same way `post` does, for [`checked`] to return.
pub(crate) fn raise(failure: HookFailure) -> GeneratedError {
    let message = Error::from(failure.clone()).to_string();
    let _ = FOUND.try_with(|found| *found.borrow_mut() = Some(failure));
    progenitor_client::Error::Custom(message)
}

/// An answer standing for `failure`, which `post` then raises.
fn failed(failure: HookFailure) -> reqwest::Response {
    let mut response = http::Response::new(Bytes::new());
    response.extensions_mut().insert(Finding(failure));
    reqwest::Response::from(response)
}

/// The status line and headers of `response`, for an answer rebuilt from
/// its body.
fn head_of(response: &reqwest::Response) -> http::response::Builder {
    let mut head = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = head.headers_mut() {
        *headers = response.headers().clone();
    }
    head
}

/// An answer's body read into memory.
enum Capped {
    /// All of it.
    Whole(Bytes),
    /// Its first bytes, up to the cap; the rest was not read.
    Cut(Bytes),
}

/// Why reading a body stopped short.
enum Stop {
    Transport(reqwest::Error),
    /// No byte for the idle timeout.
    Idle,
    /// The answer's deadline passed.
    Deadline,
}

/// Reads `response`'s body up to `limit` bytes, each chunk within `idle`;
/// past the cap the connection is dropped rather than read.
async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
    idle: Duration,
) -> Result<Capped, Stop> {
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let expected = response.content_length().unwrap_or(0);
    let mut body = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0).min(cap));
    loop {
        let chunk = match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => return Err(Stop::Idle),
            Ok(Err(e)) => return Err(Stop::Transport(e)),
            Ok(Ok(None)) => return Ok(Capped::Whole(body.freeze())),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > cap {
            let room = cap - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(body.freeze()));
        }
        body.extend_from_slice(&chunk);
    }
}

/// A download's answer whose body fails, as a transport error that timed
/// out, when no byte comes for `idle`; it is streamed, never capped.
fn idle_bounded(response: reqwest::Response, idle: Duration) -> reqwest::Response {
    let head = head_of(&response);
    let chunks = Box::pin(response.bytes_stream());
    let bounded = futures::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        let next: Result<Bytes, Box<dyn std::error::Error + Send + Sync>> =
            match tokio::time::timeout(idle, chunks.next()).await {
                Ok(None) => return None,
                Ok(Some(Ok(chunk))) => Ok(chunk),
                Ok(Some(Err(e))) => Err(e.into()),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no byte of the download for {idle:?} (idle_timeout)"),
                )
                .into()),
            };
        let more = next.is_ok().then_some(chunks);
        Some((next, more))
    });
    let rebuilt = head
        .body(reqwest::Body::wrap_stream(bounded))
        .expect("status, version and headers come from a valid response");
    reqwest::Response::from(rebuilt)
}

/// Checks one answer; `Some` when the generated code must not decode it.
fn judge(
    operation: Operation,
    status: u16,
    body: &Bytes,
    mode: ValidationMode,
    wait: Option<std::time::Duration>,
) -> Option<Finding> {
    let success = (200..300).contains(&status);
    let parsed = serde_json::from_slice::<Value>(body);
    let failure = match (success, parsed) {
        (true, Err(e)) => Some(HookFailure::Conformance {
            operation,
            violations: vec![validate::SchemaViolation {
                pointer: String::new(),
                message: format!("not JSON ({e}): {}", truncate_body(body)),
            }],
        }),
        (true, Ok(value)) => {
            let report = validate::check_response(operation, status, &value, mode);
            for warning in &report.warnings {
                tracing::warn!(operation = ?operation, %warning, "answer departs from the spec");
            }
            (!report.is_ok()).then_some(HookFailure::Conformance {
                operation,
                violations: report.violations,
            })
        }
        (false, parsed) => {
            let documented = parsed.is_ok_and(|value| {
                validate::check_response(operation, status, &value, ValidationMode::Lenient).is_ok()
            });
            (!documented).then(|| HookFailure::Undocumented {
                status,
                body: truncate_body(body),
                retry_after_ms: wait.map(|w| w.as_millis() as u64),
            })
        }
    };
    failure.map(Finding)
}

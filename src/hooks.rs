//! The generated client's hooks: spec checks on answers, and the one place a
//! generated call's failure becomes the crate's [`Error`].
//!
//! progenitor calls `pre`, `exec` and `post` around every request. `pre`
//! drops the `api-version` header the generator adds; `exec` reads each JSON
//! answer once, checks it against the spec and hands the generated code the
//! same bytes; `post` stops the call when `exec` found the answer wanting,
//! and leaves what it found for [`checked`] to return. Request rules are
//! applied before the call, by [`Client`](crate::Client).

use std::cell::RefCell;
use std::future::Future;

use bytes::Bytes;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use serde_json::Value;

use crate::config::ClientContext;
use crate::error::{Error, GeneratedError, HookFailure, retry_after, truncate_body};
use crate::generated::Client;
use crate::validate::{self, Operation, ValidationMode};

/// What `exec` found wrong with an answer, for `post` to raise.
#[derive(Clone)]
struct Finding(HookFailure);

tokio::task_local! {
    /// What `post` found while the call [`checked`] runs was being made.
    static FOUND: RefCell<Option<HookFailure>>;
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
        let operation = Operation::from_id(info.operation_id);
        let mode = self.inner().validation;
        // The key lives in the client's default headers, never in the request: it
        // is named here only as redacted.
        let (method, url) = (request.method().clone(), request.url().clone());
        tracing::debug!(operation = info.operation_id, %method, %url, authorization = "Bearer [redacted]", "request");
        let started = std::time::Instant::now();
        let response = self.client().execute(request).await?;
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
        let success = response.status().is_success();
        if success && (operation == Some(Operation::DownloadFile) || mode == ValidationMode::Off) {
            return Ok(response);
        }

        let mut head = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = head.headers_mut() {
            *headers = response.headers().clone();
        }
        let wait = retry_after(response.headers());
        let body = response.bytes().await?;
        let finding = operation.and_then(|op| judge(op, status, &body, mode, wait));
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

//! The emulator's error answers, in OpenAI's envelope.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::types;
use crate::validate::rules::RuleViolation;

/// An error answer in OpenAI's envelope.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// The wait announced in `Retry-After` and `retry-after-ms`, if any.
    pub retry_after: Option<Duration>,
}

impl ApiFailure {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub(crate) fn invalid(violation: &RuleViolation) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: format!("{}: {}", violation.field, violation.message),
            param: Some(violation.field.clone()),
            code: Some(violation.rule.name().to_string()),
            retry_after: None,
        }
    }

    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self {
            code: Some("not_found".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("No {what} with id {id:?}"),
            )
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// A 429 in OpenAI's envelope, asking to wait `wait`.
    pub(crate) fn rate_limited(message: impl Into<String>, wait: Duration) -> Self {
        Self {
            code: Some("rate_limit_exceeded".into()),
            retry_after: Some(wait),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "requests", message)
        }
    }

    /// The envelope the answer carries, as the spec types it.
    pub(crate) fn body(self) -> types::ErrorResponse {
        types::ErrorResponse {
            error: types::ApiError {
                type_: self.kind.to_string(),
                message: self.message,
                param: self.param,
                code: self.code,
            },
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(wait) = retry_after {
            let headers = response.headers_mut();
            let secs = wait.as_secs_f64().ceil() as u64;
            headers.insert(header::RETRY_AFTER, secs.into());
            headers.insert("retry-after-ms", (wait.as_millis() as u64).into());
        }
        response
    }
}

/// The first of `violations` as a failure, if there is one.
pub(crate) fn first_violation(violations: Vec<RuleViolation>) -> Result<(), ApiFailure> {
    match violations.first() {
        Some(v) => Err(ApiFailure::invalid(v)),
        None => Ok(()),
    }
}

/// A 429 in OpenAI's envelope, asking to wait `wait`.
pub(crate) fn rate_limited(message: &str, wait: Duration) -> Response {
    ApiFailure::rate_limited(message, wait).into_response()
}

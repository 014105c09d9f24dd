//! When to try a request again, and how long to wait: pure decisions.

use std::time::Duration;

use crate::error::Error;

/// Retry budget and pacing for one request.
///
/// Waits grow exponentially from `initial_delay` to `max_delay`, with jitter;
/// a `Retry-After` or `retry-after-ms` from the server replaces the computed
/// wait, capped at `max_retry_after`. Beside the count, `max_elapsed` bounds
/// the wall-clock time of the retries: no retry starts later than that after
/// the request first failed.
///
/// The long budget is for the requests of an Upload that exists. Before one
/// exists, a server that cannot be reached at all (connection refused, an
/// unknown host, a TLS failure) is most likely a wrong base URL or no network:
/// such a request gets `max_unreachable_retries` quick retries, then fails.
///
/// ```
/// use std::time::Duration;
/// use openai_uploads::upload::RetryPolicy;
///
/// let patient = RetryPolicy::default()
///     .with_max_retries(20)
///     .with_max_delay(Duration::from_secs(30));
/// assert_eq!(patient.max_retries, 20);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First wait.
    pub initial_delay: Duration,
    /// Longest computed wait.
    pub max_delay: Duration,
    /// Longest wait a server may ask for.
    pub max_retry_after: Duration,
    /// Retries of a request that found no server, before an Upload exists.
    pub max_unreachable_retries: usize,
    /// Longest time from a request's first failure to the start of its
    /// last retry.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// Twelve retries, waits from 200 ms to 8 s: enough to carry an upload
    /// through a server failing half of its part requests; two quick retries
    /// when no server answers the first request; all within 5 minutes of the
    /// first failure, so a server that never answers fails the request in
    /// minutes, not in twelve deadlines.
    fn default() -> Self {
        Self {
            max_retries: 12,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            max_unreachable_retries: 2,
            max_elapsed: DEFAULT_MAX_ELAPSED,
        }
    }
}

/// Default of [`RetryPolicy::max_elapsed`].
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);

/// Where in an upload a request is sent: it decides the retry budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// No Upload exists yet (`create_upload`).
    Opening,
    /// The Upload exists: its parts, its completion, its cancel.
    Filling,
}

impl RetryPolicy {
    /// With `retries` retries after the first attempt.
    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// With `delay` as the first wait.
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// With `delay` as the longest computed wait.
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// With `wait` as the longest wait a server may ask for.
    pub fn with_max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// With `retries` quick retries of a request that found no server.
    pub fn with_max_unreachable_retries(mut self, retries: usize) -> Self {
        self.max_unreachable_retries = retries;
        self
    }

    /// With `budget` as the longest time from a request's first failure to
    /// the start of its last retry.
    pub fn with_max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = budget;
        self
    }

    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            max_unreachable_retries: 0,
            ..Self::default()
        }
    }

    /// Whether a request that failed with `error` may succeed if sent again:
    /// connection failures and timeouts, 408, 409, 429 and 5xx. Never other
    /// 4xx, refusals before sending, or answers that break the spec.
    pub fn is_retryable(error: &Error) -> bool {
        match error {
            Error::Transport(e) => {
                e.is_connect()
                    || e.is_timeout()
                    || e.is_request()
                    || e.is_body()
                    || e.is_decode()
                    || e.status().is_some_and(|s| retryable_status(s.as_u16()))
            }
            Error::Api { status, .. } | Error::UnexpectedResponse { status, .. } => {
                retryable_status(*status)
            }
            Error::TimedOut { .. } => true,
            _ => false,
        }
    }

    /// The wait before retry number `retry` (1-based) of a request sent at
    /// `stage` that failed with `error`, or `None` to give up. `backoff` is
    /// the backoff's own next wait, `None` once its budget is spent;
    /// `elapsed` the time since the request first failed: a retry that would
    /// start past [`max_elapsed`](Self::max_elapsed) is not made.
    pub fn decide(
        &self,
        stage: Stage,
        error: &Error,
        retry: usize,
        backoff: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        if !Self::is_retryable(error) {
            return None;
        }
        let computed = backoff?;
        let wait = if stage == Stage::Opening && error.is_unreachable() {
            if retry > self.max_unreachable_retries {
                return None;
            }
            computed.min(self.initial_delay * 2)
        } else {
            self.delay(error, computed)
        };
        // Saturating: a server's `Retry-After` under a cap of `Duration::MAX`
        // can exceed what a `Duration` holds once added.
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }

    /// The wait before the next attempt: the server's `Retry-After`, capped,
    /// when it sent one, else the backoff's own `computed` wait.
    pub fn delay(&self, error: &Error, computed: Duration) -> Duration {
        match error.retry_after() {
            Some(asked) => asked.min(self.max_retry_after),
            None => computed,
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_retries)
            .build()
    }
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..600).contains(&status)
}

/// A wait long enough that the user should hear of it, whichever retry it is.
const VISIBLE_WAIT: Duration = Duration::from_secs(3);

/// Least time between two retry lines at warn level, across every request.
const WARN_EVERY: Duration = Duration::from_secs(2);

/// Lets through one line per [`WARN_EVERY`], counting those it holds back.
#[derive(Debug, Default)]
struct LogGate {
    last: Option<std::time::Instant>,
    held: u32,
}

impl LogGate {
    /// At `now`: `Some(held back since the last line)` when a line may be
    /// written, `None` when it is held back.
    fn admit(&mut self, now: std::time::Instant) -> Option<u32> {
        if self.last.is_some_and(|last| now < last + WARN_EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

static WARNINGS: std::sync::Mutex<LogGate> = std::sync::Mutex::new(LogGate {
    last: None,
    held: 0,
});

/// Runs `attempt` until it succeeds, fails for good, or the budget (count
/// and time) is spent. The first retry of a request, and any wait of
/// [`VISIBLE_WAIT`] or more, is logged at warn level, at most one line per
/// [`WARN_EVERY`] (the next line says how many were held back); other
/// retries at debug level.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    stage: Stage,
    what: &str,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut backoff = policy.backoff();
    let mut retry = 0;
    let mut first_failure = None;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        retry += 1;
        let since = *first_failure.get_or_insert_with(tokio::time::Instant::now);
        let Some(wait) = policy.decide(stage, &error, retry, backoff.next(), since.elapsed())
        else {
            return Err(error);
        };
        let wait_ms = wait.as_millis() as u64;
        let held = (retry == 1 || wait >= VISIBLE_WAIT)
            .then(|| {
                let mut gate = WARNINGS.lock().unwrap_or_else(|p| p.into_inner());
                gate.admit(std::time::Instant::now())
            })
            .flatten();
        match held {
            Some(0) => tracing::warn!(request = what, %error, wait_ms, retry, "retrying"),
            Some(held) => {
                tracing::warn!(request = what, %error, wait_ms, retry, held_back = held, "retrying")
            }
            None => tracing::debug!(request = what, %error, wait_ms, retry, "retrying"),
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: Duration = Duration::ZERO;

    #[test]
    fn no_retry_starts_past_the_time_budget() {
        let policy = RetryPolicy::default().with_max_elapsed(Duration::from_secs(10));
        let error = api(503, None);
        let wait = Some(Duration::from_secs(2));
        let at = Duration::from_secs;
        assert_eq!(policy.decide(Stage::Filling, &error, 1, wait, at(8)), wait);
        assert_eq!(policy.decide(Stage::Filling, &error, 2, wait, at(9)), None);
        // A server's long Retry-After counts against the same budget.
        let asked = api(429, Some(Duration::from_secs(30)));
        assert_eq!(policy.decide(Stage::Filling, &asked, 1, wait, ZERO), None);
        assert_eq!(
            RetryPolicy::default().decide(Stage::Filling, &asked, 1, wait, ZERO),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn an_uncapped_retry_after_past_what_a_duration_holds_is_no_panic() {
        let policy = RetryPolicy::default().with_max_retry_after(Duration::MAX);
        let asked = api(429, Some(Duration::MAX));
        let at = Duration::from_secs(1);
        assert_eq!(
            policy.decide(Stage::Filling, &asked, 1, Some(at), at),
            None,
            "past the time budget"
        );
    }

    #[test]
    fn retry_lines_are_rate_limited_and_count_what_was_held_back() {
        let mut gate = LogGate::default();
        let t0 = std::time::Instant::now();
        assert_eq!(gate.admit(t0), Some(0));
        assert_eq!(gate.admit(t0 + Duration::from_millis(500)), None);
        assert_eq!(gate.admit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(gate.admit(t0 + WARN_EVERY), Some(2));
        assert_eq!(gate.admit(t0 + WARN_EVERY * 3), Some(0));
    }

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        crate::error::api_error(status, retry_after)
    }

    /// A real "connection refused" from reqwest: a port nothing listens on.
    async fn refused() -> Error {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = reqwest::Client::new()
            .get(format!("http://{addr}/v1/uploads"))
            .send()
            .await
            .expect_err("nothing listens");
        Error::Transport(error)
    }

    #[test]
    fn retries_transient_statuses_only() {
        for status in [408, 409, 429, 500, 502, 503, 504] {
            assert!(RetryPolicy::is_retryable(&api(status, None)), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(!RetryPolicy::is_retryable(&api(status, None)), "{status}");
        }
        let undocumented = Error::UnexpectedResponse {
            status: 502,
            body: "<html>".into(),
            retry_after: None,
        };
        assert!(RetryPolicy::is_retryable(&undocumented));
        assert!(!RetryPolicy::is_retryable(&Error::InvalidRequest(vec![])));
        assert!(!RetryPolicy::is_retryable(&Error::Cancelled));
    }

    #[test]
    fn retry_after_overrides_and_is_capped() {
        let policy = RetryPolicy::default();
        let computed = Duration::from_millis(300);
        assert_eq!(policy.delay(&api(500, None), computed), computed);
        assert_eq!(
            policy.delay(&api(429, Some(Duration::from_secs(2))), computed),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(&api(429, Some(Duration::from_secs(3600))), computed),
            policy.max_retry_after
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_gets_quick_retries_only_before_the_upload_exists() {
        let policy = RetryPolicy::default();
        let error = refused().await;
        assert!(error.is_unreachable(), "{error}");
        let long = Some(Duration::from_secs(8));
        // Opening: two quick retries, then give up.
        assert_eq!(
            policy.decide(Stage::Opening, &error, 1, long, ZERO),
            Some(policy.initial_delay * 2)
        );
        assert!(
            policy
                .decide(Stage::Opening, &error, 2, long, ZERO)
                .is_some()
        );
        assert_eq!(policy.decide(Stage::Opening, &error, 3, long, ZERO), None);
        // Filling: the whole budget, at the backoff's pace.
        assert_eq!(policy.decide(Stage::Filling, &error, 3, long, ZERO), long);
        assert_eq!(policy.decide(Stage::Filling, &error, 13, None, ZERO), None);
        // A 503 while opening is not a missing server: the whole budget.
        assert_eq!(
            policy.decide(Stage::Opening, &api(503, None), 5, long, ZERO),
            long
        );
        assert_eq!(
            policy.decide(Stage::Opening, &api(400, None), 1, long, ZERO),
            None
        );
    }

    #[tokio::test]
    async fn stops_after_the_budget_and_on_permanent_errors() {
        let policy = RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let result: Result<(), Error> = with_retries(&policy, Stage::Filling, "test", || {
            calls += 1;
            async { Err(api(503, None)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 4);

        let mut calls = 0;
        let _: Result<(), Error> = with_retries(&policy, Stage::Filling, "test", || {
            calls += 1;
            async { Err(api(400, None)) }
        })
        .await;
        assert_eq!(calls, 1);
    }
}

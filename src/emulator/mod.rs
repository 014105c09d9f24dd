//! A local emulator of the Uploads and Files API, for offline use and tests.
//!
//! It keeps the documented semantics (the Upload state machine, 64 MB parts,
//! 8 GB Uploads, declared bytes, order of `part_ids`, `md5`, expiry, bearer
//! auth), checks requests with the same [rules](crate::validate::rules) as the
//! client, answers errors in OpenAI's envelope, and can inject faults.
//! Part bytes are streamed to a data directory as they arrive, or only
//! counted with [`EmulatorConfig::discard_content`], for measuring a client.
//! With [`EmulatorConfig::tls`] it serves `https://`, and can require a client
//! certificate (mutual TLS).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), openai_uploads::Error> {
//! use openai_uploads::Config;
//! use openai_uploads::emulator::{Emulator, EmulatorConfig};
//!
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! let client = Config::new()
//!     .with_api_key("any-key")
//!     .with_base_url(emulator.base_url())
//!     .client()?;
//! let missing = client.retrieve_file("file-nothing").await.unwrap_err();
//! assert_eq!(missing.status(), Some(404));
//! emulator.stop().await;
//! # Ok(()) }
//! ```

mod clock;
mod config;
mod database;
mod failure;
mod faults;
mod paths;
mod recording;
mod routes;
mod server;
mod shape;
mod storage;
mod store;
mod tls;

pub use crate::validate::rules::UPLOAD_LIFETIME_SECONDS;
pub use clock::Clock;
pub use config::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PENDING_UPLOADS, DEFAULT_MAX_RECORDED_BYTES, DEFAULT_MAX_RECORDINGS,
    EmulatorConfig, MAX_JSON_BODY_BYTES,
};
pub use faults::{FaultScope, Faults};
pub use recording::{ReceivedPart, RecordedCompletion, RecordedRequest};
pub use shape::NetworkShape;
pub use tls::EmulatorTls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::error::Error;
use failure::{ApiFailure, rate_limited};
use faults::{Fault, FaultState};
use recording::Recordings;
use store::Store;

pub(crate) struct Shared {
    store: Store,
    faults: Mutex<FaultState>,
    recordings: Recordings,
    /// Most bytes read of a body other than a part's.
    max_body_bytes: usize,
    connections: server::ConnectionLimits,
    link: Arc<shape::Link>,
    accepted: AtomicU64,
    parts_in_flight: AtomicUsize,
    most_parts_in_flight: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running emulator; dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl Emulator {
    /// Binds and starts serving in the background of the current Tokio runtime.
    ///
    /// A data directory that cannot be used, or whose records are damaged
    /// or not this emulator's, and an address that cannot be bound, are
    /// [`Error::Io`] naming them; an address another process listens on is
    /// [`Error::AddressInUse`]; unusable TLS material is [`Error::Config`].
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, Error> {
        let (dir, temp_dir) = match config.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("openai-emulator-")
                    .tempdir()
                    .map_err(|e| Error::io(std::env::temp_dir(), e))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let shared = Arc::new(Shared {
            // A temporary directory dies with the emulator: nothing to keep.
            store: Store::new(
                &dir,
                Clock::default(),
                config.discard_content,
                temp_dir.is_none(),
                config.max_pending_uploads,
            )?,
            faults: Mutex::new(FaultState::new(config.faults)),
            recordings: Recordings::new(config.max_recordings, config.max_recorded_bytes),
            max_body_bytes: usize::try_from(config.max_body_bytes).unwrap_or(usize::MAX),
            connections: server::ConnectionLimits {
                max_connections: config.max_connections,
                header_read_timeout: config.header_read_timeout,
                idle_timeout: config.idle_timeout,
            },
            link: shape::Link::new(config.network),
            accepted: AtomicU64::new(0),
            parts_in_flight: AtomicUsize::new(0),
            most_parts_in_flight: AtomicUsize::new(0),
        });
        let acceptor = config
            .tls
            .as_ref()
            .map(tls::acceptor)
            .transpose()
            .map_err(|e| Error::Config {
                field: "tls",
                message: e.to_string(),
            })?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let bind = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(bind).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                Error::AddressInUse { address: bind }
            } else {
                Error::io(bind.to_string(), e)
            }
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(bind.to_string(), e))?;
        let server = tokio::spawn(server::serve(listener, acceptor, shared.clone()));
        Ok(Emulator {
            addr,
            base_url: format!("{scheme}://{addr}/v1"),
            shared,
            server,
            _temp_dir: temp_dir,
        })
    }

    /// The base URL to configure a client with (`http://127.0.0.1:PORT/v1`, or
    /// `https://` with [`EmulatorConfig::tls`]).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator's clock, which tests can move forward to expire Uploads.
    pub fn clock(&self) -> Clock {
        self.shared.store.clock.clone()
    }

    /// The requests with a bearer token received so far, in order of
    /// arrival: the last [`EmulatorConfig::max_recordings`] of them.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recordings.requests()
    }

    /// The parts stored so far: the last [`EmulatorConfig::max_recordings`].
    pub fn received_parts(&self) -> Vec<ReceivedPart> {
        self.shared.recordings.parts()
    }

    /// The completions received so far, in order of arrival, with the
    /// `part_ids` and `md5` they carried: the last
    /// [`EmulatorConfig::max_recordings`].
    pub fn completions(&self) -> Vec<RecordedCompletion> {
        self.shared.recordings.completions()
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// The most part requests that were being served at once.
    pub fn most_parts_in_flight(&self) -> usize {
        self.shared.most_parts_in_flight.load(Ordering::Relaxed)
    }

    /// Replaces the faults injected from now on (counters restart).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// Serves until the process ends or the server fails.
    pub async fn wait(mut self) {
        let _ = (&mut self.server).await;
    }

    /// Stops serving and waits until the server has stopped accepting and
    /// let go of its address (open connections are dropped, not drained);
    /// stored data goes with a temporary data directory.
    pub async fn stop(mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A part request being served, counted while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Returned to hyper to make it close the connection without an answer.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

fn header_text(request: &Request<Body>, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What is kept of `request`, each text cut to the recordings' cap.
fn recorded(
    request: &Request<Body>,
    shared: &Shared,
    fault: Option<Fault>,
    connection: u64,
) -> RecordedRequest {
    let cap = shared.recordings.text_cap();
    let text = |name| header_text(request, name).map(|v| recording::cut(&v, cap));
    RecordedRequest {
        method: request.method().to_string(),
        path: recording::cut(request.uri().path(), cap),
        authorization: text(header::AUTHORIZATION),
        organization: text(header::HeaderName::from_static("openai-organization")),
        project: text(header::HeaderName::from_static("openai-project")),
        content_type: text(header::CONTENT_TYPE),
        fault: fault.map(|f| format!("{f:?}")),
        connection,
    }
}

async fn handle(
    shared: Arc<Shared>,
    router: axum::Router,
    connection: u64,
    request: Request<Body>,
) -> Result<Response<Body>, DroppedConnection> {
    let is_part = request.method() == "POST" && request.uri().path().ends_with("/parts");
    let is_completion = request.method() == "POST" && request.uri().path().ends_with("/complete");
    let authorization = header_text(&request, header::AUTHORIZATION);
    let (fault, latency, retry_after) = {
        let mut faults = lock(&shared.faults);
        (
            faults.decide(is_part),
            faults.latency(),
            faults.retry_after(),
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let token = authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        let failure = ApiFailure {
            code: Some("invalid_api_key".into()),
            ..ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "missing bearer token: send `Authorization: Bearer <key>`",
            )
        };
        return Ok(failure.into_response());
    }
    // Recorded only now: a caller without a key leaves no trace in memory.
    shared
        .recordings
        .request(recorded(&request, &shared, fault, connection));

    let _in_flight = if is_part && fault.is_none() {
        let now = shared.parts_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = InFlight(&shared.parts_in_flight);
        if shared
            .link
            .shape
            .max_parts_in_flight
            .is_some_and(|most| now > most)
        {
            let wait = shared
                .link
                .shape
                .retry_after
                .unwrap_or(Duration::from_secs(1));
            return Ok(rate_limited("too many parts in flight", wait));
        }
        shared
            .most_parts_in_flight
            .fetch_max(now, Ordering::Relaxed);
        Some(guard)
    } else {
        None
    };

    match fault {
        Some(Fault::DropConnection) => {
            // Read into the body first, so the client is cut off mid-upload.
            let mut body = request.into_body().into_data_stream();
            let _ = body.next().await;
            Err(DroppedConnection)
        }
        Some(Fault::ServerError) => {
            Ok(ApiFailure::internal("injected server error").into_response())
        }
        Some(Fault::RateLimit) => Ok(rate_limited("injected rate limit", retry_after)),
        None => {
            let response = router
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            if is_completion
                && response.status().is_success()
                && lock(&shared.faults).lose_completion_answer()
            {
                return Err(DroppedConnection);
            }
            Ok(response)
        }
    }
}

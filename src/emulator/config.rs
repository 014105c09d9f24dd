//! How to start an emulator, and the caps that keep it within bounds.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

#[cfg(doc)]
use super::Emulator;
use super::{EmulatorTls, Faults, NetworkShape};
pub use crate::validate::rules::MAX_JSON_BODY_BYTES;

/// Uploads pending at once by default: far more than a client keeps for
/// itself, and few enough that their records stay small.
pub const DEFAULT_MAX_PENDING_UPLOADS: usize = 10_000;

/// Requests, parts and completions each kept by default: enough for a test
/// to see every request of an upload of thousands of parts.
pub const DEFAULT_MAX_RECORDINGS: usize = 10_000;

/// Connections served at once by default: well under the descriptors a
/// process has by default, so that the emulator's own files always open.
pub const DEFAULT_MAX_CONNECTIONS: usize = 768;

/// Time to send a request's head, or to start the next one, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a request's body may send nothing, by default: longer than a
/// client's own wait for a stalled part.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes kept of each recorded text by default.
pub const DEFAULT_MAX_RECORDED_BYTES: usize = 4096;

/// How to start an emulator: the default, changed with the `with_*` methods.
///
/// ```
/// use openai_uploads::emulator::{EmulatorConfig, Faults, NetworkShape};
///
/// let config = EmulatorConfig::default()
///     .with_port(8080)
///     .with_faults(Faults::default().with_server_error_every(5))
///     .with_network(NetworkShape::default().stream_rate(20_000_000));
/// assert_eq!(config.port, 8080);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Address to bind; loopback by default.
    pub bind: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Where parts and Files are stored; a temporary directory, removed when
    /// the emulator is dropped, if `None`. A directory given here also keeps
    /// the records of Uploads (with their parts) and Files in `state.json`,
    /// so an emulator started again on it carries on where the last one was.
    pub data_dir: Option<PathBuf>,
    /// Faults to inject.
    pub faults: Faults,
    /// Counts part bytes without storing or hashing them, to measure a
    /// client without the emulator's own disk and md5 work on the same
    /// machine. Sizes and every rule still hold, but `md5` at completion is
    /// not checked and a File's content cannot be downloaded. Off by default.
    pub discard_content: bool,
    /// The network between clients and the emulator: rates, round trip,
    /// parts in flight. Loopback as it is by default.
    pub network: NetworkShape,
    /// Serve `https://` instead of `http://`, optionally requiring a client
    /// certificate; plain HTTP if `None`.
    pub tls: Option<EmulatorTls>,
    /// Most Uploads pending at once; a create past it is answered 429 with
    /// `Retry-After`, as the API answers a rate limit
    /// ([`DEFAULT_MAX_PENDING_UPLOADS`] by default).
    pub max_pending_uploads: usize,
    /// Requests, parts and completions kept for [`Emulator::requests`] and
    /// its kin, each the last ones received
    /// ([`DEFAULT_MAX_RECORDINGS`] by default).
    pub max_recordings: usize,
    /// Bytes kept of each recorded text: a path, a header, the `part_ids`
    /// of a completion together ([`DEFAULT_MAX_RECORDED_BYTES`] by default).
    pub max_recorded_bytes: usize,
    /// Most bytes read of a request body other than a part's; a larger one
    /// is answered 413 ([`MAX_JSON_BODY_BYTES`] by default, the client's own cap).
    pub max_body_bytes: u64,
    /// Connections served at once; past it, new ones wait to be accepted
    /// ([`DEFAULT_MAX_CONNECTIONS`] by default).
    pub max_connections: usize,
    /// How long a connection may take to send a request's head, and stay
    /// open between requests, before it is closed
    /// ([`DEFAULT_HEADER_READ_TIMEOUT`] by default).
    pub header_read_timeout: Duration,
    /// How long a request's body may send nothing before the request fails
    /// ([`DEFAULT_IDLE_TIMEOUT`] by default).
    pub idle_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            data_dir: None,
            faults: Faults::default(),
            discard_content: false,
            network: NetworkShape::default(),
            tls: None,
            max_pending_uploads: DEFAULT_MAX_PENDING_UPLOADS,
            max_recordings: DEFAULT_MAX_RECORDINGS,
            max_recorded_bytes: DEFAULT_MAX_RECORDED_BYTES,
            max_body_bytes: MAX_JSON_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl EmulatorConfig {
    /// Binds `bind` instead of loopback.
    pub fn with_bind(mut self, bind: IpAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Binds `port`; 0 picks a free one.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Stores parts, Files and their records in `dir`, kept across restarts.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Injects `faults`.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Counts part bytes without storing or hashing them, when `discard` is true.
    pub fn with_discard_content(mut self, discard: bool) -> Self {
        self.discard_content = discard;
        self
    }

    /// Shapes the network between clients and the emulator as `network`.
    pub fn with_network(mut self, network: NetworkShape) -> Self {
        self.network = network;
        self
    }

    /// Serves `https://` with `tls`.
    pub fn with_tls(mut self, tls: EmulatorTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Keeps at most `uploads` Uploads pending at once.
    pub fn with_max_pending_uploads(mut self, uploads: usize) -> Self {
        self.max_pending_uploads = uploads;
        self
    }

    /// Keeps the last `entries` requests, parts and completions.
    pub fn with_max_recordings(mut self, entries: usize) -> Self {
        self.max_recordings = entries;
        self
    }

    /// Keeps at most `bytes` of each recorded text.
    pub fn with_max_recorded_bytes(mut self, bytes: usize) -> Self {
        self.max_recorded_bytes = bytes;
        self
    }

    /// Reads at most `bytes` of a request body other than a part's.
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Serves at most `connections` connections at once.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Closes a connection that takes longer than `timeout` to send a
    /// request's head, or to start its next request.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Fails a request whose body sends nothing for `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

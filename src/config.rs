//! Configuration: key, base URL, organisation, project, timeouts, TLS identity, and the
//! HTTP client.
//!
//! The bottom layer: it knows the validation mode and nothing above it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::validate::ValidationMode;

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Idle connections kept per host: as many as an upload's parts in flight
/// at most, so that no part opens a fresh connection for want of one.
pub const MAX_IDLE_CONNECTIONS: usize = 64;

/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time without a byte of an answer while it is awaited or read.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default deadline of a JSON answer, from sending the request to the
/// answer's last byte: the largest answer (a 16 MiB page of Files) takes
/// 16 s on a 1 MB/s link.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Default slowest a part's body may move, in bytes per second, averaged
/// over [`DEFAULT_PART_RATE_WINDOW`]: a sixteenth of the share each of 64
/// parts in flight gets of a 1 MB/s link, so only a stall falls under it.
pub const DEFAULT_MIN_PART_RATE: u64 = 1024;
/// Default window over which a part's body rate is measured.
pub const DEFAULT_PART_RATE_WINDOW: Duration = Duration::from_secs(30);

/// The bounds every call keeps, whatever the server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// No byte of an answer for this long fails the call.
    pub(crate) idle_timeout: Duration,
    /// A JSON answer must be whole this long after its request is sent.
    pub(crate) answer_timeout: Duration,
    /// A part's body moving fewer bytes per second than this, over
    /// `part_rate_window`, has stalled.
    pub(crate) min_part_rate: u64,
    /// The window of `min_part_rate`.
    pub(crate) part_rate_window: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
            min_part_rate: DEFAULT_MIN_PART_RATE,
            part_rate_window: DEFAULT_PART_RATE_WINDOW,
        }
    }
}

/// What every generated call can see of the configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientContext {
    /// How strictly responses are checked.
    pub(crate) validation: ValidationMode,
    /// Deadlines and rates of every call.
    pub(crate) bounds: Bounds,
}

/// Settings for a [`Client`](crate::Client); the API key is held as a secret and never printed.
///
/// ```
/// use std::time::Duration;
/// use openai_uploads::{Config, validate::ValidationMode};
///
/// let config = Config::new()
///     .with_api_key("sk-example")
///     .with_base_url("http://127.0.0.1:8080/v1")
///     .with_idle_timeout(Duration::from_secs(120))
///     .with_validation(ValidationMode::Strict);
/// assert!(!format!("{config:?}").contains("sk-example"));
/// let client = config.client()?;
/// # Ok::<(), openai_uploads::Error>(())
/// ```
#[derive(Clone)]
pub struct Config {
    api_key: Option<SecretString>,
    base_url: String,
    organization: Option<String>,
    project: Option<String>,
    connect_timeout: Duration,
    bounds: Bounds,
    validation: ValidationMode,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    root_certificate_files: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("connect_timeout", &self.connect_timeout)
            .field("bounds", &self.bounds)
            .field("validation", &self.validation)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("root_certificate_files", &self.root_certificate_files)
            .finish()
    }
}

fn non_empty(value: String) -> Option<String> {
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// An empty path means none, as an empty `--flag ""` or variable does.
fn non_empty_path(path: &Path) -> Option<PathBuf> {
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// Environment variable holding the mTLS client certificate's PEM file (as OpenAI's CLI).
const MTLS_CLIENT_CERT_FILE_ENV: &str = "OPENAI_MTLS_CLIENT_CERT_FILE";
/// Environment variable holding the mTLS client key's PEM file (as OpenAI's CLI).
const MTLS_CLIENT_KEY_FILE_ENV: &str = "OPENAI_MTLS_CLIENT_KEY_FILE";

/// Reads a PEM file named by a setting, naming both in the error.
fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config {
        field,
        message: format!("cannot read {}: {e}", path.display()),
    })
}

fn not_pem(field: &'static str, path: &Path, what: &str, e: impl fmt::Display) -> Error {
    Error::Config {
        field,
        message: format!("{} holds no valid PEM {what}: {e}", path.display()),
    }
}

/// The client identity made of a certificate chain file and a key file, both PEM.
fn identity(cert_file: &Path, key_file: &Path) -> Result<reqwest::Identity> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let cert_field = "mtls_client_cert_file";
    let key_field = "mtls_client_key_file";
    let cert = read_pem(cert_field, cert_file)?;
    let certs = CertificateDer::pem_slice_iter(&cert)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| not_pem(cert_field, cert_file, "certificate", e))?;
    if certs.is_empty() {
        return Err(not_pem(cert_field, cert_file, "certificate", "none found"));
    }
    let key = read_pem(key_field, key_file)?;
    PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| not_pem(key_field, key_file, "private key", e))?;
    // reqwest reads the identity from one buffer: the certificates, then the key.
    let mut both = cert;
    both.push(b'\n');
    both.extend_from_slice(&key);
    reqwest::Identity::from_pem(&both).map_err(|e| Error::Config {
        field: cert_field,
        message: format!(
            "{} and {} do not make a client identity: {e}",
            cert_file.display(),
            key_file.display()
        ),
    })
}

impl Config {
    /// Defaults with no key: the public base URL, a 10 s connect timeout, a
    /// 60 s idle timeout, a 60 s deadline for a JSON answer, and parts that
    /// must move at least 1 KiB/s over any 30 s ([`DEFAULT_MIN_PART_RATE`]):
    /// a part has no total timeout, as a 64 MB part takes as long as the
    /// link needs, but a stalled one fails and is retried.
    pub fn new() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_string(),
            organization: None,
            project: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            bounds: Bounds::default(),
            validation: ValidationMode::default(),
            client_cert_file: None,
            client_key_file: None,
            root_certificate_files: Vec::new(),
        }
    }

    /// Defaults overridden by `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
    /// `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`, `OPENAI_MTLS_CLIENT_CERT_FILE` and
    /// `OPENAI_MTLS_CLIENT_KEY_FILE` where set and not empty.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().and_then(non_empty);
        let mut config = Self::new();
        config.api_key = var("OPENAI_API_KEY").map(SecretString::from);
        if let Some(url) = var("OPENAI_BASE_URL") {
            config = config.with_base_url(url);
        }
        config.organization = var("OPENAI_ORG_ID");
        config.project = var("OPENAI_PROJECT_ID");
        config.client_cert_file = var(MTLS_CLIENT_CERT_FILE_ENV).map(PathBuf::from);
        config.client_key_file = var(MTLS_CLIENT_KEY_FILE_ENV).map(PathBuf::from);
        config
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = non_empty(key.into()).map(SecretString::from);
        self
    }

    /// Sets the base URL, including `/v1` (a trailing `/` is dropped).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim().trim_end_matches('/').to_string();
        self
    }

    /// Sets the organisation sent as `OpenAI-Organization`.
    pub fn with_organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = non_empty(organization.into());
        self
    }

    /// Sets the project sent as `OpenAI-Project`.
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = non_empty(project.into());
        self
    }

    /// Sets the time allowed to open a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the time an answer may go without a byte, while it is awaited
    /// or read (`idle_timeout`); a download is bound by this alone.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.bounds.idle_timeout = timeout;
        self
    }

    /// Sets the deadline of a JSON answer, from sending the request to the
    /// answer's last byte (`answer_timeout`). For a part, it counts from
    /// when its body has been handed to the connection, plus as long again
    /// as that took: the bytes still in the socket's buffers drain no
    /// slower than they were taken.
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.bounds.answer_timeout = timeout;
        self
    }

    /// Sets the slowest a part's body may move (`min_part_rate`), in bytes
    /// per second averaged over `window`: a part slower than that has
    /// stalled, fails with [`Error::TimedOut`] and is retried. A rate of 0
    /// turns the check off.
    pub fn with_min_part_rate(mut self, bytes_per_second: u64, window: Duration) -> Self {
        self.bounds.min_part_rate = bytes_per_second;
        self.bounds.part_rate_window = window;
        self
    }

    /// Presents a client certificate for mutual TLS: `cert_file` holds the certificate
    /// (and any intermediates, leaf first) and `key_file` its private key, both PEM.
    ///
    /// The files are read when the client is built; an unreadable file or one without
    /// the expected PEM block is an [`Error::Config`] naming the file.
    pub fn with_client_identity(
        self,
        cert_file: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Self {
        self.with_client_cert_file(cert_file)
            .with_client_key_file(key_file)
    }

    /// Sets the mTLS client certificate's PEM file alone (an empty path unsets it); the
    /// key file must be set too, by [`with_client_key_file`](Self::with_client_key_file).
    pub fn with_client_cert_file(mut self, cert_file: impl AsRef<Path>) -> Self {
        self.client_cert_file = non_empty_path(cert_file.as_ref());
        self
    }

    /// Sets the mTLS client key's PEM file alone (an empty path unsets it); the
    /// certificate file must be set too.
    pub fn with_client_key_file(mut self, key_file: impl AsRef<Path>) -> Self {
        self.client_key_file = non_empty_path(key_file.as_ref());
        self
    }

    /// Trusts the CA certificates in a PEM file as well as the system's, e.g. a gateway's
    /// private CA or a local emulator's.
    pub fn with_root_certificate(mut self, pem_file: impl AsRef<Path>) -> Self {
        if let Some(path) = non_empty_path(pem_file.as_ref()) {
            self.root_certificate_files.push(path);
        }
        self
    }

    /// Sets how strictly responses are checked against the spec.
    pub fn with_validation(mut self, mode: ValidationMode) -> Self {
        self.validation = mode;
        self
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether an API key is set.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// How strictly responses are checked.
    pub fn validation(&self) -> ValidationMode {
        self.validation
    }

    /// What the generated client sees of the configuration.
    pub(crate) fn context(&self) -> ClientContext {
        ClientContext {
            validation: self.validation,
            bounds: self.bounds,
        }
    }

    fn headers(&self) -> Result<HeaderMap> {
        let key = self.api_key.as_ref().ok_or(Error::Config {
            field: "api_key",
            message: "not set: pass one or set OPENAI_API_KEY".into(),
        })?;
        let mut auth =
            HeaderValue::try_from(format!("Bearer {}", key.expose_secret())).map_err(|_| {
                Error::Config {
                    field: "api_key",
                    message: "holds characters not allowed in an HTTP header".into(),
                }
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        for (name, value, field) in [
            ("openai-organization", &self.organization, "organization"),
            ("openai-project", &self.project, "project"),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::try_from(value.as_str()).map_err(|_| Error::Config {
                    field,
                    message: "holds characters not allowed in an HTTP header".into(),
                })?;
                headers.insert(name, value);
            }
        }
        Ok(headers)
    }

    /// The HTTP client: auth and identity headers, the connect timeout, rustls
    /// with the client certificate and extra roots, if any.
    ///
    /// It speaks HTTP/1.1 only, so that parts in flight travel on
    /// connections of their own: multiplexed over one HTTP/2 connection they
    /// would share one TCP window, which then bounds the whole upload.
    ///
    /// It follows no redirect: the API never redirects its calls, and a
    /// redirect followed would carry the organisation, the project and a
    /// body to another origin, or downgrade https to http. The other
    /// deadlines are kept by the client's calls, not here: reqwest's
    /// `read_timeout` also runs while a request's body is sent, which would
    /// fail a large part on a slow link.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(self.headers()?)
            .user_agent(concat!("openai-uploads/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout);
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => builder = builder.identity(identity(cert, key)?),
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::Config {
                    field: "mtls_client_key_file",
                    message: format!(
                        "not set, though a client certificate is: set both or neither \
                         (see {MTLS_CLIENT_KEY_FILE_ENV})"
                    ),
                });
            }
            (None, Some(_)) => {
                return Err(Error::Config {
                    field: "mtls_client_cert_file",
                    message: format!(
                        "not set, though a client key is: set both or neither \
                         (see {MTLS_CLIENT_CERT_FILE_ENV})"
                    ),
                });
            }
        }
        for path in &self.root_certificate_files {
            let field = "root_certificate";
            let pem = read_pem(field, path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| not_pem(field, path, "certificate", e))?;
            if certs.is_empty() {
                return Err(not_pem(field, path, "certificate", "none found"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(|e| Error::Config {
            field: "http_client",
            message: e.to_string(),
        })
    }
}

//! Configuration: key, base URL, organisation, project, timeouts, and the HTTP client.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::generated::Client;
use crate::validate::ValidationMode;

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// What every generated call can see of the configuration.
#[derive(Clone, Debug, Default)]
pub struct ClientContext {
    /// How strictly responses are checked.
    pub validation: ValidationMode,
}

/// Settings for a [`Client`]; the API key is held as a secret and never printed.
///
/// ```
/// use std::time::Duration;
/// use openai_uploads::{Config, validate::ValidationMode};
///
/// let config = Config::new()
///     .with_api_key("sk-example")
///     .with_base_url("http://127.0.0.1:8080/v1")
///     .with_read_timeout(Duration::from_secs(120))
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
    read_timeout: Duration,
    validation: ValidationMode,
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
            .field("read_timeout", &self.read_timeout)
            .field("validation", &self.validation)
            .finish()
    }
}

fn non_empty(value: String) -> Option<String> {
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

impl Config {
    /// Defaults with no key: the public base URL, a 10 s connect timeout and a
    /// 300 s read timeout (time without progress, not a total: large parts
    /// take as long as they take).
    pub fn new() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_string(),
            organization: None,
            project: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
            validation: ValidationMode::default(),
        }
    }

    /// Defaults overridden by `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
    /// `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID` where set and not empty.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().and_then(non_empty);
        let mut config = Self::new();
        config.api_key = var("OPENAI_API_KEY").map(SecretString::from);
        if let Some(url) = var("OPENAI_BASE_URL") {
            config = config.with_base_url(url);
        }
        config.organization = var("OPENAI_ORG_ID");
        config.project = var("OPENAI_PROJECT_ID");
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

    /// Sets the time a request may go without any progress.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
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

    /// The HTTP client: auth and identity headers, timeouts, rustls.
    ///
    /// It speaks HTTP/1.1 only, so that parts in flight travel on
    /// connections of their own: multiplexed over one HTTP/2 connection they
    /// would share one TCP window, which then bounds the whole upload.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(crate::upload::MAX_CONCURRENCY)
            .default_headers(self.headers()?)
            .user_agent(concat!("openai-uploads/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .build()
            .map_err(|e| Error::Config {
                field: "http_client",
                message: e.to_string(),
            })
    }

    /// A client for the configured API.
    pub fn client(&self) -> Result<Client> {
        let url = reqwest::Url::parse(&self.base_url).map_err(|e| Error::Config {
            field: "base_url",
            message: format!("{:?} is not a URL: {e}", self.base_url),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config {
                field: "base_url",
                message: format!("{:?} is not http or https", self.base_url),
            });
        }
        Ok(Client::new_with_client(
            &self.base_url,
            self.http_client()?,
            ClientContext {
                validation: self.validation,
            },
        ))
    }
}

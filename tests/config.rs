//! Configuration: the key stays secret, settings are read and checked.

use std::sync::{Mutex, MutexGuard, PoisonError};

use openai_uploads::validate::ValidationMode;
use openai_uploads::{Config, DEFAULT_BASE_URL, Error, PartBody, types};

const KEY: &str = "sk-proj-T3stK3yThatMustNeverBePrinted0123456789";

/// A loopback port nothing listens on, so every call fails to connect.
const CLOSED: &str = "http://127.0.0.1:9/v1";

/// Every test here holds this lock: one of them changes the process
/// environment, which must not happen while another thread reads it.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
        .block_on(future)
}

fn assert_hides_key(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} shows the key: {text}");
    assert!(
        !text.contains("T3stK3y"),
        "{what} shows part of the key: {text}"
    );
}

fn config_error_field(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match result {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn debug_of_config_hides_the_key() {
    let _serial = serial();
    let config = Config::new()
        .with_api_key(KEY)
        .with_organization("org-abc")
        .with_project("proj_abc");
    for text in [format!("{config:?}"), format!("{config:#?}")] {
        assert_hides_key("Config's Debug", &text);
        assert!(text.contains("[redacted]"), "{text}");
        assert!(
            text.contains("org-abc") && text.contains("proj_abc"),
            "{text}"
        );
    }
    assert!(format!("{:?}", Config::new()).contains("api_key: None"));
}

#[test]
fn debug_of_http_and_api_clients_hides_the_key() {
    let _serial = serial();
    let config = Config::new().with_api_key(KEY).with_base_url(CLOSED);
    let http = config.http_client().expect("the HTTP client builds");
    let text = format!("{http:?}");
    assert!(
        text.contains("default_headers"),
        "the client's Debug no longer shows its headers, so this test proves nothing: {text}"
    );
    assert_hides_key("reqwest::Client's Debug", &text);
    assert!(text.contains("Sensitive"), "{text}");

    let client = config.client().expect("the client builds");
    assert_hides_key("Client's Debug", &format!("{client:?}"));
}

#[test]
fn errors_of_failing_calls_hide_the_key() {
    let _serial = serial();
    let client = Config::new()
        .with_api_key(KEY)
        .with_base_url(CLOSED)
        .client()
        .expect("the client builds");
    let errors: Vec<Error> = block_on(async {
        vec![
            client.retrieve_file("file-abc").await.unwrap_err(),
            client
                .complete_upload(
                    "upload_abc",
                    &types::CompleteUploadRequest {
                        part_ids: vec!["part_abc".into()],
                        md5: None,
                    },
                )
                .await
                .unwrap_err(),
            client
                .add_upload_part("upload_abc", PartBody::from_bytes(&b"{}\n"[..]))
                .await
                .unwrap_err(),
        ]
    });
    for error in &errors {
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert_eq!(error.status(), None);
        let display = error.to_string();
        assert!(display.starts_with("transport: "), "{display}");
        assert_hides_key("Display of a transport error", &display);
        assert_hides_key("Debug of a transport error", &format!("{error:?}"));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            assert_hides_key(
                "a cause of a transport error",
                &format!("{cause} {cause:?}"),
            );
            source = cause.source();
        }
    }
}

#[test]
fn requests_refused_before_sending_hide_the_key() {
    let _serial = serial();
    let client = Config::new()
        .with_api_key(KEY)
        .with_base_url(CLOSED)
        .client()
        .expect("the client builds");
    let error: Error = block_on(client.create_upload(&types::CreateUploadRequest {
        filename: "train.jsonl".into(),
        purpose: types::CreateUploadRequestPurpose::FineTune,
        bytes: 0,
        mime_type: "text/jsonl".into(),
        expires_after: None,
    }))
    .unwrap_err();
    let Error::InvalidRequest(violations) = &error else {
        panic!("expected the request to be refused before sending, got {error:?}");
    };
    assert_eq!(violations[0].rule.name(), "create.bytes.positive");
    assert_hides_key("Display of a refusal", &error.to_string());
    assert_hides_key("Debug of a refusal", &format!("{error:?}"));
}

#[test]
fn missing_key_is_a_configuration_error() {
    let _serial = serial();
    for config in [
        Config::new(),
        Config::new().with_api_key(""),
        Config::new().with_api_key("  \t"),
    ] {
        assert!(!config.has_api_key());
        assert_eq!(config_error_field(config.client()), "api_key");
        assert_eq!(config_error_field(config.http_client()), "api_key");
    }
    let error = Config::new().client().unwrap_err();
    assert!(error.to_string().contains("OPENAI_API_KEY"), "{error}");
}

#[test]
fn key_unfit_for_a_header_is_refused_without_showing_it() {
    let _serial = serial();
    let bad = format!("{KEY}\r\nX-Injected: 1");
    let error = Config::new().with_api_key(bad).client().unwrap_err();
    assert!(
        matches!(
            error,
            Error::Config {
                field: "api_key",
                ..
            }
        ),
        "{error:?}"
    );
    assert_hides_key("Display of a bad-key error", &error.to_string());
    assert_hides_key("Debug of a bad-key error", &format!("{error:?}"));

    let org = Config::new()
        .with_api_key(KEY)
        .with_organization("org\nabc");
    assert_eq!(config_error_field(org.client()), "organization");
    let project = Config::new().with_api_key(KEY).with_project("proj\u{0}");
    assert_eq!(config_error_field(project.client()), "project");
}

#[test]
fn defaults() {
    let _serial = serial();
    let config = Config::new();
    assert_eq!(config.base_url(), DEFAULT_BASE_URL);
    assert_eq!(config.validation(), ValidationMode::Lenient);
    assert!(!config.has_api_key());
    assert_eq!(format!("{:?}", Config::default()), format!("{config:?}"));
}

#[test]
fn setters_set() {
    let _serial = serial();
    let config = Config::new()
        .with_api_key(KEY)
        .with_validation(ValidationMode::Strict)
        .with_base_url("http://127.0.0.1:8080/v1");
    assert!(config.has_api_key());
    assert_eq!(config.validation(), ValidationMode::Strict);
    assert_eq!(config.base_url(), "http://127.0.0.1:8080/v1");
    assert!(config.client().is_ok());
}

#[test]
fn trailing_slashes_are_dropped_from_the_base_url() {
    let _serial = serial();
    for (given, kept) in [
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
        ("  https://example.test/v1//  ", "https://example.test/v1"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ] {
        assert_eq!(
            Config::new().with_base_url(given).base_url(),
            kept,
            "{given:?}"
        );
    }
}

#[test]
fn bad_base_url_is_a_configuration_error_naming_base_url() {
    let _serial = serial();
    for url in ["not a url", "ftp://example.test/v1", "/v1", ""] {
        let config = Config::new().with_api_key(KEY).with_base_url(url);
        let error = config.client().unwrap_err();
        assert!(
            matches!(
                error,
                Error::Config {
                    field: "base_url",
                    ..
                }
            ),
            "{url:?}: {error:?}"
        );
        assert!(error.to_string().contains("`base_url`"), "{error}");
        assert_hides_key("Display of a base URL error", &error.to_string());
    }
}

const VARS: [&str; 4] = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
];

/// Sets (or, for `None`, removes) the variables that `Config::from_env` reads.
fn set_env(values: [Option<&str>; 4]) {
    for (name, value) in VARS.iter().zip(values) {
        // SAFETY: every test in this binary holds `SERIAL`, so no other
        // thread of this process reads the environment meanwhile.
        unsafe {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
}

#[test]
fn from_env_reads_the_environment() {
    let _serial = serial();
    let saved: Vec<Option<String>> = VARS.iter().map(|v| std::env::var(v).ok()).collect();

    set_env([
        Some(KEY),
        Some("http://127.0.0.1:8080/v1/"),
        Some("org-from-env"),
        Some("proj_from_env"),
    ]);
    let config = Config::from_env();
    assert!(config.has_api_key());
    assert_eq!(config.base_url(), "http://127.0.0.1:8080/v1");
    let text = format!("{config:?}");
    assert!(
        text.contains("org-from-env") && text.contains("proj_from_env"),
        "{text}"
    );
    assert_hides_key("Debug of a Config from the environment", &text);
    assert!(config.client().is_ok());

    set_env([Some("  "), Some(""), None, Some("")]);
    let config = Config::from_env();
    assert!(!config.has_api_key());
    assert_eq!(config.base_url(), DEFAULT_BASE_URL);
    assert!(format!("{config:?}").contains("organization: None"));
    assert_eq!(config_error_field(config.client()), "api_key");

    let saved: Vec<Option<&str>> = saved.iter().map(Option::as_deref).collect();
    set_env(saved.try_into().expect("four variables"));
}

/// Serves one canned HTTP answer per connection on a loopback port and
/// returns the base URL that reaches it.
async fn answering(status: &'static str, headers: &'static str, body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port is free");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0_u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{address}/v1")
}

const RATE_LIMITED: &str = r#"{"error": {"type": "requests", "message": "Rate limit reached.", "param": null, "code": "rate_limit_exceeded"}}"#;

fn api_error_after(headers: &'static str) -> Error {
    block_on(async {
        let url = answering("429 Too Many Requests", headers, RATE_LIMITED).await;
        let client = Config::new()
            .with_api_key(KEY)
            .with_base_url(url)
            .client()
            .expect("the client builds");
        client.retrieve_file("file-abc").await.unwrap_err()
    })
}

#[test]
fn api_errors_carry_the_envelope_and_hide_the_key() {
    let _serial = serial();
    let error = api_error_after("retry-after-ms: 1500\r\nx-request-id: req_123\r\n");
    let Error::Api {
        status,
        error: envelope,
        retry_after,
        request_id,
    } = &error
    else {
        panic!("expected the API's error envelope, got {error:?}");
    };
    assert_eq!(*status, 429);
    assert_eq!(envelope.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(*retry_after, Some(std::time::Duration::from_millis(1500)));
    assert_eq!(request_id.as_deref(), Some("req_123"));
    assert_eq!(error.to_string(), "HTTP 429 requests: Rate limit reached.");
    assert_hides_key("Debug of an API error", &format!("{error:?}"));
}

/// A wait too long to represent is no usable answer; it must not bring the
/// client down.
#[test]
fn absurd_retry_after_is_ignored() {
    let _serial = serial();
    for headers in [
        "retry-after-ms: 1e300\r\n",
        "retry-after: 1e300\r\n",
        "retry-after-ms: -5\r\nretry-after: 2\r\n",
    ] {
        let error = api_error_after(headers);
        assert_eq!(error.status(), Some(429), "{headers:?}");
        let expected = headers
            .contains("retry-after: 2")
            .then(|| std::time::Duration::from_secs(2));
        assert_eq!(error.retry_after(), expected, "{headers:?}");
    }
}

/// A self-signed certificate and its key, written as PEM files in `dir`.
fn pem_pair(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["client.test".to_string()])
        .expect("a certificate is made");
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    std::fs::write(&cert, made.cert.pem()).expect("cert written");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("key written");
    (cert, key)
}

fn config_error(result: Result<impl std::fmt::Debug, Error>) -> (&'static str, String) {
    match result {
        Err(Error::Config { field, message }) => (field, message),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn client_identity_from_pem_files() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pem_pair(dir.path());
    let config = Config::new()
        .with_api_key(KEY)
        .with_client_identity(&cert, &key);
    assert!(format!("{config:?}").contains("client.crt"));
    assert!(config.client().is_ok());

    // An empty path unsets, as an empty flag does.
    let config = Config::new().with_api_key(KEY).with_client_identity("", "");
    assert!(config.client().is_ok());
}

#[test]
fn unreadable_or_invalid_pem_is_a_configuration_error_naming_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pem_pair(dir.path());
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("written");
    let config = |c: &std::path::Path, k: &std::path::Path| {
        Config::new()
            .with_api_key(KEY)
            .with_client_identity(c, k)
            .client()
    };

    let (field, message) = config_error(config(&missing, &key));
    assert_eq!(field, "mtls_client_cert_file");
    assert!(message.contains("missing.pem"), "{message}");
    let (field, message) = config_error(config(&garbage, &key));
    assert_eq!(field, "mtls_client_cert_file");
    assert!(message.contains("garbage.pem"), "{message}");
    let (field, message) = config_error(config(&cert, &missing));
    assert_eq!(field, "mtls_client_key_file");
    assert!(message.contains("missing.pem"), "{message}");
    // A certificate where the key should be.
    let (field, message) = config_error(config(&cert, &cert));
    assert_eq!(field, "mtls_client_key_file");
    assert!(message.contains("client.crt"), "{message}");

    // Half an identity is refused rather than ignored.
    let half = Config::new().with_api_key(KEY).with_client_cert_file(&cert);
    assert_eq!(config_error(half.client()).0, "mtls_client_key_file");
    let half = Config::new().with_api_key(KEY).with_client_key_file(&key);
    assert_eq!(config_error(half.client()).0, "mtls_client_cert_file");

    let roots = Config::new()
        .with_api_key(KEY)
        .with_root_certificate(&garbage);
    let (field, message) = config_error(roots.client());
    assert_eq!(field, "root_certificate");
    assert!(message.contains("garbage.pem"), "{message}");
    let roots = Config::new().with_api_key(KEY).with_root_certificate(&cert);
    assert!(roots.client().is_ok());
}

#[test]
fn mtls_files_from_the_environment() {
    let _serial = serial();
    const CERT: &str = "OPENAI_MTLS_CLIENT_CERT_FILE";
    const KEY_FILE: &str = "OPENAI_MTLS_CLIENT_KEY_FILE";
    let saved = [CERT, KEY_FILE].map(std::env::var_os);
    let set = |name: &str, value: Option<&std::ffi::OsStr>| {
        // SAFETY: every test in this binary holds `SERIAL`, so no other
        // thread of this process reads the environment meanwhile.
        unsafe {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pem_pair(dir.path());
    let missing = dir.path().join("missing-from-env.pem");

    set(CERT, Some(cert.as_os_str()));
    set(KEY_FILE, Some(key.as_os_str()));
    let config = Config::from_env().with_api_key(KEY);
    assert!(format!("{config:?}").contains("client.key"));
    assert!(config.client().is_ok());

    set(CERT, Some(missing.as_os_str()));
    let (field, message) = config_error(Config::from_env().with_api_key(KEY).client());
    assert_eq!(field, "mtls_client_cert_file");
    assert!(message.contains("missing-from-env.pem"), "{message}");

    set(CERT, Some(std::ffi::OsStr::new("")));
    let (field, _) = config_error(Config::from_env().with_api_key(KEY).client());
    assert_eq!(field, "mtls_client_cert_file");

    set(KEY_FILE, None);
    assert!(Config::from_env().with_api_key(KEY).client().is_ok());

    set(CERT, saved[0].as_deref());
    set(KEY_FILE, saved[1].as_deref());
}

//! The client against servers that play the API badly, over loopback: the
//! bounds it keeps on size, time, redirects and ids whatever the server does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use openai_uploads::validate::rules::{MAX_ERROR_BODY_BYTES, MAX_JSON_BODY_BYTES};
use openai_uploads::{Config, Error, PartBody, types};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a fake server saw.
#[derive(Clone, Default)]
struct Seen {
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
    /// Each request's head, as received.
    heads: Arc<Mutex<Vec<String>>>,
    /// Body bytes the server managed to write before the client let go.
    written: Arc<AtomicU64>,
}

impl Seen {
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

type Handler = Arc<dyn Fn(TcpStream, String, Seen) -> BoxFuture<'static, ()> + Send + Sync>;

/// A server on loopback that reads each request's head and hands the
/// connection to `handler`.
async fn fake(handler: Handler) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let (handler, seen) = (handler.clone(), server_seen.clone());
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                seen.heads.lock().unwrap().push(head.clone());
                handler(stream, head, seen).await;
            });
        }
    });
    (addr, seen)
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Writes `total` bytes of `fill` after `head`, as fast as the client takes
/// them, counting what was written until the client lets go.
async fn flood(mut stream: TcpStream, head: String, fill: u8, total: u64, seen: Seen) {
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![fill; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        seen.written.fetch_add(n as u64, Ordering::SeqCst);
        left -= n as u64;
    }
}

fn client(addr: SocketAddr, config: Config) -> openai_uploads::Client {
    config
        .with_api_key("sk-hostile-test")
        .with_base_url(format!("http://{addr}/v1"))
        .client()
        .expect("client builds")
}

const HUNDRED_MB: u64 = 100_000_000;

/// Less than this written by a server means the client did not read the
/// 100 MB: the cap plus what loopback's socket buffers hold.
const NOT_READ_WHOLE: u64 = 48 * 1024 * 1024;

/// Waits for the server's writer to stop, then gives what it wrote.
async fn written_once_settled(seen: &Seen) -> u64 {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = seen.written.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn a_100_mb_json_answer_without_length_is_refused_at_the_cap() {
    let (addr, seen) = fake(Arc::new(|stream, _, seen| {
        Box::pin(flood(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".into(),
            b' ',
            HUNDRED_MB,
            seen,
        ))
    }))
    .await;
    let error = client(addr, Config::new())
        .retrieve_file("file-abc")
        .await
        .expect_err("a 100 MB answer is refused");
    match &error {
        Error::AnswerTooLarge {
            bound,
            limit,
            status,
            ..
        } => {
            assert_eq!(*bound, "max_json_body_bytes");
            assert_eq!(*limit, MAX_JSON_BODY_BYTES);
            assert_eq!(*status, 200);
        }
        other => panic!("expected AnswerTooLarge, got {other:?}"),
    }
    assert!(error.to_string().contains("16777216"), "{error}");
    let written = written_once_settled(&seen).await;
    assert!(
        (MAX_JSON_BODY_BYTES..NOT_READ_WHOLE).contains(&written),
        "the client took {written} bytes of 100 MB"
    );
}

#[tokio::test]
async fn a_100_mb_json_answer_with_its_length_is_refused_unread() {
    let (addr, seen) = fake(Arc::new(|stream, _, seen| {
        Box::pin(flood(
            stream,
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUNDRED_MB}\r\n\r\n"
            ),
            b' ',
            HUNDRED_MB,
            seen,
        ))
    }))
    .await;
    let error = client(addr, Config::new())
        .list_files(None, None, None, None)
        .await
        .expect_err("a 100 MB answer is refused");
    assert!(
        matches!(error, Error::AnswerTooLarge { limit, .. } if limit == MAX_JSON_BODY_BYTES),
        "{error:?}"
    );
    let written = written_once_settled(&seen).await;
    assert!(
        written < MAX_JSON_BODY_BYTES,
        "refused on its length, yet {written} bytes were taken"
    );
}

#[tokio::test]
async fn a_100_mb_error_body_is_read_to_its_cap_and_keeps_its_status() {
    let (addr, seen) = fake(Arc::new(|stream, _, seen| {
        Box::pin(flood(
            stream,
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\nconnection: close\r\n\r\n"
                .into(),
            b'x',
            HUNDRED_MB,
            seen,
        ))
    }))
    .await;
    let error = client(addr, Config::new())
        .retrieve_file("file-abc")
        .await
        .expect_err("a 503");
    match &error {
        Error::UnexpectedResponse {
            status,
            body,
            retry_after,
        } => {
            assert_eq!(*status, 503);
            assert_eq!(*retry_after, Some(Duration::from_secs(7)));
            assert!(
                body.contains(&format!("more than {MAX_ERROR_BODY_BYTES} bytes")),
                "{body:.200}"
            );
            assert!(
                body.len() < 8 * 1024,
                "the kept text is short: {}",
                body.len()
            );
        }
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
    let written = written_once_settled(&seen).await;
    assert!(
        written < NOT_READ_WHOLE,
        "the client took {written} bytes of 100 MB"
    );
}

/// A server that reads the request and never answers.
fn silent() -> Handler {
    Arc::new(|stream, _, _| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        })
    })
}

/// Runs `call` under a guard well above the bounds the test sets, so a
/// missing bound fails the test instead of hanging it.
async fn within<T>(guard: Duration, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(guard, call)
        .await
        .expect("the client's own bound ends the call before the test's guard")
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_answer_timeout() {
    let (addr, _) = fake(silent()).await;
    let config = Config::new().with_answer_timeout(Duration::from_millis(300));
    let error = within(
        Duration::from_secs(10),
        client(addr, config).retrieve_file("file-abc"),
    )
    .await
    .expect_err("no answer");
    assert!(
        matches!(
            error,
            Error::TimedOut {
                bound: "answer_timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

/// Sends a 200 head, then one byte of its body every `every`, forever.
fn trickle(every: Duration) -> Handler {
    Arc::new(move |mut stream, _, _| {
        Box::pin(async move {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        })
    })
}

#[tokio::test]
async fn an_answer_trickling_bytes_fails_its_deadline_though_never_idle() {
    let (addr, _) = fake(trickle(Duration::from_millis(100))).await;
    let config = Config::new()
        .with_answer_timeout(Duration::from_millis(800))
        .with_idle_timeout(Duration::from_secs(30));
    let error = within(
        Duration::from_secs(10),
        client(addr, config).retrieve_file("file-abc"),
    )
    .await
    .expect_err("too slow");
    assert!(
        matches!(
            error,
            Error::TimedOut {
                bound: "answer_timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_that_stops_fails_the_idle_timeout() {
    let (addr, _) = fake(trickle(Duration::from_secs(3600))).await;
    let config = Config::new()
        .with_answer_timeout(Duration::from_secs(30))
        .with_idle_timeout(Duration::from_millis(300));
    let error = within(
        Duration::from_secs(10),
        client(addr, config).retrieve_file("file-abc"),
    )
    .await
    .expect_err("stopped");
    assert!(
        matches!(
            error,
            Error::TimedOut {
                bound: "idle_timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_download_that_stops_fails_the_idle_timeout() {
    let (addr, _) = fake(trickle(Duration::from_secs(3600))).await;
    let config = Config::new().with_idle_timeout(Duration::from_millis(300));
    let mut content = within(
        Duration::from_secs(10),
        client(addr, config).download_file("file-abc"),
    )
    .await
    .expect("the head came")
    .into_inner();
    let chunk = within(Duration::from_secs(10), content.next())
        .await
        .expect("an item");
    let error = Error::Transport(chunk.expect_err("no byte within the idle timeout"));
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn a_part_the_server_stops_reading_fails_its_minimum_rate() {
    // The server takes the head and never reads the body: once loopback's
    // buffers are full, the part stalls.
    let (addr, _) = fake(silent()).await;
    let config = Config::new()
        .with_min_part_rate(1_000_000, Duration::from_millis(400))
        .with_answer_timeout(Duration::from_secs(60));
    let data = vec![7u8; 48 * 1024 * 1024];
    let error = within(
        Duration::from_secs(20),
        client(addr, config).add_upload_part("upload_abc", PartBody::from_bytes(data)),
    )
    .await
    .expect_err("stalled");
    assert!(
        matches!(
            error,
            Error::TimedOut {
                bound: "min_part_rate",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_part_sent_whole_and_never_answered_fails_the_answer_timeout() {
    // Read the whole body, then say nothing.
    let (addr, _) = fake(Arc::new(|mut stream, _, _| {
        Box::pin(async move {
            let mut sink = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
    }))
    .await;
    let config = Config::new()
        .with_min_part_rate(1, Duration::from_secs(60))
        .with_answer_timeout(Duration::from_millis(300));
    let error = within(
        Duration::from_secs(10),
        client(addr, config).add_upload_part("upload_abc", PartBody::from_bytes(vec![1u8; 1000])),
    )
    .await
    .expect_err("no answer");
    assert!(
        matches!(
            error,
            Error::TimedOut {
                bound: "answer_timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

fn create_request() -> types::CreateUploadRequest {
    types::CreateUploadRequest {
        filename: "a.jsonl".into(),
        purpose: types::CreateUploadRequestPurpose::FineTune,
        bytes: 10,
        mime_type: "text/jsonl".into(),
        expires_after: None,
    }
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_other_origin_receives_nothing() {
    let (other, other_seen) = fake(silent()).await;
    let location = format!("http://{other}/v1/uploads");
    let redirect = location.clone();
    let (addr, seen) = fake(Arc::new(move |mut stream, _, _| {
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {redirect}\r\ncontent-length: 0\r\n\r\n"
        );
        Box::pin(async move {
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
    }))
    .await;
    let config = Config::new()
        .with_organization("org-secret")
        .with_project("proj-secret");
    let error = within(
        Duration::from_secs(10),
        client(addr, config).create_upload(&create_request()),
    )
    .await
    .expect_err("refused");
    match &error {
        Error::Redirected {
            status,
            location: named,
        } => {
            assert_eq!(*status, 307);
            assert_eq!(named, &location);
        }
        other => panic!("expected Redirected, got {other:?}"),
    }
    assert!(error.to_string().contains(&location), "{error}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(other_seen.connections.load(Ordering::SeqCst), 0);
    assert!(other_seen.heads().is_empty());
    assert_eq!(seen.heads().len(), 1, "sent once, not again elsewhere");
}

/// A CA, and a server certificate for 127.0.0.1 it signed: the CA as a PEM
/// file in `dir`, the server's chain and key as rustls takes them.
#[cfg(feature = "emulator")]
fn server_identity(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (ca_file, vec![cert.der().clone()], der.into())
}

#[cfg(feature = "emulator")]
#[tokio::test]
async fn an_https_redirect_to_http_is_refused_and_nothing_goes_in_clear() {
    use tokio_rustls::rustls;
    let (plain, plain_seen) = fake(silent()).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, chain, key) = server_identity(dir.path());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let secure = listener.local_addr().unwrap();
    let location = format!("http://{plain}/v1/files/file-abc");
    let redirect = location.clone();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let server_heads = heads.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).await.is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            server_heads
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let answer = format!(
                "HTTP/1.1 301 Moved Permanently\r\nlocation: {redirect}\r\ncontent-length: 0\r\n\r\n"
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let client = Config::new()
        .with_api_key("sk-hostile-test")
        .with_organization("org-secret")
        .with_base_url(format!("https://{secure}/v1"))
        .with_root_certificate(&ca_file)
        .client()
        .expect("client builds");
    let error = within(Duration::from_secs(10), client.retrieve_file("file-abc"))
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, Error::Redirected { status: 301, location: named } if named == &location),
        "{error:?}"
    );
    assert_eq!(heads.lock().unwrap().len(), 1, "the https server was asked");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(plain_seen.connections.load(Ordering::SeqCst), 0);
}

/// Answers every request with `body` as JSON, status 200.
fn answering(body: String) -> Handler {
    Arc::new(move |mut stream, _, _| {
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        Box::pin(async move {
            let _ = stream.write_all(answer.as_bytes()).await;
            // Drain what the client still sends, then let it close.
            let mut sink = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
    })
}

fn upload_with_id(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "object": "upload",
        "bytes": 10,
        "created_at": 1_700_000_000,
        "expires_at": 4_000_000_000i64,
        "filename": "a.jsonl",
        "purpose": "fine-tune",
        "status": "pending",
    })
    .to_string()
}

#[tokio::test]
async fn an_upload_id_dot_dot_from_the_server_is_refused_naming_the_field() {
    let (addr, _) = fake(answering(upload_with_id(".."))).await;
    let error = client(addr, Config::new())
        .create_upload(&create_request())
        .await
        .expect_err("`..` is no id");
    match &error {
        Error::Conformance { violations, .. } => {
            assert_eq!(violations[0].pointer, "/id");
            assert!(
                violations[0].message.contains("path.id.segment"),
                "{}",
                violations[0].message
            );
        }
        other => panic!("expected Conformance, got {other:?}"),
    }
}

#[tokio::test]
async fn a_one_call_upload_sends_nothing_to_the_path_a_bad_id_would_reach() {
    let (addr, seen) = fake(answering(upload_with_id(".."))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, b"{\"a\": 1}\n\n").unwrap();
    let error = within(
        Duration::from_secs(20),
        client(addr, Config::new()).upload_file(&path).send(),
    )
    .await
    .expect_err("refused");
    assert!(error.to_string().contains("/id"), "{error}");
    let heads = seen.heads();
    assert!(!heads.is_empty());
    for head in heads {
        assert!(head.starts_with("POST /v1/uploads HTTP"), "{head}");
    }
}

#[tokio::test]
async fn a_file_id_dot_from_a_listing_is_refused() {
    let page = serde_json::json!({
        "object": "list",
        "has_more": false,
        "first_id": ".",
        "last_id": ".",
        "data": [{
            "id": ".", "object": "file", "bytes": 1, "created_at": 1,
            "filename": "a", "purpose": "fine-tune", "status": "processed"
        }],
    })
    .to_string();
    let (addr, _) = fake(answering(page)).await;
    let error = client(addr, Config::new())
        .list_files(None, None, None, None)
        .await
        .expect_err("`.` is no id");
    assert!(
        matches!(&error, Error::Conformance { violations, .. } if violations[0].pointer == "/data/0/id"),
        "{error:?}"
    );
}

/// The `openai` binary with none of the machine's settings leaking in.
#[cfg(feature = "cli")]
fn openai(addr: SocketAddr) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openai"));
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_LOG",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
        .env("OPENAI_API_KEY", "sk-hostile-cli")
        .env("OPENAI_BASE_URL", format!("http://{addr}/v1"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn the_command_takes_its_deadline_from_a_flag_and_exits_as_a_transport_failure() {
    let (addr, seen) = fake(silent()).await;
    let output = within(
        Duration::from_secs(20),
        openai(addr)
            .args(["files", "retrieve", "--file-id", "file-abc"])
            .args(["--answer-timeout", "0.5"])
            .output(),
    )
    .await
    .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("answer_timeout"), "{stderr}");
    assert_eq!(seen.heads().len(), 1);
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn a_deadline_of_zero_is_a_usage_error_naming_the_flag() {
    let (addr, seen) = fake(silent()).await;
    let output = openai(addr)
        .args(["files", "retrieve", "--file-id", "file-abc"])
        .args(["--idle-timeout", "0"])
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--idle-timeout"), "{stderr}");
    assert!(stderr.contains("more than 0"), "{stderr}");
    assert!(seen.heads().is_empty());
}

/// A server whose content answer has no length and ends, by closing, after
/// `sent` bytes, and whose File says it holds `declared` bytes.
#[cfg(feature = "cli")]
fn cut_download(sent: usize, declared: u64) -> Handler {
    Arc::new(move |mut stream, head, _| {
        Box::pin(async move {
            let answer = if head.starts_with("GET /v1/files/file-abc/content ") {
                let mut answer =
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n"
                        .to_vec();
                answer.extend(std::iter::repeat_n(b'z', sent));
                answer
            } else {
                let file = serde_json::json!({
                    "id": "file-abc", "object": "file", "bytes": declared,
                    "created_at": 1, "filename": "a.bin", "purpose": "fine-tune",
                    "status": "processed"
                })
                .to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{file}",
                    file.len()
                )
                .into_bytes()
            };
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        })
    })
}

/// The names in `dir`.
#[cfg(feature = "cli")]
fn names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `openai files content --file-id file-abc -o TARGET` against `addr`.
#[cfg(feature = "cli")]
async fn content_into(addr: SocketAddr, target: &std::path::Path) -> std::process::Output {
    within(
        Duration::from_secs(20),
        openai(addr)
            .args(["files", "content", "--file-id", "file-abc", "-o"])
            .arg(target)
            .output(),
    )
    .await
    .expect("the binary runs")
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn a_download_cut_short_without_a_length_is_not_renamed_into_place() {
    let (addr, seen) = fake(cut_download(500, 1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let output = content_into(addr, &target).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("500 bytes") && stderr.contains("1000 bytes"),
        "{stderr}"
    );
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    let heads = seen.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("GET /v1/files/file-abc HTTP")),
        "the File's size was asked: {heads:?}"
    );
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn a_download_without_a_length_that_matches_the_file_is_written() {
    let (addr, _) = fake(cut_download(1000, 1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let output = content_into(addr, &target).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read(&target).unwrap(), vec![b'z'; 1000]);
    assert_eq!(names(dir.path()), vec!["out.bin".to_string()]);
}

#[cfg(all(feature = "cli", unix))]
#[tokio::test]
async fn a_signal_during_a_download_removes_its_temporary_file() {
    // A head, some bytes, then nothing: the download waits.
    let (addr, _) = fake(Arc::new(|mut stream, _, _| {
        Box::pin(async move {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&[b'q'; 1000]).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
    }))
    .await;
    for (signal, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGHUP, 129),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let child = openai(addr)
            .args(["files", "content", "--file-id", "file-abc", "-o"])
            .arg(&target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // The temporary file appears once the head has come.
        within(Duration::from_secs(20), async {
            while names(dir.path()).is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        // The signal handlers are installed with the download's start.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pid = child.id().expect("running") as libc::pid_t;
        // SAFETY: `kill` with a child's pid and a signal number has no
        // memory effects in this process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let output = within(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("the binary ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "signal {signal}: {stderr}"
        );
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }
}

#[cfg(feature = "emulator")]
#[tokio::test]
async fn deadlines_of_duration_max_mean_none_and_never_panic() {
    let emulator = openai_uploads::emulator::Emulator::start(Default::default())
        .await
        .expect("emulator starts");
    let client = Config::new()
        .with_api_key("sk-test")
        .with_base_url(emulator.base_url())
        .with_answer_timeout(Duration::MAX)
        .with_idle_timeout(Duration::MAX)
        .client()
        .expect("client");
    let missing = client
        .retrieve_file("file-missing")
        .await
        .expect_err("no such File");
    assert_eq!(missing.status(), Some(404), "{missing:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, b"{\"a\": 1}\n").unwrap();
    let upload = client.upload_file(&path).send().await.expect("uploaded");
    assert_eq!(upload.bytes, 9);
}

#![cfg(feature = "emulator")]
//! Mutual TLS: the emulator over `https://` asking for a client certificate, and a
//! client presenting one from PEM files, with certificates made here by rcgen.

mod common;

use std::path::{Path, PathBuf};

use openai_uploads::emulator::{Emulator, EmulatorConfig, EmulatorTls};
use openai_uploads::types::{
    CompleteUploadRequest, CreateUploadRequest, CreateUploadRequestPurpose,
};
use openai_uploads::{Client, Config, Error, PartBody};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A CA and what it signs, all as PEM files in one directory.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("written");
        Self {
            dir,
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A certificate for `usage`, signed by this CA: its PEM and its key's PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate and key, written as `{name}.crt` and `{name}.key`.
    fn client_files(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth);
        let files = (
            self.dir.path().join(format!("{name}.crt")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&files.0, cert).expect("written");
        std::fs::write(&files.1, key).expect("written");
        files
    }
}

async fn tls_emulator(pki: &Pki, client_ca: Option<&str>) -> Emulator {
    let (cert, key) = pki.issue(
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let mut tls = EmulatorTls::new(cert, key);
    if let Some(ca) = client_ca {
        tls = tls.require_client_certificate(ca);
    }
    Emulator::start(EmulatorConfig::default().with_tls(tls))
        .await
        .expect("TLS emulator starts")
}

fn client(emulator: &Emulator, ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> Client {
    let mut config = Config::new()
        .with_api_key("test-key")
        .with_base_url(emulator.base_url())
        .with_root_certificate(ca);
    if let Some((cert, key)) = identity {
        config = config.with_client_identity(cert, key);
    }
    config.client().expect("client builds")
}

/// A refused handshake is a transport failure, never an answer of the API.
async fn assert_refused(client: &Client, emulator: &Emulator) {
    let before = emulator.requests().len();
    let error = client
        .retrieve_file("file-anything")
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(
        emulator.requests().len(),
        before,
        "{:?}",
        emulator.requests()
    );
}

#[tokio::test]
async fn a_client_certificate_is_required_and_accepted_for_a_real_upload() {
    let pki = Pki::new("test CA");
    let emulator = tls_emulator(&pki, Some(&pki.ca_pem)).await;
    assert!(emulator.base_url().starts_with("https://"));

    assert_refused(&client(&emulator, &pki.ca_file(), None), &emulator).await;

    let identity = pki.client_files("client");
    let client = client(&emulator, &pki.ca_file(), Some(&identity));
    let content = b"{\"a\":1}\n{\"b\":2}\n";
    let upload = client
        .create_upload(&CreateUploadRequest {
            filename: "train.jsonl".into(),
            purpose: CreateUploadRequestPurpose::FineTune,
            bytes: content.len() as i64,
            mime_type: "text/jsonl".into(),
            expires_after: None,
        })
        .await
        .expect("created over mutual TLS")
        .into_inner();
    let part = client
        .add_upload_part(&upload.id, PartBody::from_bytes(&content[..]))
        .await
        .expect("part stored")
        .into_inner();
    let completed = client
        .complete_upload(
            &upload.id,
            &CompleteUploadRequest {
                part_ids: vec![part.id],
                md5: Some(common::md5_hex(content)),
            },
        )
        .await
        .expect("completed")
        .into_inner();
    let file = completed.file.expect("a File");
    let retrieved = client
        .retrieve_file(&file.id)
        .await
        .expect("retrieved")
        .into_inner();
    assert_eq!(retrieved.bytes, content.len() as i64);
    assert_eq!(common::download(&client, &file.id).await, content);
    let paths: Vec<String> = emulator.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("test CA");
    let stranger = Pki::new("another CA");
    let emulator = tls_emulator(&pki, Some(&pki.ca_pem)).await;
    let identity = stranger.client_files("stranger");
    assert_refused(
        &client(&emulator, &pki.ca_file(), Some(&identity)),
        &emulator,
    )
    .await;
}

#[tokio::test]
async fn tls_without_client_authentication_needs_no_certificate() {
    let pki = Pki::new("test CA");
    let emulator = tls_emulator(&pki, None).await;
    let error = client(&emulator, &pki.ca_file(), None)
        .retrieve_file("file-missing")
        .await
        .expect_err("no such File");
    assert_eq!(error.status(), Some(404), "{error:?}");

    // A server certificate from a CA the client does not trust is refused.
    let untrusted = Pki::new("untrusted CA");
    assert_refused(&client(&emulator, &untrusted.ca_file(), None), &emulator).await;
}

#[tokio::test]
async fn malformed_emulator_tls_is_refused_at_start() {
    let started = Emulator::start(
        EmulatorConfig::default().with_tls(EmulatorTls::new("not a certificate", "not a key")),
    )
    .await;
    match started.err().expect("refused") {
        Error::Config { field, message } => {
            assert_eq!(field, "tls");
            assert!(message.contains("server certificate"), "{message}");
        }
        other => panic!("expected a TLS configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_let_go_after_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let pki = Pki::new("test CA");
    let (cert, key) = pki.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let emulator = Emulator::start(
        EmulatorConfig::default()
            .with_tls(EmulatorTls::new(cert, key))
            .with_header_read_timeout(std::time::Duration::from_millis(200)),
    )
    .await
    .expect("TLS emulator starts");
    // A TCP connection that never starts the handshake: the emulator closes
    // it once the head's timeout passes, rather than holding its place.
    let mut silent = tokio::net::TcpStream::connect(emulator.addr())
        .await
        .expect("connects");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), silent.read(&mut byte))
        .await
        .expect("the emulator closes a silent connection within the test's bound");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

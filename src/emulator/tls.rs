//! TLS for the emulator, optionally requiring a client certificate (mutual TLS).

use std::fmt;
use std::io;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// What the emulator serves `https://` with: its certificate and key, and the CAs a
/// client certificate must chain to when one is required.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmulatorTls {
    /// The server's certificate chain, PEM, leaf first; it must name `127.0.0.1` (or
    /// the bound address) for clients to accept it.
    pub cert_chain_pem: Vec<u8>,
    /// The server's private key, PEM.
    pub key_pem: Vec<u8>,
    /// CA certificates, PEM. When set, a client must present a certificate issued by
    /// one of them, or the handshake fails.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl EmulatorTls {
    /// TLS with the given certificate chain and key, and no client certificate asked.
    pub fn new(cert_chain_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: None,
        }
    }

    /// Requires a client certificate issued by one of the CAs in `ca_pem`.
    pub fn require_client_certificate(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }
}

impl fmt::Debug for EmulatorTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorTls")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"[redacted]")
            .field("client_ca_pem", &self.client_ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

fn invalid(what: &str, e: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("emulator TLS: {what}: {e}"),
    )
}

fn certificates(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, e))?;
    if certs.is_empty() {
        return Err(invalid(what, "no PEM certificate found"));
    }
    Ok(certs)
}

/// The acceptor for `tls`; a malformed certificate or key is an `InvalidInput` error.
pub(crate) fn acceptor(tls: &EmulatorTls) -> io::Result<TlsAcceptor> {
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let chain = certificates(&tls.cert_chain_pem, "server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| invalid("server key", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("protocol versions", e))?;
    let builder = match &tls.client_ca_pem {
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(ca_pem, "client CA")? {
                roots.add(ca).map_err(|e| invalid("client CA", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid("client CA", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| invalid("server certificate and key", e))?;
    // The emulator speaks HTTP/1.1 only; saying so stops clients offering h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

//! The accept loop and the connections: a cap on open connections, a
//! timeout on request heads and on idle bodies, and a pause after a failed
//! accept.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

#[cfg(doc)]
use super::EmulatorConfig;
use super::{Shared, handle, routes, shape};

/// The caps on connections, from [`EmulatorConfig`].
pub(super) struct ConnectionLimits {
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
}

/// Accepts connections and serves each on a task of its own, at most
/// [`EmulatorConfig::max_connections`] at once: past it, new ones wait in the
/// kernel's queue until one closes.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let router = routes::router(shared.clone());
    let open = Arc::new(Semaphore::new(shared.connections.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let mut failing = AcceptFailures::default();
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                failing.ended();
                stream
            }
            Err(e) => {
                // Out of descriptors, most often: accepting again at once
                // would fail again at once, so wait, longer each time.
                tokio::time::sleep(failing.wait(&e)).await;
                continue;
            }
        };
        // An answer's head and body go out in separate writes: without this
        // Nagle holds the body back until the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let connection = shared.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        let shared = shared.clone();
        let router = router.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let _open = permit;
            let link = shared.link.clone();
            if link.shape.shapes_connections() {
                let stream = shape::Shaped::new(stream, link);
                accept(stream, acceptor, connection, shared, router).await;
            } else {
                accept(stream, acceptor, connection, shared, router).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one connection, after its TLS handshake when there is one; the
/// handshake runs on the connection's own task, so a slow or refused client
/// holds up no other.
async fn accept<S>(
    stream: S,
    acceptor: Option<TlsAcceptor>,
    connection: u64,
    shared: Arc<Shared>,
    router: axum::Router,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match acceptor {
        None => serve_connection(stream, connection, shared, router).await,
        // The handshake is bounded as a request's head is: a client that
        // never says hello would otherwise hold its connection's place.
        Some(acceptor) => {
            let limit = shared.connections.header_read_timeout;
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, connection, shared, router).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "emulator: TLS handshake failed"),
                Err(_) => tracing::debug!("emulator: TLS handshake timed out"),
            }
        }
    }
}

async fn serve_connection<S>(stream: S, connection: u64, shared: Arc<Shared>, router: axum::Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_read = shared.connections.header_read_timeout;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let idle = shared.connections.idle_timeout;
        let request = request.map(|body| idle_limited(body, idle));
        handle(shared.clone(), router.clone(), connection, request)
    });
    // The header read timeout also runs while a kept-alive connection waits
    // for its next request: an idle connection is closed after it.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A request body that fails once no bytes arrived for `idle`: a client
/// that stops sending mid-body does not hold its handler forever.
fn idle_limited(body: Incoming, idle: Duration) -> Body {
    let frames = Body::new(body).into_data_stream();
    Body::from_stream(futures::stream::unfold(
        frames,
        move |mut frames| async move {
            match tokio::time::timeout(idle, frames.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), frames)),
                Ok(Some(Err(e))) => Some((Err(BodyFailure::from(e.to_string())), frames)),
                Ok(None) => None,
                Err(_) => Some((
                    Err(BodyFailure::from(format!(
                        "no bytes of the body for {} s",
                        idle.as_secs_f64()
                    ))),
                    frames,
                )),
            }
        },
    ))
}

type BodyFailure = Box<dyn std::error::Error + Send + Sync>;

/// A run of failed accepts: how long to wait before the next, and one log
/// line per run rather than one per failure.
#[derive(Default)]
struct AcceptFailures {
    run: u32,
}

impl AcceptFailures {
    fn wait(&mut self, error: &std::io::Error) -> Duration {
        if self.run == 0 {
            tracing::warn!(error = %error, "emulator: accepting a connection failed; pausing accepts");
        }
        self.run = self.run.saturating_add(1);
        // 10 ms, doubling up to a second.
        Duration::from_millis(10u64 << self.run.min(7).saturating_sub(1))
            .min(Duration::from_secs(1))
    }

    fn ended(&mut self) {
        if self.run > 0 {
            tracing::info!(failures = self.run, "emulator: accepting connections again");
        }
        self.run = 0;
    }
}

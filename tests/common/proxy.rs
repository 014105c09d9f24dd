//! A lying proxy: forwards every request to a server and rewrites chosen
//! JSON answers on the way back.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Rewrites the JSON answer to `method path` in place.
pub type Rewrite = Arc<dyn Fn(&Method, &str, &mut Value) + Send + Sync>;

/// A proxy on loopback forwarding every request to `upstream` and handing
/// each JSON answer to `rewrite` on the way back.
pub struct LyingProxy {
    /// The proxy's `/v1` base URL, for a client to be pointed at.
    pub base_url: String,
    _server: tokio::task::JoinHandle<()>,
}

impl LyingProxy {
    /// Starts a proxy of `upstream` (a `/v1` base URL) that answers through `rewrite`.
    pub async fn start(upstream: &str, rewrite: Rewrite) -> Self {
        let upstream = upstream.trim_end_matches("/v1").to_string();
        let http = reqwest::Client::new();
        let app = axum::Router::new()
            .fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let (http, upstream, rewrite) = (http.clone(), upstream.clone(), rewrite.clone());
                    async move { forward(http, upstream, rewrite, method, uri, headers, body).await }
                },
            )
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            _server: server,
        }
    }
}

async fn forward(
    http: reqwest::Client,
    upstream: String,
    rewrite: Rewrite,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let mut request = http.request(method.clone(), format!("{upstream}{uri}"));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request
        .body(body)
        .send()
        .await
        .expect("the emulator answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let bytes = answer.bytes().await.expect("the answer's body");
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) if status.is_success() => {
            rewrite(&method, &path, &mut value);
            serde_json::to_vec(&value).unwrap()
        }
        _ => bytes.to_vec(),
    };
    (status, [("content-type", content_type)], body).into_response()
}

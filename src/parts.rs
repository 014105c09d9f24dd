//! A part's bytes, and `addUploadPart` written by hand: progenitor does not
//! generate multipart calls.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo, ResponseValue, encode_path};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Bounds;
use crate::error::{Error, GeneratedError, HookFailure};
use crate::generated::{Client, types};
use crate::hooks::raise;
use crate::validate::Operation;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes handed to the connection at a time from a part in memory: small
/// enough that the body's rate is seen as it moves.
const SLICE: usize = 64 * 1024;

/// Bytes read from a file at a time for a part.
const READ_CHUNK: usize = 256 * 1024;

/// The bytes of one part, with their length known up front.
///
/// A body from a file range or a stream is sent as it is read, never held
/// whole in memory.
pub struct PartBody {
    chunks: BoxStream<'static, Result<Bytes, BoxError>>,
    len: u64,
}

impl PartBody {
    /// A part from bytes already in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        let len = bytes.len() as u64;
        let slices = (0..bytes.len())
            .step_by(SLICE)
            .map(move |at| Ok(bytes.slice(at..(at + SLICE).min(bytes.len()))));
        Self {
            chunks: futures::stream::iter(slices).boxed(),
            len,
        }
    }

    /// A part from a stream that yields exactly `len` bytes.
    pub fn from_stream<S>(stream: S, len: u64) -> Self
    where
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        Self {
            chunks: stream.map_ok(Bytes::from).map_err(Into::into).boxed(),
            len,
        }
    }

    /// A part of `len` bytes read from `path` starting at `offset`.
    ///
    /// The file is opened here, so that a missing or unreadable file fails
    /// before anything is sent; a file shorter than the range fails the send.
    pub async fn from_file_range(path: &Path, offset: u64, len: u64) -> Result<Self, Error> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io(path, e))?;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_CHUNK);
        let name = path.display().to_string();
        // An empty chunk marks the end, where a short file is found out.
        let whole = chunks
            .chain(futures::stream::once(async { Ok(Bytes::new()) }))
            .scan(0u64, move |seen, chunk: std::io::Result<Bytes>| {
                let item = chunk.and_then(|chunk| {
                    *seen += chunk.len() as u64;
                    if chunk.is_empty() && *seen < len {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("{name} ends after {seen} of the part's {len} bytes"),
                        ))
                    } else {
                        Ok(chunk)
                    }
                });
                futures::future::ready(Some(item))
            })
            .try_filter(|chunk| futures::future::ready(!chunk.is_empty()));
        Ok(Self::from_stream(whole, len))
    }

    /// Length of the part in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the part holds no bytes (the API refuses such a part).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Sends one part as a multipart `POST` to `/uploads/{upload_id}/parts`,
/// the bytes in the form field `data`, through the generated client's
/// hooks; [`Client::add_upload_part`](crate::Client::add_upload_part) checks
/// the rules first.
///
/// The part has no total deadline: [`watch`] fails it when its body moves
/// slower than the configured minimum rate, or no answer follows it.
pub(crate) async fn send(
    api: &Client,
    upload_id: &str,
    data: PartBody,
) -> Result<ResponseValue<types::UploadPart>, GeneratedError> {
    let url = format!("{}/uploads/{}/parts", api.baseurl, encode_path(upload_id));
    let pulled = Arc::new(AtomicU64::new(0));
    let handed_over = Arc::new(Notify::new());
    let (counter, done, len) = (pulled.clone(), handed_over.clone(), data.len);
    let counted = data.chunks.inspect_ok(move |chunk| {
        let n = chunk.len() as u64;
        if counter.fetch_add(n, Ordering::Relaxed) + n >= len {
            done.notify_one();
        }
    });
    let body = reqwest::Body::wrap_stream(counted);
    let part = reqwest::multipart::Part::stream_with_length(body, data.len)
        .file_name("part")
        .mime_str("application/octet-stream")?;
    let form = reqwest::multipart::Form::new().part("data", part);
    let mut request = api
        .client
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .multipart(form)
        .build()?;
    let info = OperationInfo {
        operation_id: "add_upload_part",
    };
    api.pre(&mut request, &info).await?;
    let result = tokio::select! {
        result = api.exec(request, &info) => result,
        stalled = watch(&pulled, &handed_over, len, api.inner().bounds) => {
            return Err(raise(stalled));
        }
    };
    api.post(&result, &info).await?;
    let response = result?;
    match response.status().as_u16() {
        200 => ResponseValue::from_response(response).await,
        400..=599 => Err(progenitor_client::Error::ErrorResponse(
            ResponseValue::from_response(response).await?,
        )),
        _ => Err(progenitor_client::Error::UnexpectedResponse(response)),
    }
}

/// Resolves when a part whose body counts its bytes in `pulled` has
/// stalled: fewer than `min_part_rate` bytes per second over the last
/// `part_rate_window`, or, once all `len` bytes are handed over (told by
/// `handed_over`), no answer within `answer_timeout` plus as long again as
/// the body took (what is still in the socket's buffers drains no slower
/// than it was taken).
async fn watch(pulled: &AtomicU64, handed_over: &Notify, len: u64, bounds: Bounds) -> HookFailure {
    let started = Instant::now();
    let window = bounds.part_rate_window;
    let least = bounds.min_part_rate as f64 * window.as_secs_f64();
    let mut ticks = tokio::time::interval((window / 4).max(Duration::from_millis(10)));
    let mut seen = VecDeque::from([(started, 0)]);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = handed_over.notified() => break,
        }
        let (now, moved) = (Instant::now(), pulled.load(Ordering::Relaxed));
        if moved >= len {
            break;
        }
        seen.push_back((now, moved));
        while seen.len() > 1 && seen[1].0 + window <= now {
            seen.pop_front();
        }
        let (then, before) = seen[0];
        if bounds.min_part_rate > 0 && then + window <= now && ((moved - before) as f64) < least {
            return HookFailure::TimedOut {
                operation: Operation::AddUploadPart,
                bound: "min_part_rate",
                limit: window,
                what: format!(
                    "the part's body moved {} bytes in {window:?}, under {} bytes per second; \
                     {moved} of {len} bytes sent",
                    moved - before,
                    bounds.min_part_rate
                ),
            };
        }
    }
    // Saturating: a `Duration::MAX` setting means no deadline, not a panic.
    let wait = bounds.answer_timeout.saturating_add(started.elapsed());
    tokio::time::sleep(wait).await;
    HookFailure::TimedOut {
        operation: Operation::AddUploadPart,
        bound: "answer_timeout",
        limit: wait,
        what: format!("no answer within {wait:?} of the part's last byte"),
    }
}

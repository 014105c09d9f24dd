//! A part's bytes, and `addUploadPart` written by hand: progenitor does not
//! generate multipart calls.

use std::path::Path;

use bytes::Bytes;
use progenitor_client::{ClientHooks, OperationInfo, ResponseValue, encode_path};

use crate::error::{Error, GeneratedError};
use crate::generated::{Client, types};
use crate::upload::chunks::{BufferPool, file_range_stream};

/// The bytes of one part, with their length known up front.
///
/// A body from a file range or a stream is sent as it is read, never held
/// whole in memory.
pub struct PartBody {
    body: reqwest::Body,
    len: u64,
}

impl PartBody {
    /// A part from bytes already in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            len: bytes.len() as u64,
            body: reqwest::Body::from(bytes),
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
            body: reqwest::Body::wrap_stream(stream),
            len,
        }
    }

    /// A part of `len` bytes read from `path` starting at `offset`.
    ///
    /// The file is opened here, so that a missing or unreadable file fails
    /// before anything is sent; a file shorter than the range fails the send.
    pub async fn from_file_range(path: &Path, offset: u64, len: u64) -> Result<Self, Error> {
        let stream = file_range_stream(path, offset, len, BufferPool::default(), None).await?;
        Ok(Self::from_stream(stream, len))
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
pub(crate) async fn send(
    api: &Client,
    upload_id: &str,
    data: PartBody,
) -> Result<ResponseValue<types::UploadPart>, GeneratedError> {
    let url = format!("{}/uploads/{}/parts", api.baseurl, encode_path(upload_id));
    let part = reqwest::multipart::Part::stream_with_length(data.body, data.len)
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
    let result = api.exec(request, &info).await;
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

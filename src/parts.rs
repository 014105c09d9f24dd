//! `addUploadPart`, written by hand: progenitor does not generate multipart calls.

use std::path::Path;

use bytes::Bytes;
use progenitor_client::{ClientHooks, OperationInfo, ResponseValue, encode_path};

use crate::chunks::{BufferPool, file_range_stream};
use crate::error::{Error, GeneratedError, HookFailure};
use crate::generated::{Client, types};
use crate::hooks::unix_now;
use crate::validate::rules;

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

impl Client {
    /// Add one part (at most 64 MB) to a pending Upload.
    ///
    /// Sends a multipart `POST` to `/uploads/{upload_id}/parts` with the bytes
    /// in the form field `data`. Parts may be added in parallel; their order is
    /// set when the Upload is completed. A part that is empty or over 64 MB is
    /// refused before anything is sent.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use openai_uploads::{Config, PartBody};
    /// let client = Config::from_env().client()?;
    /// let part = client
    ///     .add_upload_part("upload_abc123", PartBody::from_bytes(&b"{\"prompt\": 1}\n"[..]))
    ///     .await?;
    /// println!("{}", part.id);
    /// # Ok(()) }
    /// ```
    pub async fn add_upload_part<'a>(
        &'a self,
        upload_id: &'a str,
        data: PartBody,
    ) -> Result<ResponseValue<types::UploadPart>, GeneratedError> {
        let violations = rules::check_add_part(data.len, None, unix_now());
        if !violations.is_empty() {
            return Err(HookFailure::Request(violations).into_custom());
        }
        let url = format!("{}/uploads/{}/parts", self.baseurl, encode_path(upload_id));
        let part = reqwest::multipart::Part::stream_with_length(data.body, data.len)
            .file_name("part")
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("data", part);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .multipart(form)
            .build()?;
        let info = OperationInfo {
            operation_id: "add_upload_part",
        };
        self.pre(&mut request, &info).await?;
        let result = self.exec(request, &info).await;
        self.post(&result, &info).await?;
        let response = result?;
        match response.status().as_u16() {
            200 => ResponseValue::from_response(response).await,
            400..=599 => Err(progenitor_client::Error::ErrorResponse(
                ResponseValue::from_response(response).await?,
            )),
            _ => Err(progenitor_client::Error::UnexpectedResponse(response)),
        }
    }
}

//! The client users hold: every call of the Uploads and Files API, each
//! returning the crate's [`Error`].
//!
//! It wraps the client progenitor generates. Before a request leaves, the
//! [rules](crate::validate::rules) refuse a body the API would refuse, as
//! [`Error::InvalidRequest`]; every answer is checked against the spec on
//! the way back (see [`ValidationMode`](crate::validate::ValidationMode)).
//! Ids a server returns that later calls put in a path are checked to be
//! one path segment, as the caller's are.
//!
//! This layer knows the configuration, the hooks and the validation; the
//! one-call upload is written above it, in [`upload`](crate::upload).

use progenitor_client::{ByteStream, ClientInfo, ResponseValue};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::generated::{self, types};
use crate::hooks::{checked, unix_now};
use crate::parts::PartBody;
use crate::validate::{Operation, RuleViolation, SchemaViolation, rules};

/// A client of the Uploads and Files API, made by [`Config::client`].
///
/// Cloning is cheap: clones share one connection pool.
///
/// ```no_run
/// # async fn run() -> Result<(), openai_uploads::Error> {
/// let client = openai_uploads::Config::from_env().client()?;
/// let file = client.retrieve_file("file-abc123").await?;
/// println!("{} is {} bytes", file.filename, file.bytes);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    api: generated::Client,
}

/// Refuses a request whose body breaks a rule, before anything is sent.
fn refuse(violations: Vec<RuleViolation>) -> Result<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidRequest(violations))
    }
}

/// A request body as the rules read it.
fn as_json(body: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(body)
        .map_err(|e| Error::Internal(format!("a request body does not serialise: {e}")))
}

/// Refuses an answer whose id, at `pointer`, could not be sent back as one
/// path segment (`.`, `..`, empty, or holding `/`): the next call would
/// reach another path than the one meant.
fn path_id(operation: Operation, pointer: &str, id: &str) -> Result<()> {
    let violations: Vec<SchemaViolation> = rules::check_path_id(pointer, id)
        .into_iter()
        .map(|v| SchemaViolation {
            pointer: pointer.to_string(),
            message: format!("{} {} (rule {})", v.value, v.message, v.rule),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::Conformance {
            operation,
            violations,
        })
    }
}

/// Checks the ids of an Upload answer: its own, and its File's once completed.
fn upload_ids(
    operation: Operation,
    upload: ResponseValue<types::Upload>,
) -> Result<ResponseValue<types::Upload>> {
    path_id(operation, "/id", &upload.id)?;
    if let Some(file) = &upload.file {
        path_id(operation, "/file/id", &file.id)?;
    }
    Ok(upload)
}

impl Config {
    /// A client for the configured API.
    pub fn client(&self) -> Result<Client> {
        let url = reqwest::Url::parse(self.base_url()).map_err(|e| Error::Config {
            field: "base_url",
            message: format!("{:?} is not a URL: {e}", self.base_url()),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config {
                field: "base_url",
                message: format!("{:?} is not http or https", self.base_url()),
            });
        }
        Ok(Client {
            api: generated::Client::new_with_client(
                self.base_url(),
                self.http_client()?,
                self.context(),
            ),
        })
    }
}

impl Client {
    /// The base URL requests go to (`https://api.openai.com/v1`).
    pub fn base_url(&self) -> &str {
        self.api.baseurl()
    }

    /// How strictly this client checks answers.
    pub(crate) fn validation(&self) -> crate::validate::ValidationMode {
        self.api.inner().validation
    }

    /// The same client, sharing its connections, checking answers in `mode`.
    pub(crate) fn with_validation(&self, mode: crate::validate::ValidationMode) -> Client {
        Client {
            api: generated::Client::new_with_client(
                self.api.baseurl(),
                self.api.client().clone(),
                crate::config::ClientContext {
                    validation: mode,
                    ..self.api.inner().clone()
                },
            ),
        }
    }

    /// Creates an Upload (`POST /uploads`), to which parts are then added.
    ///
    /// The declared `bytes` (at most 8 GB), the purpose and the MIME type
    /// are checked before sending.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use openai_uploads::types::{CreateUploadRequest, CreateUploadRequestPurpose};
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let upload = client
    ///     .create_upload(&CreateUploadRequest {
    ///         filename: "train.jsonl".into(),
    ///         purpose: CreateUploadRequestPurpose::FineTune,
    ///         bytes: 2_000_000_000,
    ///         mime_type: "text/jsonl".into(),
    ///         expires_after: None,
    ///     })
    ///     .await?;
    /// println!("{} expires at {}", upload.id, upload.expires_at);
    /// # Ok(()) }
    /// ```
    pub async fn create_upload(
        &self,
        body: &types::CreateUploadRequest,
    ) -> Result<ResponseValue<types::Upload>> {
        refuse(rules::check_create_upload(&as_json(body)?))?;
        let op = Operation::CreateUpload;
        upload_ids(op, checked(op, self.api.create_upload(body)).await?)
    }

    /// Adds one part (at most 64 MB) to a pending Upload
    /// (`POST /uploads/{upload_id}/parts`, multipart, the bytes in `data`).
    ///
    /// Parts may be added in parallel; their order is set when the Upload is
    /// completed. An empty part or one over 64 MB is refused before sending.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use openai_uploads::PartBody;
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let body = PartBody::from_file_range("train.jsonl".as_ref(), 0, 1 << 20).await?;
    /// let part = client.add_upload_part("upload_abc123", body).await?;
    /// println!("{}", part.id);
    /// # Ok(()) }
    /// ```
    pub async fn add_upload_part(
        &self,
        upload_id: &str,
        data: PartBody,
    ) -> Result<ResponseValue<types::UploadPart>> {
        let mut violations = rules::check_path_id("upload_id", upload_id);
        violations.extend(rules::check_add_part(data.len(), None, unix_now()));
        refuse(violations)?;
        checked(
            Operation::AddUploadPart,
            crate::parts::send(&self.api, upload_id, data),
        )
        .await
    }

    /// Completes an Upload (`POST /uploads/{upload_id}/complete`) with its
    /// parts in order, and optionally the md5 of the whole file for the
    /// server to check; the answer holds the created File.
    ///
    /// An empty or repeated part list, or an md5 that is not 32 hex digits,
    /// is refused before sending.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use openai_uploads::types::CompleteUploadRequest;
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let done = client
    ///     .complete_upload("upload_abc123", &CompleteUploadRequest {
    ///         part_ids: vec!["part_def456".into()],
    ///         md5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
    ///     })
    ///     .await?;
    /// if let Some(file) = &done.file {
    ///     println!("{}", file.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        body: &types::CompleteUploadRequest,
    ) -> Result<ResponseValue<types::Upload>> {
        let mut violations = rules::check_path_id("upload_id", upload_id);
        violations.extend(rules::check_complete_upload(
            &as_json(body)?,
            None,
            unix_now(),
        ));
        refuse(violations)?;
        let op = Operation::CompleteUpload;
        upload_ids(
            op,
            checked(op, self.api.complete_upload(upload_id, body)).await?,
        )
    }

    /// Cancels a pending Upload (`POST /uploads/{upload_id}/cancel`): no
    /// part can be added to it afterwards. An empty id is refused before
    /// sending, as by every call that takes an id.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let upload = client.cancel_upload("upload_abc123").await?;
    /// println!("{:?}", upload.status);
    /// # Ok(()) }
    /// ```
    pub async fn cancel_upload(&self, upload_id: &str) -> Result<ResponseValue<types::Upload>> {
        refuse(rules::check_path_id("upload_id", upload_id))?;
        let op = Operation::CancelUpload;
        upload_ids(op, checked(op, self.api.cancel_upload(upload_id)).await?)
    }

    /// Lists Files (`GET /files`): one page, after the File id `after`, at
    /// most `limit` of them (1 to 10000), newest first unless `order` says
    /// otherwise, only those of `purpose` if given.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let page = client.list_files(None, Some(20), None, Some("batch")).await?;
    /// for file in &page.data {
    ///     println!("{} {}", file.id, file.filename);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_files(
        &self,
        after: Option<&str>,
        limit: Option<i64>,
        order: Option<types::ListFilesOrder>,
        purpose: Option<&str>,
    ) -> Result<ResponseValue<types::ListFilesResponse>> {
        refuse(rules::check_list_files(limit))?;
        let op = Operation::ListFiles;
        let page = checked(op, self.api.list_files(after, limit, order, purpose)).await?;
        for (i, file) in page.data.iter().enumerate() {
            path_id(op, &format!("/data/{i}/id"), &file.id)?;
        }
        Ok(page)
    }

    /// Retrieves a File (`GET /files/{file_id}`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let file = client.retrieve_file("file-abc123").await?;
    /// println!("{} bytes, {}", file.bytes, file.purpose);
    /// # Ok(()) }
    /// ```
    pub async fn retrieve_file(&self, file_id: &str) -> Result<ResponseValue<types::OpenAiFile>> {
        refuse(rules::check_path_id("file_id", file_id))?;
        let op = Operation::RetrieveFile;
        let file = checked(op, self.api.retrieve_file(file_id)).await?;
        path_id(op, "/id", &file.id)?;
        Ok(file)
    }

    /// Downloads a File's content (`GET /files/{file_id}/content`) as a
    /// stream of byte chunks, never held whole in memory.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// use futures::StreamExt;
    /// let client = openai_uploads::Config::from_env().client()?;
    /// let mut content = client.download_file("file-abc123").await?.into_inner();
    /// let mut bytes = 0;
    /// while let Some(chunk) = content.next().await {
    ///     bytes += chunk.map_err(openai_uploads::Error::Transport)?.len();
    /// }
    /// println!("{bytes} bytes");
    /// # Ok(()) }
    /// ```
    pub async fn download_file(&self, file_id: &str) -> Result<ResponseValue<ByteStream>> {
        refuse(rules::check_path_id("file_id", file_id))?;
        checked(Operation::DownloadFile, self.api.download_file(file_id)).await
    }

    /// Deletes a File (`DELETE /files/{file_id}`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), openai_uploads::Error> {
    /// let client = openai_uploads::Config::from_env().client()?;
    /// assert!(client.delete_file("file-abc123").await?.deleted);
    /// # Ok(()) }
    /// ```
    pub async fn delete_file(
        &self,
        file_id: &str,
    ) -> Result<ResponseValue<types::DeleteFileResponse>> {
        refuse(rules::check_path_id("file_id", file_id))?;
        checked(Operation::DeleteFile, self.api.delete_file(file_id)).await
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ClientContext;
    use crate::generated;
    use progenitor_client::ClientInfo;

    #[test]
    fn the_generated_constructor_needs_no_set_up() {
        // It builds its own HTTP client: it must find a TLS provider without
        // the crate's `Config` having run first.
        let api = generated::Client::new("https://api.openai.com/v1", ClientContext::default());
        assert_eq!(api.baseurl(), "https://api.openai.com/v1");
    }
}

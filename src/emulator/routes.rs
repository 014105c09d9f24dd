//! The emulator's HTTP surface: the Uploads and Files routes under `/v1`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::Value;

use super::Shared;
use super::failure::{ApiFailure, first_violation};
use super::storage::write_part;
use super::store::{FileQuery, NewPart};
use crate::types;
use crate::validate::rules::{self, MAX_PART_BYTES};

/// Room for the multipart framing around a 64 MB part.
const PART_BODY_LIMIT: usize = MAX_PART_BYTES as usize + 1024 * 1024;

/// An id from the path, decoded, or why it could not be.
type PathId = Result<Path<String>, axum::extract::rejection::PathRejection>;

/// The id in the path, named `field`, as one segment (rule
/// `path.id.segment`, the client's own), in the error envelope if not.
fn path_id(field: &str, id: PathId) -> Result<String, ApiFailure> {
    let Path(id) = id.map_err(|e| ApiFailure {
        param: Some(field.to_string()),
        ..ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("{field}: {}", e.body_text()),
        )
    })?;
    first_violation(rules::check_path_id(field, &id))?;
    Ok(id)
}

/// A JSON answer of type `T`, or an error answer.
type Answer<T> = Result<axum::Json<T>, ApiFailure>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let max_body = shared.max_body_bytes;
    Router::new()
        .route("/v1/uploads", post(create_upload))
        .route(
            "/v1/uploads/{upload_id}/parts",
            post(add_part).layer(DefaultBodyLimit::max(PART_BODY_LIMIT)),
        )
        .route("/v1/uploads/{upload_id}/complete", post(complete_upload))
        .route("/v1/uploads/{upload_id}/cancel", post(cancel_upload))
        .route("/v1/files", get(list_files))
        .route(
            "/v1/files/{file_id}",
            get(retrieve_file).delete(delete_file),
        )
        .route("/v1/files/{file_id}/content", get(download_file))
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        // The parts route's own limit, set nearer its handler, wins there.
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(shared)
}

/// A body read whole, up to the emulator's cap.
type BodyRead = Result<Bytes, axum::extract::rejection::BytesRejection>;

fn json_body(body: BodyRead, cap: usize) -> Result<Value, ApiFailure> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is larger than the {cap} bytes this emulator reads")
        } else {
            format!("reading the body: {e}")
        };
        ApiFailure::new(status, "invalid_request_error", message)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

async fn create_upload(State(shared): State<Arc<Shared>>, body: BodyRead) -> Answer<types::Upload> {
    let body = json_body(body, shared.max_body_bytes)?;
    shared.store.create_upload(&body).map(axum::Json)
}

async fn add_part(
    State(shared): State<Arc<Shared>>,
    upload_id: PathId,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Answer<types::UploadPart> {
    let upload_id = path_id("upload_id", upload_id)?;
    let mut multipart = multipart.map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("expected a multipart/form-data body: {e}"),
        )
    })?;
    shared.store.accept_part(&upload_id)?;
    let invalid = |message: String, param: &str| ApiFailure {
        param: Some(param.to_string()),
        ..ApiFailure::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    };

    // Until the part is recorded, its file goes whichever way the request
    // ends: a refusal, a broken body, a dropped connection.
    let mut stored: Option<(Unrecorded, u64)> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| invalid(format!("reading the multipart body: {e}"), "data"))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name != "data" {
            return Err(invalid(
                format!("unknown form field {name:?}: a part has only `data`"),
                &name,
            ));
        }
        if stored.is_some() {
            return Err(invalid("`data` sent twice".into(), "data"));
        }
        let part = Unrecorded(shared.store.new_part());
        let chunks = futures::stream::unfold(field, |mut field| async move {
            field.chunk().await.transpose().map(|chunk| (chunk, field))
        })
        .boxed();
        let len = write_part(part.0.path.as_deref(), chunks).await?;
        stored = Some((part, len));
    }
    let Some((part, len)) = stored else {
        return Err(invalid("the form field `data` is required".into(), "data"));
    };
    let answer = shared.store.add_part(&upload_id, &part.0, len)?;
    part.recorded();
    shared.recordings.part(&upload_id, len);
    Ok(axum::Json(answer))
}

/// A part whose file is removed when this is dropped, unless it was recorded.
struct Unrecorded(NewPart);

impl Unrecorded {
    fn recorded(mut self) {
        self.0.path = None;
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        if let Some(path) = &self.0.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn complete_upload(
    State(shared): State<Arc<Shared>>,
    upload_id: PathId,
    body: BodyRead,
) -> Answer<types::Upload> {
    let upload_id = path_id("upload_id", upload_id)?;
    let body = json_body(body, shared.max_body_bytes)?;
    shared.recordings.completion(&upload_id, &body);
    shared
        .store
        .complete_upload(&upload_id, &body)
        .await
        .map(axum::Json)
}

async fn cancel_upload(
    State(shared): State<Arc<Shared>>,
    upload_id: PathId,
) -> Answer<types::Upload> {
    let upload_id = path_id("upload_id", upload_id)?;
    shared.store.cancel_upload(&upload_id).map(axum::Json)
}

async fn list_files(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<types::ListFilesResponse> {
    let Query(query) = query.map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("bad query: {e}"),
        )
    })?;
    first_violation(rules::check_list_files(query.limit))?;
    // The spec's enum decides which orders there are.
    if let Some(order) = &query.order
        && serde_json::from_value::<types::ListFilesOrder>(Value::String(order.clone())).is_err()
    {
        return Err(ApiFailure {
            param: Some("order".into()),
            ..ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("order: {order:?} is not `asc` or `desc`"),
            )
        });
    }
    Ok(axum::Json(shared.store.list_files(&query)))
}

async fn retrieve_file(
    State(shared): State<Arc<Shared>>,
    file_id: PathId,
) -> Answer<types::OpenAiFile> {
    let file_id = path_id("file_id", file_id)?;
    shared.store.file(&file_id).map(axum::Json)
}

async fn delete_file(
    State(shared): State<Arc<Shared>>,
    file_id: PathId,
) -> Answer<types::DeleteFileResponse> {
    let file_id = path_id("file_id", file_id)?;
    shared.store.delete_file(&file_id).map(axum::Json)
}

async fn download_file(
    State(shared): State<Arc<Shared>>,
    file_id: PathId,
) -> Result<Response, ApiFailure> {
    let file_id = path_id("file_id", file_id)?;
    let (bytes, parts) = shared.store.file_parts(&file_id)?;
    let stream = futures::stream::iter(parts)
        .map(|path| super::paths::open_part(&path))
        .map(|opened| match opened {
            Ok(file) => {
                let file = tokio::fs::File::from_std(file);
                tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).boxed()
            }
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, bytes.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn unmatched(method: axum::http::Method, uri: axum::http::Uri) -> ApiFailure {
    ApiFailure {
        code: Some("unknown_url".into()),
        ..ApiFailure::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("no route for {method} {}", uri.path()),
        )
    }
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiFailure {
    ApiFailure {
        code: Some("method_not_allowed".into()),
        ..ApiFailure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("{method} is not allowed on {}", uri.path()),
        )
    }
}

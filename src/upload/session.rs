//! The Upload's life: open it (create, or take up the one in the state
//! file), complete it, cancel it, and decide what a failure leaves behind.

use std::collections::BTreeMap;
use std::time::Duration;

use super::job::Job;
use super::retry::{RetryPolicy, Stage, with_retries};
use super::state::ResumeState;
use crate::error::Error;
use crate::generated::types;
use crate::hooks::unix_now;
use crate::validate::rules::UPLOAD_LIFETIME_SECONDS;
use crate::validate::{Operation, ValidationMode, answers};

/// A resumed Upload must have at least this long left to live (5 minutes).
pub(crate) const RESUME_MARGIN_SECONDS: i64 = 300;

/// The Upload being filled.
pub(crate) struct Session {
    pub upload_id: String,
    pub expires_at: i64,
    /// Parts confirmed by an earlier run: part number → part id.
    pub confirmed: BTreeMap<u32, String>,
    /// Whether the Upload was taken up from the state file.
    pub resumed: bool,
    /// The state kept in the job's state file, if it has one.
    pub state: Option<ResumeState>,
}

/// Takes up the Upload of the job's state file if it still has time to
/// live, or creates one.
pub(crate) async fn open(job: &mut Job) -> Result<Session, Error> {
    if let (Some(path), Some(state)) = (&job.settings.state_file, job.saved.take()) {
        let left = state.expires_at - unix_now();
        if left > RESUME_MARGIN_SECONDS {
            return Ok(Session {
                upload_id: state.upload_id.clone(),
                expires_at: state.expires_at,
                confirmed: state.parts.clone(),
                resumed: true,
                state: Some(state),
            });
        }
        let why = if left <= 0 {
            format!(
                "its Upload {} has expired (at {})",
                state.upload_id,
                crate::error::unix_time(state.expires_at)
            )
        } else {
            format!(
                "its Upload {} expires in {left} s, too soon to finish (a resume needs \
                 {RESUME_MARGIN_SECONDS} s)",
                state.upload_id
            )
        };
        if !job.settings.fresh_if_expired {
            return Err(Error::Resume {
                path: path.clone(),
                message: format!(
                    "{why}; allow a fresh Upload, or remove the state file to start anew"
                ),
            });
        }
        tracing::warn!(
            state_file = %path.display(),
            "{why}: starting a fresh Upload"
        );
    }
    create(job).await
}

/// Creates a fresh Upload and, with a state file, records it there before
/// any part is sent.
pub(crate) async fn create(job: &Job) -> Result<Session, Error> {
    let request = types::CreateUploadRequest {
        filename: job.settings.filename.clone(),
        purpose: job.settings.purpose,
        bytes: job.plan.total() as i64,
        mime_type: job.mime_type.clone(),
        expires_after: job
            .settings
            .expires_after
            .map(|seconds| types::FileExpirationAfter {
                anchor: types::FileExpirationAfterAnchor::CreatedAt,
                seconds,
            }),
    };
    let upload = with_retries(
        &job.settings.retry,
        Stage::Opening,
        "create_upload",
        || async {
            job.client
                .create_upload(&request)
                .await
                .map(|r| r.into_inner())
        },
    )
    .await?;
    let mismatches = answers::check_created(&request, &upload);
    if !mismatches.is_empty() {
        // The server holds an Upload that is not the one asked for.
        cancel(job, &upload.id).await;
        return Err(Error::Mismatch {
            operation: Operation::CreateUpload,
            mismatches,
        });
    }
    let mut session = Session {
        upload_id: upload.id.clone(),
        expires_at: upload.expires_at,
        confirmed: BTreeMap::new(),
        resumed: false,
        state: None,
    };
    if let Some(path) = &job.settings.state_file {
        let state = ResumeState::new(upload.id.clone(), upload.expires_at, job.identity.clone());
        if let Err(error) = state.save(path) {
            // Nothing could resume this Upload: leave nothing pending.
            cancel(job, &upload.id).await;
            return Err(error);
        }
        session.state = Some(state);
    }
    Ok(session)
}

/// Completes the Upload with its parts in order, and checks the answer
/// against the Upload.
///
/// A successful answer that breaks the spec is still a completion: it
/// becomes [`Error::CompletedNonConforming`], never a failure that would
/// cancel the Upload. In strict mode the call is made leniently, so that
/// the answer is decoded, and checked strictly here.
///
/// When an attempt may have reached the server but its answer was lost (the
/// connection broke after the request was sent) and a retry is then refused,
/// the first attempt may have completed the Upload: its File is adopted only
/// on the evidence [`completed_file`] describes; otherwise the outcome is
/// [`Error::CompletionUnknown`].
pub(crate) async fn complete(
    job: &Job,
    session: &Session,
    body: &types::CompleteUploadRequest,
) -> Result<types::Upload, Error> {
    let strict = job.client.validation() == ValidationMode::Strict;
    let client = if strict {
        job.client.with_validation(ValidationMode::Lenient)
    } else {
        job.client.clone()
    };
    let answer_lost = std::sync::atomic::AtomicBool::new(false);
    let (result, received) = crate::hooks::keeping_body(with_retries(
        &job.settings.retry,
        Stage::Filling,
        "complete_upload",
        || async {
            let answer = client
                .complete_upload(&session.upload_id, body)
                .await
                .map(|r| r.into_inner());
            if let Err(Error::Transport(e)) = &answer
                && !e.is_connect()
            {
                answer_lost.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            answer
        },
    ))
    .await;
    match result {
        Ok(upload) => check_completion(job, session, upload, strict, received.as_deref()),
        Err(Error::Conformance {
            operation: Operation::CompleteUpload,
            violations,
        }) => Err(Error::CompletedNonConforming {
            upload_id: session.upload_id.clone(),
            upload: None,
            violations,
        }),
        Err(error)
            if answer_lost.load(std::sync::atomic::Ordering::Relaxed) && upload_refused(&error) =>
        {
            tracing::warn!(
                upload_id = %session.upload_id,
                %error,
                "a completion's answer was lost and its retry is refused; looking for its File"
            );
            // A lookup that fails leaves the outcome unknown, not failed.
            let (adopted, candidates) = match completed_file(job, session, body).await {
                Ok(found) => found,
                Err(lookup) => {
                    tracing::warn!(upload_id = %session.upload_id, %lookup, "could not list the Files");
                    (None, Vec::new())
                }
            };
            match adopted {
                Some(file) => {
                    tracing::info!(
                        upload_id = %session.upload_id,
                        file_id = %file.id,
                        "the File holds this upload's bytes (same md5): taken as its completion"
                    );
                    Ok(completed(job, session, file))
                }
                None => Err(Error::CompletionUnknown {
                    upload_id: session.upload_id.clone(),
                    candidates,
                    cause: Box::new(error),
                }),
            }
        }
        Err(other) => Err(other),
    }
}

/// A completion's answer, checked against the Upload it completes, and in
/// strict mode against the spec.
fn check_completion(
    job: &Job,
    session: &Session,
    upload: types::Upload,
    strict: bool,
    received: Option<&[u8]>,
) -> Result<types::Upload, Error> {
    let purpose = job.settings.purpose.to_string();
    let sent = answers::SentUpload {
        id: &session.upload_id,
        filename: &job.settings.filename,
        purpose: &purpose,
        bytes: job.plan.total() as i64,
    };
    let mismatches = answers::check_completed(sent, &upload);
    if !mismatches.is_empty() {
        return Err(Error::Mismatch {
            operation: Operation::CompleteUpload,
            mismatches,
        });
    }
    if strict {
        // The answer as received: decoding dropped any field the spec does
        // not declare, which strict mode refuses.
        let value = match received.and_then(|body| serde_json::from_slice(body).ok()) {
            Some(value) => value,
            None => serde_json::to_value(&upload)
                .map_err(|e| Error::Internal(format!("an Upload does not serialise: {e}")))?,
        };
        let report = crate::validate::check_response(
            Operation::CompleteUpload,
            200,
            &value,
            ValidationMode::Strict,
        );
        if !report.is_ok() {
            return Err(Error::CompletedNonConforming {
                upload_id: session.upload_id.clone(),
                upload: Some(Box::new(upload)),
                violations: report.violations,
            });
        }
    }
    Ok(upload)
}

/// The File an unanswered completion of this Upload made, and the ids of
/// every File that could be it.
///
/// Candidates are the Files of the Upload's purpose with its name and size,
/// created since the Upload was. Name and size are not evidence: another
/// upload of a file of that name and size makes such a File too. A
/// candidate is adopted only when its content's md5 is the md5 the
/// completion sent, and it is the only candidate that holds those bytes:
/// the File then holds exactly this file. Without an md5 (`md5(false)`)
/// nothing is adopted.
async fn completed_file(
    job: &Job,
    session: &Session,
    body: &types::CompleteUploadRequest,
) -> Result<(Option<types::OpenAiFile>, Vec<String>), Error> {
    let purpose = job.settings.purpose.to_string();
    let files = with_retries(
        &job.settings.retry,
        Stage::Filling,
        "list_files",
        || async {
            job.client
                .list_files(
                    None,
                    Some(100),
                    Some(types::ListFilesOrder::Desc),
                    Some(&purpose),
                )
                .await
                .map(|r| r.into_inner())
        },
    )
    .await?;
    let created_at = created_at(session);
    let candidates: Vec<types::OpenAiFile> = files
        .data
        .into_iter()
        .filter(|file| {
            file.filename == job.settings.filename
                && file.bytes == job.plan.total() as i64
                && file.created_at >= created_at
        })
        .collect();
    let ids = candidates.iter().map(|f| f.id.clone()).collect();
    let Some(md5) = &body.md5 else {
        return Ok((None, ids));
    };
    let mut holding = Vec::new();
    for file in candidates {
        match content_md5(job, &file.id).await {
            Ok(digest) if digest.eq_ignore_ascii_case(md5) => holding.push(file),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(file_id = %file.id, %error, "could not read the File to compare it");
                return Ok((None, ids));
            }
        }
    }
    if holding.len() == 1 {
        return Ok((holding.pop(), ids));
    }
    Ok((None, ids))
}

/// The md5 of a File's content, downloaded.
async fn content_md5(job: &Job, file_id: &str) -> Result<String, Error> {
    use futures::StreamExt;
    let mut stream = job.client.download_file(file_id).await?.into_inner();
    let mut md5 = crate::digest::Md5::new();
    while let Some(chunk) = stream.next().await {
        md5.update(&chunk.map_err(Error::Transport)?);
    }
    Ok(crate::digest::hex(&md5.finalize()))
}

/// When the Upload was created, as far as its expiry tells.
fn created_at(session: &Session) -> i64 {
    session.expires_at - UPLOAD_LIFETIME_SECONDS
}

/// The Upload as its lost completion answer would have shown it.
fn completed(job: &Job, session: &Session, file: types::OpenAiFile) -> types::Upload {
    types::Upload {
        bytes: job.plan.total() as i64,
        created_at: created_at(session),
        expires_at: session.expires_at,
        file: Some(file),
        filename: job.settings.filename.clone(),
        id: session.upload_id.clone(),
        object: Some(types::UploadObject::Upload),
        purpose: job.settings.purpose.to_string(),
        status: crate::types::UploadStatus::Completed,
    }
}

/// Cancels the Upload on the server, trying briefly: a server that cannot
/// be reached now will let it expire. What happened is logged as it is: a
/// refusal is the server's word on the Upload (completed already, unknown),
/// not an Upload left pending.
pub(crate) async fn cancel(job: &Job, upload_id: &str) {
    let brief = RetryPolicy {
        max_retries: 2,
        max_delay: Duration::from_secs(1),
        ..job.settings.retry.clone()
    };
    let cancelled = with_retries(&brief, Stage::Filling, "cancel_upload", || async {
        job.client.cancel_upload(upload_id).await
    })
    .await;
    match cancelled {
        Ok(answer) => {
            let mismatches = answers::check_cancelled(upload_id, &answer);
            if !mismatches.is_empty() {
                let error = Error::Mismatch {
                    operation: Operation::CancelUpload,
                    mismatches,
                };
                tracing::warn!(upload_id, %error, "the Upload may not be cancelled");
            }
        }
        Err(error) if RetryPolicy::is_retryable(&error) => tracing::warn!(
            upload_id,
            %error,
            "could not cancel the Upload: it may stay pending until it expires, unused"
        ),
        Err(error) => tracing::warn!(
            upload_id,
            %error,
            "the server refused to cancel the Upload"
        ),
    }
}

/// Whether a later run could mend `error`: transient failures whose
/// retries were spent, the network gone, a pause. Refusals, local failures
/// and a cancel are not.
pub(crate) fn mendable(error: &Error) -> bool {
    match error {
        Error::Part { cause, .. } => mendable(cause),
        Error::Paused => true,
        other => RetryPolicy::is_retryable(other),
    }
}

/// Whether `error` says that the Upload no longer takes this upload's parts
/// (expired, cancelled, unknown, or stricter than documented about what
/// earlier runs left in it): a refusal no retry mends, but which a fresh
/// Upload would not meet. Refusals of the key (401, 403) are not.
pub(crate) fn upload_refused(error: &Error) -> bool {
    match error {
        Error::Part { cause, .. } => upload_refused(cause),
        Error::Api { status, .. } | Error::UnexpectedResponse { status, .. } => {
            (400..500).contains(status)
                && !matches!(status, 401 | 403)
                && !RetryPolicy::is_retryable(error)
        }
        Error::InvalidRequest(violations) => violations
            .iter()
            .any(|v| v.rule == crate::validate::rules::Rule::UploadNotExpired),
        _ => false,
    }
}

/// What a failed upload leaves behind. With a state file and an error a
/// later run could mend, the Upload stays pending and the state file stays:
/// the error becomes [`Error::Interrupted`]. Otherwise the Upload is
/// cancelled on the server and the state file removed.
pub(crate) async fn give_up(job: &Job, session: &Session, error: Error) -> Error {
    match &error {
        // The Upload is completed: nothing to cancel, nothing to resume.
        Error::CompletedNonConforming { .. } => {
            if let Some(path) = &job.settings.state_file {
                let _ = std::fs::remove_file(path);
            }
            return error;
        }
        // It may be completed: a cancel would not tell, and the state file
        // names the Upload for whoever looks into it.
        Error::CompletionUnknown { .. } => return error,
        _ => {}
    }
    if let Some(path) = &job.settings.state_file
        && mendable(&error)
    {
        tracing::info!(upload_id = %session.upload_id, "leaving the Upload pending to resume");
        return Error::Interrupted {
            upload_id: session.upload_id.clone(),
            expires_at: session.expires_at,
            state_file: path.clone(),
            reason: Box::new(error),
        };
    }
    tracing::warn!(upload_id = %session.upload_id, %error, "cancelling the Upload");
    cancel(job, &session.upload_id).await;
    if let Some(path) = &job.settings.state_file {
        let _ = std::fs::remove_file(path);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        crate::error::api_error(status, None)
    }

    fn part(source: Error) -> Error {
        Error::Part {
            part_number: 3,
            offset: 0,
            len: 1,
            cause: Box::new(source),
        }
    }

    #[test]
    fn transient_failures_and_pauses_are_mendable_refusals_are_not() {
        for status in [408, 409, 429, 500, 503] {
            assert!(mendable(&part(api(status))), "{status}");
        }
        assert!(mendable(&Error::Paused));
        for status in [400, 401, 404, 413] {
            assert!(!mendable(&part(api(status))), "{status}");
        }
        assert!(!mendable(&Error::Cancelled));
        assert!(!mendable(&Error::InvalidRequest(vec![])));
        assert!(!mendable(&Error::io(
            "x",
            std::io::Error::other("disk gone")
        )));
    }

    #[test]
    fn a_refused_upload_is_told_from_a_refused_key_and_from_transient_failures() {
        for status in [400, 404, 410, 413, 422] {
            assert!(upload_refused(&part(api(status))), "{status}");
        }
        for status in [401, 403, 408, 409, 429, 500] {
            assert!(!upload_refused(&part(api(status))), "{status}");
        }
        assert!(!upload_refused(&Error::Paused));
    }
}

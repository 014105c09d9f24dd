//! The emulator's state machine: Uploads, the parts they were given, and Files.
//!
//! A `std::sync::Mutex` guards the maps and is never held across an await;
//! part bytes go straight to disk as they arrive ([`super::storage`]). With a
//! data directory the records are saved there after every change
//! ([`super::persist`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::Value;

use super::clock::Clock;
use super::failure::{ApiFailure, first_violation};
use super::persist::StateFile;
use super::storage::md5_of;
use crate::types;
use crate::validate::rules::{self, UPLOAD_LIFETIME_SECONDS};
use crate::validate::{TrackedUpload, UploadPhase};

pub(super) struct UploadRecord {
    pub(super) id: String,
    pub(super) filename: String,
    pub(super) purpose: String,
    pub(super) created_at: i64,
    pub(super) file_expires_after: Option<i64>,
    pub(super) tracked: TrackedUpload,
    pub(super) part_paths: HashMap<String, PathBuf>,
    pub(super) file_id: Option<String>,
}

pub(super) struct FileRecord {
    pub(super) id: String,
    pub(super) bytes: u64,
    pub(super) created_at: i64,
    pub(super) expires_at: Option<i64>,
    pub(super) filename: String,
    pub(super) purpose: String,
    pub(super) parts: Vec<PathBuf>,
}

#[derive(Default)]
pub(super) struct Maps {
    pub(super) uploads: HashMap<String, UploadRecord>,
    pub(super) files: HashMap<String, FileRecord>,
    /// Uploads counted as pending: at least those that are, and those that
    /// expired since the last count.
    pending: usize,
}

impl Maps {
    /// Counts the Uploads pending at `now` again, and when the first of
    /// them expires.
    fn count_pending(&mut self, now: i64) -> Option<i64> {
        let pending = self
            .uploads
            .values()
            .filter(|u| u.tracked.phase_at(now) == UploadPhase::Pending);
        let (count, first_expiry) = pending.fold((0, None), |(count, first), u| {
            let at = u.tracked.expires_at;
            (count + 1, Some(first.map_or(at, |f: i64| f.min(at))))
        });
        self.pending = count;
        first_expiry
    }
}

/// Uploads, parts and Files of one emulator.
pub(crate) struct Store {
    parts_dir: PathBuf,
    /// Part bytes are counted, not stored or hashed.
    discard: bool,
    pub(crate) clock: Clock,
    /// Most Uploads pending at once.
    max_pending: usize,
    maps: Mutex<Maps>,
    /// Where the records are kept across restarts, if they are.
    state: Option<StateFile>,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

impl Store {
    /// A store keeping parts in `dir`; with `persist`, its records too, starting from
    /// those an earlier store left there.
    pub(crate) fn new(
        dir: &Path,
        clock: Clock,
        discard: bool,
        persist: bool,
        max_pending: usize,
    ) -> std::io::Result<Self> {
        let parts_dir = dir.join("parts");
        std::fs::create_dir_all(&parts_dir)?;
        let state = persist.then(|| StateFile::new(dir, &parts_dir));
        let mut maps = match &state {
            Some(state) => state.load()?,
            None => Maps::default(),
        };
        maps.count_pending(clock.now());
        Ok(Self {
            parts_dir,
            discard,
            max_pending,
            clock,
            maps: Mutex::new(maps),
            state,
        })
    }

    /// Saves the records after a change. Called with the lock held, so saves
    /// happen in the order of the changes and the last one wins.
    fn persist(&self, maps: &Maps) {
        if let Some(state) = &self.state
            && let Err(e) = state.save(maps)
        {
            tracing::warn!(error = %e, "emulator: saving its state failed");
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn create_upload(&self, body: &Value) -> Result<types::Upload, ApiFailure> {
        first_violation(rules::check_create_upload(body))?;
        let now = self.clock.now();
        let record = UploadRecord {
            id: new_id("upload_"),
            filename: body["filename"].as_str().unwrap_or_default().to_string(),
            purpose: body["purpose"].as_str().unwrap_or_default().to_string(),
            created_at: now,
            file_expires_after: body
                .pointer("/expires_after/seconds")
                .and_then(Value::as_i64),
            tracked: TrackedUpload::pending(
                body["bytes"].as_u64().unwrap_or_default(),
                now + UPLOAD_LIFETIME_SECONDS,
            ),
            part_paths: HashMap::new(),
            file_id: None,
        };
        let mut maps = self.maps();
        if maps.pending >= self.max_pending {
            // Expired Uploads free their places only when counted again.
            let first_expiry = maps.count_pending(now);
            if maps.pending >= self.max_pending {
                return Err(too_many_pending(self.max_pending, first_expiry, now));
            }
        }
        maps.pending += 1;
        let rendered = self.render_upload(&maps, &record);
        maps.uploads.insert(record.id.clone(), record);
        self.persist(&maps);
        Ok(rendered)
    }

    fn render_upload(&self, maps: &Maps, upload: &UploadRecord) -> types::Upload {
        types::Upload {
            id: upload.id.clone(),
            object: Some(types::UploadObject::Upload),
            bytes: upload.tracked.bytes as i64,
            created_at: upload.created_at,
            filename: upload.filename.clone(),
            purpose: upload.purpose.clone(),
            status: status(upload.tracked.phase_at(self.clock.now())),
            expires_at: upload.tracked.expires_at,
            file: upload
                .file_id
                .as_ref()
                .and_then(|id| maps.files.get(id))
                .map(render_file),
        }
    }

    /// Fails unless the Upload exists and is pending.
    pub(crate) fn accept_part(&self, upload_id: &str) -> Result<(), ApiFailure> {
        let maps = self.maps();
        let upload = maps
            .uploads
            .get(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_upload_pending(
            &upload.tracked,
            self.clock.now(),
        ))
    }

    /// A fresh id for a part being received, and the path to store it at
    /// unless the store discards content.
    pub(crate) fn part_path(&self) -> (String, Option<PathBuf>) {
        let id = new_id("part_");
        let path = (!self.discard).then(|| self.parts_dir.join(&id));
        (id, path)
    }

    /// Records a part fully written to `path`, if the Upload still takes it.
    pub(crate) fn add_part(
        &self,
        upload_id: &str,
        part_id: String,
        path: Option<PathBuf>,
        len: u64,
    ) -> Result<types::UploadPart, ApiFailure> {
        let now = self.clock.now();
        let mut maps = self.maps();
        let upload = maps
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_add_part(len, Some(&upload.tracked), now))?;
        upload.tracked.parts.insert(part_id.clone(), len);
        if let Some(path) = path {
            upload.part_paths.insert(part_id.clone(), path);
        }
        self.persist(&maps);
        Ok(types::UploadPart {
            id: part_id,
            object: types::UploadPartObject::UploadPart,
            created_at: now,
            upload_id: upload_id.to_string(),
        })
    }

    pub(crate) async fn complete_upload(
        &self,
        upload_id: &str,
        body: &Value,
    ) -> Result<types::Upload, ApiFailure> {
        let (paths, bytes) = {
            let maps = self.maps();
            let upload = maps
                .uploads
                .get(upload_id)
                .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
            first_violation(rules::check_complete_upload(
                body,
                Some(&upload.tracked),
                self.clock.now(),
            ))?;
            let paths: Vec<PathBuf> = body["part_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| upload.part_paths.get(id.as_str()?).cloned())
                .collect();
            (paths, upload.tracked.bytes)
        };

        let md5 = body.get("md5").and_then(Value::as_str);
        // A discarding store has no bytes to check an md5 against.
        if let Some(expected) = md5.filter(|_| !self.discard) {
            let actual = md5_of(paths.clone()).await?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(ApiFailure {
                    param: Some("md5".into()),
                    code: Some("md5_mismatch".into()),
                    ..ApiFailure::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        format!("md5 {expected} does not match the assembled bytes ({actual})"),
                    )
                });
            }
        }

        let now = self.clock.now();
        let mut maps = self.maps();
        let maps = &mut *maps;
        let upload = maps
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        // Another request may have completed or cancelled it while the md5 ran.
        first_violation(rules::check_complete_upload(
            body,
            Some(&upload.tracked),
            now,
        ))?;
        maps.pending = maps.pending.saturating_sub(1);
        let file = FileRecord {
            id: new_id("file-"),
            bytes,
            created_at: now,
            expires_at: upload.file_expires_after.map(|s| now + s),
            filename: upload.filename.clone(),
            purpose: upload.purpose.clone(),
            parts: paths,
        };
        upload.tracked.phase = UploadPhase::Completed;
        upload.file_id = Some(file.id.clone());
        maps.files.insert(file.id.clone(), file);
        self.persist(maps);
        let upload = &maps.uploads[upload_id];
        Ok(self.render_upload(maps, upload))
    }

    pub(crate) fn cancel_upload(&self, upload_id: &str) -> Result<types::Upload, ApiFailure> {
        let mut maps = self.maps();
        let upload = maps
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_cancel_upload(Some(&upload.tracked)))?;
        let was_pending = upload.tracked.phase_at(self.clock.now()) == UploadPhase::Pending;
        upload.tracked.phase = UploadPhase::Cancelled;
        for path in upload.part_paths.values() {
            let _ = std::fs::remove_file(path);
        }
        if was_pending {
            maps.pending = maps.pending.saturating_sub(1);
        }
        self.persist(&maps);
        let upload = &maps.uploads[upload_id];
        Ok(self.render_upload(&maps, upload))
    }

    pub(crate) fn file(&self, file_id: &str) -> Result<types::OpenAiFile, ApiFailure> {
        let maps = self.maps();
        let file = maps
            .files
            .get(file_id)
            .ok_or_else(|| ApiFailure::not_found("File", file_id))?;
        Ok(render_file(file))
    }

    /// One page of Files, ordered by creation (`desc` by default, as the API).
    pub(crate) fn list_files(&self, query: &FileQuery) -> types::ListFilesResponse {
        let maps = self.maps();
        let mut files: Vec<&FileRecord> = maps
            .files
            .values()
            .filter(|f| query.purpose.as_ref().is_none_or(|p| &f.purpose == p))
            .collect();
        // Ties in created_at (same second) fall back to the id, so pages are stable.
        files.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        if query.order.as_deref() != Some("asc") {
            files.reverse();
        }
        if let Some(after) = &query.after {
            let start = files
                .iter()
                .position(|f| &f.id == after)
                .map_or(0, |i| i + 1);
            files.drain(..start);
        }
        // Checked by the route against rule `list.limit.range`.
        let limit = usize::try_from(query.limit.unwrap_or(rules::MAX_LIST_LIMIT)).unwrap_or(1);
        let has_more = files.len() > limit;
        files.truncate(limit);
        let id = |f: Option<&&FileRecord>| f.map(|f| f.id.clone()).unwrap_or_default();
        types::ListFilesResponse {
            object: "list".into(),
            data: files.iter().map(|f| render_file(f)).collect(),
            // The spec requires strings: an empty page carries empty ones.
            first_id: id(files.first()),
            last_id: id(files.last()),
            has_more,
        }
    }

    /// The part files that make up a File's bytes, in order.
    pub(crate) fn file_parts(&self, file_id: &str) -> Result<(u64, Vec<PathBuf>), ApiFailure> {
        let maps = self.maps();
        let file = maps
            .files
            .get(file_id)
            .ok_or_else(|| ApiFailure::not_found("File", file_id))?;
        if self.discard {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("this emulator discards content: File {file_id} has no bytes to return"),
            ));
        }
        Ok((file.bytes, file.parts.clone()))
    }

    pub(crate) fn delete_file(
        &self,
        file_id: &str,
    ) -> Result<types::DeleteFileResponse, ApiFailure> {
        let file = {
            let mut maps = self.maps();
            let file = maps
                .files
                .remove(file_id)
                .ok_or_else(|| ApiFailure::not_found("File", file_id))?;
            self.persist(&maps);
            file
        };
        for path in &file.parts {
            let _ = std::fs::remove_file(path);
        }
        Ok(types::DeleteFileResponse {
            id: file.id,
            object: types::DeleteFileResponseObject::File,
            deleted: true,
        })
    }
}

/// The query of `GET /v1/files`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct FileQuery {
    purpose: Option<String>,
    pub(super) limit: Option<i64>,
    pub(super) order: Option<String>,
    after: Option<String>,
}

/// The answer to a create past the cap on pending Uploads: a rate limit, to
/// be tried again when the first pending Upload expires (within a minute:
/// one may end sooner).
fn too_many_pending(cap: usize, first_expiry: Option<i64>, now: i64) -> ApiFailure {
    let wait = first_expiry.map_or(1, |at| (at - now).clamp(1, 60));
    ApiFailure::rate_limited(
        format!("{cap} Uploads are pending, the most this emulator keeps: complete or cancel one"),
        std::time::Duration::from_secs(wait as u64),
    )
}

/// The status an Upload in `phase` is answered with.
fn status(phase: UploadPhase) -> types::UploadStatus {
    match phase {
        UploadPhase::Pending => types::UploadStatus::Pending,
        UploadPhase::Completed => types::UploadStatus::Completed,
        UploadPhase::Cancelled => types::UploadStatus::Cancelled,
        UploadPhase::Expired => types::UploadStatus::Expired,
    }
}

fn render_file(file: &FileRecord) -> types::OpenAiFile {
    types::OpenAiFile {
        id: file.id.clone(),
        object: types::OpenAiFileObject::File,
        bytes: file.bytes as i64,
        created_at: file.created_at,
        expires_at: file.expires_at,
        filename: file.filename.clone(),
        // A purpose the spec does not list for Files (`evals`) stays as sent.
        purpose: types::FilePurpose::from(file.purpose.as_str()),
        status: types::FileStatus::Processed,
        status_details: None,
    }
}

//! The emulator's state machine: Uploads, the parts they were given, and Files.
//!
//! The state is held in maps, and every change is written to the database
//! ([`super::database`]) in the same step, under one `std::sync::Mutex` that
//! is never held across an await: changes reach the database in the order
//! they happen, and a change the database refuses is not made. Part bytes go
//! straight to disk as they arrive ([`super::storage`]), as files named by
//! the parts' row ids ([`super::paths`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::StatusCode;
use serde_json::Value;

use super::clock::Clock;
use super::database::{Contents, Database, FileRow, PartRow, UploadRow};
use super::failure::{ApiFailure, first_violation};
use super::paths::PartsDir;
use super::storage::md5_of;
use crate::error::Error;
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
    /// The row id of each part, by part id.
    pub(super) part_seqs: HashMap<String, i64>,
    pub(super) file_id: Option<String>,
}

pub(super) struct FileRecord {
    pub(super) id: String,
    pub(super) bytes: u64,
    pub(super) created_at: i64,
    pub(super) expires_at: Option<i64>,
    pub(super) filename: String,
    pub(super) purpose: String,
    /// The row ids of the parts that make up its bytes, in order.
    pub(super) parts: Vec<i64>,
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

/// The maps and the database they are written to, locked together.
struct State {
    maps: Maps,
    database: Database,
}

/// A part about to be received: its id, its row id, and the file its bytes
/// go to unless the store discards them.
pub(crate) struct NewPart {
    pub(crate) id: String,
    seq: i64,
    pub(crate) path: Option<PathBuf>,
}

/// Uploads, parts and Files of one emulator.
pub(crate) struct Store {
    parts: PartsDir,
    /// Part bytes are counted, not stored or hashed.
    discard: bool,
    pub(crate) clock: Clock,
    /// Most Uploads pending at once.
    max_pending: usize,
    /// The row id of the next part.
    next_seq: AtomicI64,
    state: Mutex<State>,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

/// A change the database refused: answered 500, and not made.
fn unsaved(error: std::io::Error) -> ApiFailure {
    ApiFailure::internal(format!("recording the change failed: {error}"))
}

/// The maps the database's records make.
fn maps_of(contents: Contents, now: i64) -> Maps {
    let mut maps = Maps::default();
    for upload in contents.uploads {
        let mut tracked = TrackedUpload::pending(upload.bytes, upload.expires_at);
        tracked.phase = upload.phase;
        let record = UploadRecord {
            id: upload.id,
            filename: upload.filename,
            purpose: upload.purpose,
            created_at: upload.created_at,
            file_expires_after: upload.file_expires_after,
            tracked,
            part_seqs: HashMap::new(),
            file_id: upload.file_id,
        };
        maps.uploads.insert(record.id.clone(), record);
    }
    let mut placed: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for part in contents.parts {
        if let Some(position) = part.position {
            placed
                .entry(part.upload_id.clone())
                .or_default()
                .push((position, part.seq));
        }
        if let Some(upload) = maps
            .uploads
            .get_mut(&part.upload_id)
            .filter(|u| u.tracked.phase != UploadPhase::Completed)
        {
            upload.tracked.parts.insert(part.id.clone(), part.bytes);
            upload.part_seqs.insert(part.id, part.seq);
        }
    }
    for file in contents.files {
        let mut parts = placed.remove(&file.upload_id).unwrap_or_default();
        parts.sort_unstable();
        let record = FileRecord {
            id: file.id,
            bytes: file.bytes,
            created_at: file.created_at,
            expires_at: file.expires_at,
            filename: file.filename,
            purpose: file.purpose,
            parts: parts.into_iter().map(|(_, seq)| seq).collect(),
        };
        maps.files.insert(record.id.clone(), record);
    }
    maps.count_pending(now);
    maps
}

impl Store {
    /// A store of the records and parts in `dir`, starting from those an
    /// earlier store left there. With `durable`, every change survives the
    /// emulator being killed.
    ///
    /// A database or parts directory that is not this emulator's, or that
    /// disagrees with the other, is refused, naming the file at fault;
    /// nothing outside `dir` is read, written or removed.
    pub(crate) fn new(
        dir: &Path,
        clock: Clock,
        discard: bool,
        durable: bool,
        max_pending: usize,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let parts = PartsDir::open(dir)?;
        let database = Database::open(dir, durable)?;
        let contents = database.contents()?;
        let stored = contents
            .parts
            .iter()
            .filter(|part| part.stored)
            .map(|part| (part.seq, part.bytes))
            .collect();
        parts.check(&stored)?;
        let next_seq = database.last_part_seq()? + 1;
        let maps = maps_of(contents, clock.now());
        Ok(Self {
            parts,
            discard,
            max_pending,
            clock,
            next_seq: AtomicI64::new(next_seq),
            state: Mutex::new(State { maps, database }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Removes the files of the parts `seqs`, once no record names them.
    fn remove_parts(&self, seqs: &[i64]) {
        if !self.discard {
            for &seq in seqs {
                self.parts.remove(seq);
            }
        }
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
            part_seqs: HashMap::new(),
            file_id: None,
        };
        let mut state = self.state();
        let State { maps, database } = &mut *state;
        if maps.pending >= self.max_pending {
            // Expired Uploads free their places only when counted again.
            let first_expiry = maps.count_pending(now);
            if maps.pending >= self.max_pending {
                return Err(too_many_pending(self.max_pending, first_expiry, now));
            }
        }
        database
            .insert_upload(&UploadRow {
                id: record.id.clone(),
                filename: record.filename.clone(),
                purpose: record.purpose.clone(),
                bytes: record.tracked.bytes,
                created_at: record.created_at,
                expires_at: record.tracked.expires_at,
                file_expires_after: record.file_expires_after,
                phase: record.tracked.phase,
                file_id: None,
            })
            .map_err(unsaved)?;
        maps.pending += 1;
        let rendered = self.render_upload(maps, &record);
        maps.uploads.insert(record.id.clone(), record);
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
        let state = self.state();
        let upload = state
            .maps
            .uploads
            .get(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_upload_pending(
            &upload.tracked,
            self.clock.now(),
        ))
    }

    /// A fresh part about to be received.
    pub(crate) fn new_part(&self) -> NewPart {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        NewPart {
            id: new_id("part_"),
            seq,
            path: (!self.discard).then(|| self.parts.path(seq)),
        }
    }

    /// Records a part of `len` bytes, fully written to its file, if the
    /// Upload still takes it.
    pub(crate) fn add_part(
        &self,
        upload_id: &str,
        part: &NewPart,
        len: u64,
    ) -> Result<types::UploadPart, ApiFailure> {
        let now = self.clock.now();
        let mut state = self.state();
        let State { maps, database } = &mut *state;
        let upload = maps
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_add_part(len, Some(&upload.tracked), now))?;
        database
            .insert_part(&PartRow {
                seq: part.seq,
                id: part.id.clone(),
                upload_id: upload_id.to_string(),
                bytes: len,
                stored: part.path.is_some(),
                position: None,
            })
            .map_err(unsaved)?;
        upload.tracked.parts.insert(part.id.clone(), len);
        upload.part_seqs.insert(part.id.clone(), part.seq);
        Ok(types::UploadPart {
            id: part.id.clone(),
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
        let listed = |upload: &UploadRecord| -> Vec<i64> {
            body["part_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| upload.part_seqs.get(id.as_str()?).copied())
                .collect()
        };
        let seqs = {
            let state = self.state();
            let upload = state
                .maps
                .uploads
                .get(upload_id)
                .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
            first_violation(rules::check_complete_upload(
                body,
                Some(&upload.tracked),
                self.clock.now(),
            ))?;
            listed(upload)
        };

        let md5 = body.get("md5").and_then(Value::as_str);
        // A discarding store has no bytes to check an md5 against.
        if let Some(expected) = md5.filter(|_| !self.discard) {
            let paths = seqs.iter().map(|&seq| self.parts.path(seq)).collect();
            let actual = md5_of(paths).await?;
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
        let mut state = self.state();
        let State { maps, database } = &mut *state;
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
        let file = FileRecord {
            id: new_id("file-"),
            bytes: upload.tracked.bytes,
            created_at: now,
            expires_at: upload.file_expires_after.map(|s| now + s),
            filename: upload.filename.clone(),
            purpose: upload.purpose.clone(),
            parts: seqs,
        };
        let dropped = database
            .complete(
                &FileRow {
                    id: file.id.clone(),
                    upload_id: upload_id.to_string(),
                    bytes: file.bytes,
                    created_at: file.created_at,
                    expires_at: file.expires_at,
                    filename: file.filename.clone(),
                    purpose: file.purpose.clone(),
                },
                &file.parts,
            )
            .map_err(unsaved)?;
        maps.pending = maps.pending.saturating_sub(1);
        upload.tracked.phase = UploadPhase::Completed;
        upload.file_id = Some(file.id.clone());
        // The File holds the parts now; a completed Upload takes no more
        // and needs none of them in memory.
        upload.part_seqs = HashMap::new();
        upload.tracked.parts = HashMap::new();
        maps.files.insert(file.id.clone(), file);
        let upload = &maps.uploads[upload_id];
        let rendered = self.render_upload(maps, upload);
        drop(state);
        self.remove_parts(&dropped);
        Ok(rendered)
    }

    pub(crate) fn cancel_upload(&self, upload_id: &str) -> Result<types::Upload, ApiFailure> {
        let mut state = self.state();
        let State { maps, database } = &mut *state;
        let upload = maps
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ApiFailure::not_found("Upload", upload_id))?;
        first_violation(rules::check_cancel_upload(Some(&upload.tracked)))?;
        let dropped = database.cancel(upload_id).map_err(unsaved)?;
        let was_pending = upload.tracked.phase_at(self.clock.now()) == UploadPhase::Pending;
        upload.tracked.phase = UploadPhase::Cancelled;
        upload.tracked.parts = HashMap::new();
        upload.part_seqs = HashMap::new();
        if was_pending {
            maps.pending = maps.pending.saturating_sub(1);
        }
        let upload = &maps.uploads[upload_id];
        let rendered = self.render_upload(maps, upload);
        drop(state);
        self.remove_parts(&dropped);
        Ok(rendered)
    }

    pub(crate) fn file(&self, file_id: &str) -> Result<types::OpenAiFile, ApiFailure> {
        let state = self.state();
        let file = state
            .maps
            .files
            .get(file_id)
            .ok_or_else(|| ApiFailure::not_found("File", file_id))?;
        Ok(render_file(file))
    }

    /// One page of Files, ordered by creation (`desc` by default, as the API).
    pub(crate) fn list_files(&self, query: &FileQuery) -> types::ListFilesResponse {
        let state = self.state();
        let mut files: Vec<&FileRecord> = state
            .maps
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
        let state = self.state();
        let file = state
            .maps
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
        let paths = file.parts.iter().map(|&seq| self.parts.path(seq)).collect();
        Ok((file.bytes, paths))
    }

    pub(crate) fn delete_file(
        &self,
        file_id: &str,
    ) -> Result<types::DeleteFileResponse, ApiFailure> {
        let mut state = self.state();
        let State { maps, database } = &mut *state;
        if !maps.files.contains_key(file_id) {
            return Err(ApiFailure::not_found("File", file_id));
        }
        let dropped = database.delete_file(file_id).map_err(unsaved)?;
        let file = maps.files.remove(file_id);
        drop(state);
        self.remove_parts(&dropped);
        Ok(types::DeleteFileResponse {
            id: file.map_or_else(|| file_id.to_string(), |f| f.id),
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

//! The store's records kept as JSON in the data directory, so that an emulator
//! started again on the same directory still has its Uploads and Files.
//!
//! The whole state is written after every change: to a temporary file beside
//! `state.json`, flushed to disk, then renamed over it, so a crash leaves
//! either the old state or the new one, never half of one. Part bytes are
//! already files in `parts/`; the state records which part is which.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{FileRecord, Maps, UploadRecord};
use crate::validate::{TrackedUpload, UploadPhase};

/// The state file's name inside the data directory.
const STATE_FILE: &str = "state.json";

/// Bumped when the layout changes, so an old file is refused rather than misread.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    uploads: Vec<StoredUpload>,
    files: Vec<StoredFile>,
}

#[derive(Serialize, Deserialize)]
struct StoredUpload {
    id: String,
    filename: String,
    purpose: String,
    created_at: i64,
    file_expires_after: Option<i64>,
    bytes: u64,
    phase: UploadPhase,
    expires_at: i64,
    parts: Vec<StoredPart>,
    file_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredPart {
    id: String,
    bytes: u64,
    /// The part's file in `parts/`, when its bytes were kept.
    file: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    id: String,
    bytes: u64,
    created_at: i64,
    expires_at: Option<i64>,
    filename: String,
    purpose: String,
    /// Files in `parts/` that make up its bytes, in order.
    parts: Vec<String>,
}

/// Part files are recorded by name, so a data directory that moves still works.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where a store's state lives, and how it is written and read.
pub(crate) struct StateFile {
    dir: PathBuf,
    parts_dir: PathBuf,
}

impl StateFile {
    pub(crate) fn new(dir: &Path, parts_dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            parts_dir: parts_dir.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The records saved by an earlier emulator, or empty maps when there are none.
    pub(crate) fn load(&self) -> io::Result<Maps> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Maps::default()),
            Err(e) => return Err(e),
        };
        let invalid = |message: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {message}", path.display()),
            )
        };
        let state: State = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if state.version != VERSION {
            return Err(invalid(format!(
                "state version {} is not {VERSION}",
                state.version
            )));
        }
        let mut maps = Maps::default();
        for upload in state.uploads {
            let mut tracked = TrackedUpload::pending(upload.bytes, upload.expires_at);
            tracked.phase = upload.phase;
            let mut part_paths = HashMap::new();
            for part in upload.parts {
                if let Some(file) = part.file {
                    part_paths.insert(part.id.clone(), self.parts_dir.join(file));
                }
                tracked.parts.insert(part.id, part.bytes);
            }
            let record = UploadRecord {
                id: upload.id,
                filename: upload.filename,
                purpose: upload.purpose,
                created_at: upload.created_at,
                file_expires_after: upload.file_expires_after,
                tracked,
                part_paths,
                file_id: upload.file_id,
            };
            maps.uploads.insert(record.id.clone(), record);
        }
        for file in state.files {
            let record = FileRecord {
                id: file.id,
                bytes: file.bytes,
                created_at: file.created_at,
                expires_at: file.expires_at,
                filename: file.filename,
                purpose: file.purpose,
                parts: file.parts.iter().map(|p| self.parts_dir.join(p)).collect(),
            };
            maps.files.insert(record.id.clone(), record);
        }
        Ok(maps)
    }

    /// Replaces the saved state with `maps`, atomically and durably.
    pub(crate) fn save(&self, maps: &Maps) -> io::Result<()> {
        let mut uploads: Vec<StoredUpload> = maps
            .uploads
            .values()
            .map(|upload| {
                let mut parts: Vec<StoredPart> = upload
                    .tracked
                    .parts
                    .iter()
                    .map(|(id, bytes)| StoredPart {
                        id: id.clone(),
                        bytes: *bytes,
                        file: upload.part_paths.get(id).map(|p| file_name(p)),
                    })
                    .collect();
                parts.sort_by(|a, b| a.id.cmp(&b.id));
                StoredUpload {
                    id: upload.id.clone(),
                    filename: upload.filename.clone(),
                    purpose: upload.purpose.clone(),
                    created_at: upload.created_at,
                    file_expires_after: upload.file_expires_after,
                    bytes: upload.tracked.bytes,
                    phase: upload.tracked.phase,
                    expires_at: upload.tracked.expires_at,
                    parts,
                    file_id: upload.file_id.clone(),
                }
            })
            .collect();
        uploads.sort_by(|a, b| a.id.cmp(&b.id));
        let mut files: Vec<StoredFile> = maps
            .files
            .values()
            .map(|file| StoredFile {
                id: file.id.clone(),
                bytes: file.bytes,
                created_at: file.created_at,
                expires_at: file.expires_at,
                filename: file.filename.clone(),
                purpose: file.purpose.clone(),
                parts: file.parts.iter().map(|p| file_name(p)).collect(),
            })
            .collect();
        files.sort_by(|a, b| a.id.cmp(&b.id));
        let state = State {
            version: VERSION,
            uploads,
            files,
        };
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer(&mut temp, &state).map_err(io::Error::other)?;
        temp.flush()?;
        temp.as_file().sync_all()?;
        temp.persist(self.path()).map_err(|e| e.error)?;
        // The rename itself is durable only once the directory is.
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

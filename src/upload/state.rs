//! The resume state file: which parts of which Upload are already confirmed.
//!
//! Written after each confirmed part, before the part counts as confirmed:
//! into a temporary file beside it, flushed to disk, renamed over the old
//! one, and the directory flushed too, so that a crash or a power cut leaves
//! either the old state or the new one. It holds ids and sizes only, never a
//! key.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

const FORMAT: u32 = 4;

/// What identifies the source and settings of an upload, so that a state
/// file is only taken up by the same bytes, cut the same way, for the same
/// Upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// File name given to the Upload.
    pub filename: String,
    /// Purpose given to the Upload.
    pub purpose: String,
    /// MIME type given to the Upload.
    pub mime_type: String,
    /// Size of the source in bytes.
    pub bytes: u64,
    /// Part size the plan was made with.
    pub part_size: u64,
    /// Last modification of a source file, Unix milliseconds; `None` for a reader.
    pub modified_ms: Option<u64>,
}

/// What a resumed upload needs to carry on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Version of this format.
    pub format: u32,
    /// The Upload being filled.
    pub upload_id: String,
    /// When the Upload expires, Unix seconds.
    pub expires_at: i64,
    /// The source the parts were read from.
    pub source: SourceIdentity,
    /// Confirmed parts: part number → part id.
    pub parts: BTreeMap<u32, String>,
    /// CRC32C of each confirmed part's bytes as sent: part number →
    /// checksum. A resume reads the part's range again and sends the part
    /// anew when it differs.
    pub checksums: BTreeMap<u32, u32>,
}

impl ResumeState {
    pub(crate) fn new(upload_id: String, expires_at: i64, source: SourceIdentity) -> Self {
        Self {
            format: FORMAT,
            upload_id,
            expires_at,
            source,
            parts: BTreeMap::new(),
            checksums: BTreeMap::new(),
        }
    }

    /// Reads a state file; `Ok(None)` when there is none. A file that is not
    /// a state file of this version is an error naming it.
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let refuse = |message: String| Error::Resume {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            refuse(format!(
                "not a resume state file (not JSON: {e}); remove it, or name another file"
            ))
        })?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(FORMAT)) {
            return Err(refuse(match format {
                Some(n) => format!(
                    "written in state format {n}, this version reads {FORMAT}; remove it to \
                     start anew"
                ),
                None => "not a resume state file (no `format`); remove it, or name another \
                         file"
                    .to_string(),
            }));
        }
        let state: Self = serde_json::from_value(value).map_err(|e| {
            refuse(format!(
                "a damaged resume state file ({e}); remove it to start anew"
            ))
        })?;
        Ok(Some(state))
    }

    /// Whether this state can resume an upload of `now`: the same file
    /// (size and modification time), name, purpose and MIME type. When
    /// `part_size_given` is false the part size is taken from the state;
    /// otherwise it must match too.
    pub(crate) fn check(
        &self,
        path: &Path,
        now: &SourceIdentity,
        part_size_given: bool,
    ) -> Result<(), Error> {
        let was = &self.source;
        let mismatch = |field, saved: String, given: String| {
            Err(Error::ResumeMismatch {
                path: path.to_path_buf(),
                field,
                saved,
                given,
            })
        };
        if was.bytes != now.bytes {
            return mismatch("bytes", was.bytes.to_string(), now.bytes.to_string());
        }
        if was.modified_ms != now.modified_ms {
            let show = |ms: Option<u64>| {
                ms.and_then(utc_millis)
                    .unwrap_or_else(|| "none (a reader)".to_string())
            };
            return mismatch("modified", show(was.modified_ms), show(now.modified_ms));
        }
        for (field, saved, given) in [
            ("filename", &was.filename, &now.filename),
            ("purpose", &was.purpose, &now.purpose),
            ("mime_type", &was.mime_type, &now.mime_type),
        ] {
            if saved != given {
                return mismatch(field, saved.clone(), given.clone());
            }
        }
        if part_size_given && was.part_size != now.part_size {
            return mismatch(
                "part_size",
                was.part_size.to_string(),
                now.part_size.to_string(),
            );
        }
        Ok(())
    }

    /// Writes the state to `path` atomically and durably: a temporary file
    /// in the same directory, flushed, renamed over `path`, and the
    /// directory flushed. Errors name `path`.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::io(path, e.into()))?;
        let dir = directory_of(path);
        let mut temp = tempfile::Builder::new()
            .prefix(".upload-state")
            .tempfile_in(dir)
            .map_err(|e| Error::io(path, e))?;
        temp.write_all(&text)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| Error::io(path, e))?;
        temp.persist(path).map_err(|e| Error::io(path, e.error))?;
        sync_dir(dir).map_err(|e| Error::io(path, e))
    }
}

/// Milliseconds since the epoch as a UTC time to the millisecond, when
/// the calendar holds it.
pub(crate) fn utc_millis(ms: u64) -> Option<String> {
    let time = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some(time.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
}

/// The directory `path` is in: its parent, or `.` for a bare file name.
pub(crate) fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Flushes a directory's entries, so that a rename in it survives a crash.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened for flushing here; the rename is still atomic.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceIdentity {
        SourceIdentity {
            filename: "train.jsonl".into(),
            purpose: "fine-tune".into(),
            mime_type: "text/jsonl".into(),
            bytes: 1000,
            part_size: 4096,
            modified_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn saves_and_loads_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.state");
        let mut state = ResumeState::new("upload_1".into(), 99, source());
        state.save(&path).unwrap();
        state.parts.insert(1, "part_1".into());
        state.save(&path).unwrap();
        assert_eq!(ResumeState::load(&path).unwrap(), Some(state));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the state file remains: {names:?}");
        assert_eq!(ResumeState::load(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn a_corrupt_foreign_or_old_file_is_refused_naming_it_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for (text, says) in [
            ("{not json", "not JSON"),
            ("{\"hello\": 1}", "no `format`"),
            ("{\"format\": 3, \"upload_id\": \"u\"}", "format 3"),
            ("{\"format\": 4, \"upload_id\": 7}", "damaged"),
        ] {
            let path = dir.path().join("x.state");
            std::fs::write(&path, text).unwrap();
            let error = ResumeState::load(&path).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("x.state"), "{message}");
            assert!(message.contains(says), "{message}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn a_mismatch_names_the_field_and_the_value_that_would_match() {
        let path = Path::new("s.state");
        let state = ResumeState::new("upload_1".into(), 99, source());
        let field = |now: SourceIdentity, given: bool| match state.check(path, &now, given) {
            Err(error @ Error::ResumeMismatch { .. }) => {
                let message = error.to_string();
                let Error::ResumeMismatch { field, saved, .. } = error else {
                    unreachable!()
                };
                (field, saved, message)
            }
            other => panic!("expected a mismatch, got {other:?}"),
        };
        let (f, saved, hint) = field(
            SourceIdentity {
                part_size: 8192,
                ..source()
            },
            true,
        );
        assert_eq!((f, saved.as_str()), ("part_size", "4096"));
        assert!(hint.contains("--part-size 4096"), "{hint}");
        // A part size left unset is taken from the state.
        let unset = SourceIdentity {
            part_size: 8192,
            ..source()
        };
        assert!(state.check(path, &unset, false).is_ok());
        let (f, saved, hint) = field(
            SourceIdentity {
                purpose: "batch".into(),
                ..source()
            },
            false,
        );
        assert_eq!((f, saved.as_str()), ("purpose", "fine-tune"));
        assert!(hint.contains("cannot change"), "{hint}");
        let (f, _, _) = field(
            SourceIdentity {
                modified_ms: Some(1),
                ..source()
            },
            false,
        );
        assert_eq!(f, "modified");
        let (f, _, _) = field(
            SourceIdentity {
                bytes: 1,
                ..source()
            },
            false,
        );
        assert_eq!(f, "bytes");
        assert!(state.check(path, &source(), true).is_ok());
    }
}

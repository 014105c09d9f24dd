//! The resume state file: which parts of which Upload are already confirmed.
//!
//! Written atomically (a temporary file renamed over the old one) after each
//! confirmed part. It holds ids and sizes only, never a key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

const FORMAT: u32 = 2;

/// What identifies the source of an upload, so that a state file is only
/// taken up by the same bytes cut the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// File name given to the Upload.
    pub filename: String,
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
}

impl ResumeState {
    pub(crate) fn new(upload_id: String, expires_at: i64, source: SourceIdentity) -> Self {
        Self {
            format: FORMAT,
            upload_id,
            expires_at,
            source,
            parts: BTreeMap::new(),
        }
    }

    /// Reads a state file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| Error::Resume {
            path: path.to_path_buf(),
            message: format!("not a state file: {e}"),
        })?;
        if state.format != FORMAT {
            return Err(Error::Resume {
                path: path.to_path_buf(),
                message: format!("format {} is not {FORMAT}", state.format),
            });
        }
        Ok(Some(state))
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut temp = PathBuf::from(path);
        temp.as_mut_os_string().push(".tmp");
        let text = serde_json::to_vec_pretty(self).expect("state serialises");
        std::fs::write(&temp, text).map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))
    }
}

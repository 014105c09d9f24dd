//! The files the emulator opens: part files it named itself, inside its data
//! directory, never through a symbolic link.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

fn options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    // A link planted in `parts/` must not lead a read or a write elsewhere.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Opens a stored part for reading.
pub(crate) fn open_part(path: &Path) -> io::Result<std::fs::File> {
    options().read(true).open(path)
}

/// Creates a part's file, which must not exist yet.
pub(crate) fn create_part(path: &Path) -> io::Result<std::fs::File> {
    options().write(true).create_new(true).open(path)
}

/// The directory of part files, `parts/` in the data directory; each part
/// is the file named by its row id in the database.
pub(crate) struct PartsDir {
    dir: PathBuf,
}

fn refused(path: &Path, why: &str) -> Error {
    Error::io(path, io::Error::new(io::ErrorKind::InvalidData, why))
}

impl PartsDir {
    /// `parts/` in `data_dir`, created if missing; refused if it is a link
    /// or not a directory.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, Error> {
        let dir = data_dir.join("parts");
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => return Err(refused(&dir, "not a directory of this emulator's parts")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        Ok(Self { dir })
    }

    /// The file of the part with row id `seq`: inside `parts/`, whatever
    /// the number.
    pub(crate) fn path(&self, seq: i64) -> PathBuf {
        self.dir.join(seq.to_string())
    }

    /// Removes the file of the part `seq`, if there is one.
    pub(crate) fn remove(&self, seq: i64) {
        let path = self.path(seq);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "emulator: removing a part failed");
        }
    }

    /// Checks the directory against the recorded parts, `(seq, bytes)` of
    /// each whose bytes were kept: each must be a regular file of its
    /// length, or the start is refused, naming it. Part files no record
    /// names (left by a part cut off by a crash) are removed; files whose
    /// names are not row ids are left alone.
    pub(crate) fn check(&self, stored: &HashMap<i64, u64>) -> Result<(), Error> {
        for (&seq, &bytes) in stored {
            let path = self.path(seq);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| {
                refused(
                    &path,
                    &format!("the bytes of a recorded part cannot be read: {e}"),
                )
            })?;
            if !meta.file_type().is_file() {
                return Err(refused(&path, "a recorded part that is not a regular file"));
            }
            if meta.len() != bytes {
                return Err(refused(
                    &path,
                    &format!("a recorded part of {bytes} bytes holds {}", meta.len()),
                ));
            }
        }
        let listing = |e| Error::io(&self.dir, e);
        for entry in std::fs::read_dir(&self.dir).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let Some(seq) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<i64>().ok())
            else {
                continue;
            };
            if stored.contains_key(&seq) {
                continue;
            }
            if !entry.file_type().map_err(listing)?.is_file() {
                return Err(refused(&entry.path(), "not a part this emulator wrote"));
            }
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
        Ok(())
    }
}

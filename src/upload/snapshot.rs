//! The source file as a snapshot: what identifies it when the upload
//! starts, checked again before the Upload is completed, and the checksum
//! of a part's bytes, which a resume checks again before trusting a part
//! an earlier run sent.
//!
//! The md5 cannot see a file that grew (it covers the range read at the
//! start) and is off with `md5(false)`; the identity sees any write: the
//! size, the modification time, and on Unix the device, the inode and the
//! status change time, which a write moves even when the modification time
//! is set back.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::state::utc_millis;
use crate::error::{Error, SourceChange};

/// What identifies a file's content at one moment, as the file system tells
/// it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    size: u64,
    modified_ns: Option<u128>,
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
    #[cfg(unix)]
    ctime_ns: i128,
}

impl Snapshot {
    /// The file at `path` now.
    pub(crate) fn of(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::from_metadata(&meta))
    }

    pub(crate) fn from_metadata(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            modified_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos()),
            #[cfg(unix)]
            device: meta.dev(),
            #[cfg(unix)]
            inode: meta.ino(),
            #[cfg(unix)]
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }

    /// The first difference between this snapshot and `now`, named.
    pub(crate) fn change_to(&self, now: &Snapshot) -> Option<SourceChange> {
        let change = |field: &str, before: String, after: String| {
            Some(SourceChange {
                field: field.to_string(),
                before,
                after,
            })
        };
        if self.size != now.size {
            return change(
                "size",
                format!("{} bytes", self.size),
                format!("{} bytes", now.size),
            );
        }
        if self.modified_ns != now.modified_ns {
            return change("modified", time(self.modified_ns), time(now.modified_ns));
        }
        #[cfg(unix)]
        {
            if (self.device, self.inode) != (now.device, now.inode) {
                return change(
                    "inode",
                    format!("{}:{}", self.device, self.inode),
                    format!("{}:{} (the file was replaced)", now.device, now.inode),
                );
            }
            if self.ctime_ns != now.ctime_ns {
                let ns = |n: i128| u128::try_from(n).ok();
                return change(
                    "status change time",
                    time(ns(self.ctime_ns)),
                    format!("{} (written to)", time(ns(now.ctime_ns))),
                );
            }
        }
        None
    }
}

/// Nanoseconds since the epoch as a UTC time to the millisecond.
fn time(ns: Option<u128>) -> String {
    ns.and_then(|ns| u64::try_from(ns / 1_000_000).ok())
        .and_then(utc_millis)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The CRC32C of `len` bytes of `path` from `offset`: the checksum a resume
/// state keeps per part.
pub(crate) fn range_crc32c(path: &Path, offset: u64, len: u64) -> Result<u32, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let mut left = len;
    let mut crc = 0;
    let mut buffer = vec![0; 256 * 1024];
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file
            .read(&mut buffer[..want])
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            // Shorter than the part: a checksum of fewer bytes, which differs.
            break;
        }
        crc = crc32c::crc32c_append(crc, &buffer[..n]);
        left -= n as u64;
    }
    Ok(crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_keeps_size_and_mtime_is_still_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let before = Snapshot::of(&path).unwrap();
        assert_eq!(before.change_to(&Snapshot::of(&path).unwrap()), None);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"HELLO world").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let change = before.change_to(&Snapshot::of(&path).unwrap());
        let field = change.map(|c| c.field);
        #[cfg(unix)]
        assert_eq!(field.as_deref(), Some("status change time"));
        #[cfg(not(unix))]
        assert_eq!(field, None);
    }

    #[test]
    fn growth_is_named_as_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let before = Snapshot::of(&path).unwrap();
        std::fs::write(&path, b"abcd").unwrap();
        let change = before.change_to(&Snapshot::of(&path).unwrap()).unwrap();
        assert_eq!(change.to_string(), "size was 3 bytes, is 4 bytes");
    }

    #[test]
    fn a_range_checksum_is_crc32c_of_those_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(range_crc32c(&path, 2, 5).unwrap(), crc32c::crc32c(b"23456"));
        assert_ne!(
            range_crc32c(&path, 8, 5).unwrap(),
            range_crc32c(&path, 2, 5).unwrap()
        );
    }
}

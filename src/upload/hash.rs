//! The md5 of a file, in file order, while its parts read their own ranges
//! in parallel.
//!
//! MD5 is serial: byte `n + 1` cannot be hashed before byte `n`. The parts
//! read their ranges concurrently, each at its own stream's pace, and
//! offer every chunk they read to a bounded reorder window ahead of the
//! hasher's cursor. The hasher, on a thread of its own, takes the chunk at
//! its cursor from the window when a part has read it already, and
//! otherwise reads it from the file itself, at once: it never waits for a
//! part, and a part never waits for it. Chunks behind the cursor, or past
//! the window's end, are not kept.
//!
//! So each byte is read from disk once when the parts are ahead of the
//! hasher and within the window, and at most twice otherwise (once for its
//! part, once for the md5): when the network is slower than the md5, the
//! hasher runs ahead and reads on its own; when it is faster by more than
//! the window holds, what fell out of the window is read again. A part's
//! retry reads its range once more.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::digest::Md5;
use crate::error::Error;

/// Most bytes the window holds ahead of the hasher's cursor (16 MiB).
pub(crate) const WINDOW_BYTES: u64 = 16 * 1024 * 1024;

/// Size of the hasher's own reads.
const READ: usize = 1024 * 1024;

/// Chunks read by the parts, ahead of the hasher.
#[derive(Default)]
pub(crate) struct Window {
    state: Mutex<WindowState>,
}

#[derive(Default)]
struct WindowState {
    /// Offset of the next byte to hash.
    cursor: u64,
    /// Chunks by offset, all at or after `cursor` and within the window.
    held: BTreeMap<u64, Bytes>,
    /// Bytes the hasher took from the window, and read itself.
    taken: u64,
    read: u64,
}

impl Window {
    /// Offers a chunk a part has read at `offset`; kept only when the
    /// hasher will need it and it fits the window.
    pub(crate) fn offer(&self, offset: u64, chunk: &Bytes) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let end = offset + chunk.len() as u64;
        if offset >= state.cursor && end <= state.cursor + WINDOW_BYTES {
            state.held.insert(offset, chunk.clone());
        }
    }

    /// The chunk at `cursor`, if a part read it; else how many bytes to read
    /// from the file (up to the next chunk held). Drops what fell behind.
    fn next(&self, cursor: u64, total: u64) -> Result<Bytes, usize> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.cursor = cursor;
        state.held = state.held.split_off(&cursor);
        if let Some(chunk) = state.held.remove(&cursor) {
            state.taken += chunk.len() as u64;
            return Ok(chunk);
        }
        let until = state
            .held
            .keys()
            .next()
            .copied()
            .unwrap_or(total)
            .min(total);
        let len = (until - cursor).clamp(1, READ as u64) as usize;
        state.read += len as u64;
        Err(len)
    }

    /// Bytes taken from the parts' reads, and bytes the hasher read itself.
    pub(crate) fn reads(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.taken, state.read)
    }
}

/// The md5 of a file being computed; dropping it stops the hasher.
pub(crate) struct FileHasher {
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
    thread: Option<tokio::task::JoinHandle<Result<[u8; 16], Error>>>,
}

impl FileHasher {
    /// Starts hashing the first `total` bytes of the file at `path`.
    pub(crate) fn start(path: &Path, total: u64) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let window = Arc::new(Window::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = tokio::task::spawn_blocking({
            let window = window.clone();
            let stop = stop.clone();
            let path = path.to_path_buf();
            move || hash(file, &path, total, &window, &stop)
        });
        Ok(Self {
            window,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the parts offer what they read.
    pub(crate) fn window(&self) -> Arc<Window> {
        self.window.clone()
    }

    /// The digest, once every byte is hashed.
    pub(crate) async fn finish(mut self) -> Result<[u8; 16], Error> {
        let thread = self
            .thread
            .take()
            .ok_or_else(|| Error::Internal("the md5 was finished twice".into()))?;
        let digest = thread
            .await
            .map_err(|e| Error::Internal(format!("the md5 thread failed: {e}")))?;
        let (taken, read) = self.window.reads();
        tracing::debug!(
            taken,
            read,
            "md5 done: bytes from the parts' reads, read again"
        );
        digest
    }
}

impl Drop for FileHasher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn hash(
    mut file: File,
    path: &Path,
    total: u64,
    window: &Window,
    stop: &AtomicBool,
) -> Result<[u8; 16], Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; READ];
    let mut cursor = 0;
    // Where the file's own position is, to seek only after a skip.
    let mut position = 0;
    while cursor < total {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Internal("the md5 was stopped".into()));
        }
        match window.next(cursor, total) {
            Ok(chunk) => {
                md5.update(&chunk);
                cursor += chunk.len() as u64;
            }
            Err(len) => {
                if position != cursor {
                    file.seek(SeekFrom::Start(cursor))
                        .map_err(|e| Error::io(path, e))?;
                }
                file.read_exact(&mut buffer[..len])
                    .map_err(|e| Error::io(path, e))?;
                md5.update(&buffer[..len]);
                cursor += len as u64;
                position = cursor;
            }
        }
    }
    Ok(md5.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 253) as u8).collect()
    }

    #[test]
    fn the_window_keeps_only_what_the_hasher_will_need() {
        let window = Window::default();
        window.offer(0, &Bytes::from_static(b"abc"));
        window.offer(WINDOW_BYTES, &Bytes::from_static(b"past the window"));
        assert_eq!(window.next(0, 100), Ok(Bytes::from_static(b"abc")));
        // Nothing held at 3: read up to the end (no chunk ahead).
        assert_eq!(window.next(3, 100), Err(97));
        window.offer(3, &Bytes::from_static(b"behind"));
        window.offer(50, &Bytes::from_static(b"ahead"));
        // Reads stop where a held chunk starts.
        assert_eq!(window.next(10, 100), Err(40));
        assert_eq!(window.next(50, 100), Ok(Bytes::from_static(b"ahead")));
        assert_eq!(window.reads(), (8, 137));
    }

    async fn digest_with(offers: impl Fn(&Window, &[u8]) + Send + 'static) -> [u8; 16] {
        let data = bytes(5 * READ + 123);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let hasher = FileHasher::start(&path, data.len() as u64).unwrap();
        offers(&hasher.window(), &data);
        hasher.finish().await.unwrap()
    }

    #[tokio::test]
    async fn the_digest_is_the_file_s_whatever_the_parts_offer() {
        let data = bytes(5 * READ + 123);
        let want = Md5::digest(&data);
        // Nothing offered: the hasher reads it all.
        assert_eq!(digest_with(|_, _| {}).await, want);
        // Odd chunks, out of order, some wrong-sized at odd offsets.
        let got = digest_with(|window, data| {
            for (offset, len) in [(700_000, 5000), (0, 4096), (4096, 100), (1, 7)] {
                let chunk = Bytes::copy_from_slice(&data[offset..offset + len]);
                window.offer(offset as u64, &chunk);
            }
        })
        .await;
        assert_eq!(got, want);
        // Everything offered ahead, in part-sized pieces.
        let got = digest_with(|window, data| {
            for (i, piece) in data.chunks(65536).enumerate().rev() {
                window.offer((i * 65536) as u64, &Bytes::copy_from_slice(piece));
            }
        })
        .await;
        assert_eq!(got, want);
    }
}

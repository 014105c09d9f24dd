//! Reading a source into chunks held in reused buffers.
//!
//! A chunk is a [`Bytes`] over a pooled buffer: when its last handle drops
//! (the request has sent it and the md5 has hashed it), the buffer goes back
//! to the pool. Buffers stay allocated and paged in, so a multi-gigabyte
//! upload neither asks the allocator for fresh memory nor faults in new pages
//! for every megabyte it reads.
//!
//! Files are read with blocking I/O on a thread of their own, straight into
//! the pooled buffers: one copy from the page cache, and no hop through the
//! async runtime per read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::error::Error;

/// Sees each chunk a file reader reads, with its offset in the file.
pub(crate) type Tap = Arc<dyn Fn(u64, &Bytes) + Send + Sync>;

/// Size of the reads that feed a streamed part (256 KiB): a small buffer
/// per stream, so that many streams stay within a small memory budget.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Buffers of one pool in use at once, at most (32 MiB): a file reader
/// waits for one to come back past that.
const MAX_BUFFERS: usize = 128;

/// Chunks a file reader may have read ahead of its consumer.
const READ_AHEAD: usize = 2;

/// A pool of `CHUNK`-sized buffers, shared by the chunks made from it.
#[derive(Clone, Default)]
pub(crate) struct BufferPool {
    inner: Arc<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    free: Mutex<Free>,
    returned: Condvar,
}

#[derive(Default)]
struct Free {
    buffers: Vec<Vec<u8>>,
    /// Buffers out of the pool, in chunks not yet dropped.
    out: usize,
}

impl BufferPool {
    /// A buffer of `CHUNK` bytes: a returned one, or a new one. With `wait`,
    /// blocks the thread while [`MAX_BUFFERS`] are out.
    fn take(&self, wait: bool) -> Vec<u8> {
        let mut free = self.inner.free.lock().unwrap_or_else(|p| p.into_inner());
        while wait && free.out >= MAX_BUFFERS {
            free = self
                .inner
                .returned
                .wait(free)
                .unwrap_or_else(|p| p.into_inner());
        }
        free.out += 1;
        free.buffers.pop().unwrap_or_else(|| vec![0; CHUNK])
    }

    /// The first `len` bytes of `buffer` as a chunk that returns the buffer
    /// to this pool when its last handle drops.
    fn chunk(&self, buffer: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            len,
            pool: self.inner.clone(),
        })
    }

    /// Reads exactly `len` (at most `CHUNK`) bytes from `reader` into a chunk.
    pub(crate) async fn read_async<R>(&self, reader: &mut R, len: usize) -> std::io::Result<Bytes>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        debug_assert!(len <= CHUNK);
        let mut buffer = self.take(false);
        let read = reader.read_exact(&mut buffer[..len]).await;
        let chunk = self.chunk(buffer, len);
        read.map(|_| chunk)
    }

    fn read_blocking(&self, file: &mut File, len: usize) -> std::io::Result<Bytes> {
        debug_assert!(len <= CHUNK);
        let mut buffer = self.take(true);
        let read = file.read_exact(&mut buffer[..len]);
        let chunk = self.chunk(buffer, len);
        read.map(|()| chunk)
    }
}

/// A pooled buffer of which the first `len` bytes are the chunk.
struct Pooled {
    buffer: Vec<u8>,
    len: usize,
    pool: Arc<PoolInner>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
        free.out -= 1;
        free.buffers.push(buffer);
        drop(free);
        self.pool.returned.notify_one();
    }
}

/// The lengths of the chunks of `ranges`, in order: each range cut into
/// `CHUNK`-sized pieces, so that no chunk spans two ranges.
pub(crate) fn chunk_lengths(ranges: &[(u64, u64)]) -> impl Iterator<Item = usize> + '_ {
    ranges.iter().flat_map(|&(_, len)| {
        let whole = len / CHUNK as u64;
        let rest = (len % CHUNK as u64) as usize;
        std::iter::repeat_n(CHUNK, whole as usize).chain((rest > 0).then_some(rest))
    })
}

/// Opens the file at `path`, so that a missing or unreadable file fails
/// before anything is sent, then reads its byte `ranges` (offset, length), in
/// order, on a blocking thread, as chunks of [`chunk_lengths`]. The thread
/// stops at the first error, which it sends, or when the receiver is dropped.
///
/// Each chunk read is also shown to `tap`.
pub(crate) async fn read_file_ranges(
    path: &Path,
    ranges: Vec<(u64, u64)>,
    pool: BufferPool,
    tap: Option<Tap>,
) -> Result<mpsc::Receiver<std::io::Result<Bytes>>, Error> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?
        .into_std()
        .await;
    Ok(read_ranges(file, ranges, pool, tap))
}

fn read_ranges(
    mut file: File,
    ranges: Vec<(u64, u64)>,
    pool: BufferPool,
    tap: Option<Tap>,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            let mut position = None;
            for &(offset, len) in &ranges {
                if position != Some(offset) {
                    file.seek(SeekFrom::Start(offset))?;
                }
                position = Some(offset + len);
                let mut at = offset;
                for want in chunk_lengths(&[(offset, len)]) {
                    let chunk = pool.read_blocking(&mut file, want)?;
                    if let Some(tap) = &tap {
                        tap(at, &chunk);
                    }
                    at += want as u64;
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        return Ok(()); // nobody reads any more
                    }
                }
            }
            Ok(())
        })();
        if let Err(error) = result {
            let _ = tx.blocking_send(Err(error));
        }
    });
    rx
}

/// The chunks of [`read_file_ranges`] for one range, as a stream.
pub(crate) async fn file_range_stream(
    path: &Path,
    offset: u64,
    len: u64,
    pool: BufferPool,
    tap: Option<Tap>,
) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static, Error> {
    let rx = read_file_ranges(path, vec![(offset, len)], pool, tap).await?;
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_lengths_cut_each_range_without_spanning_two() {
        let c = CHUNK as u64;
        let lengths: Vec<usize> =
            chunk_lengths(&[(0, 2 * c + 5), (2 * c + 5, 3), (9, c)]).collect();
        assert_eq!(lengths, vec![CHUNK, CHUNK, 5, 3, CHUNK]);
        assert_eq!(chunk_lengths(&[]).count(), 0);
    }

    #[test]
    fn a_chunk_gives_its_buffer_back_when_its_last_handle_drops() {
        let pool = BufferPool::default();
        let free = || pool.inner.free.lock().unwrap().buffers.len();
        let chunk = pool.chunk(pool.take(true), 10);
        let clone = chunk.clone();
        drop(chunk);
        assert_eq!(free(), 0, "a handle is still alive");
        assert_eq!(clone.len(), 10);
        drop(clone);
        assert_eq!(free(), 1);
        assert_eq!(pool.inner.free.lock().unwrap().out, 0);
        let again = pool.take(true);
        assert_eq!(again.len(), CHUNK);
        assert_eq!(free(), 0, "the buffer was reused");
    }

    #[tokio::test]
    async fn file_ranges_arrive_in_order_with_their_bytes() {
        let bytes: Vec<u8> = (0..(2 * CHUNK + 77)).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source.bin");
        std::fs::write(&path, &bytes).unwrap();
        let ranges = vec![
            (5, CHUNK as u64 + 3),
            (CHUNK as u64 + 8, CHUNK as u64),
            (1, 2),
        ];
        let mut rx = read_file_ranges(&path, ranges.clone(), BufferPool::default(), None)
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut lengths = Vec::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.unwrap();
            lengths.push(chunk.len());
            got.extend_from_slice(&chunk);
        }
        let want: Vec<u8> = ranges
            .iter()
            .flat_map(|&(o, l)| bytes[o as usize..(o + l) as usize].to_vec())
            .collect();
        assert_eq!(got, want);
        assert_eq!(lengths, chunk_lengths(&ranges).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_short_file_ends_with_an_error_not_short_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [1u8; 100]).unwrap();
        let mut rx = read_file_ranges(&path, vec![(0, 200)], BufferPool::default(), None)
            .await
            .unwrap();
        let first = rx.recv().await.expect("an item");
        let error = first.expect_err("the file is shorter than the range");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(rx.recv().await.is_none());
    }
}

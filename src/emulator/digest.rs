//! The md5 of an Upload, computed while its parts arrive.
//!
//! Checking `md5` at completion means hashing every byte in `part_ids` order.
//! Clients usually send parts in file order, one after another, so the
//! emulator hashes the bytes of each part as they arrive, in the order parts
//! start arriving, on a thread of its own. Bytes of a part that started while
//! an earlier one is still arriving wait in memory, up to [`MAX_BACKLOG`];
//! past that, a part's remaining bytes are read back from its stored file when
//! its turn comes. At completion the running digest is used when its order is
//! exactly `part_ids`; otherwise the parts are hashed again in that order.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::digest::Md5;
use bytes::Bytes;
use tokio::sync::oneshot;

/// Most bytes waiting to be hashed before parts fall back to their files.
const MAX_BACKLOG: u64 = 16 * 1024 * 1024;

enum Job {
    Start(u64),
    Data(u64, Bytes),
    Stored(u64, String, PathBuf),
    Dropped(u64),
    Finish(oneshot::Sender<Option<(Vec<String>, String)>>),
}

/// The running digest of one Upload; its thread ends when this and every
/// [`PartFeed`] are dropped.
pub(crate) struct ArrivalDigest {
    jobs: mpsc::Sender<Job>,
    backlog: Arc<AtomicU64>,
    next_token: AtomicU64,
}

impl ArrivalDigest {
    pub(crate) fn start() -> Self {
        let (jobs, queue) = mpsc::channel();
        let backlog = Arc::new(AtomicU64::new(0));
        let hasher = Hasher {
            backlog: backlog.clone(),
            ..Hasher::default()
        };
        // A thread of its own, not one of Tokio's blocking pool: it waits for
        // as long as the Upload is pending, and many pending Uploads must not
        // starve the pool that file I/O runs on.
        let _ = std::thread::Builder::new()
            .name("emulator-md5".into())
            .spawn(move || hasher.run(queue));
        Self {
            jobs,
            backlog,
            next_token: AtomicU64::new(0),
        }
    }

    /// A feed for one part about to be received.
    pub(crate) fn feed(&self) -> PartFeed {
        PartFeed {
            jobs: self.jobs.clone(),
            backlog: self.backlog.clone(),
            token: self.next_token.fetch_add(1, Ordering::Relaxed),
            started: false,
            feeding: true,
            stored: false,
        }
    }

    /// The parts hashed, in order, and their md5; `None` when the running
    /// digest cannot stand for the Upload (a part broke off after some of its
    /// bytes were hashed, or one could not be read back).
    pub(crate) async fn finish(&self) -> Option<(Vec<String>, String)> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Finish(reply)).ok()?;
        answer.await.ok().flatten()
    }
}

/// Hands one part's bytes to the Upload's running digest as they arrive.
pub(crate) struct PartFeed {
    jobs: mpsc::Sender<Job>,
    backlog: Arc<AtomicU64>,
    token: u64,
    started: bool,
    feeding: bool,
    stored: bool,
}

impl PartFeed {
    /// The next bytes of the part.
    pub(crate) fn chunk(&mut self, chunk: &Bytes) {
        if !self.started {
            self.started = true;
            let _ = self.jobs.send(Job::Start(self.token));
        }
        if !self.feeding {
            return;
        }
        let len = chunk.len() as u64;
        if self.backlog.fetch_add(len, Ordering::AcqRel) + len > MAX_BACKLOG {
            // From here on the hasher reads this part's rest from its file.
            self.backlog.fetch_sub(len, Ordering::AcqRel);
            self.feeding = false;
            return;
        }
        let _ = self.jobs.send(Job::Data(self.token, chunk.clone()));
    }

    /// The part was stored as `part_id` at `path`.
    pub(crate) fn stored(mut self, part_id: &str, path: PathBuf) {
        self.stored = true;
        if self.started {
            let _ = self
                .jobs
                .send(Job::Stored(self.token, part_id.to_string(), path));
        }
    }
}

impl Drop for PartFeed {
    fn drop(&mut self) {
        if self.started && !self.stored {
            let _ = self.jobs.send(Job::Dropped(self.token));
        }
    }
}

struct Entry {
    token: u64,
    waiting: Vec<Bytes>,
    hashed: u64,
    stored: Option<(String, PathBuf)>,
}

#[derive(Default)]
struct Hasher {
    md5: Md5,
    order: Vec<String>,
    queue: VecDeque<Entry>,
    broken: bool,
    backlog: Arc<AtomicU64>,
}

impl Hasher {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Start(token) => self.queue.push_back(Entry {
                    token,
                    waiting: Vec::new(),
                    hashed: 0,
                    stored: None,
                }),
                Job::Data(token, chunk) => self.data(token, chunk),
                Job::Stored(token, id, path) => {
                    if let Some(entry) = self.entry(token) {
                        entry.stored = Some((id, path));
                    }
                }
                Job::Dropped(token) => self.dropped(token),
                Job::Finish(reply) => {
                    self.advance();
                    let whole = !self.broken && self.queue.is_empty();
                    let digest = whole.then(|| {
                        (
                            self.order.clone(),
                            crate::digest::hex(&self.md5.clone().finalize()),
                        )
                    });
                    let _ = reply.send(digest);
                }
            }
            self.advance();
        }
    }

    fn entry(&mut self, token: u64) -> Option<&mut Entry> {
        self.queue.iter_mut().find(|e| e.token == token)
    }

    fn data(&mut self, token: u64, chunk: Bytes) {
        let head = self.queue.front().map(|e| e.token);
        if self.broken || head.is_none() {
            self.backlog.fetch_sub(chunk.len() as u64, Ordering::AcqRel);
        } else if head == Some(token) {
            self.hash(chunk);
        } else if let Some(entry) = self.entry(token) {
            entry.waiting.push(chunk);
        } else {
            self.backlog.fetch_sub(chunk.len() as u64, Ordering::AcqRel);
        }
    }

    fn hash(&mut self, chunk: Bytes) {
        let len = chunk.len() as u64;
        self.md5.update(&chunk);
        if let Some(head) = self.queue.front_mut() {
            head.hashed += len;
        }
        self.backlog.fetch_sub(len, Ordering::AcqRel);
    }

    fn dropped(&mut self, token: u64) {
        let Some(at) = self.queue.iter().position(|e| e.token == token) else {
            return;
        };
        let entry = self.queue.remove(at).expect("position is in range");
        let waiting: u64 = entry.waiting.iter().map(|c| c.len() as u64).sum();
        self.backlog.fetch_sub(waiting, Ordering::AcqRel);
        // Bytes of a part that will never exist are in the digest.
        if entry.hashed > 0 {
            self.broken = true;
        }
    }

    /// Hashes what the head of the queue has waiting and, once it is stored,
    /// the rest of it from its file; then moves on to the next part.
    fn advance(&mut self) {
        while !self.broken {
            let Some(head) = self.queue.front_mut() else {
                return;
            };
            let waiting = std::mem::take(&mut head.waiting);
            for chunk in waiting {
                self.hash(chunk);
            }
            let Some(head) = self.queue.front() else {
                return;
            };
            let Some((id, path)) = head.stored.clone() else {
                return;
            };
            if self.hash_rest(&path, head.hashed).is_err() {
                self.broken = true;
                return;
            }
            self.order.push(id);
            self.queue.pop_front();
        }
    }

    fn hash_rest(&mut self, path: &PathBuf, from: u64) -> std::io::Result<()> {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(from))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.md5.update(&buf[..n]);
        }
    }
}

/// The md5 of the files at `paths`, read back one after another: the hash
/// again in `part_ids` order.
pub(crate) async fn md5_of(paths: &[PathBuf]) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    for path in paths {
        let mut file = tokio::fs::File::open(path).await?;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(crate::digest::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    fn stored_file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn feed_all(feed: &mut PartFeed, content: &[u8], chunk: usize) {
        for piece in content.chunks(chunk) {
            feed.chunk(&Bytes::copy_from_slice(piece));
        }
    }

    fn md5_hex(parts: &[&[u8]]) -> String {
        let mut md5 = Md5::new();
        for part in parts {
            md5.update(part);
        }
        crate::digest::hex(&md5.finalize())
    }

    #[tokio::test]
    async fn parts_in_order_give_the_md5_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let digest = ArrivalDigest::start();
        let (a, b) = (bytes(3000, 1), bytes(5000, 2));
        for (id, content) in [("part_a", &a), ("part_b", &b)] {
            let mut feed = digest.feed();
            feed_all(&mut feed, content, 700);
            feed.stored(id, stored_file(&dir, id, content));
        }
        let (order, md5) = digest.finish().await.expect("a whole digest");
        assert_eq!(order, ["part_a", "part_b"]);
        assert_eq!(md5, md5_hex(&[&a, &b]));
    }

    #[tokio::test]
    async fn a_later_part_past_the_backlog_is_read_back_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let digest = ArrivalDigest::start();
        let a = bytes(1000, 3);
        let b = bytes(MAX_BACKLOG as usize + 3 * 1024 * 1024, 4);
        let mut first = digest.feed();
        first.chunk(&Bytes::copy_from_slice(&a[..10]));
        // The second part arrives whole while the first is still arriving.
        let mut second = digest.feed();
        feed_all(&mut second, &b, 1 << 20);
        first.chunk(&Bytes::copy_from_slice(&a[10..]));
        second.stored("part_b", stored_file(&dir, "b", &b));
        first.stored("part_a", stored_file(&dir, "a", &a));
        let (order, md5) = digest.finish().await.expect("a whole digest");
        assert_eq!(order, ["part_a", "part_b"]);
        assert_eq!(md5, md5_hex(&[&a, &b]));
    }

    #[tokio::test]
    async fn a_part_broken_off_after_hashing_spoils_the_digest() {
        let digest = ArrivalDigest::start();
        let mut feed = digest.feed();
        feed.chunk(&Bytes::from_static(b"half a part"));
        drop(feed);
        assert_eq!(digest.finish().await, None);
    }

    #[tokio::test]
    async fn a_part_broken_off_before_its_turn_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let digest = ArrivalDigest::start();
        let a = bytes(2000, 5);
        let mut first = digest.feed();
        first.chunk(&Bytes::copy_from_slice(&a[..100]));
        let mut lost = digest.feed();
        lost.chunk(&Bytes::from_static(b"never stored"));
        drop(lost);
        first.chunk(&Bytes::copy_from_slice(&a[100..]));
        first.stored("part_a", stored_file(&dir, "a", &a));
        let (order, md5) = digest.finish().await.expect("a whole digest");
        assert_eq!(order, ["part_a"]);
        assert_eq!(md5, md5_hex(&[&a]));
    }
}

//! The md5 of an Upload, computed while its parts arrive.
//!
//! Checking `md5` at completion means hashing every byte in `part_ids` order.
//! Clients usually send parts in file order, so the emulator hashes each
//! stored part in the order parts are stored, on a thread of its own, while
//! later parts are still arriving. At completion that running digest is used
//! when its order is exactly `part_ids`; otherwise the parts are hashed again
//! in the right order.

use std::path::PathBuf;
use std::sync::mpsc;

use md5::{Digest, Md5};
use tokio::sync::oneshot;

enum Job {
    Part(String, PathBuf),
    Finish(oneshot::Sender<Option<(Vec<String>, String)>>),
}

/// The running digest of one Upload; its thread ends when this is dropped.
pub(crate) struct ArrivalDigest {
    jobs: mpsc::Sender<Job>,
}

impl ArrivalDigest {
    pub(crate) fn start() -> Self {
        let (jobs, queue) = mpsc::channel();
        tokio::task::spawn_blocking(move || run(queue));
        Self { jobs }
    }

    /// Adds a stored part after the ones already added.
    pub(crate) fn push(&self, part_id: &str, path: PathBuf) {
        let _ = self.jobs.send(Job::Part(part_id.to_string(), path));
    }

    /// The parts hashed, in order, and their md5; `None` if a part could not be read.
    pub(crate) async fn finish(&self) -> Option<(Vec<String>, String)> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Finish(reply)).ok()?;
        answer.await.ok().flatten()
    }
}

fn run(queue: mpsc::Receiver<Job>) {
    let mut hasher = Md5::new();
    let mut order = Vec::new();
    let mut readable = true;
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(job) = queue.recv() {
        match job {
            Job::Part(id, path) => {
                readable = readable && hash_file(&path, &mut hasher, &mut buf).is_ok();
                order.push(id);
            }
            Job::Finish(reply) => {
                let digest = readable.then(|| {
                    (
                        order.clone(),
                        crate::digest::hex(&hasher.clone().finalize()),
                    )
                });
                let _ = reply.send(digest);
            }
        }
    }
}

fn hash_file(path: &PathBuf, hasher: &mut Md5, buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

//! Reading a source that cannot be read twice (an `AsyncRead`): once, in
//! order, into the md5 and into the first attempt of each part.
//!
//! A single reader task reads the source and streams each chunk into the
//! first attempt of the part it belongs to, and into the md5 thread. The
//! reader holds at most `concurrency × CHANNEL_CHUNKS` chunks not yet sent,
//! and the md5 may lag `HASH_LAG_CHUNKS` behind, in buffers reused from
//! chunk to chunk. Parts confirmed by an earlier run are read for the md5
//! only. (A file's parts read their own ranges instead: see `hash`.)

use std::collections::HashMap;
use std::sync::Arc;

use crate::digest::Md5;
use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::chunks::{BufferPool, chunk_lengths};
use super::plan::PartPlan;
use crate::error::Error;

/// Chunks buffered per part between the reader and its request; the reader
/// holds at most `concurrency × CHANNEL_CHUNKS` chunks not yet sent in all.
pub(crate) const CHANNEL_CHUNKS: usize = 4;
/// Chunks the md5 may fall behind the reader (16 MiB).
const HASH_LAG_CHUNKS: usize = 64;

/// A chunk on its way to a part's request, with its share of the read budget,
/// given back when the request takes the chunk.
pub(crate) type Buffered = (Bytes, OwnedSemaphorePermit);

/// The bytes of a part whose source cannot be read again, once all read.
pub(crate) type KeptPart = Option<Arc<Vec<Bytes>>>;

/// Where the reader sends what it reads.
pub(crate) struct Outlets {
    /// The first attempt of each part still to send.
    pub senders: HashMap<u32, mpsc::Sender<Buffered>>,
    /// The kept bytes of each part of a source that cannot be read again.
    pub publishers: HashMap<u32, watch::Sender<KeptPart>>,
    /// Chunks not yet taken by a request, in all.
    pub budget: Arc<Semaphore>,
}

/// Reads the source once, in order: hashes it (when `md5`) and feeds each
/// part's first attempt. Returns the md5.
pub(crate) async fn read_once(
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    pool: BufferPool,
    plan: PartPlan,
    mut outlets: Outlets,
    md5: bool,
) -> Result<Option<[u8; 16]>, Error> {
    // Hashing runs on a thread of its own, up to HASH_LAG_CHUNKS behind the
    // reader, so that sending does not wait for the md5 nor the md5 for sending.
    let (to_hasher, hashing) = if md5 {
        let (tx, mut rx) = mpsc::channel::<Bytes>(HASH_LAG_CHUNKS);
        let thread = tokio::task::spawn_blocking(move || {
            let mut hasher = Md5::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher.finalize()
        });
        (Some(tx), Some(thread))
    } else {
        (None, None)
    };
    for part in plan.parts() {
        let mut sender = outlets.senders.remove(&part.number);
        let publisher = outlets.publishers.remove(&part.number);
        let mut kept = publisher.as_ref().map(|_| Vec::new());
        for want in chunk_lengths(&[(part.offset, part.len)]) {
            let chunk = pool
                .read_async(&mut reader, want)
                .await
                .map_err(|e| Error::io("<reader>", e))?;
            if let Some(tx) = &to_hasher {
                tx.send(chunk.clone())
                    .await
                    .map_err(|_| Error::Internal("the md5 thread stopped".into()))?;
            }
            if let Some(kept) = kept.as_mut() {
                kept.push(chunk.clone());
            }
            // A closed channel means the first attempt failed; its retry reads
            // the range again, and the hash still needs these bytes.
            if let Some(tx) = &sender {
                let permit = outlets
                    .budget
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("the read budget closed".into()))?;
                if tx.send((chunk, permit)).await.is_err() {
                    sender = None;
                }
            }
        }
        if let (Some(publisher), Some(kept)) = (publisher, kept) {
            let _ = publisher.send(Some(Arc::new(kept)));
        }
    }
    drop(to_hasher);
    match hashing {
        Some(thread) => thread
            .await
            .map(Some)
            .map_err(|e| Error::Internal(format!("the md5 thread failed: {e}"))),
        None => Ok(None),
    }
}

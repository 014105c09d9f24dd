//! One run per state file: an exclusive lock on a file beside it.
//!
//! The state file itself cannot carry the lock: every save replaces it by a
//! rename, so a lock on it would lock a file no longer there. The lock is
//! taken on `STATE.lock` instead, through the operating system's file locks
//! (`flock` on Unix), which die with the process that holds them: a run
//! killed with `kill -9` leaves the file, never a held lock. The run that
//! holds it removes the file when it ends; a run that was waiting checks
//! that the file it locked is still the one at that path, and tries again
//! otherwise.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The lock of one state file, held until dropped.
#[derive(Debug)]
pub(crate) struct StateLock {
    path: PathBuf,
    _file: File,
    /// Whether another run held it first, and this one waited.
    pub(crate) waited: bool,
}

impl StateLock {
    /// Takes the lock of `state`, or fails with [`Error::StateLocked`] when
    /// another run holds it; with `wait`, waits for that run to end instead.
    pub(crate) async fn acquire(state: &Path, wait: bool) -> Result<Self, Error> {
        let path = lock_path(state);
        let state = state.to_path_buf();
        tokio::task::spawn_blocking(move || Self::acquire_blocking(state, path, wait))
            .await
            .map_err(|e| Error::Internal(format!("the state file's lock task failed: {e}")))?
    }

    fn acquire_blocking(state: PathBuf, path: PathBuf, wait: bool) -> Result<Self, Error> {
        let mut waited = false;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if wait => {
                    tracing::info!(state_file = %state.display(), "waiting for the run that holds the state file");
                    file.lock().map_err(|e| Error::io(&path, e))?;
                    waited = true;
                }
                Err(TryLockError::WouldBlock) => return Err(Error::StateLocked { path: state }),
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if same_file(&file, &path) {
                return Ok(Self {
                    path,
                    _file: file,
                    waited,
                });
            }
            // The run that held it removed it as it ended: lock the new one.
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Removed while still held, so that no run locks it in between.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The lock file of a state file: `STATE.lock` beside it.
pub(crate) fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Whether `file` is still the file at `path`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Without inodes, a file present at the path is taken to be the one locked.
#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_lock_is_refused_naming_the_state_file_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a.state");
        let held = StateLock::acquire(&state, false).await.unwrap();
        match StateLock::acquire(&state, false).await {
            Err(Error::StateLocked { path }) => assert_eq!(path, state),
            other => panic!("expected StateLocked, got {other:?}"),
        }
        drop(held);
        assert!(!lock_path(&state).exists(), "the lock file is removed");
        let again = StateLock::acquire(&state, false).await.unwrap();
        assert!(!again.waited);
        drop(again);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_run_takes_the_lock_when_the_holder_ends() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("b.state");
        let held = StateLock::acquire(&state, false).await.unwrap();
        let waiter = tokio::spawn({
            let state = state.clone();
            async move { StateLock::acquire(&state, true).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "it waits while the lock is held");
        drop(held);
        let taken = waiter.await.unwrap().expect("taken once freed");
        assert!(taken.waited);
        assert!(lock_path(&state).exists(), "a new lock file, held");
        drop(taken);
    }
}

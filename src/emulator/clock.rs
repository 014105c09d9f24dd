//! The emulator's clock: system time plus an offset tests can move forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The emulator's clock: system time plus an offset tests can move forward.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Current Unix time in seconds, as the emulator sees it.
    pub fn now(&self) -> i64 {
        crate::hooks::unix_now() + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the emulator's time forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }
}

//! The signals that stop a command: Ctrl-C (SIGINT), SIGTERM and SIGHUP.
//!
//! Only the binary listens for them; the library offers the same outcomes
//! through its handles (`pause`, `cancel`). Each is answered the same way as
//! Ctrl-C, and the process exits with 128 plus the signal's number, as shells
//! report a command a signal ended.

/// A signal that asks the command to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT: Ctrl-C at a terminal.
    Interrupt,
    /// SIGTERM: `kill`, a service manager, a CI runner's time-out.
    Terminate,
    /// SIGHUP: the terminal was closed.
    Hangup,
}

impl Signal {
    /// The exit code of a command this signal stopped: 130, 143 or 129.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Hangup => 129,
        }
    }
}

/// Resolves with the first stopping signal to arrive.
///
/// A signal whose handler cannot be installed is simply not listened for:
/// the others still are, and the process keeps the default action for it.
#[cfg(unix)]
pub(crate) async fn stop_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => Signal::Interrupt,
        Some(()) = async { terminate.as_mut()?.recv().await } => Signal::Terminate,
        Some(()) = async { hangup.as_mut()?.recv().await } => Signal::Hangup,
        else => std::future::pending().await,
    }
}

/// Resolves with the first stopping signal to arrive.
#[cfg(not(unix))]
pub(crate) async fn stop_signal() -> Signal {
    match tokio::signal::ctrl_c().await {
        Ok(()) => Signal::Interrupt,
        Err(_) => std::future::pending().await,
    }
}

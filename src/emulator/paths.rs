//! The files the emulator opens: part files it named itself, inside its data
//! directory, never through a symbolic link.

use std::io;
use std::path::Path;

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

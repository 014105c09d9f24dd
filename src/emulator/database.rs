//! The emulator's records in an SQLite database in its data directory:
//! one table each for Uploads, parts and Files, written one transaction per
//! change, so that an emulator started again on the same directory carries on
//! where the last one stopped, even one that was killed.
//!
//! The schema is in the README's emulator section; `sqlite3` reads it. A
//! part's bytes are the file `parts/<seq>`, named by the part's row id: no
//! name is ever read from the database or the directory. This module knows
//! rows only; the store builds its state from them.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;
use crate::validate::UploadPhase;

/// The database's name inside the data directory.
pub(crate) const DATABASE_FILE: &str = "emulator.sqlite3";

/// The records of emulators before the database, refused rather than read.
const OLD_STATE_FILE: &str = "state.json";

/// Marks a database as this emulator's (`PRAGMA application_id`): "oAIe".
const APPLICATION_ID: i32 = 0x6f41_4965;

/// The layout's version (`PRAGMA user_version`); another one is refused
/// rather than misread.
const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE uploads (
    id                 TEXT PRIMARY KEY,
    filename           TEXT NOT NULL,
    purpose            TEXT NOT NULL,
    bytes              INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    file_expires_after INTEGER,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    file_id            TEXT
) STRICT;
CREATE TABLE parts (
    seq       INTEGER PRIMARY KEY CHECK (seq > 0),
    id        TEXT NOT NULL UNIQUE,
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    bytes     INTEGER NOT NULL,
    stored    INTEGER NOT NULL CHECK (stored IN (0, 1)),
    position  INTEGER
) STRICT;
CREATE INDEX parts_of_upload ON parts (upload_id, position);
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    upload_id  TEXT NOT NULL UNIQUE REFERENCES uploads (id),
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    filename   TEXT NOT NULL,
    purpose    TEXT NOT NULL
) STRICT;
";

/// An Upload as recorded.
pub(crate) struct UploadRow {
    pub(crate) id: String,
    pub(crate) filename: String,
    pub(crate) purpose: String,
    pub(crate) bytes: u64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) file_expires_after: Option<i64>,
    /// Pending, completed or cancelled; expiry is read from `expires_at`.
    pub(crate) phase: UploadPhase,
    pub(crate) file_id: Option<String>,
}

/// A part as recorded.
pub(crate) struct PartRow {
    /// The row id, which names the part's file.
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) upload_id: String,
    pub(crate) bytes: u64,
    /// Whether its bytes were kept (not by an emulator that discards them).
    pub(crate) stored: bool,
    /// Its place in the File, once the Upload is completed.
    pub(crate) position: Option<i64>,
}

/// A File as recorded; its bytes are its Upload's parts, by position.
pub(crate) struct FileRow {
    pub(crate) id: String,
    pub(crate) upload_id: String,
    pub(crate) bytes: u64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) filename: String,
    pub(crate) purpose: String,
}

/// Everything recorded, as read at start.
#[derive(Default)]
pub(crate) struct Contents {
    pub(crate) uploads: Vec<UploadRow>,
    pub(crate) parts: Vec<PartRow>,
    pub(crate) files: Vec<FileRow>,
}

/// An open database.
pub(crate) struct Database {
    connection: Connection,
    path: PathBuf,
}

/// A failure to use the database, naming it.
fn failed(path: &Path, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {error}", path.display()))
}

/// A database or directory that is not what this emulator wrote.
fn refused(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        io::Error::new(io::ErrorKind::InvalidData, why.to_string()),
    )
}

/// A database that cannot be opened or read at start.
fn unusable(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::io(path, io::Error::other(error.to_string()))
}

fn phase_text(phase: UploadPhase) -> &'static str {
    match phase {
        UploadPhase::Completed => "completed",
        UploadPhase::Cancelled => "cancelled",
        // Expiry is not recorded: it follows from `expires_at`.
        UploadPhase::Pending | UploadPhase::Expired => "pending",
    }
}

fn phase_of(text: &str) -> Option<UploadPhase> {
    match text {
        "pending" => Some(UploadPhase::Pending),
        "completed" => Some(UploadPhase::Completed),
        "cancelled" => Some(UploadPhase::Cancelled),
        _ => None,
    }
}

/// A count or size as SQLite stores it (a signed 64-bit integer).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn size(n: i64) -> rusqlite::Result<u64> {
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, n))
}

impl Database {
    /// Opens the database in `dir`, creating it in a directory that has
    /// none. A database another program wrote, a damaged one, one of another
    /// layout, and a directory of an emulator that kept `state.json` are
    /// refused, naming the file. With `durable`, a commit survives the
    /// emulator being killed at any point; without, only a clean stop.
    pub(crate) fn open(dir: &Path, durable: bool) -> Result<Self, Error> {
        let path = dir.join(DATABASE_FILE);
        let old = dir.join(OLD_STATE_FILE);
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => true,
            Ok(_) => return Err(refused(&path, "not a regular file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if !exists && old.exists() {
            return Err(refused(
                &old,
                format!(
                    "the records of an older emulator, which this one does not read (it keeps \
                     them in {DATABASE_FILE}); start on a new data directory, or remove the old \
                     one's contents to start empty"
                ),
            ));
        }
        let connection = Connection::open(&path).map_err(|e| unusable(&path, e))?;
        let mut database = Self { connection, path };
        database.check_or_create(exists)?;
        database.tune(durable)?;
        Ok(database)
    }

    fn check_or_create(&mut self, exists: bool) -> Result<(), Error> {
        let path = self.path.clone();
        let read = |sql: &str| -> Result<i64, Error> {
            self.connection
                .query_row(sql, [], |row| row.get(0))
                .map_err(|e| refused(&path, format!("not an emulator database ({e})")))
        };
        let application = read("PRAGMA application_id")?;
        let version = read("PRAGMA user_version")?;
        let tables = read("SELECT count(*) FROM sqlite_schema")?;
        if !exists || (application == 0 && version == 0 && tables == 0) {
            let tx = self
                .connection
                .transaction()
                .map_err(|e| unusable(&path, e))?;
            tx.execute_batch(SCHEMA).map_err(|e| unusable(&path, e))?;
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(|e| unusable(&path, e))?;
            return tx.commit().map_err(|e| unusable(&path, e));
        }
        if application != i64::from(APPLICATION_ID) {
            return Err(refused(
                &path,
                format!("not an emulator database (application id {application:#x})"),
            ));
        }
        if version != i64::from(SCHEMA_VERSION) {
            return Err(refused(
                &path,
                format!("layout version {version}, where this emulator reads {SCHEMA_VERSION}"),
            ));
        }
        let check: String = self
            .connection
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| refused(&path, format!("damaged ({e})")))?;
        if check != "ok" {
            return Err(refused(&path, format!("damaged: {check}")));
        }
        Ok(())
    }

    fn tune(&self, durable: bool) -> Result<(), Error> {
        let mode: String = self
            .connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| unusable(&self.path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(unusable(
                &self.path,
                format!("journal mode {mode}, not WAL"),
            ));
        }
        // In WAL mode NORMAL loses no commit when the process dies, only
        // when the machine does; a temporary directory needs neither.
        let sync = if durable { "NORMAL" } else { "OFF" };
        self.connection
            .execute_batch(&format!(
                "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
            ))
            .map_err(|e| unusable(&self.path, e))
    }

    /// Every record.
    pub(crate) fn contents(&self) -> Result<Contents, Error> {
        self.read_contents()
            .map_err(|e| refused(&self.path, format!("a record cannot be read: {e}")))
    }

    fn read_contents(&self) -> rusqlite::Result<Contents> {
        let mut contents = Contents::default();
        let mut uploads = self.connection.prepare(
            "SELECT id, filename, purpose, bytes, created_at, expires_at, file_expires_after, \
             status, file_id FROM uploads",
        )?;
        let mut rows = uploads.query([])?;
        while let Some(row) = rows.next()? {
            let status: String = row.get(7)?;
            let phase = phase_of(&status).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(7, status.clone(), rusqlite::types::Type::Text)
            })?;
            contents.uploads.push(UploadRow {
                id: row.get(0)?,
                filename: row.get(1)?,
                purpose: row.get(2)?,
                bytes: size(row.get(3)?)?,
                created_at: row.get(4)?,
                expires_at: row.get(5)?,
                file_expires_after: row.get(6)?,
                phase,
                file_id: row.get(8)?,
            });
        }
        let mut parts = self.connection.prepare(
            "SELECT seq, id, upload_id, bytes, stored, position FROM parts ORDER BY seq",
        )?;
        let mut rows = parts.query([])?;
        while let Some(row) = rows.next()? {
            contents.parts.push(PartRow {
                seq: row.get(0)?,
                id: row.get(1)?,
                upload_id: row.get(2)?,
                bytes: size(row.get(3)?)?,
                stored: row.get(4)?,
                position: row.get(5)?,
            });
        }
        let mut files = self.connection.prepare(
            "SELECT id, upload_id, bytes, created_at, expires_at, filename, purpose FROM files",
        )?;
        let mut rows = files.query([])?;
        while let Some(row) = rows.next()? {
            contents.files.push(FileRow {
                id: row.get(0)?,
                upload_id: row.get(1)?,
                bytes: size(row.get(2)?)?,
                created_at: row.get(3)?,
                expires_at: row.get(4)?,
                filename: row.get(5)?,
                purpose: row.get(6)?,
            });
        }
        Ok(contents)
    }

    /// The highest part row id so far (0 with none).
    pub(crate) fn last_part_seq(&self) -> Result<i64, Error> {
        self.connection
            .query_row("SELECT coalesce(max(seq), 0) FROM parts", [], |row| {
                row.get(0)
            })
            .map_err(|e| unusable(&self.path, e))
    }

    pub(crate) fn insert_upload(&self, upload: &UploadRow) -> io::Result<()> {
        self.connection
            .prepare_cached(
                "INSERT INTO uploads (id, filename, purpose, bytes, created_at, expires_at, \
                 file_expires_after, status, file_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    upload.id,
                    upload.filename,
                    upload.purpose,
                    int(upload.bytes),
                    upload.created_at,
                    upload.expires_at,
                    upload.file_expires_after,
                    phase_text(upload.phase),
                    upload.file_id,
                ])
            })
            .map(drop)
            .map_err(|e| failed(&self.path, e))
    }

    pub(crate) fn insert_part(&self, part: &PartRow) -> io::Result<()> {
        self.connection
            .prepare_cached(
                "INSERT INTO parts (seq, id, upload_id, bytes, stored, position) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    part.seq,
                    part.id,
                    part.upload_id,
                    int(part.bytes),
                    part.stored,
                    part.position,
                ])
            })
            .map(drop)
            .map_err(|e| failed(&self.path, e))
    }

    /// Completes `file.upload_id` into `file`, its parts `listed` in order
    /// (by row id); the parts it did not list are dropped, and their row
    /// ids returned, for their files to be removed.
    pub(crate) fn complete(&mut self, file: &FileRow, listed: &[i64]) -> io::Result<Vec<i64>> {
        let path = self.path.clone();
        let mut run = || -> rusqlite::Result<Vec<i64>> {
            let tx = self.connection.transaction()?;
            tx.execute(
                "UPDATE uploads SET status = 'completed', file_id = ?2 WHERE id = ?1",
                params![file.upload_id, file.id],
            )?;
            {
                let mut place =
                    tx.prepare_cached("UPDATE parts SET position = ?2 WHERE seq = ?1")?;
                for (position, seq) in listed.iter().enumerate() {
                    place.execute(params![seq, position as i64])?;
                }
            }
            let dropped = drop_parts(&tx, &file.upload_id, true)?;
            tx.execute(
                "INSERT INTO files (id, upload_id, bytes, created_at, expires_at, filename, \
                 purpose) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    file.id,
                    file.upload_id,
                    int(file.bytes),
                    file.created_at,
                    file.expires_at,
                    file.filename,
                    file.purpose,
                ],
            )?;
            tx.commit()?;
            Ok(dropped)
        };
        run().map_err(|e| failed(&path, e))
    }

    /// Cancels `upload_id`, dropping its parts; their row ids, for their
    /// files to be removed.
    pub(crate) fn cancel(&mut self, upload_id: &str) -> io::Result<Vec<i64>> {
        let path = self.path.clone();
        let mut run = || -> rusqlite::Result<Vec<i64>> {
            let tx = self.connection.transaction()?;
            tx.execute(
                "UPDATE uploads SET status = 'cancelled' WHERE id = ?1",
                params![upload_id],
            )?;
            let dropped = drop_parts(&tx, upload_id, false)?;
            tx.commit()?;
            Ok(dropped)
        };
        run().map_err(|e| failed(&path, e))
    }

    /// Deletes the File `file_id` and its parts; their row ids, for their
    /// files to be removed.
    pub(crate) fn delete_file(&mut self, file_id: &str) -> io::Result<Vec<i64>> {
        let path = self.path.clone();
        let mut run = || -> rusqlite::Result<Vec<i64>> {
            let tx = self.connection.transaction()?;
            let upload: Option<String> = tx
                .query_row(
                    "DELETE FROM files WHERE id = ?1 RETURNING upload_id",
                    params![file_id],
                    |row| row.get(0),
                )
                .optional()?;
            let dropped = match upload {
                Some(upload) => drop_parts(&tx, &upload, false)?,
                None => Vec::new(),
            };
            tx.commit()?;
            Ok(dropped)
        };
        run().map_err(|e| failed(&path, e))
    }
}

/// Deletes the parts of `upload_id` (only those without a place in a File
/// with `unplaced_only`); their row ids.
fn drop_parts(
    tx: &rusqlite::Transaction<'_>,
    upload_id: &str,
    unplaced_only: bool,
) -> rusqlite::Result<Vec<i64>> {
    let sql = if unplaced_only {
        "DELETE FROM parts WHERE upload_id = ?1 AND position IS NULL RETURNING seq"
    } else {
        "DELETE FROM parts WHERE upload_id = ?1 RETURNING seq"
    };
    let mut delete = tx.prepare_cached(sql)?;
    let seqs = delete.query_map(params![upload_id], |row| row.get(0))?;
    seqs.collect()
}

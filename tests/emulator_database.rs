#![cfg(all(feature = "emulator", feature = "schema"))]
//! The emulator's data directory: its SQLite database, its part files, and
//! what it refuses to start on.

mod common;

use std::path::Path;

use openai_uploads::emulator::{Emulator, EmulatorConfig};
use openai_uploads::{Error, PartBody};
use serde_json::Value;

async fn start_on(dir: &Path) -> Result<Emulator, Error> {
    Emulator::start(EmulatorConfig::default().with_data_dir(dir)).await
}

/// Uploads `content` in parts of `part` bytes through `emulator`; the File's id.
async fn upload(emulator: &Emulator, content: &[u8], part: usize) -> String {
    let client = common::client_of(emulator, "test-key");
    let created = client
        .create_upload(&openai_uploads::types::CreateUploadRequest {
            filename: "data.jsonl".into(),
            purpose: openai_uploads::types::CreateUploadRequestPurpose::FineTune,
            bytes: content.len() as i64,
            mime_type: "text/jsonl".into(),
            expires_after: None,
        })
        .await
        .expect("created")
        .into_inner();
    let mut ids = Vec::new();
    for chunk in content.chunks(part) {
        let part = client
            .add_upload_part(&created.id, PartBody::from_bytes(chunk.to_vec()))
            .await
            .expect("part stored")
            .into_inner();
        ids.push(part.id);
    }
    let done = client
        .complete_upload(
            &created.id,
            &openai_uploads::types::CompleteUploadRequest {
                part_ids: ids,
                md5: Some(common::md5_hex(content)),
            },
        )
        .await
        .expect("completed")
        .into_inner();
    done.file.expect("a File").id
}

fn refusal(result: Result<Emulator, Error>) -> String {
    match result {
        Ok(_) => panic!("the emulator started"),
        Err(Error::Io { path, error }) => {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
            format!("{}: {error}", path.display())
        }
        Err(other) => panic!("expected a refusal naming a file, got {other:?}"),
    }
}

fn part_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("parts"))
        .expect("parts/ listed")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_records_are_rows_that_sqlite_reads() {
    let dir = tempfile::tempdir().unwrap();
    let content = common::content(10_000, 1);
    let emulator = start_on(dir.path()).await.expect("starts");
    let file_id = upload(&emulator, &content, 4096).await;
    emulator.stop().await;

    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let (status, file): (String, String) = db
        .query_row("SELECT status, file_id FROM uploads", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (status.as_str(), file.as_str()),
        ("completed", file_id.as_str())
    );
    let mut parts = db
        .prepare("SELECT seq, bytes FROM parts ORDER BY position")
        .unwrap();
    let parts: Vec<(i64, i64)> = parts
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        parts.iter().map(|p| p.1).collect::<Vec<_>>(),
        [4096, 4096, 1808]
    );
    // Each part's bytes are the file named by its row id, in order.
    let mut joined = Vec::new();
    for (seq, _) in &parts {
        joined.extend(std::fs::read(dir.path().join("parts").join(seq.to_string())).unwrap());
    }
    assert_eq!(joined, content);
    let bytes: i64 = db
        .query_row("SELECT bytes FROM files WHERE id = ?1", [&file_id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(bytes, 10_000);
}

#[tokio::test]
async fn a_foreign_database_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator.sqlite3");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let message = refusal(start_on(dir.path()).await);
    assert!(message.contains("emulator.sqlite3"), "{message}");
    assert!(message.contains("not an emulator database"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "left as it was");
}

#[tokio::test]
async fn a_database_of_another_layout_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    start_on(dir.path()).await.expect("starts").stop().await;
    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
    db.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(db);
    let message = refusal(start_on(dir.path()).await);
    assert!(message.contains("layout version 99"), "{message}");
}

#[tokio::test]
async fn an_old_state_json_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("state.json"),
        r#"{"version":1,"uploads":[],"files":[]}"#,
    )
    .unwrap();
    let message = refusal(start_on(dir.path()).await);
    assert!(message.contains("state.json"), "{message}");
    assert!(message.contains("older emulator"), "{message}");
    assert!(!dir.path().join("emulator.sqlite3").exists());
}

#[tokio::test]
async fn a_part_file_turned_into_a_link_outside_is_refused_and_the_outside_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path().join("precious.txt");
    std::fs::write(&outside, b"not the emulator's").unwrap();
    let content = common::content(5000, 2);
    let emulator = start_on(dir.path()).await.expect("starts");
    upload(&emulator, &content, 5000).await;
    emulator.stop().await;

    let parts = part_files(dir.path());
    assert_eq!(parts.len(), 1, "{parts:?}");
    let part = dir.path().join("parts").join(&parts[0]);
    let bytes = std::fs::read(&part).unwrap();
    std::fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink(&outside, &part).unwrap();

    let message = refusal(start_on(dir.path()).await);
    assert!(
        message.contains(&format!("parts/{}", parts[0])),
        "{message}"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"not the emulator's");

    // A record crafted to name a path is only an id: the part's file is
    // still the one its row id names, inside parts/.
    std::fs::remove_file(&part).unwrap();
    std::fs::write(&part, &bytes).unwrap();
    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
    db.execute("UPDATE parts SET seq = -1", [])
        .expect_err("row ids are positive");
    db.execute("UPDATE parts SET id = ?1", [outside.to_str().unwrap()])
        .unwrap();
    drop(db);
    let emulator = start_on(dir.path()).await.expect("starts");
    let client = common::client_of(&emulator, "k");
    let files = client
        .list_files(None, None, None, None)
        .await
        .expect("listed")
        .into_inner();
    let file_id = files.data[0].id.clone();
    assert_eq!(common::download(&client, &file_id).await, content);
    client.delete_file(&file_id).await.expect("deleted");
    assert!(!part.exists(), "the part went with its File");
    assert_eq!(std::fs::read(&outside).unwrap(), b"not the emulator's");
}

#[tokio::test]
async fn a_linked_parts_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("1"), b"outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("parts")).unwrap();
    let message = refusal(start_on(dir.path()).await);
    assert!(message.contains("parts"), "{message}");
    assert_eq!(std::fs::read(outside.path().join("1")).unwrap(), b"outside");
}

#[tokio::test]
async fn part_files_no_record_names_are_removed_at_start_and_others_left() {
    let dir = tempfile::tempdir().unwrap();
    let content = common::content(3000, 3);
    let emulator = start_on(dir.path()).await.expect("starts");
    let file_id = upload(&emulator, &content, 3000).await;
    emulator.stop().await;
    let kept = part_files(dir.path());
    // A part cut off by a crash leaves a file no row names.
    std::fs::write(dir.path().join("parts").join("999"), b"half a part").unwrap();
    std::fs::write(dir.path().join("parts").join("notes.txt"), b"mine").unwrap();

    let emulator = start_on(dir.path()).await.expect("starts");
    let mut expected = kept.clone();
    expected.push("notes.txt".into());
    expected.sort();
    assert_eq!(part_files(dir.path()), expected);
    let client = common::client_of(&emulator, "k");
    assert_eq!(common::download(&client, &file_id).await, content);
}

/// Sends `body` as a multipart part request with `boundary`; the status and answer.
async fn raw_part(
    emulator: &Emulator,
    upload_id: &str,
    boundary: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/uploads/{upload_id}/parts", emulator.base_url()))
        .bearer_auth("k")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn refused_parts_leave_no_file_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_on(dir.path()).await.expect("starts");
    let client = common::client_of(&emulator, "k");
    let upload = client
        .create_upload(&openai_uploads::types::CreateUploadRequest {
            filename: "a.jsonl".into(),
            purpose: openai_uploads::types::CreateUploadRequestPurpose::FineTune,
            bytes: 100_000,
            mime_type: "text/jsonl".into(),
            expires_after: None,
        })
        .await
        .unwrap()
        .into_inner();
    let data = vec![b'x'; 100_000];
    let field = |name: &str| {
        let mut part = format!(
            "--B\r\ncontent-disposition: form-data; name=\"{name}\"; filename=\"p\"\r\n\r\n"
        )
        .into_bytes();
        part.extend_from_slice(&data);
        part.extend_from_slice(b"\r\n");
        part
    };
    // A whole `data` field, then a malformed ending.
    let mut broken = field("data");
    broken.extend_from_slice(b"--B\r\ncontent-disposition: garbage");
    // `data` twice, and `data` followed by a field a part does not have.
    let mut twice = field("data");
    twice.extend(field("data"));
    twice.extend_from_slice(b"--B--\r\n");
    let mut unknown = field("data");
    unknown.extend(field("purpose"));
    unknown.extend_from_slice(b"--B--\r\n");
    for body in [broken, twice, unknown] {
        let (status, answer) = raw_part(&emulator, &upload.id, "B", body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
        assert_eq!(part_files(dir.path()), Vec::<String>::new());
    }
    // A well-formed one is kept, so the refusals above were about the form.
    let mut good = field("data");
    good.extend_from_slice(b"--B--\r\n");
    let (status, answer) = raw_part(&emulator, &upload.id, "B", good).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(part_files(dir.path()).len(), 1);
}

/// `text` without SQL comments, its words separated by single spaces.
fn normalised_sql(text: &str) -> String {
    text.lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
}

#[tokio::test]
async fn the_schema_in_the_readme_is_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    start_on(dir.path()).await.expect("starts").stop().await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README readable");
    let documented = readme
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an sql block in the README");
    let documented = normalised_sql(documented);
    let db = rusqlite::Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
    let mut statements = db
        .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL")
        .unwrap();
    let statements: Vec<String> = statements
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(statements.len(), 4, "{statements:?}");
    for statement in statements {
        let statement = normalised_sql(&statement);
        assert!(
            documented.contains(&statement),
            "not in the README as it is: {statement}\n\nREADME: {documented}"
        );
    }
}

#![cfg(feature = "emulator")]
//! The library's `Progress` on a shaped emulator: never more done than the
//! server has, in-flight bytes apart, 100 % only once the Upload is
//! completed, and resumed bytes done from the start but never counted as
//! this run's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use openai_uploads::emulator::{Emulator, EmulatorConfig, NetworkShape};
use openai_uploads::upload::{Progress, Purpose, UploadBuilder};
use openai_uploads::{Client, Error};

const PART: u64 = 64 * 1024;
const PARTS: u64 = 24;

async fn shaped() -> Arc<Emulator> {
    Arc::new(
        Emulator::start(
            EmulatorConfig::default().with_network(
                NetworkShape::default()
                    .stream_rate(1_000_000)
                    // Completing takes a round trip: long enough for every
                    // report before it to be seen on a busy machine.
                    .round_trip(Duration::from_millis(50)),
            ),
        )
        .await
        .expect("emulator starts"),
    )
}

fn upload(client: &Client, path: &std::path::Path) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .concurrency(4)
}

/// Bytes of the parts the emulator has read in full.
fn stored(emulator: &Emulator) -> u64 {
    emulator.received_parts().iter().map(|p| p.bytes).sum()
}

/// Runs `builder`, checking every progress report against what the
/// emulator holds at that moment; returns the reports.
async fn watched(
    emulator: Arc<Emulator>,
    builder: UploadBuilder,
) -> (Result<openai_uploads::types::Upload, Error>, Vec<Progress>) {
    let (handle, run) = builder.start();
    let mut progress = handle.progress();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await.is_ok() {
            let p = *progress.borrow_and_update();
            let held = stored(&emulator);
            assert!(
                p.bytes_confirmed - p.bytes_resumed <= held,
                "done {} > stored {held}: {p:?}",
                p.bytes_confirmed
            );
            assert!(p.bytes_confirmed <= p.bytes_sent, "{p:?}");
            seen.push(p);
        }
        seen
    });
    let outcome = run.await;
    drop(handle);
    (outcome, watcher.await.expect("every report checked"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_is_never_more_than_the_server_holds_and_100_percent_only_at_the_end() {
    let emulator = shaped().await;
    let client = common::client_of(&emulator, "sk-progress");
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", &common::content(PARTS * PART, 71));
    let (outcome, seen) = watched(emulator.clone(), upload(&client, &path)).await;
    outcome.expect("completes");

    let (last, before) = seen.split_last().expect("reports");
    assert!(last.completed);
    assert_eq!(last.percent_done(), 100);
    assert!(
        before
            .iter()
            .all(|p| !p.completed && p.percent_done() < 100),
        "nothing says done before the end"
    );
    assert!(
        before
            .iter()
            .any(|p| p.parts_confirmed == p.parts_total && !p.completed),
        "every part confirmed is reported before, and apart from, completion"
    );
    assert!(
        before.iter().any(|p| p.in_flight() > 0),
        "bytes in flight are reported apart"
    );
    for pair in seen.windows(2) {
        assert!(pair[1].bytes_confirmed >= pair[0].bytes_confirmed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_bytes_are_done_from_the_start_and_never_this_runs() {
    let emulator = shaped().await;
    let client = common::client_of(&emulator, "sk-progress");
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", &common::content(PARTS * PART, 72));
    let state = dir.path().join("data.state");

    let (handle, run) = upload(&client, &path).state_file(&state).start();
    let task = tokio::spawn(run);
    handle
        .progress()
        .wait_for(|p| p.parts_confirmed >= 4)
        .await
        .unwrap();
    handle.pause();
    assert!(task.await.unwrap().is_err());
    let saved = openai_uploads::upload::ResumeState::load(&state)
        .unwrap()
        .unwrap();
    let resumed = saved.parts.len() as u64 * PART;

    let (outcome, seen) =
        watched(emulator.clone(), upload(&client, &path).state_file(&state)).await;
    outcome.expect("the resume completes");
    let with_resumed: Vec<_> = seen.iter().filter(|p| p.bytes_resumed > 0).collect();
    assert!(!with_resumed.is_empty(), "resumed bytes reported");
    for p in with_resumed {
        assert_eq!(p.bytes_resumed, resumed);
        assert!(p.bytes_confirmed >= resumed, "done from the start: {p:?}");
    }
    let last = seen.last().unwrap();
    assert_eq!(last.confirmed_this_run(), PARTS * PART - resumed);
}

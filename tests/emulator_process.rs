#![cfg(feature = "cli")]
//! `openai emulator serve` as a real process: signals, a busy port, many
//! pending Uploads, and a `kill -9` in the middle of an upload.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openai_uploads::upload::{Purpose, RetryPolicy};
use openai_uploads::{Config, Error};

/// A running `openai emulator serve`, killed when dropped.
struct Served {
    child: Child,
    base_url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    /// Starts `openai emulator serve --port 0` with `args`, with `TMPDIR` at
    /// `tmp` when given, and waits for the address it announces.
    fn start(args: &[&str], tmp: Option<&Path>) -> Served {
        Self::start_limited(args, tmp, None)
    }

    /// As [`Served::start`], with at most `files` open descriptors if given.
    fn start_limited(args: &[&str], tmp: Option<&Path>, files: Option<u64>) -> Served {
        let mut command = Command::new(env!("CARGO_BIN_EXE_openai"));
        if let Some(files) = files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            // SAFETY: setrlimit is async-signal-safe, and `limit` is a
            // plain value copied into the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        command
            .args(["emulator", "serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(tmp) = tmp {
            command.env("TMPDIR", tmp);
        }
        let mut child = command.spawn().expect("emulator starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("stderr readable");
        // The rest is kept (up to a cap) so that a chatty emulator never
        // blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                if kept.len() < 1 << 20 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        let Some(base_url) = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .map(str::to_string)
        else {
            let _ = child.kill();
            panic!("no URL announced: {line:?}");
        };
        Served {
            child,
            base_url,
            log,
        }
    }

    /// What the emulator logged after its first line.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// CPU seconds the process used so far (user and system).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / per_second
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the pid of a child this test spawned.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits up to `deadline` for the process to end; its exit status.
    fn wait(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "still running after {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of `/proc/<pid>/status`, such as `Threads` or `VmHWM`.
    fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the emulator is alive");
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulator_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("openai-emulator-"))
        .collect()
}

#[test]
fn sigterm_and_sighup_stop_serve_and_remove_its_temporary_directory() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let tmp = tempfile::tempdir().unwrap();
        let mut served = Served::start(&[], Some(tmp.path()));
        assert_eq!(emulator_dirs(tmp.path()).len(), 1, "a temporary directory");
        served.signal(signal);
        let status = served.wait(Duration::from_secs(20));
        assert!(status.success(), "signal {signal}: {status:?}");
        assert_eq!(
            emulator_dirs(tmp.path()),
            Vec::<String>::new(),
            "signal {signal} left the temporary directory"
        );
    }
}

#[test]
fn serve_on_a_busy_port_exits_7_saying_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_openai"))
        .args(["emulator", "serve", "--port", &port])
        .output()
        .expect("ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&port), "{stderr}");
}

fn create_body() -> serde_json::Value {
    serde_json::json!({
        "filename": "train.jsonl",
        "purpose": "fine-tune",
        "bytes": 100,
        "mime_type": "text/jsonl",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_pending_uploads_keep_the_thread_count_flat() {
    const CREATES: usize = 20_000;
    const CLIENTS: usize = 8;
    let served = Served::start(&["--max-pending-uploads", "20000"], None);
    let threads_before = served.status("Threads");
    let client = reqwest::Client::new();
    let url = format!("{}/uploads", served.base_url);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for _ in 0..CREATES / CLIENTS {
                let answer = client
                    .post(&url)
                    .bearer_auth("k")
                    .json(&create_body())
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(answer.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client finished");
    }
    let threads_after = served.status("Threads");
    // Tokio's workers and a few blocking threads: nothing per Upload.
    assert!(
        threads_after <= 24,
        "{threads_after} threads after {CREATES} creates (from {threads_before})"
    );
    let over = client
        .post(&url)
        .bearer_auth("k")
        .json(&create_body())
        .send()
        .await
        .expect("answered");
    assert_eq!(over.status(), 429, "the cap holds");
    assert!(over.headers().contains_key("retry-after"));
}

/// Parts recorded in the database at `dir`, read as `sqlite3` would.
fn parts_recorded(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("emulator.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("database opens");
    db.query_row("SELECT count(*) FROM parts", [], |r| r.get(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_upload_then_restarted_the_resume_completes_with_identical_bytes() {
    const PART: u64 = 16 * 1024;
    const PARTS: u64 = 48;
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bytes = common::content(PART * PARTS, 21);
    let source = common::write_file(work.path(), "data.bin", &bytes);
    let state = work.path().join("data.bin.upload-state");
    let data_dir = data.path().to_str().unwrap();

    // Slow streams, so that the kill lands with some parts stored and some not.
    let mut first = Served::start(&["--data-dir", data_dir, "--stream-rate", "64k"], None);
    let client = Config::new()
        .with_api_key("k")
        .with_base_url(&first.base_url)
        .client()
        .unwrap();
    let upload = tokio::spawn(
        client
            .upload_file(&source)
            .purpose(Purpose::Assistants)
            .part_size(PART)
            .concurrency(2)
            .state_file(&state)
            // Gives up soon once the emulator is gone.
            .retry(RetryPolicy::none())
            .send(),
    );
    let start = Instant::now();
    while parts_recorded(data.path()) < 4 {
        assert!(start.elapsed() < Duration::from_secs(60), "no parts stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal(libc::SIGKILL);
    first.wait(Duration::from_secs(10));
    let stored = parts_recorded(data.path());
    assert!(
        (4..PARTS as i64).contains(&stored),
        "{stored} parts at the kill"
    );
    let failed = upload.await.unwrap().expect_err("the emulator died");
    let (upload_id, _) = failed
        .resumable()
        .unwrap_or_else(|| panic!("not resumable: {failed}"));
    let upload_id = upload_id.to_string();
    assert!(state.exists(), "the state file is kept");

    let second = Served::start(&["--data-dir", data_dir], None);
    let client = Config::new()
        .with_api_key("k")
        .with_base_url(&second.base_url)
        .client()
        .unwrap();
    let done = client
        .upload_file(&source)
        .purpose(Purpose::Assistants)
        .part_size(PART)
        .concurrency(2)
        .state_file(&state)
        .send()
        .await
        .unwrap_or_else(|e: Error| panic!("the resume failed: {e}"));
    assert_eq!(done.id, upload_id, "the same Upload, resumed");
    let file = done.file.expect("a File");
    assert_eq!(common::download(&client, &file.id).await, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_emulator_pauses_accepting_logs_once_and_recovers() {
    // Few descriptors and a cap on connections above them: accept fails.
    let served = Served::start_limited(&["--max-connections", "1000"], None, Some(48));
    let addr = served
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    // More than it has descriptors for, fewer than fit in the kernel's queue.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connected"),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = served.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = served.cpu_seconds() - cpu_before;
    // Spinning on accept would take both seconds of a core.
    assert!(
        cpu < 0.5,
        "{cpu} CPU seconds in 2 s while out of descriptors"
    );
    let log = served.log();
    assert_eq!(
        log.matches("accepting a connection failed").count(),
        1,
        "one line per run of failures: {log}"
    );

    drop(held);
    let answer = reqwest::Client::new()
        .get(format!("{}/files", served.base_url))
        .bearer_auth("k")
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("answered once descriptors are free");
    assert_eq!(answer.status(), 200);
}

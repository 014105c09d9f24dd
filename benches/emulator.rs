//! The emulator under load: `openai emulator serve --data-dir D` as a
//! process of its own, so that the CPU time, threads and peak memory
//! (`VmHWM`) printed are the emulator's alone. Clients run in this process,
//! on the same machine's cores.
//!
//! 1. The largest plan: one file of 10,000 parts of 4 KiB, uploaded with
//!    md5 by the one-call upload: seconds, and the emulator's CPU seconds.
//! 2. 20,000 pending Uploads created by 8 concurrent clients: creates per
//!    second, the emulator's threads before, at most and after, and its
//!    peak memory.
//! 3. 500 concurrent clients, each with a connection of its own, each
//!    uploading a small file: the latency of a whole upload (p50, p99,
//!    max), and how many failed (none refused).
//!
//! ```text
//! cargo bench --bench emulator --features cli
//! EMULATOR_BENCH_SKIP=plan,pending cargo bench --bench emulator --features cli
//! ```
//!
//! `EMULATOR_BENCH_SKIP`: sections to leave out (`plan`, `pending`, `clients`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openai_uploads::Config;
use openai_uploads::upload::Purpose;

/// `openai emulator serve` on a free port, killed when dropped.
struct Served {
    child: Child,
    base_url: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_openai"))
            .args(["emulator", "serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the emulator starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("stderr readable");
        // Drained, so that a log line never blocks the emulator.
        std::thread::spawn(move || for _ in stderr.lines() {});
        let base_url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL announced: {line:?}"))
            .to_string();
        Served { child, base_url }
    }

    /// A number field of `/proc/<pid>/status` (`Threads`, `VmHWM` in kB).
    fn status(&self, field: &str) -> u64 {
        status_of(self.child.id(), field)
    }

    /// CPU seconds used so far, user and system.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the emulator is alive");
        let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..]
            .split(' ')
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_of(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{field}:")))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn skipped(section: &str) -> bool {
    std::env::var("EMULATOR_BENCH_SKIP")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim() == section)
}

fn client_of(served: &Served) -> openai_uploads::Client {
    Config::new()
        .with_api_key("bench")
        .with_base_url(&served.base_url)
        .client()
        .expect("client builds")
}

/// Bytes that do not compress to nothing.
fn content(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn largest_plan() {
    const PART: u64 = 4096;
    const PARTS: u64 = 10_000;
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("plan.bin");
    std::fs::write(&source, content((PART * PARTS) as usize)).unwrap();
    let served = Served::start(&["--data-dir", data.path().to_str().unwrap()]);
    let client = client_of(&served);
    let cpu = served.cpu_seconds();
    let start = Instant::now();
    let upload = client
        .upload_file(&source)
        .purpose(Purpose::Assistants)
        .part_size(PART)
        .send()
        .await
        .expect("the largest plan uploads");
    let seconds = start.elapsed().as_secs_f64();
    let cpu = served.cpu_seconds() - cpu;
    assert!(upload.file.is_some());
    println!(
        "largest plan: {PARTS} parts of {PART} B, md5 on, --data-dir: {seconds:.1} s \
         ({:.0} parts/s), emulator CPU {cpu:.1} s, emulator peak RSS {} MB",
        PARTS as f64 / seconds,
        served.status("VmHWM") / 1000,
    );
}

/// Samples the emulator's thread count until `done`; the most seen.
fn sample_threads(pid: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut most = 0;
        while !done.load(Ordering::Relaxed) {
            most = most.max(status_of(pid, "Threads"));
            std::thread::sleep(Duration::from_millis(50));
        }
        most
    })
}

async fn pending_uploads() {
    const CREATES: usize = 20_000;
    const CLIENTS: usize = 8;
    let data = tempfile::tempdir().unwrap();
    let served = Served::start(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--max-pending-uploads",
        "20000",
    ]);
    let before = served.status("Threads");
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_threads(served.child.id(), done.clone());
    let url = format!("{}/uploads", served.base_url);
    let body = serde_json::json!({
        "filename": "train.jsonl",
        "purpose": "fine-tune",
        "bytes": 100,
        "mime_type": "text/jsonl",
    });
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (url, body) = (url.clone(), body.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..CREATES / CLIENTS {
                let answer = client
                    .post(&url)
                    .bearer_auth("bench")
                    .json(&body)
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(answer.status(), 200);
            }
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished.expect("a client finished");
    }
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let most = sampler.join().unwrap();
    println!(
        "pending Uploads: {CREATES} creates from {CLIENTS} clients, --data-dir: {seconds:.1} s \
         ({:.0} creates/s); emulator threads {before} before, at most {most}, {} after; \
         emulator peak RSS {} MB",
        CREATES as f64 / seconds,
        served.status("Threads"),
        served.status("VmHWM") / 1000,
    );
}

async fn concurrent_clients() {
    const CLIENTS: usize = 500;
    const SIZE: usize = 64 * 1024;
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(&["--data-dir", data.path().to_str().unwrap()]);
    let source = work.path().join("small.jsonl");
    std::fs::write(&source, content(SIZE)).unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    // A client each: a connection each, as 500 programs would have. Built
    // first, and released together, so that all 500 run at once.
    let clients: Vec<_> = (0..CLIENTS).map(|_| client_of(&served)).collect();
    let together = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (source, refused, together) = (source.clone(), refused.clone(), together.clone());
        tasks.spawn(async move {
            together.wait().await;
            let start = Instant::now();
            let result = client
                .upload_file(&source)
                .purpose(Purpose::Assistants)
                .send()
                .await;
            if let Err(e) = &result
                && e.is_unreachable()
            {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            (start.elapsed(), result.is_ok())
        });
    }
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_threads(served.child.id(), done.clone());
    together.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(CLIENTS);
    let mut failed = 0;
    while let Some(finished) = tasks.join_next().await {
        let (latency, ok) = finished.expect("a client finished");
        latencies.push(latency);
        failed += usize::from(!ok);
    }
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let most = sampler.join().unwrap();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "concurrent clients: {CLIENTS} clients each uploading {SIZE} B, --data-dir: \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, all done in {seconds:.1} s; \
         {failed} failed, {} refused; emulator threads at most {most}, peak RSS {} MB",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
        refused.load(Ordering::Relaxed),
        served.status("VmHWM") / 1000,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if !skipped("plan") {
            largest_plan().await;
        }
        if !skipped("pending") {
            pending_uploads().await;
        }
        if !skipped("clients") {
            concurrent_clients().await;
        }
    });
}

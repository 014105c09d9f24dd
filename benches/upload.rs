//! Throughput and memory of the one-call upload against the emulator, over
//! loopback and over network shapes.
//!
//! Every run is a fresh pair of processes (this binary re-executed): one
//! serves an emulator, the other uploads with the client, so each peak RSS
//! (`VmHWM`) and CPU time belongs to one side and one run. Both share this
//! machine's cores.
//!
//! 1. Loopback, for each size (`UPLOAD_BENCH_SIZES`, MiB, default
//!    `256,1024`): the md5 floor (the faster of `openssl md5` and `md5sum` on
//!    the same file, in the same run), our md5 alone (aws-lc) and the `md-5`
//!    crate's; then default uploads (adaptive parts in flight, part size from
//!    the file's size) with md5 on and off against an emulator that stores
//!    parts on a tmpfs and checks the md5, the same with md5 on against one
//!    that discards the bytes, and the fixed settings of earlier versions
//!    (4 in flight, 64 MiB parts). With `UPLOAD_BENCH_PYTHON` set to a
//!    Python that has `openai` installed, the SDK's `upload_file_chunked`
//!    (md5 computed first) runs on the same file and emulator.
//! 2. Network shapes (`UPLOAD_BENCH_SHAPE_MIB`, default 512): default
//!    uploads, md5 on, to a discarding emulator shaped as each network, beside
//!    the shape's limit (what a perfect client reaches: the link, or the
//!    streams it may use at their rate) and the Python SDK's helper.
//!    `UPLOAD_BENCH_SHAPES`: only the shapes whose names contain one of these
//!    comma-separated words.
//! 3. The largest plan: 10000 parts of 4 KiB, the client's peak memory.
//!
//! ```text
//! cargo bench --bench upload --features emulator
//! UPLOAD_BENCH_PYTHON=/tmp/py/bin/python cargo bench --bench upload --features emulator
//! ```
//!
//! `UPLOAD_BENCH_SKIP`: sections to leave out (`loopback`, `shapes`, `plan`);
//! `UPLOAD_BENCH_EMULATOR_DIR`: where the emulator stores parts (default
//! `/dev/shm` when it exists).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use openai_uploads::Config;
use openai_uploads::emulator::{Emulator, EmulatorConfig, FaultScope, Faults, NetworkShape};
use openai_uploads::types::UploadStatus;
use openai_uploads::upload::{MAX_CONCURRENCY, Purpose};

/// The part size of the fixed-settings rows (the largest the API takes).
const FIXED_PART_SIZE: u64 = 64 * MIB;

const MIB: u64 = 1024 * 1024;

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak resident set of process `pid` ("self" for this one), in KiB.
fn vm_hwm_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used, all threads.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    // `cargo bench` passes `--bench`; anything else selects a child's role.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("--serve") => serve(
            &args
                .get(1)
                .filter(|a| *a != "-")
                .map_or_else(emulator_root, PathBuf::from),
            args.get(2).is_some_and(|a| a == "discard"),
            args.get(3)
                .map_or_else(NetworkShape::default, |s| parse_shape(s)),
            args.get(3)
                .map_or_else(Faults::default, |s| parse_faults(s)),
        ),
        Some("--client") => client(&args[1..]),
        Some("--md5-only") => md5_only(Path::new(&args[1]), args.get(2).map(String::as_str)),
        _ => parent(),
    }
}

/// Where the emulator stores parts. Its storage stands for the service's:
/// RAM-backed when the machine has a tmpfs, so that a disk's write cost on the
/// shared cores is not counted against the client.
fn emulator_root() -> PathBuf {
    std::env::var_os("UPLOAD_BENCH_EMULATOR_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir)
}

/// A network shape named on the command line as
/// `STREAM_BYTES_S,LINK_BYTES_S,RTT_MS,IN_FLIGHT[,RATE_LIMIT_EVERY]` (`-`
/// for none).
fn parse_shape(text: &str) -> NetworkShape {
    let fields: Vec<Option<u64>> = text.split(',').map(|f| f.parse().ok()).collect();
    if !(4..=5).contains(&fields.len()) {
        return NetworkShape::default();
    }
    let mut shape = NetworkShape::default()
        .round_trip(std::time::Duration::from_millis(fields[2].unwrap_or(0)))
        .retry_after(std::time::Duration::from_millis(200));
    if let Some(rate) = fields[0] {
        shape = shape.stream_rate(rate);
    }
    if let Some(rate) = fields[1] {
        shape = shape.link_rate(rate);
    }
    if let Some(parts) = fields[3] {
        shape = shape.max_parts_in_flight(parts as usize);
    }
    shape
}

/// The faults of a shape's fifth field: a 429 with `Retry-After: 1` on one
/// part request in that many.
fn parse_faults(text: &str) -> Faults {
    match text.split(',').nth(4).and_then(|f| f.parse().ok()) {
        Some(every) => Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_rate_limit_every(every)
            .with_retry_after(std::time::Duration::from_secs(1)),
        None => Faults::default(),
    }
}

/// Child: an emulator storing its data under `root` (or, with `discard`,
/// only counting part bytes), shaped as `network` and injecting `faults`,
/// until stdin closes; then its peak RSS and CPU time.
fn serve(root: &Path, discard: bool, network: NetworkShape, faults: Faults) {
    let rt = runtime();
    let data = tempfile::tempdir_in(root).expect("emulator data directory");
    let emulator = rt
        .block_on(Emulator::start(
            EmulatorConfig::default()
                .with_data_dir(data.path())
                .with_discard_content(discard)
                .with_network(network)
                .with_faults(faults),
        ))
        .expect("emulator starts");
    println!("URL {}", emulator.base_url());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!(
        "HWM {} {} {}",
        vm_hwm_kib("self"),
        cpu_secs(),
        emulator.most_parts_in_flight()
    );
    std::io::stdout().flush().unwrap();
    drop(emulator);
    drop(rt);
    drop(data);
}

/// Child: one upload; prints seconds, peak RSS (KiB), peak live heap
/// (bytes) and CPU seconds. `auto` leaves a setting at its default.
fn client(args: &[String]) {
    let [base_url, path, concurrency, md5, part_size] = args else {
        panic!("--client BASE_URL PATH CONCURRENCY|auto MD5 PART_SIZE|auto");
    };
    let md5 = md5 == "1";
    let bytes = std::fs::metadata(path).unwrap().len();
    let rt = runtime();
    let client = Config::new()
        .with_api_key("bench-key")
        .with_base_url(base_url.as_str())
        .client()
        .expect("client");
    let start = Instant::now();
    let mut builder = client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .md5(md5);
    if let Ok(n) = concurrency.parse() {
        builder = builder.concurrency(n);
    }
    if let Ok(n) = part_size.parse() {
        builder = builder.part_size(n);
    }
    let upload = rt.block_on(builder.send()).expect("upload completes");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(upload.status, UploadStatus::Completed);
    assert_eq!(upload.bytes as u64, bytes);
    println!(
        "RESULT {secs} {} {} {}",
        vm_hwm_kib("self"),
        PEAK.load(Ordering::Relaxed),
        cpu_secs()
    );
}

/// Child: read the file with 1 MiB reads and md5 it (aws-lc, or `soft`:
/// the `md-5` crate).
fn md5_only(path: &Path, which: Option<&str>) {
    let start = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buffer = vec![0u8; MIB as usize];
    let mut ours = openai_uploads::digest::Md5::new();
    let mut soft = <md5::Md5 as md5::Digest>::new();
    let soft_only = which == Some("soft");
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        if soft_only {
            md5::Digest::update(&mut soft, &buffer[..n]);
        } else {
            ours.update(&buffer[..n]);
        }
    }
    std::hint::black_box((ours.finalize(), md5::Digest::finalize(soft)));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "RESULT {secs} {} {} {}",
        vm_hwm_kib("self"),
        PEAK.load(Ordering::Relaxed),
        cpu_secs()
    );
}

struct Measured {
    secs: f64,
    hwm_kib: u64,
    heap: u64,
    /// CPU seconds, user and system, of all its threads.
    cpu: f64,
}

fn parse_result(stdout: &str) -> Option<Measured> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    let mut fields = line.split_whitespace();
    Some(Measured {
        secs: fields.next()?.parse().ok()?,
        hwm_kib: fields.next()?.parse().ok()?,
        heap: fields.next()?.parse().ok()?,
        cpu: fields.next()?.parse().ok()?,
    })
}

fn run_child(args: &[&str]) -> Option<Measured> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("child {args:?} failed: {}", out.status);
        return None;
    }
    parse_result(&String::from_utf8_lossy(&out.stdout))
}

/// The emulator's figures for one run.
struct Served {
    hwm_kib: u64,
    cpu: f64,
    most_in_flight: u64,
}

/// An emulator process; `finish` stops it and reads its figures.
struct Server {
    process: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    url: String,
}

impl Server {
    fn start(discard: bool, shape: &str) -> Option<Self> {
        let exe = std::env::current_exe().unwrap();
        let mut process = Command::new(exe)
            .arg("--serve")
            .arg(emulator_root())
            .arg(if discard { "discard" } else { "store" })
            .arg(shape)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let mut lines = BufReader::new(process.stdout.take()?).lines();
        let url = lines.next()?.ok()?.strip_prefix("URL ")?.to_string();
        Some(Self {
            process,
            lines,
            url,
        })
    }

    fn finish(mut self) -> Served {
        drop(self.process.stdin.take()); // the emulator reports and exits
        let served = self
            .lines
            .find_map(|l| {
                let line = l.ok()?;
                let mut fields = line.strip_prefix("HWM ")?.split_whitespace();
                Some(Served {
                    hwm_kib: fields.next()?.parse().ok()?,
                    cpu: fields.next()?.parse().ok()?,
                    most_in_flight: fields.next()?.parse().ok()?,
                })
            })
            .unwrap_or(Served {
                hwm_kib: 0,
                cpu: f64::NAN,
                most_in_flight: 0,
            });
        let _ = self.process.wait();
        served
    }
}

/// One upload against a fresh emulator process.
fn run_upload(
    path: &Path,
    concurrency: &str,
    md5: bool,
    part_size: &str,
    discard: bool,
    shape: &str,
) -> Option<(Measured, Served)> {
    let server = Server::start(discard, shape)?;
    let measured = run_child(&[
        "--client",
        &server.url,
        path.to_str().unwrap(),
        concurrency,
        if md5 { "1" } else { "0" },
        part_size,
    ]);
    let served = server.finish();
    Some((measured?, served))
}

/// The Python SDK's helper on the same file, against a fresh emulator of
/// this binary: seconds, peak RSS in MiB, CPU seconds.
fn run_python(path: &Path, discard: bool, shape: &str) -> Option<(f64, f64, f64)> {
    let python = std::env::var_os("UPLOAD_BENCH_PYTHON")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer_python.py");
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("--bench-bin")
        .arg(exe)
        .arg("--file")
        .arg(path)
        .arg("--shape")
        .arg(shape)
        .stderr(Stdio::inherit());
    if discard {
        command.arg("--discard");
    }
    let out = command.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Some((*f.first()?, *f.get(1)?, *f.get(2)?))
}

/// The faster of `openssl md5` and `md5sum` on `path`, in seconds.
fn md5_floor(path: &Path) -> Option<(f64, &'static str)> {
    let time = |program: &str, args: &[&str]| -> Option<f64> {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .arg(path)
            .stdout(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| start.elapsed().as_secs_f64())
    };
    let openssl = time("openssl", &["md5"]).map(|s| (s, "openssl md5"));
    let md5sum = time("md5sum", &[]).map(|s| (s, "md5sum"));
    [openssl, md5sum]
        .into_iter()
        .flatten()
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn skipped(section: &str) -> bool {
    std::env::var("UPLOAD_BENCH_SKIP").is_ok_and(|s| s.split(',').any(|p| p.trim() == section))
}

/// A file of `mib` MiB of deterministic pseudo-random bytes.
fn make_file(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join(format!("bench-{mib}MiB.bin"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == mib * MIB) {
        return path;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ mib;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..mib {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
    path
}

fn mib_of_kib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn parent() {
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("UPLOAD_BENCH_DIR")
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    println!("MB = 10^6 bytes; CPU s = user + system of all threads; RSS = peak resident set");
    if !skipped("loopback") {
        loopback(&dir);
    }
    if !skipped("shapes") {
        shapes(&dir);
    }
    if !skipped("plan") {
        largest_plan(&dir);
    }
}

fn loopback(dir: &Path) {
    println!(
        "\n## Loopback (emulator storing under {}, checking the md5)",
        emulator_root().display()
    );
    println!(
        "{:>8} {:<36} {:>8} {:>8} {:>7} {:>11} {:>9} {:>11} {:>8}",
        "size",
        "run",
        "seconds",
        "MB/s",
        "/floor",
        "client RSS",
        "client s",
        "emul. RSS",
        "emul. s"
    );
    for mib in env_list("UPLOAD_BENCH_SIZES", "256,1024") {
        let path = make_file(dir, mib);
        let bytes = (mib * MIB) as f64;
        let _ = run_child(&["--md5-only", path.to_str().unwrap()]); // page cache
        let floor = md5_floor(&path);
        let floor_secs = floor.map_or(f64::NAN, |f| f.0);
        let row = |name: &str, secs: f64, rss: f64, cpu: f64, emul: Option<&Served>| {
            println!(
                "{:>5}MiB {:<36} {:>8.3} {:>8.1} {:>7.2} {:>8.1}MiB {:>9.3} {:>8.1}MiB {:>8.3}",
                mib,
                name,
                secs,
                bytes / 1e6 / secs,
                secs / floor_secs,
                rss,
                cpu,
                emul.map_or(f64::NAN, |e| mib_of_kib(e.hwm_kib)),
                emul.map_or(f64::NAN, |e| e.cpu)
            );
        };
        if let Some((secs, tool)) = floor {
            row(
                &format!("md5 floor ({tool})"),
                secs,
                f64::NAN,
                f64::NAN,
                None,
            );
        }
        for (name, which) in [
            ("md5 alone, aws-lc (ours)", "asm"),
            ("md5 alone, md-5 crate", "soft"),
        ] {
            if let Some(m) = run_child(&["--md5-only", path.to_str().unwrap(), which]) {
                row(name, m.secs, mib_of_kib(m.hwm_kib), m.cpu, None);
            }
        }
        let fixed = FIXED_PART_SIZE.to_string();
        let mut default_secs = f64::NAN;
        for (name, conc, part, md5, discard) in [
            ("default, md5 on", "auto", "auto", true, false),
            ("default, md5 off", "auto", "auto", false, false),
            (
                "default, md5 on, discarding emulator",
                "auto",
                "auto",
                true,
                true,
            ),
            (
                "4 in flight, 64 MiB parts, md5 on",
                "4",
                fixed.as_str(),
                true,
                false,
            ),
        ] {
            match run_upload(&path, conc, md5, part, discard, "-") {
                Some((m, served)) => {
                    row(name, m.secs, mib_of_kib(m.hwm_kib), m.cpu, Some(&served));
                    if name == "default, md5 on" {
                        default_secs = m.secs;
                    }
                }
                None => println!("{mib:>5}MiB {name:<34}   FAILED"),
            }
        }
        if let Some((secs, rss, cpu)) = run_python(&path, false, "-") {
            row("Python SDK helper, md5 first", secs, rss, cpu, None);
            println!(
                "{mib:>5}MiB default md5-on upload: {:.2}x the md5 floor, {:.2}x faster than the Python SDK",
                default_secs / floor_secs,
                secs / default_secs
            );
        } else {
            println!(
                "{mib:>5}MiB default md5-on upload: {:.2}x the md5 floor (set UPLOAD_BENCH_PYTHON for the SDK)",
                default_secs / floor_secs
            );
        }
    }
}

/// A network measured: per-stream rate, link rate (bytes per second),
/// round trip (ms), parts in flight the server takes, and one part request
/// in how many answered 429 with `Retry-After: 1`.
struct Shape {
    name: &'static str,
    stream: Option<u64>,
    link: Option<u64>,
    rtt_ms: u64,
    in_flight: Option<u64>,
    rate_limit_every: Option<u64>,
}

const SHAPES: [Shape; 5] = [
    Shape {
        name: "few fast streams",
        stream: Some(100_000_000),
        link: Some(500_000_000),
        rtt_ms: 20,
        in_flight: None,
        rate_limit_every: None,
    },
    Shape {
        name: "mid",
        stream: Some(20_000_000),
        link: Some(160_000_000),
        rtt_ms: 30,
        in_flight: None,
        rate_limit_every: None,
    },
    Shape {
        name: "many slow streams",
        stream: Some(5_000_000),
        link: Some(100_000_000),
        rtt_ms: 80,
        in_flight: None,
        rate_limit_every: None,
    },
    Shape {
        name: "rate-limited, 8 in flight",
        stream: Some(10_000_000),
        link: Some(400_000_000),
        rtt_ms: 40,
        in_flight: Some(8),
        rate_limit_every: None,
    },
    Shape {
        name: "mid, 429 on 1 part in 25",
        stream: Some(20_000_000),
        link: Some(160_000_000),
        rtt_ms: 30,
        in_flight: None,
        rate_limit_every: Some(25),
    },
];

fn shapes(dir: &Path) {
    let mib = env_list("UPLOAD_BENCH_SHAPE_MIB", "512")
        .first()
        .copied()
        .unwrap_or(512);
    let path = make_file(dir, mib);
    let bytes = (mib * MIB) as f64;
    println!(
        "\n## Network shapes ({mib} MiB, md5 on, default settings, emulator discarding the bytes)"
    );
    println!(
        "{:<26} {:>7} {:>7} {:>4} {:>4} {:>8} {:>8} {:>8} {:>7} {:>5} {:>11} {:>9} {:>8}",
        "shape",
        "stream",
        "link",
        "rtt",
        "max",
        "limit s",
        "ours s",
        "MB/s",
        "/limit",
        "peak",
        "client RSS",
        "python s",
        "py/ours"
    );
    let chosen = std::env::var("UPLOAD_BENCH_SHAPES").ok();
    for Shape {
        name,
        stream,
        link,
        rtt_ms: rtt,
        in_flight,
        rate_limit_every,
    } in SHAPES
    {
        if chosen
            .as_deref()
            .is_some_and(|words| !words.split(',').any(|w| name.contains(w.trim())))
        {
            continue;
        }
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let arg = format!(
            "{},{},{rtt},{},{}",
            opt(stream),
            opt(link),
            opt(in_flight),
            opt(rate_limit_every)
        );
        let mut shape = parse_shape(&arg);
        shape.retry_after = None;
        let limit = bytes / shape.limit_of(MAX_CONCURRENCY);
        let Some((m, served)) = run_upload(&path, "auto", true, "auto", true, &arg) else {
            println!("{name:<26} FAILED");
            continue;
        };
        let python = run_python(&path, true, &arg);
        let mb = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{}M", v / 1_000_000));
        println!(
            "{:<26} {:>7} {:>7} {:>4} {:>4} {:>8.2} {:>8.2} {:>8.1} {:>7.2} {:>5} {:>8.1}MiB {:>9} {:>8}",
            name,
            mb(stream),
            mb(link),
            rtt,
            opt(in_flight),
            limit,
            m.secs,
            bytes / 1e6 / m.secs,
            m.secs / limit,
            served.most_in_flight,
            mib_of_kib(m.hwm_kib),
            python.map_or("-".to_string(), |p| format!("{:.2}", p.0)),
            python.map_or("-".to_string(), |p| format!("{:.2}", p.0 / m.secs)),
        );
    }
    println!("(peak: the most part requests the emulator served at once)");
}

/// The most parts a plan takes, each of the smallest size: the client's
/// memory for its bookkeeping.
fn largest_plan(dir: &Path) {
    use openai_uploads::upload::{MAX_PARTS, MIN_PART_SIZE};
    let path = dir.join("largest-plan.bin");
    std::fs::write(&path, vec![7u8; (MAX_PARTS * MIN_PART_SIZE) as usize]).unwrap();
    let part = MIN_PART_SIZE.to_string();
    println!(
        "\n## The largest plan: {MAX_PARTS} parts of {MIN_PART_SIZE} bytes, md5 on, discarding emulator"
    );
    match run_upload(&path, "auto", true, &part, true, "-") {
        Some((m, _)) => println!(
            "{:.3} s, client peak RSS {:.1} MiB, peak heap {:.1} MiB",
            m.secs,
            mib_of_kib(m.hwm_kib),
            m.heap as f64 / MIB as f64
        ),
        None => println!("FAILED"),
    }
}

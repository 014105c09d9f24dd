//! Throughput of the one-call upload against the emulator over loopback.
//!
//! Prints, for each file size, concurrency and md5 setting: seconds, MB/s
//! (10^6 bytes per second), seconds until the last part was confirmed (the
//! rest is the complete call, where the emulator finishes its md5 of the
//! parts when one was sent), and the peak memory of the client
//! and of the emulator, and the CPU seconds (user + system, all threads) each
//! used; plus the time to read and md5 the same file (1 MiB reads), the
//! ceiling of an md5-on upload, and the ratio upload / md5 at the default
//! settings (concurrency 4, md5 on, 64 MiB parts).
//!
//! Every run is a fresh pair of processes (this binary re-executed): one
//! serves an emulator, the other uploads with the client, so each peak RSS
//! (`VmHWM`) belongs to one side and one run. The client's peak live heap is
//! counted by a global allocator. The emulator streams parts to a directory
//! on a tmpfs where there is one, standing for the service's storage, and
//! hashes them as they arrive, to check the md5 at completion; both are in
//! the timing, and both run on the client's cores. One more run per size, at
//! the default settings (conc `4/d`), goes to an emulator that discards part
//! bytes instead: the client's own cost, with the cores to itself. Data files
//! are created once, in a temporary directory (or `UPLOAD_BENCH_DIR`), and
//! stay in the page cache.
//!
//! ```text
//! cargo bench --bench upload --features emulator
//! UPLOAD_BENCH_SIZES=256 UPLOAD_BENCH_CONCURRENCY=1,4 cargo bench --bench upload --features emulator
//! ```
//!
//! `UPLOAD_BENCH_SIZES`: file sizes in MiB (default `256,1024`);
//! `UPLOAD_BENCH_CONCURRENCY`: parts in flight (default `1,2,4,8`);
//! `UPLOAD_BENCH_PART_MIB`: part size in MiB (default 64);
//! `UPLOAD_BENCH_EMULATOR_DIR`: where the emulator stores parts (default
//! `/dev/shm` when it exists, else the temporary directory).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use md5::{Digest, Md5};
use openai_uploads::Config;
use openai_uploads::emulator::{Emulator, EmulatorConfig};
use openai_uploads::types::UploadStatus;
use openai_uploads::upload::{DEFAULT_CONCURRENCY, Purpose, UploadExt};

/// The part size of the fixed-settings rows (the largest the API takes).
const DEFAULT_PART_SIZE: u64 = 64 * MIB;

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
        ),
        Some("--client") => client(&args[1..]),
        Some("--md5-only") => md5_only(Path::new(&args[1])),
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

/// Child: an emulator storing its data under `root` (or, with `discard`,
/// only counting part bytes) until stdin closes, then its peak RSS and CPU
/// time.
fn serve(root: &Path, discard: bool) {
    let rt = runtime();
    let data = tempfile::tempdir_in(root).expect("emulator data directory");
    let emulator = rt
        .block_on(Emulator::start(EmulatorConfig {
            data_dir: Some(data.path().to_path_buf()),
            discard_content: discard,
            ..EmulatorConfig::default()
        }))
        .expect("emulator starts");
    println!("URL {}", emulator.base_url());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("HWM {} {}", vm_hwm_kib("self"), cpu_secs());
    std::io::stdout().flush().unwrap();
    drop(emulator);
    drop(rt);
    drop(data);
}

/// Child: one upload; prints seconds, peak RSS (KiB) and peak live heap (bytes).
fn client(args: &[String]) {
    let [base_url, path, concurrency, md5, part_size] = args else {
        panic!("--client BASE_URL PATH CONCURRENCY MD5 PART_SIZE");
    };
    let concurrency: usize = concurrency.parse().unwrap();
    let md5 = md5 == "1";
    let part_size: u64 = part_size.parse().unwrap();
    let bytes = std::fs::metadata(path).unwrap().len();
    let rt = runtime();
    let client = Config::new()
        .with_api_key("bench-key")
        .with_base_url(base_url.as_str())
        .client()
        .expect("client");
    let start = Instant::now();
    let (handle, upload) = client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(part_size)
        .concurrency(concurrency)
        .md5(md5)
        .start();
    // When the last part is confirmed: the rest is the complete call, where
    // the emulator assembles the parts (and checks the md5 when sent).
    let mut progress = handle.progress();
    let parts_done = rt.spawn(async move {
        let _ = progress
            .wait_for(|p| p.parts_total > 0 && p.parts_confirmed == p.parts_total)
            .await;
        start.elapsed().as_secs_f64()
    });
    let upload = rt.block_on(upload).expect("upload completes");
    let secs = start.elapsed().as_secs_f64();
    let parts_secs = rt.block_on(parts_done).unwrap_or(secs);
    assert_eq!(upload.status, UploadStatus::Completed);
    assert_eq!(upload.bytes as u64, bytes);
    println!(
        "RESULT {secs} {} {} {} {parts_secs}",
        vm_hwm_kib("self"),
        PEAK.load(Ordering::Relaxed),
        cpu_secs()
    );
}

/// Child: read the file with 1 MiB reads and md5 it.
fn md5_only(path: &Path) {
    let start = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buffer = vec![0u8; MIB as usize];
    let mut hasher = Md5::new();
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let digest = hasher.finalize();
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(digest);
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
    /// Until the last part was confirmed (uploads only).
    parts_secs: Option<f64>,
}

fn parse_result(stdout: &str) -> Option<Measured> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    let mut fields = line.split_whitespace();
    Some(Measured {
        secs: fields.next()?.parse().ok()?,
        hwm_kib: fields.next()?.parse().ok()?,
        heap: fields.next()?.parse().ok()?,
        cpu: fields.next()?.parse().ok()?,
        parts_secs: fields.next().and_then(|f| f.parse().ok()),
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
}

/// One upload against a fresh emulator process: the client's figures and
/// the emulator's.
fn run_upload(
    emulator_root: &Path,
    path: &Path,
    concurrency: usize,
    md5: bool,
    part_size: u64,
    discard: bool,
) -> Option<(Measured, Served)> {
    let exe = std::env::current_exe().unwrap();
    let mut server = Command::new(exe)
        .arg("--serve")
        .arg(emulator_root)
        .arg(if discard { "discard" } else { "store" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = lines.next()?.ok()?.strip_prefix("URL ")?.to_string();
    let measured = run_child(&[
        "--client",
        &url,
        path.to_str().unwrap(),
        &concurrency.to_string(),
        if md5 { "1" } else { "0" },
        &part_size.to_string(),
    ]);
    drop(server.stdin.take()); // the emulator reports and exits
    let served = lines
        .find_map(|l| {
            let line = l.ok()?;
            let mut fields = line.strip_prefix("HWM ")?.split_whitespace();
            Some(Served {
                hwm_kib: fields.next()?.parse().ok()?,
                cpu: fields.next()?.parse().ok()?,
            })
        })
        .unwrap_or(Served {
            hwm_kib: 0,
            cpu: f64::NAN,
        });
    let _ = server.wait();
    Some((measured?, served))
}

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
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
    let sizes = env_list("UPLOAD_BENCH_SIZES", "256,1024");
    let concurrencies = env_list("UPLOAD_BENCH_CONCURRENCY", "1,2,4,8");
    let part_size = env_list("UPLOAD_BENCH_PART_MIB", "")
        .first()
        .map_or(DEFAULT_PART_SIZE, |m| m * MIB);
    let temp;
    let dir = match std::env::var_os("UPLOAD_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir().unwrap();
            temp.path().to_path_buf()
        }
    };
    let files: Vec<(u64, PathBuf)> = sizes.iter().map(|&m| (m, make_file(&dir, m))).collect();
    let emulator_root = emulator_root();

    println!(
        "upload over loopback to the emulator (storing under {}); parts of {} MiB; MB = 10^6 bytes",
        emulator_root.display(),
        part_size / MIB
    );
    println!(
        "{:>8} {:>5} {:>4} {:>8} {:>8} {:>8} {:>11} {:>11} {:>11} {:>8} {:>8}",
        "size",
        "conc",
        "md5",
        "seconds",
        "MB/s",
        "parts s",
        "client RSS",
        "client heap",
        "emul. RSS",
        "client s",
        "emul. s"
    );
    let mut summary = Vec::new();
    for (mib, path) in &files {
        let bytes = (mib * MIB) as f64;
        // Warm the page cache, then time the ceiling.
        let _ = run_child(&["--md5-only", path.to_str().unwrap()]);
        let ceiling = run_child(&["--md5-only", path.to_str().unwrap()]);
        if let Some(m) = &ceiling {
            println!(
                "{:>5}MiB {:>5} {:>4} {:>8.3} {:>8.1} {:>8} {:>8.1}MiB {:>8.1}MiB {:>11} {:>8.3} {:>8}",
                mib,
                "-",
                "only",
                m.secs,
                bytes / 1e6 / m.secs,
                "-",
                mib_of_kib(m.hwm_kib),
                m.heap as f64 / MIB as f64,
                "-",
                m.cpu,
                "-"
            );
        }
        let mut default_secs = None;
        for &concurrency in &concurrencies {
            for md5 in [true, false] {
                let label = if md5 { "on" } else { "off" };
                let conc = concurrency.to_string();
                match run_upload(
                    &emulator_root,
                    path,
                    concurrency as usize,
                    md5,
                    part_size,
                    false,
                ) {
                    Some((m, served)) => {
                        print_row(*mib, &conc, label, &m, &served);
                        if md5
                            && concurrency as usize == DEFAULT_CONCURRENCY
                            && part_size == DEFAULT_PART_SIZE
                        {
                            default_secs = Some((m.secs, m.parts_secs.unwrap_or(f64::NAN)));
                        }
                    }
                    None => println!("{mib:>5}MiB {conc:>5} {label:>4}   FAILED"),
                }
            }
        }
        // The client alone: the same default upload to an emulator that
        // neither stores nor hashes, so that its work does not share the
        // client's cores.
        let conc = format!("{DEFAULT_CONCURRENCY}/d");
        let alone = run_upload(
            &emulator_root,
            path,
            DEFAULT_CONCURRENCY,
            true,
            part_size,
            true,
        );
        match &alone {
            Some((m, served)) => print_row(*mib, &conc, "on", m, served),
            None => println!("{mib:>5}MiB {conc:>5} {:>4}   FAILED", "on"),
        }
        if let (Some((upload, parts)), Some(md5)) = (default_secs, &ceiling) {
            summary.push(format!(
                "{mib} MiB: upload (concurrency {DEFAULT_CONCURRENCY}, md5 on, {} MiB parts) {:.3} s / md5 only {:.3} s = {:.2}; \
                 until the last part confirmed {:.3} s / md5 only = {:.2}",
                DEFAULT_PART_SIZE / MIB,
                upload,
                md5.secs,
                upload / md5.secs,
                parts,
                parts / md5.secs
            ));
            if let Some((m, _)) = &alone {
                summary.push(format!(
                    "{mib} MiB: the same to an emulator discarding the bytes {:.3} s / md5 only = {:.2}",
                    m.secs,
                    m.secs / md5.secs
                ));
            }
        }
    }
    println!(
        "(conc n/d: the emulator discards part bytes: it neither stores them nor checks the md5)"
    );
    for line in summary {
        println!("{line}");
    }
}

/// One line of the table, for an upload.
fn print_row(mib: u64, conc: &str, md5: &str, m: &Measured, served: &Served) {
    let bytes = (mib * MIB) as f64;
    println!(
        "{:>5}MiB {:>5} {:>4} {:>8.3} {:>8.1} {:>8.3} {:>8.1}MiB {:>8.1}MiB {:>8.1}MiB {:>8.3} {:>8.3}",
        mib,
        conc,
        md5,
        m.secs,
        bytes / 1e6 / m.secs,
        m.parts_secs.unwrap_or(f64::NAN),
        mib_of_kib(m.hwm_kib),
        m.heap as f64 / MIB as f64,
        mib_of_kib(served.hwm_kib),
        m.cpu,
        served.cpu
    );
}

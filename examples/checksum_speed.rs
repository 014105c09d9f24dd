//! How fast the part checksums of the resume state are beside the md5:
//! CRC32C (`crc32c`, hardware instructions where the CPU has them) and MD5
//! (aws-lc, as the upload uses it) over the same bytes in memory, one core;
//! then what a resume pays to check its confirmed parts again: the file
//! read back from the page cache in 256 KiB chunks into CRC32C.
//!
//! ```sh
//! cargo run --release --example checksum_speed [MiB]
//! ```

use std::io::{Read, Write};
use std::time::Instant;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let bytes: Vec<u8> = (0..mib << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mb = bytes.len() as f64 / 1e6;

    for round in 1..=3 {
        let started = Instant::now();
        let crc = crc32c::crc32c(&bytes);
        let crc_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let md5 = openai_uploads::digest::Md5::digest(&bytes);
        let md5_s = started.elapsed().as_secs_f64();

        println!(
            "round {round}: {mib} MiB: crc32c {:.0} MB/s ({crc:08x}), md5 {:.0} MB/s ({}), crc32c {:.1}x md5",
            mb / crc_s,
            mb / md5_s,
            openai_uploads::digest::hex(&md5),
            md5_s / crc_s
        );
    }

    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(&bytes).expect("written");
    file.flush().expect("flushed");
    for round in 1..=3 {
        let started = Instant::now();
        let mut reader = std::fs::File::open(file.path()).expect("opened");
        let mut buffer = vec![0; 256 * 1024];
        let mut crc = 0;
        loop {
            let n = reader.read(&mut buffer).expect("read");
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buffer[..n]);
        }
        let s = started.elapsed().as_secs_f64();
        println!(
            "round {round}: re-verify {mib} MiB from the page cache: {:.3} s, {:.0} MB/s ({crc:08x})",
            s,
            mb / s
        );
    }
}

#!/usr/bin/env python3
"""The Python SDK's chunked upload against the emulator: a peer for benches/upload.rs.

`openai.OpenAI().uploads.upload_file_chunked` sends the parts one at a time,
each read whole into memory, and takes an md5 only if the caller computed it.
"md5 on" below hashes the file first (hashlib, 1 MiB reads) and includes that
time, as the Rust client does the hashing within its upload.

    pip install openai
    # an emulator: the CLI, or the bench binary's --serve mode
    target/release/openai emulator serve --port 8089 &
    python3 benches/peer_python.py --base-url http://127.0.0.1:8089/v1 --sizes 256,1024
    # or let the script start one per run from the bench binary
    # (--discard: one that counts part bytes without storing or hashing them;
    # --shape STREAM,LINK,RTT_MS,IN_FLIGHT: a network-shaped one):
    python3 benches/peer_python.py --bench-bin target/release/deps/upload-HASH --sizes 256
    # one run on a given file, md5 on, as benches/upload.rs calls it:
    python3 benches/peer_python.py --bench-bin BIN --file F [--discard] [--shape S]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

MIB = 1024 * 1024


def make_file(directory: Path, mib: int) -> Path:
    path = directory / f"peer-{mib}MiB.bin"
    if path.exists() and path.stat().st_size == mib * MIB:
        return path
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for i in range(mib):
            # Different bytes per MiB, cheaply.
            out.write(block[i % 251 :] + block[: i % 251])
    return path


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


class Server:
    """An emulator from the bench binary's `--serve` mode, or a given URL."""

    def __init__(self, base_url: str | None, bench_bin: str | None, discard: bool,
                 shape: str = "-"):
        self.process = None
        if base_url:
            self.base_url = base_url
            return
        self.process = subprocess.Popen(
            [bench_bin, "--serve", "-", "discard" if discard else "store", shape],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        assert line.startswith("URL "), line
        self.base_url = line[4:]

    def close(self) -> tuple[str, str]:
        """The emulator's peak RSS and CPU seconds, once it has exited."""
        if not self.process:
            return "-", "-"
        self.process.stdin.close()
        hwm, cpu = "-", "-"
        for line in self.process.stdout:
            if line.startswith("HWM "):
                fields = line[4:].split()
                hwm = f"{int(fields[0]) / 1024:.1f}MiB"
                cpu = f"{float(fields[1]):.3f}"
        self.process.wait()
        return hwm, cpu


def cpu_secs() -> float:
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(path: Path, base_url: str, md5: bool, part_size: int) -> float:
    client = openai.OpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    start = time.perf_counter()
    kwargs = {"md5": md5_of(path)} if md5 else {}
    upload = client.uploads.upload_file_chunked(
        file=path,
        mime_type="application/octet-stream",
        purpose="assistants",
        part_size=part_size,
        **kwargs,
    )
    secs = time.perf_counter() - start
    assert upload.status == "completed", upload
    assert upload.bytes == path.stat().st_size
    return secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an emulator already running")
    parser.add_argument("--bench-bin", help="start an emulator per run with BIN --serve")
    parser.add_argument("--sizes", default="256", help="file sizes in MiB (default 256)")
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--dir", help="where the data files go (default: a temporary directory)")
    parser.add_argument("--discard", action="store_true",
                        help="with --bench-bin: an emulator that discards part bytes")
    parser.add_argument("--file", help="one run, md5 on, on this file: prints RESULT secs rss cpu")
    parser.add_argument("--shape", default="-", help="with --bench-bin: the emulator's network shape")
    args = parser.parse_args()
    if not args.base_url and not args.bench_bin:
        parser.error("give --base-url or --bench-bin")
    if args.file:
        server = Server(args.base_url, args.bench_bin, args.discard, args.shape)
        before = cpu_secs()
        try:
            secs = run(Path(args.file), server.base_url, True, args.part_mib * MIB)
        finally:
            server.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"RESULT {secs} {rss} {cpu_secs() - before}")
        return
    temp = None
    directory = Path(args.dir) if args.dir else Path(temp := tempfile.mkdtemp(prefix="peer-"))
    print(f"openai-python {openai.__version__}, upload_file_chunked (sequential), "
          f"parts of {args.part_mib} MiB; MB = 10^6 bytes"
          + ("; the emulator discards part bytes" if args.discard else ""))
    print(f"{'size':>8} {'md5':>4} {'seconds':>8} {'MB/s':>8} {'python RSS':>11} {'emul. RSS':>11}"
          f" {'python s':>8} {'emul. s':>8}")
    try:
        for mib in (int(s) for s in args.sizes.split(",")):
            path = make_file(directory, mib)
            md5_of(path)  # warm the page cache
            for md5 in (True, False):
                server = Server(args.base_url, args.bench_bin, args.discard)
                before = cpu_secs()
                try:
                    secs = run(path, server.base_url, md5, args.part_mib * MIB)
                finally:
                    server_hwm, server_cpu = server.close()
                python_cpu = cpu_secs() - before
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{mib:>5}MiB {'on' if md5 else 'off':>4} {secs:>8.3f} "
                      f"{mib * MIB / 1e6 / secs:>8.1f} {rss:>8.1f}MiB {server_hwm:>11}"
                      f" {python_cpu:>8.3f} {server_cpu:>8}")
                sys.stdout.flush()
    finally:
        if temp:
            for p in Path(temp).iterdir():
                p.unlink()
            os.rmdir(temp)


if __name__ == "__main__":
    main()

"""Exporter benchmark: a /metrics scrape against `numastat -p` on the same processes.

    python3 benchmarks/bench_export.py [--procs 2000] [--rounds 7] [--idle-procs 500]
                                       [--idle-seconds 60] [--interval 15]

1. Starts N idle processes (about 300 mappings each), starts the real
   `numatui export --listen 127.0.0.1:<port>` (the whole command, its own
   interpreter), and times, interleaved in the same rounds, one HTTP scrape
   of /metrics and one `numastat -p PID...` of the same pids. Target
   (issue 15): scrape <= 0.3x numastat.
2. With M idle processes, scrapes the exporter every `--interval` seconds
   for `--idle-seconds` and reports its CPU time (utime+stime from
   /proc/PID/stat) over that window as a share of one core. Target <= 1 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workers import idle_processes

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_exporter() -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "numatui", "export", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # printed after the first (priming) scan
    if "serving" not in line:
        raise SystemExit(f"exporter did not start: {line}")
    return proc, f"http://127.0.0.1:{port}/metrics"


def _scrape(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        r.read()
    return time.perf_counter() - t0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_scrape(n: int, rounds: int) -> None:
    numastat = shutil.which("numastat")
    if numastat is None:
        raise SystemExit("numastat not found: apt-get install numactl")
    with idle_processes(n) as pids:
        cmd = [numastat, "-p", *map(str, pids)]
        proc, url = _start_exporter()
        try:
            _scrape(url)
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            peer, scrape = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
                peer.append(time.perf_counter() - t0)
                scrape.append(_scrape(url))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    p, s = statistics.median(peer), statistics.median(scrape)
    print(f"{n} processes, {rounds} rounds (medians):")
    print(f"  numastat -p          {p * 1000:9.1f} ms")
    print(f"  numatui /metrics     {s * 1000:9.1f} ms   ratio {s / p:.3f}x  (target <= 0.3x)")


def bench_idle(n: int, seconds: float, interval: float) -> None:
    with idle_processes(n):
        proc, url = _start_exporter()
        try:
            _scrape(url)
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            scrapes = 0
            while time.monotonic() - t0 < seconds:
                _scrape(url)
                scrapes += 1
                time.sleep(max(0.0, interval - (time.monotonic() - t0) % interval))
            cpu1, t1 = _cpu_seconds(proc.pid), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    share = (cpu1 - cpu0) / (t1 - t0) * 100
    print(
        f"{n} processes, a scrape every {interval:g} s for {t1 - t0:.0f} s ({scrapes} scrapes): "
        f"exporter CPU {share:.2f} % of a core (target <= 1 %)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--idle-procs", type=int, default=500)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=15.0)
    args = ap.parse_args()
    bench_scrape(args.procs, args.rounds)
    bench_idle(args.idle_procs, args.idle_seconds, args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

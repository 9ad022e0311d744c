"""Whole commands, as a user times them: numatui's against numactl's, start-up against Python's.

    python3 benchmarks/bench_commands.py [--procs 300 2000] [--mappings 300] [--rounds 7]
                                         [--startup-rounds 20] [--hyperfine] [--json]
                                         [--scale-procs 10000] [--big-mappings 100000]

Every figure is a whole process, started and waited for: wall time, the CPU
(user + system) the kernel charged to it and its peak resident memory (`os.wait4`).
Commands of one table run interleaved, round by round, so machine noise hits them
alike; medians and ratios.

  ps        N idle processes with about `--mappings` VMAs each (benchmarks/workers.py);
            `numastat -p PIDS` against `numatui ps --json --pid PIDS`,
            `numatui ps --pid PIDS` and `numatui ps --pid P --pid P ...` (an option
            per pid) on the same pids. `--scale-procs`: the same
            at a larger N (10,000), where the peak RSS column is the memory used.
  big       `--big-mappings M`: one process with M mappings (one page each),
            `numastat -p PID` against `numatui ps [--json] --pid PID`. Needs
            vm.max_map_count above M (65,530 by default: raise it as root with
            `sysctl vm.max_map_count=262144`).
  start-up  `python3 -c pass` against `numatui --version` and `numatui nodes`, the
            same interpreter; then `-X importtime`'s largest numatui-caused imports.
  app       `--app-procs` idle processes; the app, headless (Textual's test driver), in a
            fresh interpreter: from its launch to the first frame showing the nodes
            (the first scan still running), and to the first frame whose process table
            holds them all; `numastat -p` on the same pids, interleaved.

`numatui` is run as pip's console script runs it (`from numatui.cli import main`)
with this checkout first on the path, byte-compiled first as pip installs it.
`--hyperfine` also times each table with hyperfine (not interleaved: a cross-check).
Targets (issue 13): ps <= 0.7x numastat's wall; --version <= 3x and nodes <= 4x
`python3 -c pass`; the app's table <= numastat + 0.3 s, its first screen <= 0.3 s.
The load average is printed with the figures: on a busy host the wall times mean
little; the CPU times hold up better.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workers import idle_processes  # noqa: E402

NUMATUI = [sys.executable, "-c", "import sys; from numatui.cli import main; sys.exit(main())"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, user CPU s, system CPU s) of one whole command, output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit(f"{cmd[:4]}... exited {proc.returncode}")
    return wall, usage.ru_utime, usage.ru_stime


def peak_rss(cmd: list[str]) -> float | None:
    """The peak resident memory (bytes) of one run, as GNU time measures it; None without it.

    Not `wait4`'s ru_maxrss: a child inherits its parent's peak across fork and
    exec, and this benchmark's parent holds the workers' mappings. GNU time's
    own child starts from time's small address space.
    """
    exe = Path("/usr/bin/time")
    if not exe.exists():
        return None
    with tempfile.NamedTemporaryFile("r") as report:
        cmd = [str(exe), "-f", "%M", "-o", report.name, *cmd]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        text = report.read().strip().splitlines()
    return int(text[-1]) * 1024.0 if text and text[-1].isdigit() else None


def interleaved(commands: dict[str, list[str]], rounds: int) -> dict[str, dict[str, float]]:
    for cmd in commands.values():
        run(cmd)  # warm caches alike
    walls: dict[str, list[float]] = {k: [] for k in commands}
    users: dict[str, list[float]] = {k: [] for k in commands}
    systems: dict[str, list[float]] = {k: [] for k in commands}
    names = list(commands)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            wall, user, system = run(commands[name])
            walls[name].append(wall)
            users[name].append(user)
            systems[name].append(system)
    table: dict[str, dict[str, float]] = {}
    for k, cmd in commands.items():
        table[k] = {
            "wall_s": statistics.median(walls[k]),
            "cpu_s": statistics.median([u + s for u, s in zip(users[k], systems[k], strict=True)]),
            "user_s": statistics.median(users[k]),
            "sys_s": statistics.median(systems[k]),
        }
        rss = peak_rss(cmd)
        if rss is not None:
            table[k]["max_rss_bytes"] = rss
    return table


def hyperfine(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, float]] | None:
    exe = shutil.which("hyperfine")
    if exe is None:
        print("hyperfine not found (apt-get install hyperfine): skipped", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "hf.json"
        argv = [
            exe,
            "-N",
            "-w",
            "2",
            "-r",
            str(runs),
            "--export-json",
            str(export),
            "--style",
            "none",
        ]
        for name, cmd in commands.items():
            argv += ["-n", name, subprocess.list2cmdline(cmd)]
        subprocess.run(argv, check=True, env=ENV, stdout=subprocess.DEVNULL)
        results = json.loads(export.read_text())["results"]
    return {
        r["command"]: {"wall_s": r["median"], "cpu_s": r["user"] + r["system"]} for r in results
    }


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min), {os.cpu_count()} CPUs"


def ratios(table: dict[str, dict[str, float]], base: str) -> dict[str, dict[str, float]]:
    b = table[base]
    return {
        k: {**v, "wall_ratio": v["wall_s"] / b["wall_s"], "cpu_ratio": v["cpu_s"] / b["cpu_s"]}
        for k, v in table.items()
    }


def print_table(title: str, table: dict[str, dict[str, float]], base: str) -> None:
    print(f"\n{title}   [{load()}]")
    print(
        f"  {'command':<34} {'wall':>9} {'ratio':>7} {'CPU':>9} {'ratio':>7}"
        f" {'user':>9} {'system':>9} {'peak RSS':>9}"
    )
    for name, v in ratios(table, base).items():
        rss = v.get("max_rss_bytes")
        # hyperfine's tables have no user/system split of their own here
        split = (
            f" {v['user_s'] * 1000:>7.1f}ms {v['sys_s'] * 1000:>7.1f}ms"
            if "user_s" in v
            else f" {'':>9} {'':>9}"
        )
        print(
            f"  {name:<34} {v['wall_s'] * 1000:>7.1f}ms {v['wall_ratio']:>6.2f}x"
            f" {v['cpu_s'] * 1000:>7.1f}ms {v['cpu_ratio']:>6.2f}x"
            + split
            + (f" {rss / 2**20:>6.1f}MiB" if rss is not None else "")
        )


def bench_ps(n: int, mappings: int, rounds: int, use_hyperfine: bool) -> dict[str, Any]:
    numastat = shutil.which("numastat")
    if numastat is None:
        raise SystemExit("numastat not found: apt-get install numactl")
    with idle_processes(n, mappings) as pids:
        words = [str(p) for p in pids]
        commands = {
            "numastat -p PIDS": [numastat, "-p", *words],
            "numatui ps --json --pid PIDS": [*NUMATUI, "ps", "--json", "--pid", *words],
            "numatui ps --pid PIDS": [*NUMATUI, "ps", "--pid", *words],
            # numastat -p's habit, one option per pid (argparse alone is quadratic in it)
            "numatui ps --pid P --pid P ...": [
                *NUMATUI,
                "ps",
                *(w for p in words for w in ("--pid", p)),
            ],
        }
        table = interleaved(commands, rounds)
        print_table(f"ps: {n} idle processes, ~{mappings} mappings each", table, "numastat -p PIDS")
        hf = hyperfine(commands, rounds) if use_hyperfine else None
        if hf:
            print_table("  (hyperfine, same commands)", hf, "numastat -p PIDS")
    return {
        "procs": n,
        "mappings": mappings,
        "load": os.getloadavg()[0],
        "results": ratios(table, "numastat -p PIDS"),
        "hyperfine": hf and ratios(hf, "numastat -p PIDS"),
    }


def bench_big(mappings: int, rounds: int, use_hyperfine: bool) -> dict[str, Any]:
    """One process with `mappings` VMAs: numastat against numatui on its pid."""
    numastat = shutil.which("numastat")
    if numastat is None:
        raise SystemExit("numastat not found: apt-get install numactl")
    limit = int(Path("/proc/sys/vm/max_map_count").read_text())
    if limit < mappings + 1000:
        raise SystemExit(
            f"--big-mappings {mappings}: vm.max_map_count is {limit}; raise it as root"
            f" (sysctl vm.max_map_count={max(262144, mappings * 2)}) or ask for fewer"
        )
    with idle_processes(1, mappings) as pids:
        pid = str(pids[0])
        lines = Path(f"/proc/{pid}/numa_maps").read_bytes().count(b"\n")
        commands = {
            "numastat -p PID": [numastat, "-p", pid],
            "numatui ps --json --pid PID": [*NUMATUI, "ps", "--json", "--pid", pid],
            "numatui ps --pid PID": [*NUMATUI, "ps", "--pid", pid],
        }
        table = interleaved(commands, rounds)
        print_table(f"one process with {lines} mappings", table, "numastat -p PID")
        hf = hyperfine(commands, rounds) if use_hyperfine else None
        if hf:
            print_table("  (hyperfine, same commands)", hf, "numastat -p PID")
    return {
        "mappings": lines,
        "load": os.getloadavg()[0],
        "results": ratios(table, "numastat -p PID"),
        "hyperfine": hf and ratios(hf, "numastat -p PID"),
    }


def import_offenders(argv: list[str], top: int = 8) -> list[tuple[str, int]]:
    """The largest self import times (us) of modules a bare interpreter does not load."""

    def times(cmd: list[str]) -> dict[str, int]:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, env=ENV
        ).stderr
        out: dict[str, int] = {}
        for line in err.splitlines():
            if line.startswith("import time:") and "|" in line and "self" not in line:
                self_us, _, name = line[len("import time:") :].split("|")
                out[name.strip()] = int(self_us)
        return out

    bare = times(["-c", "pass"])
    best: dict[str, int] = {}
    for _ in range(5):  # the least of several runs: the cost, not the noise
        for name, us in times([*NUMATUI[1:], *argv]).items():
            if name not in bare:
                best[name] = min(us, best.get(name, us))
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]


def bench_startup(rounds: int, use_hyperfine: bool) -> dict[str, Any]:
    commands = {
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "numatui --version": [*NUMATUI, "--version"],
        "numatui nodes": [*NUMATUI, "nodes"],
    }
    table = interleaved(commands, rounds)
    print_table("start-up (same interpreter)", table, "python3 -c pass")
    hf = hyperfine(commands, rounds) if use_hyperfine else None
    if hf:
        print_table("  (hyperfine, same commands)", hf, "python3 -c pass")
    offenders = {}
    for argv in (["--version"], ["nodes"]):
        offenders[" ".join(argv)] = import_offenders(argv)
        listed = ", ".join(f"{name} {us / 1000:.1f} ms" for name, us in offenders[" ".join(argv)])
        print(f"  -X importtime, numatui {' '.join(argv)}: {listed}")
    return {
        "load": os.getloadavg()[0],
        "results": ratios(table, "python3 -c pass"),
        "hyperfine": hf and ratios(hf, "python3 -c pass"),
        "import_offenders_us": offenders,
    }


APP_CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
# In the order `numatui` does it (cli.run_tui): the nodes read starts before Textual loads.
from numatui.kernel.live import LiveSource
from numatui.cli import start_first_read
SOURCE = LiveSource(audit_path=Path("/dev/null"))
FIRST_READ = start_first_read(SOURCE)
from numatui.app import NumatuiApp
from numatui.screens.processes import ProcessesScreen

want = int(sys.argv[1])
marks = {}

async def main():
    app = NumatuiApp(SOURCE, first_read=FIRST_READ)
    original = app._display
    done = asyncio.Event()

    def display(screen, renderable):
        original(screen, renderable)
        if renderable is None:
            return
        now = time.time()
        marks.setdefault("first_frame", now)
        if app.first_topology is not None or app.state is not None:
            marks.setdefault("nodes_frame", now)
        table = getattr(app.screen, "table", None)
        if isinstance(app.screen, ProcessesScreen) and table is not None:
            if table.row_count >= want:
                marks.setdefault("table_frame", now)
                done.set()

    app._display = display
    async with app.run_test(size=(160, 50)) as pilot:
        if not isinstance(app.screen, ProcessesScreen):
            await pilot.press("p")
        await asyncio.wait_for(done.wait(), 300)
    print(json.dumps(marks))

asyncio.run(main())
"""


def launch_app(want_rows: int) -> dict[str, float]:
    """Seconds from launching the app's interpreter to its first frames (see APP_CHILD)."""
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, "-c", APP_CHILD, str(want_rows)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"the app run failed:\n{done.stderr[-3000:]}")
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: v - t0 for k, v in marks.items()}


def bench_app(n: int, mappings: int, rounds: int) -> dict[str, Any]:
    numastat = shutil.which("numastat")
    if numastat is None:
        raise SystemExit("numastat not found: apt-get install numactl")
    with idle_processes(n, mappings) as pids:
        cmd = [numastat, "-p", *map(str, pids)]
        run(cmd)
        peer: list[float] = []
        marks: dict[str, list[float]] = {}
        for _ in range(rounds):
            peer.append(run(cmd)[0])
            for k, v in launch_app(n).items():
                marks.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in marks.items()}
    numastat_s = statistics.median(peer)
    print(f"\napp: {n} idle processes (and the host's own), headless   [{load()}]")
    print(f"  numastat -p PIDS                    {numastat_s * 1000:>7.0f}ms")
    print(f"  app: first frame                    {med['first_frame'] * 1000:>7.0f}ms")
    print(f"  app: first frame with the nodes     {med['nodes_frame'] * 1000:>7.0f}ms")
    print(
        f"  app: table with all {n} processes  {med['table_frame'] * 1000:>7.0f}ms"
        f"  (numastat + {(med['table_frame'] - numastat_s) * 1000:.0f} ms)"
    )
    return {"procs": n, "load": os.getloadavg()[0], "numastat_s": numastat_s, "app_s": med}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, nargs="*", default=[300, 2000])
    ap.add_argument("--mappings", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--startup-rounds", type=int, default=20)
    ap.add_argument("--app-procs", type=int, nargs="*", default=[2000])
    ap.add_argument("--app-rounds", type=int, default=3)
    ap.add_argument("--scale-procs", type=int, nargs="*", default=[], help="e.g. 10000")
    ap.add_argument("--scale-rounds", type=int, default=3)
    ap.add_argument("--big-mappings", type=int, default=0, help="e.g. 100000")
    ap.add_argument("--hyperfine", action="store_true", help="cross-check with hyperfine")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    compileall.compile_dir(ROOT / "numatui", quiet=1)  # as pip installs it
    print(f"machine: {platform.platform()}, Python {platform.python_version()}, {load()}")
    out: dict[str, Any] = {"machine": platform.platform()}
    if args.startup_rounds:
        out["startup"] = bench_startup(args.startup_rounds, args.hyperfine)
    out["ps"] = [bench_ps(n, args.mappings, args.rounds, args.hyperfine) for n in args.procs]
    out["scale"] = [
        bench_ps(n, args.mappings, args.scale_rounds, args.hyperfine) for n in args.scale_procs
    ]
    if args.big_mappings:
        out["big"] = bench_big(args.big_mappings, args.rounds, args.hyperfine)
    out["app"] = [bench_app(n, args.mappings, args.app_rounds) for n in args.app_procs]
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

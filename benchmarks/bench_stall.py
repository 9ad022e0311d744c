"""Stall benchmark: how long a migration freezes the process it moves.

    python3 benchmarks/bench_stall.py [--size-mib 512] [--pages base|huge] [--rounds 3]
                                      [--stall-ms 20] [--json]

Run on the host, it boots the 2-node QEMU guest (virtme-ng, see
scripts/provision-vm.sh) and runs itself inside with `--inside`. There one
workload holds `--size-mib` of private anonymous memory on node 0 (`--pages`: base
pages, MADV_NOHUGEPAGE, or transparent huge pages, MADV_HUGEPAGE; left to the
kernel, the share of huge pages varied from run to run with node 0's free memory,
and with it every mover's time) and runs a
probe thread that maps one page, touches it and unmaps it, in a loop, timing
every iteration. mmap and munmap need the process's mmap lock for writing,
which migrate_pages(2) holds (for reading) for the whole move in kernel 6.1,
so a probe iteration that falls into a move waits for as long as the kernel
holds it (on 6.12 the longest wait measured 79 ms: README, "A stall budget").

Each round moves the memory 0 -> 1 and back with each method, the methods
interleaved (their order alternating):

  - numactl's `migratepages PID 0 1`            (C, one migrate_pages call)
  - numatui's single call: the MigrationJob as `numatui migrate` runs it
  - numatui paced: the job moving with move_pages in chunks sized to the stall
    budget (`numatui migrate --stall-ms 20`)
  - numatui paced with a 100 ms budget (a fifth of the calls: what they cost)
  - control rows: migratepages and numatui paced again with the probe thread
    paused, so the cost of moving while the workload runs (what pacing is for:
    the probe's thread and the mover's want both vCPUs) shows apart from the
    movers' own speed; and both with the probe paused and a thread of the
    workload spinning instead (its memory live on the other vCPU, but nothing
    mapped or unmapped), which splits that cost in two

A first round of every method, not counted, warms the guest's memory (see
`_guest_main`). Reported per method: the probe's p99 and maximum iteration time while the move
ran, the move's wall time (median) and its throughput against migratepages; for
the paced mode, the chunk times it measured; the TLB shootdown interrupts
each move caused in the guest. Every move is checked: all pages
on the target afterwards, the data's checksum unchanged at the end.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import hashlib
import json
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from guest import guest_main, guest_options  # noqa: E402

sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_SAMPLES = 2_000_000  # probe iterations kept per move (16 MiB)
SLOW_NS = 20_000_000  # probe iterations longer than this are kept with their start time


# ---------------------------------------------------------------- the workload (a child)


def _workload_main(size_mib: int, pages: str) -> int:
    """Memory on node 0, a probe thread and a spinner thread; stdin: `start`, `stop`
    (-> stats), `pause` and `resume` (the probe), `spin` and `unspin`, `checksum`."""
    from numatui.kernel.nodemask import NodeMask
    from tests.tooling.mempolicy import MPOL_BIND, MPOL_DEFAULT, set_mempolicy

    set_mempolicy(MPOL_BIND, NodeMask({0}))  # while the memory is filled
    size = size_mib * 1024 * 1024
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    # Before the first touch: MADV_HUGEPAGE makes the fault compact memory for a huge page
    # where the kernel's default ("defrag: madvise") would fall back to base pages.
    memory.madvise(mmap.MADV_HUGEPAGE if pages == "huge" else mmap.MADV_NOHUGEPAGE)
    for offset in range(0, size, PAGE):
        memory[offset : offset + 8] = (offset // PAGE).to_bytes(8, "little")
    set_mempolicy(MPOL_DEFAULT)  # the probe's pages wherever it runs
    # Preallocated and touched now: a buffer growing during a move would put fresh pages
    # on the probe's own node, behind the mover, and blur the "all moved" check.
    latencies = array.array("q", bytes(8 * MAX_SAMPLES))
    count = [0]
    slow: list[tuple[int, int]] = []  # (start ns, took ns) of iterations over SLOW_NS
    recording = threading.Event()
    running = threading.Event()  # cleared: the probe waits (`pause`), the control rows
    running.set()
    spinning = threading.Event()  # set: a thread spins on the CPU, no system calls (`spin`)
    lock = threading.Lock()

    def spinner() -> None:
        while True:
            spinning.wait()
            while spinning.is_set():
                pass

    threading.Thread(target=spinner, daemon=True).start()

    def probe() -> None:
        while True:
            running.wait()
            t0 = time.perf_counter_ns()
            page = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            page[0] = 1
            page.close()
            took = time.perf_counter_ns() - t0
            if recording.is_set():
                with lock:
                    if count[0] < MAX_SAMPLES:
                        latencies[count[0]] = took
                        count[0] += 1
                    if took > SLOW_NS and len(slow) < 10_000:
                        slow.append((t0, took))

    threading.Thread(target=probe, daemon=True).start()
    start = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    digest = hashlib.sha256(memory).hexdigest()
    print(json.dumps({"pid": os.getpid(), "start": start, "checksum": digest}))
    sys.stdout.flush()
    # Commands that only flip one of the threads' switches.
    switches: dict[str, Callable[[], None]] = {
        "pause": running.clear,
        "resume": running.set,
        "spin": spinning.set,
        "unspin": spinning.clear,
    }
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            with lock:
                count[0] = 0
                slow.clear()
            recording.set()
            reply: dict[str, Any] = {"ok": True}
        elif command == "stop":
            recording.clear()
            with lock:
                values = sorted(latencies[: count[0]])
            reply = {
                "iterations": len(values),
                "p50_ms": values[len(values) // 2] / 1e6 if values else None,
                "p99_ms": values[min(len(values) - 1, len(values) * 99 // 100)] / 1e6
                if values
                else None,
                "max_ms": values[-1] / 1e6 if values else None,
                "slow": list(slow),
            }
        elif command in switches:
            switches[command]()
            reply = {"ok": True}
        elif command == "checksum":
            reply = {"checksum": hashlib.sha256(memory).hexdigest()}
        else:
            reply = {"error": f"unknown command {command!r}"}
        print(json.dumps(reply))
        sys.stdout.flush()
    return 0


class _Probe:
    def __init__(self, size_mib: int, pages: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                *("--workload", str(size_mib), "--pages", pages),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.info = self.ask(None)
        self.pid = int(self.info["pid"])

    def ask(self, command: str | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the probe workload exited")
        return dict(json.loads(line))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ---------------------------------------------------------------- in the guest


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _anon_huge_kib(work: _Probe) -> int | None:
    """The workload's memory in transparent huge pages (smaps_rollup), read with the probe
    paused: beside the probe's maps and unmaps it read 0 or 18 MiB for 528 (the kernel's
    rollup lets a waiting writer in and resumes its walk, which seems to skip mappings)."""
    work.ask("pause")
    try:
        rollup = Path(f"/proc/{work.pid}/smaps_rollup").read_text()
    finally:
        work.ask("resume")
    lines = [line for line in rollup.splitlines() if line.startswith("AnonHugePages:")]
    return int(lines[0].split()[1]) if lines else None


def _tlb_shootdowns() -> int:
    """TLB shootdown interrupts taken so far, all CPUs (/proc/interrupts' TLB row): each
    one an interrupt of a vCPU that has the process's memory mapped, when a page of it is
    unmapped elsewhere (a probe iteration's munmap, a page migrated)."""
    for line in Path("/proc/interrupts").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "TLB":
            return sum(int(field) for field in rest.split() if field.isdigit())
    return 0


def _guest_main(size_mib: int, pages: str, rounds: int, stall_ms: float) -> dict[str, object]:
    from numatui.kernel import migration
    from numatui.kernel.live import LiveSource
    from numatui.kernel.scanner import ProcessScanner
    from numatui.kernel.topology import TopologyReader
    from numatui.model.migration import Pacing

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    scanner = ProcessScanner()
    source = LiveSource(audit_path=Path("/tmp/numatui-bench-stall-audit.jsonl"))
    privileges = source.privileges()
    topology_reader = TopologyReader()
    pacing = Pacing(stall_s=stall_ms / 1000)
    chunk_times: list[float] = []
    # What the mover did, when (CLOCK_MONOTONIC ns, the probe's clock too): each numa_maps
    # read (the job's snapshots and progress samples) and each move_pages call.
    events: list[tuple[str, int, int]] = []
    call_ms: dict[str, list[float]] = {}  # "method: kind" -> each call's ms
    current = ["checks"]  # the method moving now
    worst: list[tuple[float, str, float]] = []  # paced: (stall, overlapping call, its ms)

    def timed(kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return call(*args, **kwargs)
            finally:
                t1 = time.perf_counter_ns()
                events.append((kind, t0, t1))
                call_ms.setdefault(f"{current[0]}: {kind}", []).append((t1 - t0) / 1e6)

        return run

    from numatui.kernel import syscalls

    scanner.node_pages = timed("numa_maps", scanner.node_pages)  # type: ignore[method-assign]
    scanner.numa_maps = timed("numa_maps", scanner.numa_maps)  # type: ignore[method-assign]
    move_pages = timed("move_pages", syscalls.move_pages)
    outcomes: list[str] = []
    work = _Probe(size_mib, pages)
    pid = work.pid

    start = int(work.info["start"])

    def on_node(node: int) -> bool:
        """Every page of the moved memory is on `node`. (The probe thread's own new pages
        land on its CPU's node while a paced move runs, as they would in any server; the
        single call stalls it, so it allocates nothing meanwhile: the memory is the fair
        test.) Asked of the kernel page by page over exactly that memory: its mapping may
        have merged with the probe's page next to it, whose page can be on either node."""
        addresses = range(start, start + size_mib * 1024 * 1024, PAGE)
        return all(where == node for where in syscalls.move_pages(pid, addresses, None, 0))

    def migratepages(src: int, dst: int) -> None:
        tool = shutil.which("migratepages") or "migratepages"
        subprocess.run([tool, str(pid), str(src), str(dst)], check=True)

    def job(
        stoppable: bool, record_chunks: bool = True, budget: Pacing = pacing
    ) -> Callable[[int, int], None]:
        def run(src: int, dst: int) -> None:
            plan = source.plan(pid, {src}, {dst}, stoppable=stoppable, pacing=budget)
            moving = migration.MigrationJob(
                plan,
                scanner=scanner,
                privileges=privileges,
                topology_reader=topology_reader,
                move_pages=move_pages,
            )
            result = moving.run(lambda _sample: None)
            if record_chunks:  # the default budget with the probe running
                chunk_times.extend(seconds for _, seconds, full in moving.chunk_times if full)
            outcomes.append(f"{result.outcome}: {'; '.join(result.explanations)}")

        return run

    methods: dict[str, Callable[[int, int], None]] = {
        "migratepages": migratepages,
        "numatui_single_call": job(False),
        "numatui_paced": job(True),
        # Five times the budget, a fifth of the calls: what the calls themselves cost.
        "numatui_paced_100ms": job(True, record_chunks=False, budget=Pacing(stall_s=0.1)),
        # Control rows: the same movers with the probe thread paused, so the cost of
        # moving while the workload runs (what pacing is for) shows apart from the
        # movers' own speed.
        "migratepages_probe_paused": migratepages,
        "numatui_paced_probe_paused": job(True, record_chunks=False),
        # The probe paused and a thread of the workload spinning instead: its memory is in
        # use on the other vCPU (each page moved must be flushed there) but nothing maps or
        # unmaps; so what the running probe costs shows split into those two parts.
        "migratepages_spinner": migratepages,
        "numatui_paced_spinner": job(True, record_chunks=False),
    }
    walls: dict[str, list[float]] = {name: [] for name in methods}
    p99s: dict[str, list[float]] = {name: [] for name in methods}
    maxes: dict[str, list[float]] = {name: [] for name in methods}
    idle: list[dict[str, Any]] = []
    stalls: dict[str, dict[str, list[float]]] = {
        name: {kind: [] for kind in STALL_KINDS} for name in methods
    }
    names = list(methods)
    shootdowns: dict[str, list[int]] = {name: [] for name in methods}
    probe_iterations: dict[str, list[int]] = {name: [] for name in methods}
    thp = {
        "anon_huge_pages_kib_before": _anon_huge_kib(work),
        "enabled": Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip(),
    }
    try:
        # One round first, not counted: a guest page the host never backed costs a host
        # fault on its first touch, and the first moves onto fresh pages measured up to
        # twice as long, whichever method happened to come first.
        for name in names:
            for src, dst in ((0, 1), (1, 0)):
                methods[name](src, dst)
        chunk_times.clear()
        call_ms.clear()
        outcomes.clear()
        for r in range(rounds):
            work.ask("start")
            time.sleep(1.0)
            idle.append(work.ask("stop"))
            for name in names if r % 2 == 0 else names[::-1]:
                for src, dst in ((0, 1), (1, 0)):
                    paused = name in CONTROL_ROWS
                    work.ask("pause" if paused else "start")
                    if name in SPINNER_ROWS:
                        work.ask("spin")
                    events.clear()
                    current[0] = name
                    tlb0 = _tlb_shootdowns()
                    t0 = time.perf_counter()
                    methods[name](src, dst)
                    walls[name].append(time.perf_counter() - t0)
                    shootdowns[name].append(_tlb_shootdowns() - tlb0)
                    current[0] = "checks"
                    if paused:
                        probe_iterations[name].append(0)  # the probe waited throughout
                        if name in SPINNER_ROWS:
                            work.ask("unspin")
                        work.ask("resume")
                        if not on_node(dst):
                            raise SystemExit(f"{name} did not move the pages {src} -> {dst}")
                        continue
                    stats = work.ask("stop")
                    probe_iterations[name].append(int(stats["iterations"]))
                    for kind, ms, during in _attribute(stats["slow"], list(events)):
                        stalls[name][kind].append(ms)
                        if name == "numatui_paced":
                            worst.append((round(ms, 1), kind, round(during, 1)))
                    p99s[name].append(float(stats["p99_ms"]))
                    maxes[name].append(float(stats["max_ms"]))
                    if not on_node(dst):
                        placed = dict(scanner.node_pages(pid))
                        why = outcomes[-1] if outcomes and name != "migratepages" else ""
                        raise SystemExit(
                            f"{name} did not move the pages {src} -> {dst}: {placed} {why}"
                        )
        checksum_ok = work.ask("checksum")["checksum"] == work.info["checksum"]
        thp["anon_huge_pages_kib_after"] = _anon_huge_kib(work)
    finally:
        work.stop()
    peer = statistics.median(walls["migratepages"])
    chunk_ms = [s * 1000 for s in chunk_times]  # chunks of the pacer's size
    return {
        "size_mib": size_mib,
        "pages": pages,
        "moves_per_method": 2 * rounds,
        "stall_budget_ms": stall_ms,
        "probe_idle_p99_ms": statistics.median(float(i["p99_ms"]) for i in idle),
        "probe_idle_max_ms": max(float(i["max_ms"]) for i in idle),
        "methods": {
            name: {
                "probe_p99_ms_median": statistics.median(p99s[name]),
                "probe_p99_ms_worst": max(p99s[name]),
                "probe_max_ms_median": statistics.median(maxes[name]),
                "probe_max_ms_worst": max(maxes[name]),
                "wall_s_median": statistics.median(walls[name]),
                "throughput_vs_migratepages": peer / statistics.median(walls[name]),
            }
            for name in names
            if name not in CONTROL_ROWS
        },
        "controls": {
            name: {
                "wall_s_median": statistics.median(walls[name]),
                "throughput_vs_migratepages_alike": statistics.median(walls[CONTROL_PEER[name]])
                / statistics.median(walls[name]),
            }
            for name in CONTROL_ROWS
        },
        "tlb_shootdowns_per_move_median": {
            name: statistics.median(counts) for name, counts in shootdowns.items()
        },
        "probe_iterations_per_move_median": {
            name: statistics.median(counts) for name, counts in probe_iterations.items()
        },
        "probe_idle_iterations_per_s": statistics.median(int(i["iterations"]) for i in idle),
        "move_pages_calls_per_move": {
            kind.split(":")[0]: len(ms) / (2 * rounds)
            for kind, ms in call_ms.items()
            if kind.endswith("move_pages")
        },
        "thp": thp,
        "paced_chunks": {
            "count": len(chunk_ms),
            "median_ms": statistics.median(chunk_ms) if chunk_ms else None,
            "p95_ms": _pct(chunk_ms, 0.95) if chunk_ms else None,
            "max_ms": max(chunk_ms) if chunk_ms else None,
        },
        "per_move": {
            name: {"wall_s": [round(w, 3) for w in walls[name]], "max_ms": maxes[name]}
            for name in names
        },
        "checksum_unchanged": checksum_ok,
        "mover_calls_ms": {
            kind: {
                "count": len(ms),
                "median": round(statistics.median(ms), 1) if ms else None,
                "p95": round(_pct(ms, 0.95), 1) if ms else None,
                "max": round(max(ms), 1) if ms else None,
                "total_s": round(sum(ms) / 1000, 2),
            }
            for kind, ms in call_ms.items()
        },
        "paced_worst_stalls_ms_kind_call_ms": sorted(worst, reverse=True)[:15],
        "probe_stalls_over_20ms_by_overlap": {
            name: {
                kind: {"count": len(ms), "max_ms": round(max(ms), 1) if ms else None}
                for kind, ms in by_kind.items()
            }
            for name, by_kind in stalls.items()
            if name not in CONTROL_ROWS
        },
    }


STALL_KINDS = ("numa_maps", "move_pages", "neither")
SPINNER_ROWS = ("migratepages_spinner", "numatui_paced_spinner")
CONTROL_ROWS = ("migratepages_probe_paused", "numatui_paced_probe_paused", *SPINNER_ROWS)
CONTROL_PEER = {  # each control row against migratepages in the same conditions
    name: "migratepages_spinner" if name in SPINNER_ROWS else "migratepages_probe_paused"
    for name in CONTROL_ROWS
}


def _attribute(
    slow: list[list[int]], events: list[tuple[str, int, int]]
) -> list[tuple[str, float, float]]:
    """Each slow probe iteration (ms) with what the mover was doing while it ran: reading
    numa_maps (which holds the mmap lock for its whole walk of a mapping), in a move_pages
    call, or neither (the guest's scheduling, or a migratepages/migrate_pages call); and
    how long the longest call it overlapped took (ms)."""
    out: list[tuple[str, float, float]] = []
    for start, took in slow:
        end = start + took
        overlap = dict.fromkeys(("numa_maps", "move_pages"), 0)
        longest = 0
        for kind, t0, t1 in events:
            shared = max(0, min(end, t1) - max(start, t0))
            overlap[kind] += shared
            if shared:
                longest = max(longest, t1 - t0)
        kind = max(overlap, key=lambda k: overlap[k])
        out.append((kind if overlap[kind] > took // 2 else "neither", took / 1e6, longest / 1e6))
    return out


def _report(result: dict[str, Any]) -> None:
    print(
        f"{result['size_mib']} MiB private anonymous ({result['pages']} pages), "
        f"2-node guest (TCG), {result['moves_per_method']} moves per method, "
        f"stall budget {result['stall_budget_ms']} ms; "
        f"probe idle: p99 {result['probe_idle_p99_ms']:.2f} ms, "
        f"max {result['probe_idle_max_ms']:.2f} ms"
    )
    methods = result["methods"]
    assert isinstance(methods, dict)
    print("  method                probe p99 (median/worst)   probe max (median/worst)", end="")
    print("   wall    throughput")
    for name, m in methods.items():
        print(
            f"  {name:<21} {m['probe_p99_ms_median']:8.1f} / {m['probe_p99_ms_worst']:8.1f} ms"
            f"   {m['probe_max_ms_median']:8.1f} / {m['probe_max_ms_worst']:8.1f} ms"
            f"   {m['wall_s_median']:6.3f} s   {m['throughput_vs_migratepages']:.2f}x"
        )
    controls = result["controls"]
    assert isinstance(controls, dict)
    for name, m in controls.items():
        print(
            f"  {name:<27} (control, probe paused)   wall {m['wall_s_median']:6.3f} s   "
            f"{m['throughput_vs_migratepages_alike']:.2f}x migratepages alike"
        )
    print(f"  TLB shootdowns per move (median): {result['tlb_shootdowns_per_move_median']}")
    print(f"  probe iterations per move (median): {result['probe_iterations_per_move_median']}")
    print(f"  probe iterations per second, idle: {result['probe_idle_iterations_per_s']}")
    print(f"  move_pages calls per move: {result['move_pages_calls_per_move']}")
    print(f"  transparent huge pages: {result['thp']}")
    print(f"  paced chunks: {result['paced_chunks']}")
    print(f"  probe stalls over 20 ms by overlap: {result['probe_stalls_over_20ms_by_overlap']}")
    print(f"  mover's calls: {result['mover_calls_ms']}")
    print(f"  paced, worst stalls: {result['paced_worst_stalls_ms_kind_call_ms']}")
    print(f"  data checksum unchanged: {result['checksum_unchanged']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--pages", choices=("base", "huge"), default="base")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stall-ms", type=float, default=20.0)
    ap.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    args = guest_options(ap).parse_args()
    if args.workload is not None:
        return _workload_main(args.workload, args.pages)
    return guest_main(
        args,
        Path(__file__),
        lambda a: _guest_main(a.size_mib, a.pages, a.rounds, a.stall_ms),
        _report,
    )


if __name__ == "__main__":
    raise SystemExit(main())

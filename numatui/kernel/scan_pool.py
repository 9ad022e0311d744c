"""A command's one big scan, shared with helper processes.

Most of a scan is the kernel walking address spaces inside read(2) of numa_maps;
the rest is Python parsing what it read. Threads overlap the walks, but every
parse holds the GIL, and on 2 CPUs two threads measured 0.73x numastat's wall
where the walks alone would allow about half. Helper processes have a GIL each.

The pids go out in small chunks from one queue: this process reads chunks too,
and each helper (`python -c ... scan_wire.child_main()`, started with subprocess, never a
bare fork) holds two: the next is in its pipe while its last answers wait here for
the GIL to be decoded. A command that knows it will scan many pids starts its
helpers first thing (`warm_up`), so they load numatui while it does. The helpers
only ever speed the scan up: a helper that cannot start, dies or stalls leaves
its chunk to this process, which also takes over any chunk still out once the
queue is empty, so the scan never waits on a helper. The wire format is marshal
of plain values (`scan_wire`; the caller's `decode` turns them back into its own objects),
framed by a length; it only ever passes between numatui and its own children.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from numatui.kernel.scan_wire import receive, send

Outcome = TypeVar("Outcome")

CHUNK_PIDS = 16
"""Pids per chunk: ~10 ms of reading, so the last chunks out end close together."""

BESIDE_UI_CHUNK_PIDS = 64
"""Pids per chunk for a scan beside the UI (`read_shared(read_here_too=False)`): every
answer wakes a thread here that takes the GIL from the UI's, and at 16 pids a chunk
those hand-overs cost the app's first frame ~90 ms while Textual loaded (2,000
processes; 64: ~0-50 ms, within the noise of these runs)."""

IN_FLIGHT = 2
"""Chunks a helper holds at once: the next is in its pipe while the last answers wait to be
decoded here."""

HELPER_MIN_PIDS = 200
"""Below this, a helper process's start costs about what it would save. Set when a start
took ~80 ms of CPU; since a helper loads only `scan_wire` and `pid_reader` (and theirs) it
takes ~47 ms (~12 ms the interpreter, ~35 ms its modules), and 200 is kept until a lower
threshold is measured."""


def one_shot_threads_for(cpus: int, busy: float) -> int:
    """Readers for a scan nothing else waits on (a command's one scan), with `busy`
    other tasks wanting a CPU: threads, or this process and helper processes.

    A thread blocked in numa_maps' read(2) is the kernel walking an address
    space, without the GIL. On an idle machine one thread per CPU keeps every
    core walking; when other work holds the cores, twice as many (at most 8)
    keep a walk ready whenever a parse holds the GIL, and the scan gets more of
    the cores' time. Measured, whole `ps` commands over 2,000 processes on 2
    CPUs, medians of 5 (benchmarks/bench_commands.py's workers): at load 7,
    4 threads 0.83x numastat's wall and 2 threads 1.23x; at load 0-1.5, 2
    threads 0.73x (CPU 1.20x), 3 threads 0.76x, 4 threads 0.78x (CPU 1.25x).
    The app keeps `_default_read_threads`: its UI thread needs the GIL.
    """
    cpus = max(1, cpus)
    return cpus if busy < cpus else max(1, min(8, 2 * cpus))


def other_runnable(proc_root: Path = Path("/proc")) -> float:
    """Tasks other than this one that are running or waiting for a CPU now.

    /proc/loadavg's `running/total` field, not the 1-minute load average: that decays
    over minutes, and right after a burst (10,000 processes started) it called an idle
    machine busy, so the command read with twice the threads and was slower for it.
    """
    try:
        running = int((proc_root / "loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        try:
            return os.getloadavg()[0]
        except OSError:  # no load figures (some containers): the busy machine's choice
            return math.inf
    return max(0, running - 1)  # this thread is one of them


def one_shot_readers() -> int:
    """Readers for a command's one scan on this machine now (see `one_shot_threads_for`);
    what `warm_up` decided, once it has: its helpers would count as busy tasks."""
    if _warm.readers is not None:
        return _warm.readers
    return _readers_now()


def _readers_now() -> int:
    return one_shot_threads_for(len(os.sched_getaffinity(0)), other_runnable())


def one_shot_helpers(pid_count: int) -> int:
    """Helper processes a command's one scan of `pid_count` pids starts: `workers - 1`."""
    return one_shot_readers() - 1 if pid_count >= HELPER_MIN_PIDS else 0


HELPER_PATIENCE_S = 2.0
"""Beside the UI (`read_shared(read_here_too=False)`), how long this process waits for the
next answer from its helpers before it reads on itself: a chunk takes ~20 ms, so only a
stalled or starved helper keeps it waiting that long."""

_CHILD_CODE = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from numatui.kernel.scan_wire import child_main; child_main()"
)


class _Warm:
    """Helpers `warm_up` started, loading numatui while this process does (no setup yet),
    and the reader count it decided for the scan that will take them."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        self.readers: int | None = None


_warm = _Warm()


def warm_up(pid_count: int) -> None:
    """Start the helpers a command's one scan of `pid_count` pids will use, now.

    A helper spends ~47 ms starting (see HELPER_MIN_PIDS). Started as the command starts,
    it loads while this process loads its own modules and reads the topology, on a
    core that would otherwise wait; started with the scan, it took that time from it.
    The scan hands each its setup (`_start_helper`); `stop_warm` ends the ones no scan
    took.
    """
    _warm.readers = _readers_now()
    helpers = one_shot_helpers(pid_count)
    while len(_warm.children) < helpers:
        child = _spawn()
        if child is None:
            return
        _warm.children.append(child)


def stop_warm() -> None:
    """Stop every helper `warm_up` started that no scan took; forget its decision."""
    while _warm.children:
        _stop(_warm.children.pop())
    _warm.readers = None


def _spawn(nice: int = 0) -> subprocess.Popen[bytes] | None:
    """A helper; `nice`: how much lower its CPU priority, from its first instruction."""
    root = str(Path(__file__).resolve().parents[2])  # where this numatui was imported from
    code = _CHILD_CODE.format(root=root)
    if nice:
        code = f"import os; os.nice({int(nice)}); {code}"
    try:
        return subprocess.Popen(
            # -S: no site-packages. A helper needs the standard library and numatui's
            # own modules (given by path), and skips the site setup's cost.
            [sys.executable, "-S", "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None  # no helper: this process reads everything


def _start_helper(setup: object) -> subprocess.Popen[bytes] | None:
    """A warm helper if there is one, else a new one; given `setup`. None: none could start.

    A setup that asks for a lower priority (`"nice"`, `PidReader.helper_setup`) gets a new
    helper started at that priority: warm ones were started at this process's."""
    nice = setup.get("nice", 0) if isinstance(setup, dict) else 0
    child = _warm.children.pop() if _warm.children and not nice else _spawn(nice)
    if child is None:
        return None
    assert child.stdin is not None
    try:
        send(child.stdin, setup)
    except (OSError, ValueError):  # a warm helper that died meanwhile, too
        _stop(child)
        return None
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        child.kill()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=5)


def read_shared(
    keys: list[int],
    *,
    helpers: int,
    setup: object,
    read_here: Callable[[int], Outcome],
    decode: Callable[[Any], Outcome],
    chunk_size: int = CHUNK_PIDS,
    start_helper: Callable[[object], subprocess.Popen[bytes] | None] = _start_helper,
    read_here_too: bool = True,
) -> dict[int, Outcome]:
    """`read_here(key)` for every key, the work shared with up to `helpers` processes.

    Each helper is started with `setup` (see `scan_wire.child_main`) and answers a chunk of keys
    with `[(key, wire), ...]`; `decode(wire)` is what `read_here` would have returned.
    `read_here_too` False: while a helper runs, this process neither reads nor decodes
    (its GIL is wanted elsewhere: the app's first scan runs while Textual loads); it
    decodes every answer once the helpers are done, and still reads what no helper
    could, and the chunks helpers still hold once the queue is empty.
    """
    queue: deque[list[int]] = deque(
        keys[i : i + chunk_size] for i in range(0, len(keys), chunk_size)
    )
    results: dict[int, Outcome | _Undecoded] = {}
    lock = threading.Lock()
    answered = threading.Condition(lock)  # a helper's chunk answered, or a feeder ended
    out: dict[Hashable, deque[list[int]]] = {}  # the chunks each helper has, oldest first

    def feed(child: subprocess.Popen[bytes]) -> None:
        assert child.stdin is not None and child.stdout is not None
        mine: deque[list[int]] = deque()
        with lock:
            out[child.pid] = mine
        unanswered = 0
        held: list[tuple[int, Any]] | None = None  # the oldest chunk's answers
        try:
            while True:
                # The next chunk goes out before the last answers are decoded: while this
                # process waits for its GIL to decode them, the helper reads on.
                with lock:
                    fresh: list[list[int]] = []
                    while unanswered + len(fresh) < IN_FLIGHT and queue:
                        fresh.append(queue.popleft())
                    mine.extend(fresh)
                for chunk in fresh:
                    send(child.stdin, chunk)
                unanswered += len(fresh)
                if held is not None:
                    answers = [
                        (key, decode(wire) if read_here_too else _Undecoded(wire))
                        for key, wire in held
                    ]
                    with lock:
                        for key, outcome in answers:
                            results.setdefault(key, outcome)
                        mine.popleft()
                        quiet_until[0] = time.monotonic() + HELPER_PATIENCE_S
                        answered.notify_all()
                    held = None
                if not unanswered:
                    return
                held = receive(child.stdout)
                unanswered -= 1
        except (OSError, EOFError, ValueError, TypeError):
            return  # its chunks stay in `out`: this process takes them over
        finally:
            with lock:
                feeding.discard(child.pid)
                answered.notify_all()

    children = [c for c in (start_helper(setup) for _ in range(helpers)) if c is not None]
    feeding = {c.pid for c in children}  # helpers whose feeder still runs
    # A helper's start (~50 ms) and first chunk count as one answer's wait.
    quiet_until = [time.monotonic() + 2 * HELPER_PATIENCE_S]
    feeders = [
        threading.Thread(target=feed, args=(c,), name="numatui-scan-feed", daemon=True)
        for c in children
    ]
    for feeder in feeders:
        feeder.start()
    try:
        while True:
            with lock:
                # Beside the UI: wait while the helpers answer; read here only what they
                # leave, or once none has answered for a while (a stalled helper).
                while not read_here_too and feeding and time.monotonic() < quiet_until[0]:
                    answered.wait(quiet_until[0] - time.monotonic())
                if queue:
                    chunk = queue.popleft()
                else:  # the queue is empty: take over what a helper still has out, the
                    # chunk it would read last first
                    chunk = next(
                        (
                            c
                            for chunks in out.values()
                            for c in reversed(chunks)
                            if any(k not in results for k in c)
                        ),
                        [],
                    )
            if not chunk:
                break
            for key in chunk:
                if key not in results:
                    outcome = read_here(key)
                    with lock:
                        results.setdefault(key, outcome)
    finally:
        for child in children:
            _stop(child)
        for feeder in feeders:
            feeder.join(timeout=5)
    return {
        key: decode(outcome.wire) if isinstance(outcome, _Undecoded) else outcome
        for key, outcome in results.items()
    }


class _Undecoded:
    """A helper's answer kept as it came, to be decoded once the scan is done."""

    __slots__ = ("wire",)

    def __init__(self, wire: Any) -> None:
        self.wire = wire

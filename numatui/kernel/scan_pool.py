"""A command's one big scan, shared with helper processes.

Most of a scan is the kernel walking address spaces inside read(2) of numa_maps;
the rest is Python parsing what it read. Threads overlap the walks, but every
parse holds the GIL, and on 2 CPUs two threads measured 0.73x numastat's wall
where the walks alone would allow about half. Helper processes have a GIL each.

The pids go out in small chunks from one queue: this process reads chunks too,
and each helper (`python -c ... child_main()`, started with subprocess, never a
bare fork) is handed its next chunk when it sends back the last one. The helpers
only ever speed the scan up: a helper that cannot start, dies or stalls leaves
its chunk to this process, which also takes over any chunk still out once the
queue is empty, so the scan never waits on a helper. The wire format is marshal
of plain values (what the caller's `decode` turns back into its own objects),
framed by a length; it only ever passes between numatui and its own children.
"""

from __future__ import annotations

import contextlib
import marshal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import IO, Any, TypeVar

Outcome = TypeVar("Outcome")

CHUNK_PIDS = 16
"""Pids per chunk: ~10 ms of reading, so the last chunks out end close together."""

_LENGTH = struct.Struct("<I")
_CHILD_CODE = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from numatui.kernel.scan_pool import child_main; child_main()"
)


def send(stream: IO[bytes], value: Any) -> None:
    data = marshal.dumps(value)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next value; EOFError when the other end closed."""
    head = _read_exactly(stream, _LENGTH.size)
    return marshal.loads(_read_exactly(stream, _LENGTH.unpack(head)[0]))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("the other end closed")
    return bytes(data)


def _start_helper(setup: object) -> subprocess.Popen[bytes] | None:
    root = str(Path(__file__).resolve().parents[2])  # where this numatui was imported from
    try:
        child = subprocess.Popen(
            # -S: no site-packages. A helper needs the standard library and numatui's
            # own modules (given by path), and skips the site setup's cost.
            [sys.executable, "-S", "-c", _CHILD_CODE.format(root=root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None  # no helper: this process reads everything
    assert child.stdin is not None
    try:
        send(child.stdin, setup)
    except (OSError, ValueError):
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
) -> dict[int, Outcome]:
    """`read_here(key)` for every key, the work shared with up to `helpers` processes.

    Each helper is started with `setup` (see `child_main`) and answers a chunk of keys
    with `[(key, wire), ...]`; `decode(wire)` is what `read_here` would have returned.
    """
    queue: deque[list[int]] = deque(
        keys[i : i + chunk_size] for i in range(0, len(keys), chunk_size)
    )
    results: dict[int, Outcome] = {}
    lock = threading.Lock()
    out: dict[Hashable, list[int]] = {}  # the chunk each helper has now

    def feed(child: subprocess.Popen[bytes]) -> None:
        assert child.stdin is not None and child.stdout is not None
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    chunk = queue.popleft()
                    out[child.pid] = chunk
                send(child.stdin, chunk)
                answers = [(key, decode(wire)) for key, wire in receive(child.stdout)]
                with lock:
                    for key, outcome in answers:
                        results.setdefault(key, outcome)
                    del out[child.pid]
        except (OSError, EOFError, ValueError, TypeError):
            return  # its chunk stays in `out`: this process takes it over

    children = [c for c in (start_helper(setup) for _ in range(helpers)) if c is not None]
    feeders = [
        threading.Thread(target=feed, args=(c,), name="numatui-scan-feed", daemon=True)
        for c in children
    ]
    for feeder in feeders:
        feeder.start()
    try:
        while True:
            with lock:
                if queue:
                    chunk = queue.popleft()
                else:  # the queue is empty: take over what a helper still has out
                    chunk = next((c for c in out.values() if any(k not in results for k in c)), [])
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
    return results


def child_main() -> None:
    """A helper: the setup, then chunks of pids until stdin closes (or the parent kills it)."""
    from numatui.kernel.scanner import helper_reader  # the helper's only import of weight

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        read = helper_reader(receive(stdin))
        while True:
            chunk = receive(stdin)
            send(stdout, [(key, read(key)) for key in chunk])
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return

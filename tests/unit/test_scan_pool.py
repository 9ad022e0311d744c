"""A command's scan shared with helper processes: the same result as reading alone, and
never slower for a helper that fails to start, dies or stalls.

The helpers are real processes (numatui's own `child_main`) reading the recorded trees
and this host's /proc; a broken helper is a real process that misbehaves.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from numatui.kernel import scan_pool
from numatui.kernel import scanner as scanner_module
from numatui.kernel.scanner import ProcessScanner, decode_outcome, encode_outcome
from numatui.kernel.topology import TopologyReader
from numatui.model import MemoryKind, ProcessMemory, frozen_map

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TREE = FIXTURES / "four_nodes"


@pytest.fixture
def helpers_for_any_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner_module, "HELPER_MIN_PIDS", 1)


def by_pid(processes: tuple[ProcessMemory, ...]) -> dict[int, ProcessMemory]:
    return {p.pid: p for p in processes}


def tree_scan(helpers: int) -> dict[int, ProcessMemory]:
    topology = TopologyReader(sys_root=TREE / "sys").read()
    scanner = ProcessScanner(proc_root=TREE / "proc", read_threads=1, helpers=helpers)
    return by_pid(scanner.scan(topology=topology, one_shot=True).processes)


@pytest.mark.usefixtures("helpers_for_any_count")
@pytest.mark.parametrize("helpers", [1, 3])
def test_helpers_read_what_this_process_reads(helpers: int) -> None:
    alone = tree_scan(helpers=0)
    shared = tree_scan(helpers=helpers)
    assert len(alone) >= 4
    assert shared == alone  # every field, kinds and shared bytes included


def test_helpers_read_this_hosts_processes_as_this_process_does() -> None:
    # Real /proc. This process reads slowly (a pause per pid), so the helpers, once
    # started, take most chunks. Processes that change between the reads (this one,
    # pytest's) are left out of the comparison.
    topology = TopologyReader().read()
    scanner = ProcessScanner(read_threads=1)
    scanner.use_topology(topology)
    cpu_map = scanner.cpu_to_node
    pids = scanner.pids()
    setup = {
        "proc": "/proc",
        "page_size": scanner.page_size,
        "memory_nodes": scanner.memory_nodes,
        "cpu_map": dict(cpu_map),
        "boot_time": scanner.boot_time(),
        "nodes_only": False,
        "cmdline": True,
    }
    here: list[int] = []

    def read_slowly(pid: int) -> object:
        here.append(pid)
        time.sleep(0.02)
        return scanner._read_one(pid, cpu_map)

    shared = scan_pool.read_shared(
        pids,
        helpers=2,
        setup=setup,
        read_here=read_slowly,
        decode=decode_outcome,
        chunk_size=2,
    )
    assert set(shared) == set(pids)
    by_helpers = [pid for pid in pids if pid not in here]
    assert len(by_helpers) >= len(pids) // 3, "the helpers read too little"
    alone = {pid: scanner._read_one(pid, cpu_map) for pid in by_helpers}
    mine = (os.getpid(), os.getppid())
    steady = [pid for pid in by_helpers if pid not in mine and isinstance(alone[pid], tuple)]
    same = [pid for pid in steady if shared[pid][1:] == alone[pid][1:]]  # type: ignore[index]
    assert len(steady) >= 10
    assert len(same) >= 0.9 * len(steady)


def test_the_wire_keeps_every_field_and_hostile_text() -> None:
    memory = ProcessMemory(
        pid=7,
        name="\x1b]0;owned\x07[bold]x[/]",
        user="ev\u202eil",
        cmdline="a\nb\x00c \udcff",
        rss_bytes=1 << 40,
        threads=3,
        node_bytes=frozen_map({0: 4096, 3: 8192}),
        kind_bytes=MappingProxyType({MemoryKind.ANON: frozen_map({0: 4096})}),
        shared_bytes=frozen_map({3: 8192}),
        mems_allowed=frozenset({0, 3}),
        cpu_nodes=frozenset({1}),
        mapping_count=12,
        start_time=1234.5,
        is_kernel_thread=False,
        memory_readable=True,
        kinds_read=True,
    )
    names = {f.name for f in dataclasses.fields(ProcessMemory)}
    assert names == {f.name for f in dataclasses.fields(memory)}
    outcome = ((1, 2, 3, 4, 5, 6), memory, False)
    back = decode_outcome(_through_marshal(encode_outcome(outcome)))
    assert back == outcome
    assert isinstance(back, tuple) and isinstance(back[1].node_bytes, MappingProxyType)
    for marker in (scanner_module._Vanished, scanner_module._StatUnreadable):
        assert decode_outcome(_through_marshal(encode_outcome(marker))) is marker


def _through_marshal(value: object) -> object:
    import marshal

    return marshal.loads(marshal.dumps(value))


def _misbehaving(code: str) -> Callable[[object], subprocess.Popen[bytes] | None]:
    def start(setup: object) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert child.stdin is not None
        scan_pool.send(child.stdin, setup)
        return child

    return start


DIES = "import sys; sys.stdin.buffer.read(4); sys.exit(3)"
STALLS = "import time; time.sleep(600)"
GARBAGE = (
    "import sys, time; sys.stdout.buffer.write(bytes([5, 0, 0, 0]) + b'junk!'); "
    "sys.stdout.flush(); time.sleep(600)"
)


@pytest.mark.parametrize(
    ("what", "start_helper"),
    [
        ("cannot start", lambda setup: None),
        ("dies at its first chunk", _misbehaving(DIES)),
        ("stalls forever", _misbehaving(STALLS)),
        ("answers garbage", _misbehaving(GARBAGE)),
    ],
)
def test_a_broken_helper_leaves_its_work_to_this_process(
    what: str, start_helper: Callable[[object], subprocess.Popen[bytes] | None]
) -> None:
    keys = list(range(200))
    started = time.monotonic()
    results = scan_pool.read_shared(
        keys,
        helpers=2,
        setup={"unused": True},
        read_here=lambda key: key * 2,
        decode=lambda wire: wire,
        chunk_size=8,
        start_helper=start_helper,
    )
    assert results == {key: key * 2 for key in keys}, what
    assert time.monotonic() - started < 10, f"waited on a helper that {what}"


def test_helpers_are_gone_when_the_scan_returns() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start(setup: object) -> subprocess.Popen[bytes] | None:
        child = scan_pool._start_helper(setup)
        if child is not None:
            started.append(child)
        return child

    topology = TopologyReader(sys_root=TREE / "sys").read()
    scanner = ProcessScanner(proc_root=TREE / "proc", read_threads=1)
    setup = {
        "proc": str(TREE / "proc"),
        "page_size": scanner.page_size,
        "memory_nodes": topology.with_memory,
        "cpu_map": {},
        "boot_time": 0.0,
        "nodes_only": False,
        "cmdline": True,
    }
    pids = scanner.pids()
    results = scan_pool.read_shared(
        pids,
        helpers=2,
        setup=setup,
        read_here=lambda pid: encode_outcome(scanner._read_one(pid, {})),
        decode=lambda wire: wire,
        chunk_size=1,
        start_helper=start,
    )
    assert set(results) == set(pids)
    assert len(started) == 2
    assert all(child.poll() is not None for child in started)

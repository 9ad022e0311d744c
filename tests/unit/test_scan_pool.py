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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from numatui.kernel import pid_reader, scan_pool
from numatui.kernel.pid_reader import decode_outcome, encode_outcome
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.memory import MemoryKind, ProcessMemory
from numatui.model.node_bytes import frozen_map

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TREE = FIXTURES / "four_nodes"


@pytest.fixture
def helpers_for_any_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_pool, "HELPER_MIN_PIDS", 1)


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
    setup = scanner.reader.helper_setup(cpu_map, nodes_only=False, cmdline=True)
    here: list[int] = []

    def read_slowly(pid: int) -> object:
        here.append(pid)
        time.sleep(0.02)
        return scanner.reader.read_one(pid, cpu_map)

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
    alone = {pid: scanner.reader.read_one(pid, cpu_map) for pid in by_helpers}
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
    for marker in (pid_reader.Vanished, pid_reader.StatUnreadable):
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


def _died_while_warm(setup: object) -> subprocess.Popen[bytes] | None:
    """A helper `warm_up` started that was gone before the scan handed it its setup."""
    child = scan_pool._spawn()
    assert child is not None
    child.kill()
    child.wait()
    scan_pool._warm.children.append(child)
    started = scan_pool._start_helper(setup)
    assert scan_pool._warm.children == []
    return started


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
        ("died while warm", _died_while_warm),
    ],
)
@pytest.mark.parametrize("beside_ui", [False, True])
def test_a_broken_helper_leaves_its_work_to_this_process(
    what: str,
    start_helper: Callable[[object], subprocess.Popen[bytes] | None],
    beside_ui: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scan_pool, "HELPER_PATIENCE_S", 0.3)
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
        read_here_too=not beside_ui,
    )
    assert results == {key: key * 2 for key in keys}, what
    assert time.monotonic() - started < 10, f"waited on a helper that {what}"


def tree_setup(scanner: ProcessScanner, nice: int = 0) -> dict[str, object]:
    topology = TopologyReader(sys_root=TREE / "sys").read()
    scanner.use_topology(topology)
    return scanner.reader.helper_setup(scanner.cpu_to_node, False, True, nice=nice)


def test_beside_the_ui_helpers_read_and_this_process_only_decodes() -> None:
    alone = tree_scan(helpers=0)
    scanner = ProcessScanner(proc_root=TREE / "proc", read_threads=1)
    setup = tree_setup(scanner)
    read_here: list[int] = []
    decoded: list[object] = []

    def read(pid: int) -> pid_reader.ReadOutcome:
        read_here.append(pid)
        return scanner.reader.read_one(pid, scanner.cpu_to_node)

    def decode(wire: object) -> pid_reader.ReadOutcome:
        decoded.append(wire)
        return decode_outcome(wire)

    pids = scanner.pids()
    results = scan_pool.read_shared(
        pids,
        helpers=2,
        setup=setup,
        read_here=read,
        decode=decode,
        chunk_size=1,
        read_here_too=False,
    )
    assert read_here == []
    assert len(decoded) == len(pids)
    shared = {pid: r[1] for pid, r in results.items() if isinstance(r, tuple)}
    assert shared == alone


def test_a_helper_beside_the_ui_runs_at_a_lower_priority() -> None:
    scanner = ProcessScanner(proc_root=TREE / "proc", read_threads=1)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for nice, expected in ((0, mine), (10, min(19, mine + 10))):
        child = scan_pool._start_helper(tree_setup(scanner, nice=nice))
        assert child is not None and child.stdin is not None and child.stdout is not None
        try:
            # An answer shows the helper past its first instruction (where it lowers itself).
            scan_pool.send(child.stdin, scanner.pids()[:1])
            assert scan_pool.receive(child.stdout)
            assert os.getpriority(os.PRIO_PROCESS, child.pid) == expected
        finally:
            scan_pool._stop(child)


def test_a_scan_beside_the_ui_uses_helpers_even_for_a_few_pids(
    counted_spawns: list[subprocess.Popen[bytes]],
) -> None:
    alone = tree_scan(helpers=0)
    assert len(alone) < scan_pool.HELPER_MIN_PIDS
    topology = TopologyReader(sys_root=TREE / "sys").read()
    scanner = ProcessScanner(proc_root=TREE / "proc")
    shared = by_pid(scanner.scan(topology=topology, beside_ui=True).processes)
    assert shared == alone
    assert 1 <= len(counted_spawns) <= len(os.sched_getaffinity(0))
    assert all(child.poll() is not None for child in counted_spawns)


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
        read_here=lambda pid: encode_outcome(scanner.reader.read_one(pid, {})),
        decode=lambda wire: wire,
        chunk_size=1,
        start_helper=start,
    )
    assert set(results) == set(pids)
    assert len(started) == 2
    assert all(child.poll() is not None for child in started)


@pytest.fixture
def counted_spawns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every helper started from here on (real processes), with 3 readers decided: 2 helpers."""
    spawned: list[subprocess.Popen[bytes]] = []
    real_spawn = scan_pool._spawn

    def spawn(nice: int = 0) -> subprocess.Popen[bytes] | None:
        child = real_spawn(nice)
        if child is not None:
            spawned.append(child)
        return child

    monkeypatch.setattr(scan_pool, "_spawn", spawn)
    monkeypatch.setattr(scan_pool, "_readers_now", lambda: 3)
    yield spawned
    scan_pool.stop_warm()
    for child in spawned:
        scan_pool._stop(child)


@pytest.mark.usefixtures("helpers_for_any_count")
def test_warm_helpers_are_the_ones_the_scan_takes(
    counted_spawns: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = tree_scan(helpers=0)
    scan_pool.warm_up(len(alone))
    assert len(counted_spawns) == 2 and len(scan_pool._warm.children) == 2
    # Now the warm helpers load and the machine looks busier: the scan keeps the count
    # decided before they ran.
    monkeypatch.setattr(scan_pool, "_readers_now", lambda: 5)
    topology = TopologyReader(sys_root=TREE / "sys").read()
    scanner = ProcessScanner(proc_root=TREE / "proc")  # the command's own sizing
    assert scanner.one_shot_helpers == 2
    shared = by_pid(scanner.scan(topology=topology, one_shot=True).processes)
    assert shared == alone
    assert len(counted_spawns) == 2, "the scan started helpers of its own"
    assert scan_pool._warm.children == []
    assert all(child.poll() is not None for child in counted_spawns)


def test_warm_helpers_no_scan_took_are_stopped(
    counted_spawns: list[subprocess.Popen[bytes]],
) -> None:
    scan_pool.warm_up(scan_pool.HELPER_MIN_PIDS - 1)
    assert counted_spawns == [] and scan_pool.one_shot_readers() == 3
    scan_pool.warm_up(scan_pool.HELPER_MIN_PIDS)
    assert len(counted_spawns) == 2
    scan_pool.stop_warm()
    assert scan_pool._warm.children == [] and scan_pool._warm.readers is None
    assert all(child.poll() is not None for child in counted_spawns)


@pytest.mark.usefixtures("helpers_for_any_count")
def test_ps_warms_its_helpers_and_leaves_none_behind(
    counted_spawns: list[subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from numatui import cli

    argv = ["--sys-root", str(TREE / "sys"), "--proc-root", str(TREE / "proc"), "ps", "--json"]
    assert cli.main(argv) == cli.EXIT_OK
    warmed = capsys.readouterr().out
    assert len(counted_spawns) == 2
    assert scan_pool._warm.children == [] and scan_pool._warm.readers is None
    assert all(child.poll() is not None for child in counted_spawns)
    # --cgroup reads its members later: nothing is started before that.
    assert cli.main([*argv[:5], "ps", "--cgroup", "/nonexistent", "--json"]) != cli.EXIT_OK
    assert len(counted_spawns) == 2
    monkeypatch.setattr(scan_pool, "HELPER_MIN_PIDS", 10**9)  # no helpers: the same output
    assert cli.main(argv) == cli.EXIT_OK
    assert capsys.readouterr().out == warmed
    assert len(counted_spawns) == 2


# A helper that answers only once it holds two chunks: it waits on the second while the
# first is answered only if the parent sends the next chunk before its answers come back.
PAIRS = """
import sys
sys.path.insert(0, {root!r})
from numatui.kernel.scan_wire import receive, send
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
receive(stdin)
while True:
    first, second = receive(stdin), receive(stdin)
    for chunk in (first, second):
        send(stdout, [(key, ("helper", key)) for key in chunk])
"""


def test_a_helper_holds_its_next_chunk_while_its_answers_are_decoded() -> None:
    assert scan_pool.IN_FLIGHT >= 2
    here: list[int] = []

    def read_slowly(key: int) -> tuple[str, int]:
        here.append(key)
        time.sleep(0.005)
        return ("here", key)

    root = str(Path(scan_pool.__file__).resolve().parents[2])
    keys = list(range(400))
    results = scan_pool.read_shared(
        keys,
        helpers=1,
        setup={"unused": True},
        read_here=read_slowly,
        decode=tuple,
        chunk_size=4,
        start_helper=_misbehaving(PAIRS.format(root=root)),
    )
    assert set(results) == set(keys)
    by_helper = [key for key, (who, _) in results.items() if who == "helper"]
    assert len(by_helper) >= len(keys) // 2, "the helper waited for chunks it was never sent"
    assert all(results[key] == ("here", key) for key in here if key not in by_helper)


# What a helper loads is what its start costs: with the scanner's imports ~80 ms of CPU,
# with its own few modules about half that. None of these is needed to read a pid.
NOT_FOR_A_HELPER = {
    "numatui.kernel.scanner",
    "numatui.kernel.scan_pool",
    "numatui.kernel.nodemask",
    "numatui.kernel.topology",
    "numatui.model.topology",
    "numatui.model.migration",
    "numatui.model.groups",
    "subprocess",
    "pathlib",
    "typing",
}


def test_a_helper_loads_only_what_reading_a_pid_needs() -> None:
    # The helper's real start (`-S`, scan_pool's code), one real read, then its modules.
    root = Path(scan_pool.__file__).resolve().parents[2]
    code = scan_pool._CHILD_CODE.format(root=str(root)) + "; print(*sorted(sys.modules))"
    child = subprocess.Popen(
        [sys.executable, "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    reader = pid_reader.PidReader("/proc", os.sysconf("SC_PAGE_SIZE"))
    scan_pool.send(child.stdin, reader.helper_setup({}, nodes_only=False, cmdline=True))
    scan_pool.send(child.stdin, [os.getpid()])
    child.stdin.close()
    try:
        [(pid, wire)] = scan_pool.receive(child.stdout)
        modules = set(child.stdout.read().decode().split())
    finally:
        child.kill()
        child.wait(timeout=10)
    outcome = decode_outcome(wire)
    assert pid == os.getpid() and isinstance(outcome, tuple)
    assert outcome[1].pid == pid and outcome[1].node_bytes  # it did read this process
    assert "numatui.kernel.pid_reader" in modules  # the check sees the helper's modules
    assert not modules & NOT_FOR_A_HELPER

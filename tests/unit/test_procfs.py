"""numa_maps parsing and the process scan, on recorded trees, synthetic text and live children."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numatui.errors import ProcessGone
from numatui.kernel import pid_files
from numatui.kernel import scanner as scanner_module
from numatui.kernel.nodemask import parse_kernel_list
from numatui.kernel.numa_maps import (
    _summarize_fast,
    classify,
    merge_summaries,
    node_bytes_from_numa_maps,
    node_summary,
    parse_numa_maps,
    region_pages,
    summarize_numa_maps,
    summary_of,
    unescape_path,
)
from numatui.kernel.pid_files import parse_cmdline, parse_stat, parse_status, stat_signature
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.kernel.vmstat import MigrationCounters, parse_migration_counters
from numatui.model.memory import MemoryKind, ProcessScan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORDED = [FIXTURES / "two_nodes", FIXTURES / "four_nodes"]


def recorded_trees() -> list[Path]:
    return [p for p in RECORDED if (p / "proc").is_dir()]


def workload_pids(root: Path) -> dict[int, str]:
    lines = (root / "reference" / "workloads.txt").read_text().splitlines()
    return {int(line.split()[0]): line.split(None, 1)[1] for line in lines}


# ---------------------------------------------------------------- the parser


SAMPLE = (
    "55d4c0a00000 default file=/usr/bin/python3.11 mapped=100 mapmax=3 N0=60 N1=40"
    " kernelpagesize_kB=4\n"
    "55d4c1a00000 default heap anon=50 dirty=50 active=0 N0=20 N1=30 kernelpagesize_kB=4\n"
    "7f0000000000 interleave:0-1 anon=8 dirty=8 N0=4 N1=4 kernelpagesize_kB=4\n"
    "7f0000100000 bind:1 file=/dev/zero\\040(deleted) dirty=16 mapmax=2 N1=16 kernelpagesize_kB=4\n"
    "7f0000200000 default file=/dev/shm/my\\040seg\\075x dirty=3 N0=3 kernelpagesize_kB=4\n"
    "7f0000300000 default file=/anon_hugepage\\040(deleted) huge anon=2 dirty=2 N1=2"
    " kernelpagesize_kB=2048\n"
    "7f0000500000 weighted interleave=static:0-1 anon=6 dirty=6 N0=3 N1=3 kernelpagesize_kB=4\n"
    "7f0000600000 prefer (many)=relative:1 anon=1 dirty=1 N1=1 kernelpagesize_kB=4\n"
    "7f0000700000 default\n"
    "7f0000800000 default file=/dev/zero anon=5 dirty=5 N0=5 kernelpagesize_kB=4\n"
    "7f0000900000 default file=/memfd:buf\\040(deleted) dirty=7 N0=7 kernelpagesize_kB=4\n"
    "7ffc00000000 default stack anon=9 dirty=9 N0=9 kernelpagesize_kB=4\n"
)


def test_parse_sample_lines() -> None:
    maps = parse_numa_maps(SAMPLE)
    assert len(maps.mappings) == 12
    exe, heap, inter, shared_anon, shm, huge, weighted, many, empty, zero, memfd, stack = (
        maps.mappings
    )
    assert exe.start == 0x55D4C0A00000 and exe.kind is MemoryKind.FILE
    assert exe.path == "/usr/bin/python3.11" and dict(exe.node_pages) == {0: 60, 1: 40}
    assert exe.mapped == 100 and exe.mapmax == 3 and exe.shared
    assert heap.kind is MemoryKind.HEAP and heap.anon == 50 and not heap.shared
    assert inter.policy == "interleave:0-1" and inter.kind is MemoryKind.ANON
    assert shared_anon.kind is MemoryKind.SHMEM and shared_anon.path == "/dev/zero (deleted)"
    assert shm.kind is MemoryKind.SHMEM and shm.path == "/dev/shm/my seg=x"
    assert huge.kind is MemoryKind.HUGE and huge.page_size == 2 << 20
    assert dict(huge.node_bytes) == {1: 4 << 20}
    assert weighted.policy == "weighted interleave=static:0-1"
    assert many.policy == "prefer (many)=relative:1" and dict(many.node_pages) == {1: 1}
    assert empty.policy == "default" and not empty.node_pages and empty.kind is MemoryKind.ANON
    assert zero.kind is MemoryKind.ANON  # a private /dev/zero mapping is anonymous memory
    assert memfd.kind is MemoryKind.SHMEM
    assert stack.kind is MemoryKind.STACK
    assert dict(maps.node_bytes) == {
        0: (60 + 20 + 4 + 3 + 3 + 5 + 7 + 9) * 4096,
        1: (40 + 30 + 4 + 16 + 3 + 1) * 4096 + 2 * (2 << 20),
    }
    assert dict(maps.shared_bytes) == {0: 60 * 4096, 1: (40 + 16) * 4096}


def test_malformed_lines_are_skipped() -> None:
    text = (
        "zz00 default N0=1 kernelpagesize_kB=4\n"  # address not hex
        "1000\n"  # no policy
        "2000 default N0=x kernelpagesize_kB=4\n"  # pages not a number
        "3000 default anon=1 N0=1 kernelpagesize_kB=4\n"
        "4000 default N0=" + "9" * 5000 + " kernelpagesize_kB=4\n"  # longer than int() takes
    )
    maps = parse_numa_maps(text)
    assert [m.start for m in maps.mappings] == [0x3000]
    assert summarize_numa_maps(text.encode()).node_bytes == {0: 4096}


def test_summary_matches_parser_on_sample() -> None:
    data = SAMPLE.encode()
    assert summarize_numa_maps(data) == summary_of(parse_numa_maps(SAMPLE))
    assert summarize_numa_maps(data, nodes={0, 1}) == summary_of(parse_numa_maps(SAMPLE))
    assert node_bytes_from_numa_maps(data) == dict(parse_numa_maps(SAMPLE).node_bytes)


def test_unescape_and_classify() -> None:
    assert unescape_path("/a\\040b\\011c\\012d\\075e") == "/a b\tc\nd=e"
    assert classify("/SYSV00000000 (deleted)") is MemoryKind.SHMEM
    assert classify("/usr/lib/libc.so.6") is MemoryKind.FILE
    assert classify("/memfd:x (deleted)", huge=True) is MemoryKind.HUGE
    assert classify(None) is MemoryKind.ANON


_POLICIES = st.sampled_from(
    ["default", "local", "bind:0-1", "interleave:0,2", "prefer:1", "prefer=static:0",
     "weighted interleave:0-3", "prefer (many)=relative:1", "bind=static|balancing:0"]
)  # fmt: skip
_PATHS = st.sampled_from(
    ["/usr/lib/libc.so.6", "/dev/zero\\040(deleted)", "/dev/zero", "/dev/shm/x\\040y",
     "/SYSV00000001\\040(deleted)", "/memfd:a\\040(deleted)", "/anon_hugepage\\040(deleted)",
     "/home/u/N0=\\075file"]
)  # fmt: skip


@st.composite
def numa_maps_line(draw: st.DrawFn) -> str:
    """A line as show_numa_map() prints it."""
    parts = [f"{draw(st.integers(0x1000, 2**47)):x}", draw(_POLICIES)]
    marker = draw(st.sampled_from(["file", "heap", "stack", ""]))
    if marker == "file":
        parts.append("file=" + draw(_PATHS))
    elif marker:
        parts.append(marker)
    huge = marker == "file" and draw(st.booleans())
    if huge:
        parts.append("huge")
    nodes = draw(st.dictionaries(st.sampled_from([0, 1, 2, 5, 12]), st.integers(1, 10**6)))
    if nodes:
        for field in ("anon", "dirty", "mapped", "mapmax", "swapcache", "active", "writeback"):
            if draw(st.booleans()):
                low = 2 if field == "mapmax" else 1  # printed only when above 1
                parts.append(f"{field}={draw(st.integers(low, 1000))}")
        parts += [f"N{n}={p}" for n, p in sorted(nodes.items())]
        parts.append(f"kernelpagesize_kB={2048 if huge else 4}")
    return " ".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.lists(numa_maps_line(), max_size=30), st.booleans())
def test_summary_agrees_with_parser_on_kernel_text(lines: list[str], final_newline: bool) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    maps = parse_numa_maps(text)
    assert len(maps.mappings) == len(lines)
    expected = summary_of(maps)
    assert summarize_numa_maps(text.encode()) == expected
    assert summarize_numa_maps(text.encode(), nodes={0, 1, 2, 5, 12}) == expected
    assert node_bytes_from_numa_maps(text.encode()) == dict(maps.node_bytes)
    # Both ways to find anonymous pages, whichever the line mix would pick.
    for by_files in (True, False):
        assert _summarize_fast(text.encode(), 4096, None, by_files) == expected


def _pages_of(text: str) -> list[tuple[int, int, dict[int, int]]]:
    """What the full parser says of each mapping with pages: start, page size, pages."""
    return [
        (m.start, m.page_size, dict(m.node_pages))
        for m in parse_numa_maps(text).mappings
        if m.node_pages
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(numa_maps_line(), max_size=30), st.booleans())
def test_region_pages_agree_with_the_parser_on_kernel_text(
    lines: list[str], final_newline: bool
) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    found = [(r.start, r.page_size, dict(r.node_pages)) for r in region_pages(text.encode())]
    assert found == _pages_of(text)


def test_region_pages_of_the_sample_and_of_malformed_lines() -> None:
    found = region_pages(SAMPLE.encode())
    assert [(r.start, r.page_size, dict(r.node_pages)) for r in found] == _pages_of(SAMPLE)
    text = (
        "2000 default N0=x kernelpagesize_kB=4\n"  # pages not a number: the line is left out
        "3000 default anon=1 N0=1 N0=2 kernelpagesize_kB=4\n"  # summed, as the parser does
        "4000 default N0=" + "9" * 5000 + " kernelpagesize_kB=4\n"  # longer than int() takes
        "5000 default N1=1 kernelpagesize_kB=0\n"  # no page size: the base one
    )
    assert [(r.start, r.page_size, dict(r.node_pages)) for r in region_pages(text.encode())] == [
        (0x3000, 4096, {0: 3}),
        (0x5000, 4096, {1: 1}),
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(numa_maps_line(), min_size=1, max_size=30), st.data())
def test_pieces_cut_where_lines_end_sum_to_the_whole(lines: list[str], data: st.DataObject) -> None:
    """A long numa_maps is summed piece by piece (pid_files.read_in_pieces)."""
    whole = ("\n".join(lines) + "\n").encode()
    if len(lines) > 1:
        cuts = sorted(data.draw(st.sets(st.integers(1, len(lines) - 1), max_size=5)))
    else:
        cuts = []
    ends = [0, *[len("\n".join(lines[:c]) + "\n") for c in cuts], len(whole)]
    pieces = [whole[a:b] for a, b in itertools.pairwise(ends)]
    assert b"".join(pieces) == whole
    nodes = data.draw(st.sampled_from([None, {0, 1, 2, 5, 12}]))
    for summarize in (summarize_numa_maps, node_summary):
        parts = [summarize(piece, 4096, nodes) for piece in pieces]
        assert merge_summaries(parts) == summarize(whole, 4096, nodes)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parsers_take_any_text(text: str) -> None:
    parse_numa_maps(text)
    data = text.encode("utf-8", "surrogateescape")
    summarize_numa_maps(data)
    summarize_numa_maps(data, nodes={0, 1})
    node_bytes_from_numa_maps(data)
    region_pages(data)
    parse_stat(data)
    parse_status(data)
    parse_cmdline(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(numa_maps_line(), st.text(alphabet="0123456789abcdefN=k_ \\\n"))))
def test_parsers_take_kernel_like_garbage(lines: list[str]) -> None:
    text = "\n".join(lines)
    parse_numa_maps(text)
    summarize_numa_maps(text.encode())
    node_bytes_from_numa_maps(text.encode(), 4096, {0, 1})
    region_pages(text.encode())


def test_parse_stat_with_hostile_comm() -> None:
    fields = " ".join(["S", *(["0"] * 5), "4194560", "11", "0", "2", *(["0"] * 7), "3"]
                      + ["0", "500", "1000", "200"] + ["0"] * 14 + ["1"])  # fmt: skip
    stat = parse_stat(f"42 (a) b (c) {fields}".encode())
    assert stat is not None
    assert stat.comm == "a) b (c" and stat.flags == 4194560 and stat.minflt == 11
    assert stat.num_threads == 3 and stat.start_ticks == 500 and stat.processor == 1
    assert parse_stat(b"") is None and parse_stat(b"42 (x) S 1 2") is None


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=1, max_value=2**22),
    st.text(max_size=20),
    st.lists(st.integers(min_value=0, max_value=2**64).map(str), min_size=30, max_size=55),
    st.integers(min_value=0, max_value=54),
    st.sampled_from([None, "-1", "S", "x1", "()", "1.5"]),
)
def test_the_quick_signature_is_the_parsed_one(
    pid: int, comm: str, fields: list[str], at: int, odd: str | None
) -> None:
    # comm is written by the process: spaces, parentheses, newlines are all its to choose;
    # one field may be something other than a number.
    if odd is not None and at < len(fields):
        fields[at] = odd
    data = f"{pid} ({comm}) {' '.join(fields)}\n".encode("utf-8", "surrogateescape")
    stat = parse_stat(data)
    assert stat_signature(data) == (None if stat is None else stat.change_signature)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_the_quick_signature_takes_any_bytes(data: bytes) -> None:
    stat = parse_stat(data)
    assert stat_signature(data) == (None if stat is None else stat.change_signature)


def test_the_quick_signature_of_recorded_stat_files() -> None:
    files = list((Path(__file__).parents[1] / "fixtures").rglob("proc/*/stat"))
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        stat = parse_stat(data)
        assert stat is not None and stat_signature(data) == stat.change_signature, path


# ---------------------------------------------------------------- recorded trees


def _numastat_mb(path: Path) -> dict[int, float]:
    """The Total row of `numastat -p PID`: MB per node."""
    lines = path.read_text().splitlines()
    header = next(line for line in lines if line.strip().startswith("Node"))
    nodes = [int(n) for n in re.findall(r"Node (\d+)", header)]
    total = next(line for line in lines if line.startswith("Total"))
    values = [float(v) for v in total.split()[1:]]
    return dict(zip(nodes, values, strict=False))


@pytest.mark.parametrize("root", recorded_trees(), ids=lambda p: p.name)
def test_recorded_numa_maps_match_numastat(root: Path) -> None:
    for pid in workload_pids(root):
        text = (root / "proc" / str(pid) / "numa_maps").read_text()
        maps = parse_numa_maps(text)
        assert len(maps.mappings) == len(text.splitlines())
        expected = _numastat_mb(root / "reference" / f"numastat-p-{pid}.txt")
        got = maps.node_bytes
        for node, mb in expected.items():
            assert abs(got.get(node, 0) / 2**20 - mb) <= 0.011, (pid, node)
        assert summarize_numa_maps(text.encode()) == summary_of(maps)
        for by_files in (True, False):
            assert _summarize_fast(text.encode(), 4096, None, by_files) == summary_of(maps)


@pytest.mark.parametrize("root", recorded_trees(), ids=lambda p: p.name)
def test_scan_recorded_tree(root: Path) -> None:
    proc = root / "proc"
    scanner = ProcessScanner(proc_root=proc)
    scan = scanner.scan(topology=TopologyReader(sys_root=root / "sys", proc_root=proc).read())
    by_pid = {p.pid: p for p in scan.processes}
    assert scan.vanished == 0 and scan.unreadable == 0 and scan.skipped_unchanged == 0
    recorded = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    assert sorted(by_pid) == recorded
    kthreadd = by_pid[2]
    assert kthreadd.is_kernel_thread and kthreadd.name == "kthreadd"
    assert kthreadd.numa_bytes == 0 and kthreadd.cmdline == ""
    btime = next(
        int(line.split()[1])
        for line in (proc / "stat").read_text().splitlines()
        if line.startswith("btime")
    )
    cpu_of_node = {0: 0, 1: 1}
    for pid, policy in workload_pids(root).items():
        memory = by_pid[pid]
        status = (proc / str(pid) / "status").read_text()
        stat_fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        maps = parse_numa_maps((proc / str(pid) / "numa_maps").read_text())
        assert not memory.is_kernel_thread and memory.name == "python3" and memory.user == "root"
        assert "python3 -c" in memory.cmdline and "mmap" in memory.cmdline
        assert memory.node_bytes == maps.node_bytes
        assert memory.kind_bytes == maps.kind_bytes
        assert memory.shared_bytes == maps.shared_bytes
        assert memory.mapping_count == len(maps.mappings)
        assert memory.threads == int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        assert memory.rss_bytes == int(stat_fields[21]) * 4096
        assert memory.start_time == pytest.approx(btime + int(stat_fields[19]) / 100)
        allowed = re.search(r"Mems_allowed_list:\s+(\S+)", status).group(1)  # type: ignore[union-attr]
        assert memory.mems_allowed == parse_kernel_list(allowed)
        if "--membind=" in policy:
            bound = int(policy.rsplit("=", 1)[1])
            anon = memory.kind_bytes[MemoryKind.ANON]
            assert max(anon, key=lambda n: anon[n]) == bound
        if "--interleave" in policy:
            assert memory.kind_bytes[MemoryKind.SHMEM]  # shared anonymous + /dev/shm file
            assert memory.threads == 3
            assert memory.cpu_nodes == frozenset(
                cpu_of_node.values()
            )  # threads pinned to CPU 0 and 1
    assert scanner.numa_maps(2).mappings == ()


@pytest.mark.parametrize("root", recorded_trees(), ids=lambda p: p.name)
def test_node_pages_and_read_process_on_tree(root: Path) -> None:
    scanner = ProcessScanner(proc_root=root / "proc")
    for pid in workload_pids(root):
        maps = scanner.numa_maps(pid)
        assert scanner.node_pages(pid) == dict(maps.node_bytes)
        assert scanner.read_process(pid).node_bytes == maps.node_bytes
    with pytest.raises(ProcessGone):
        scanner.read_process(999999)
    with pytest.raises(ProcessGone):
        scanner.numa_maps(999999)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the two-node tree."""
    src = recorded_trees()[0]
    dest = tmp_path / src.name
    shutil.copytree(src, dest)
    return dest


def _bump_minflt(stat_path: Path) -> None:
    head, tail = stat_path.read_text().rsplit(")", 1)
    fields = tail.split()
    fields[7] = str(int(fields[7]) + 1)
    stat_path.write_text(f"{head}) {' '.join(fields)}\n")


def test_steady_refresh_reuses_unchanged(tree: Path) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    second = scanner.scan(first)
    assert second.skipped_unchanged == len(first.processes)
    assert all(a is b for a, b in zip(first.processes, second.processes, strict=True))
    pid = next(iter(workload_pids(tree)))
    _bump_minflt(tree / "proc" / str(pid) / "stat")
    third = scanner.scan(second)
    assert third.skipped_unchanged == len(first.processes) - 1
    changed = next(p for p in third.processes if p.pid == pid)
    assert changed is not next(p for p in second.processes if p.pid == pid)
    # A scan made by another scanner cannot be trusted to match our signatures.
    assert ProcessScanner(proc_root=tree / "proc").scan(third).skipped_unchanged == 0
    scanner.invalidate(pid)
    assert scanner.scan(third).skipped_unchanged == len(first.processes) - 1


def test_max_age_forces_a_reread(tree: Path) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc", max_age_s=0.0)
    first = scanner.scan()
    time.sleep(0.01)
    assert scanner.scan(first).skipped_unchanged == 0


def test_pid_reuse_is_not_mistaken_for_unchanged(tree: Path) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    pid = next(iter(workload_pids(tree)))
    stat_path = tree / "proc" / str(pid) / "stat"
    head, tail = stat_path.read_text().rsplit(")", 1)
    fields = tail.split()
    fields[19] = str(int(fields[19]) + 1000)  # a new process with the same pid
    stat_path.write_text(f"{head}) {' '.join(fields)}\n")
    second = scanner.scan(first)
    assert second.skipped_unchanged == len(first.processes) - 1
    assert next(p for p in second.processes if p.pid == pid).start_time == pytest.approx(
        next(p for p in first.processes if p.pid == pid).start_time + 10
    )


def test_process_vanishing_mid_read_is_counted_not_listed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = next(iter(workload_pids(tree)))
    real_read = pid_files.read_in_pieces

    def read(path: str, on_piece: Callable[[bytes], None], dir_fd: int | None = None) -> None:
        if (
            path == "numa_maps"
            and dir_fd is not None
            and os.readlink(f"/proc/self/fd/{dir_fd}").endswith(f"/{victim}")
        ):
            shutil.rmtree(tree / "proc" / str(victim))  # it exits right now
            raise ProcessLookupError(3, "No such process")
        real_read(path, on_piece, dir_fd)

    monkeypatch.setattr(pid_files, "read_in_pieces", read)
    scan = ProcessScanner(proc_root=tree / "proc").scan()
    assert scan.vanished == 1
    assert victim not in {p.pid for p in scan.processes}


def test_exited_while_reading_status_is_vanished(tree: Path) -> None:
    victim = next(iter(workload_pids(tree)))
    (tree / "proc" / str(victim) / "status").write_text("")  # what a dead task's file reads as
    scan = ProcessScanner(proc_root=tree / "proc").scan()
    assert scan.vanished == 1 and victim not in {p.pid for p in scan.processes}


def test_unreadable_numa_maps_is_listed_and_counted(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = next(iter(workload_pids(tree)))
    real_read = pid_files.read_in_pieces

    def read(path: str, on_piece: Callable[[bytes], None], dir_fd: int | None = None) -> None:
        if (
            path == "numa_maps"
            and dir_fd is not None
            and os.readlink(f"/proc/self/fd/{dir_fd}").endswith(f"/{victim}")
        ):
            raise PermissionError(13, "Permission denied")
        real_read(path, on_piece, dir_fd)

    monkeypatch.setattr(pid_files, "read_in_pieces", read)
    scanner = ProcessScanner(proc_root=tree / "proc")
    scan = scanner.scan()
    assert scan.unreadable == 1 and scanner.last_unreadable == {victim}
    listed = next(p for p in scan.processes if p.pid == victim)
    assert listed.numa_bytes == 0 and listed.name == "python3"
    again = scanner.scan(scan)
    assert again.unreadable == 1 and again.skipped_unchanged == len(scan.processes)


# ---------------------------------------------------------------- migration counters


VMSTAT_SAMPLE = b"""nr_free_pages 123456
numa_pages_migrated 44
pgmigrate_success 50
pgmigrate_fail 0
thp_collapse_alloc 5
"""


def test_parse_migration_counters() -> None:
    assert parse_migration_counters(VMSTAT_SAMPLE) == MigrationCounters(6, 5)
    # Older or smaller kernels: no balancing, no THP counters -> those events cannot happen.
    assert parse_migration_counters(b"pgmigrate_success 7\n") == MigrationCounters(7, 0)
    # No pgmigrate_success (CONFIG_MIGRATION off, or not vmstat at all): no signal.
    assert parse_migration_counters(b"numa_pages_migrated 3\nthp_collapse_alloc 1\n") is None
    assert parse_migration_counters(b"") is None


_COUNTER_NAMES = st.sampled_from(
    ["pgmigrate_success", "numa_pages_migrated", "thp_collapse_alloc", "nr_free_pages",
     "pgdemote_kswapd", "pgpromote_success", "compact_isolated"]
)  # fmt: skip
_VALID_LINE = re.compile(rb"[a-z0-9_]+[ \t]+[0-9]+[ \t]*")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_COUNTER_NAMES, st.integers(0, 2**64 - 1)),
    st.lists(
        st.binary(max_size=40).filter(lambda b: b"\n" not in b and not _VALID_LINE.fullmatch(b))
    ),
    st.randoms(use_true_random=False),
)
def test_migration_counters_ignore_garbage_lines(
    counters: dict[str, int], garbage: list[bytes], rng: random.Random
) -> None:
    lines = [f"{name} {value}".encode() for name, value in counters.items()] + garbage
    rng.shuffle(lines)
    parsed = parse_migration_counters(b"\n".join(lines))
    if "pgmigrate_success" not in counters:
        assert parsed is None
        return
    assert parsed == MigrationCounters(
        counters["pgmigrate_success"] - counters.get("numa_pages_migrated", 0),
        counters.get("thp_collapse_alloc", 0),
    )


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_migration_counters_take_any_bytes(data: bytes) -> None:
    parsed = parse_migration_counters(data)
    assert parsed is None or isinstance(parsed, MigrationCounters)
    parse_migration_counters(b"pgmigrate_success " + b"9" * 5000 + b"\n" + data)


class FakeClock:
    """Stands in for the `time` module in the scanner: monotonic time moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(
        scanner_module, "time", SimpleNamespace(monotonic=fake.monotonic, time=fake.time)
    )
    return fake


def test_quiet_processes_are_checked_less_often_and_still_seen_to_change(
    tree: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    real_read = scanner_module.read_pid_file

    def counting(proc: str, pid: int, name: str) -> bytes:
        if name == "stat":
            checked.append(pid)
        return real_read(proc, pid, name)

    monkeypatch.setattr(scanner_module, "read_pid_file", counting)
    scanner = ProcessScanner(proc_root=tree / "proc", quiet_checks=((60.0, 7.5), (10.0, 3.5)))
    scan = scanner.scan()
    pids = sorted(p.pid for p in scan.processes)
    assert len(pids) >= 4

    def checks_per_scan(scans: int) -> list[int]:
        nonlocal scan
        counts = []
        for _ in range(scans):
            checked.clear()
            scan = scanner.scan(scan)
            assert scan.skipped_unchanged == len(pids)
            counts.append(len(checked))
            clock.now += 2.0
        return counts

    # A scan every 2 s: unchanged for under 10 s, every process is checked every scan;
    # then at most every 3.5 s (every 2nd scan), and after a minute every 7.5 s (4th).
    assert checks_per_scan(4) == [len(pids)] * 4
    clock.now += 4.0  # 12 s unchanged
    assert checks_per_scan(4) == [len(pids), 0] * 2
    clock.now += 60.0
    assert checks_per_scan(8) == [len(pids), 0, 0, 0] * 2
    # A quiet process that changes is seen within its stride, and is checked every scan
    # again from then on.
    pid = next(iter(workload_pids(tree)))
    before = next(p for p in scan.processes if p.pid == pid)
    _bump_minflt(tree / "proc" / str(pid) / "stat")
    for _ in range(4):
        scan = scanner.scan(scan)
        clock.now += 2.0
    assert next(p for p in scan.processes if p.pid == pid) is not before
    checked.clear()
    scan = scanner.scan(scan)
    assert checked.count(pid) == 1


def _bump_vmstat(root: Path, **deltas: int) -> None:
    path = root / "proc" / "vmstat"
    lines = []
    for line in path.read_text().splitlines():
        name, value = line.split()
        lines.append(f"{name} {int(value) + deltas.pop(name, 0)}")
    assert not deltas, f"not in the fixture's vmstat: {deltas}"
    path.write_text("\n".join(lines) + "\n")


def _move_pages_behind_its_back(root: Path, pid: int) -> None:
    """What migratepages does to a process's numa_maps: N0 pages now on N1. Its stat stays."""
    path = root / "proc" / str(pid) / "numa_maps"
    text = path.read_text()
    moved = re.sub(r" N0=(\d+)(?: N1=(\d+))?", lambda m: f" N1={int(m[1]) + int(m[2] or 0)}", text)
    assert moved != text
    path.write_text(moved)


def _rereads(before: ProcessScan, after: ProcessScan) -> set[int]:
    old = {p.pid: p for p in before.processes}
    return {p.pid for p in after.processes if old.get(p.pid) is not p}


def test_unchanged_counters_reread_nothing(tree: Path, clock: FakeClock) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    clock.now += 100  # well past the old 30-60 s forced re-read, well inside 300 s
    second = scanner.scan(first)
    assert second.skipped_unchanged == len(first.processes) and not _rereads(first, second)
    assert scanner.last_forced_by_counters == 0


def test_migration_by_another_process_forces_every_reread(tree: Path, clock: FakeClock) -> None:
    pid = next(iter(workload_pids(tree)))
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    on_node_0 = next(p for p in first.processes if p.pid == pid).node_bytes
    assert on_node_0.get(0, 0) > 0

    _move_pages_behind_its_back(tree, pid)
    clock.now += 2
    unseen = scanner.scan(first)
    assert unseen.skipped_unchanged == len(first.processes)  # its stat did not change
    assert next(p for p in unseen.processes if p.pid == pid).node_bytes == on_node_0

    _bump_vmstat(tree, pgmigrate_success=300)
    clock.now += 2
    seen = scanner.scan(unseen)
    assert seen.skipped_unchanged == 0 and _rereads(unseen, seen) == {
        p.pid for p in first.processes
    }
    assert scanner.last_forced_by_counters == len(first.processes)
    after = next(p for p in seen.processes if p.pid == pid).node_bytes
    assert 0 not in after and after[1] == on_node_0[0] + on_node_0.get(1, 0)

    clock.now += 30  # the signal is consumed: quiet again
    quiet = scanner.scan(seen)
    assert quiet.skipped_unchanged == len(first.processes) and scanner.last_forced_by_counters == 0


@pytest.mark.parametrize(
    ("deltas", "forced"),
    [
        # NUMA balancing moves pages inside the process's own hinting fault: its minflt shows it.
        ({"pgmigrate_success": 64, "numa_pages_migrated": 64}, False),
        ({"pgmigrate_success": 65, "numa_pages_migrated": 64}, True),  # one page by someone else
        ({"thp_collapse_alloc": 1}, True),  # khugepaged copied pages into a new huge page
        ({"pgmigrate_fail": 10, "nr_free_pages": -100, "numa_hit": 1000}, False),
    ],
)
def test_which_counters_force_a_reread(
    tree: Path, clock: FakeClock, deltas: dict[str, int], forced: bool
) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    _bump_vmstat(tree, **deltas)
    clock.now += 2
    second = scanner.scan(first)
    assert second.skipped_unchanged == (0 if forced else len(first.processes))


def test_forced_rereads_are_rate_limited_but_never_lost(tree: Path, clock: FakeClock) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc", min_forced_interval_s=10.0)
    count = len(scanner.scan().processes)
    scan = scanner.scan()

    def refresh(seconds: float, **deltas: int) -> int:
        """Advance the clock, bump counters, scan: how many processes were re-read."""
        nonlocal scan
        clock.now += seconds
        if deltas:
            _bump_vmstat(tree, **deltas)
        scan = scanner.scan(scan)
        return count - scan.skipped_unchanged

    assert refresh(2, pgmigrate_success=1) == count  # the first one at once
    assert refresh(2, pgmigrate_success=1) == 0  # 2 s after a forced re-read: held back
    assert refresh(4) == 0  # still within 10 s: pending
    assert refresh(3.5) == 0  # 9.5 s after the forced one
    assert refresh(1) == count  # 10.5 s after: the pending one happens, with no new move
    assert refresh(2) == refresh(30) == 0  # consumed
    # Constant compaction: the counter moves on every 2 s refresh; everything is
    # re-read at most once per 10 s, not on every refresh.
    rereads = [refresh(2, pgmigrate_success=5) for _ in range(30)]
    forced_at = [i for i, n in enumerate(rereads) if n]
    assert all(rereads[i] == count for i in forced_at)
    assert forced_at[0] == 0 and all(b - a == 5 for a, b in itertools.pairwise(forced_at))


def test_without_vmstat_the_short_max_age_applies(tree: Path, clock: FakeClock) -> None:
    (tree / "proc" / "vmstat").unlink()
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    clock.now += 29
    assert scanner.scan(first).skipped_unchanged == len(first.processes)
    clock.now += 32  # 61 s: past 30 s x (1 + 15/16), the most any pid is staggered to
    assert scanner.scan(first).skipped_unchanged == 0


def test_counters_missing_for_a_while_still_show_a_move(tree: Path, clock: FakeClock) -> None:
    vmstat = tree / "proc" / "vmstat"
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    saved = vmstat.read_text()
    vmstat.write_text("nr_free_pages 1\n")  # no pgmigrate_success: no signal this time
    clock.now += 2
    blind = scanner.scan(first)
    assert blind.skipped_unchanged == len(first.processes)
    vmstat.write_text(saved)
    _bump_vmstat(tree, pgmigrate_success=8)  # a move made while the counters were unreadable
    clock.now += 2
    assert scanner.scan(blind).skipped_unchanged == 0


def test_safety_max_age_with_counters(tree: Path, clock: FakeClock) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    first = scanner.scan()
    clock.now += 299
    again = scanner.scan(first)
    assert again.skipped_unchanged == len(first.processes)
    clock.now += 300  # 599 s since the first read: past 300 s x (1 + 15/16) for every pid
    assert scanner.scan(again).skipped_unchanged == 0


def test_one_memory_node_ignores_the_counters(tree: Path, clock: FakeClock) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc")
    topology = TopologyReader(sys_root=tree / "sys", proc_root=tree / "proc").read()
    scanner.use_topology(dataclasses.replace(topology, nodes=topology.nodes[:1]))
    assert scanner.memory_nodes == {0}
    first = scanner.scan()
    _bump_vmstat(tree, pgmigrate_success=1000)  # compaction: no page can change node
    clock.now += 2
    assert scanner.scan(first).skipped_unchanged == len(first.processes)
    (tree / "proc" / "vmstat").unlink()
    clock.now += 100  # nor is the 30 s age used without the counters: they would tell nothing
    assert scanner.scan(first).skipped_unchanged == len(first.processes)


def test_subset_scan_then_full_scan_rereads_the_rest(tree: Path, clock: FakeClock) -> None:
    scanner = ProcessScanner(proc_root=tree / "proc", min_forced_interval_s=10.0)
    first = scanner.scan()
    pid = next(iter(workload_pids(tree)))
    _bump_vmstat(tree, pgmigrate_success=3)
    clock.now += 2
    one = scanner.scan(first, pids=[pid])  # one pid re-read: the others are still pending
    assert one.skipped_unchanged == 0
    latest = ProcessScan(
        processes=tuple(one.processes[0] if p.pid == pid else p for p in first.processes),
        taken_at=one.taken_at,
    )
    clock.now += 2
    assert scanner.scan(latest).skipped_unchanged == len(first.processes)  # rate limit
    clock.now += 10
    full = scanner.scan(latest)
    assert _rereads(latest, full) == {p.pid for p in first.processes} - {pid}


# ---------------------------------------------------------------- live processes


def test_live_scan_of_self_and_child(sleeper: subprocess.Popen[bytes]) -> None:
    scanner = ProcessScanner()
    scan = scanner.scan(pids=[os.getpid(), sleeper.pid])
    me = next(p for p in scan.processes if p.pid == os.getpid())
    assert me.numa_bytes > 0 and me.mapping_count > 10
    assert abs(me.start_time - __import__("psutil").Process().create_time()) < 1
    assert scanner.node_pages(sleeper.pid) == dict(scanner.numa_maps(sleeper.pid).node_bytes)


def test_real_child_that_exited_is_vanished(sleeper: subprocess.Popen[bytes]) -> None:
    scanner = ProcessScanner()
    sleeper.send_signal(signal.SIGKILL)
    time.sleep(0.2)  # a zombie now: exited, not reaped
    scan = scanner.scan(pids=[sleeper.pid])
    assert scan.vanished == 1 and not scan.processes
    with pytest.raises(ProcessGone):
        scanner.node_pages(sleeper.pid)
    with pytest.raises(ProcessGone):
        scanner.read_process(sleeper.pid)
    sleeper.wait()
    assert scanner.scan(pids=[sleeper.pid]).vanished == 1


def test_sixty_thousand_mappings(
    process_with_mappings: Callable[[int], tuple[int, int]],
) -> None:
    pid, pages = process_with_mappings(60_000)
    scanner = ProcessScanner()
    t0 = time.perf_counter()
    memory = scanner.read_process(pid)
    t1 = time.perf_counter()
    fast = scanner.node_pages(pid)
    t2 = time.perf_counter()
    maps = scanner.numa_maps(pid)
    t3 = time.perf_counter()
    print(
        f"\n{memory.mapping_count} mappings: read_process {t1 - t0:.3f} s, "
        f"node_pages {t2 - t1:.3f} s, numa_maps (all regions) {t3 - t2:.3f} s"
    )
    assert memory.mapping_count >= pages
    assert sum(memory.node_bytes.values()) >= pages * 4096
    assert fast == dict(maps.node_bytes)
    assert t1 - t0 < 5 and t2 - t1 < 5 and t3 - t2 < 20


# ---------------------------------------------------------------- single-record reads


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(pid_files.os, "read", read)
    return sizes


@pytest.mark.parametrize("name", sorted(pid_files.SINGLE_RECORD_FILES))
def test_a_single_record_file_is_read_whole_in_one_call(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The live kernel's stat, status and statm: one read(2), the whole file (the refresh
    reads every process's stat each cycle; the end-of-file read was half its calls)."""
    with open(f"/proc/self/{name}", "rb") as f:
        expected_start = f.read()[:16]
    sizes = _counting_reads(monkeypatch)
    data = pid_files.read_pid_file("/proc", os.getpid(), name)
    assert len(sizes) == 1 and sizes[0] == len(data) > 0
    assert data.endswith(b"\n") and data[:16] == expected_start[:16]
    with pid_files.PidDir("/proc", os.getpid()) as pid_dir:
        assert pid_dir.read(name).endswith(b"\n")
    assert len(sizes) == 2


def test_a_file_of_many_records_is_read_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """numa_maps hands out at most a page per read(2): a short read is not its end."""
    sizes = _counting_reads(monkeypatch)
    data = pid_files.read_pid_file("/proc", os.getpid(), "numa_maps")
    assert sizes[-1] == 0 and len(sizes) > 2  # a page at a time, then end-of-file
    assert max(sizes) <= 4 * 4096 < len(data) and data.endswith(b"\n")

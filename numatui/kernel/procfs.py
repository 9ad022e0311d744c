"""Processes and where their memory lives: /proc/PID/{stat,status,cmdline,numa_maps}.

Two readers of numa_maps live here:

* `parse_numa_maps` builds one `MappedRegion` per line, for the detail view.
* `_summarize` only sums bytes per node, per kind and for shared mappings, for
  the scan of every process. It works on the raw bytes (no decoding) with one
  compiled regex over the whole file, so the Python work is one small step per
  line that has pages; lines without pages never reach Python.

`ProcessScanner` reads every process without psutil: psutil reads the same
files one attribute at a time and cost about 94 us per process here against
about 25 us for the three reads done below, and it cannot read through a
held /proc/PID directory descriptor, which is what makes a scan race-proof.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import pwd
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from numatui.errors import ProcessGone
from numatui.kernel.nodemask import parse_kernel_list
from numatui.kernel.topology import TopologyReader, cpu_node_map, parse_key_values
from numatui.model import (
    MappedRegion,
    MemoryKind,
    NodeBytes,
    NumaMaps,
    ProcessMemory,
    ProcessScan,
    Topology,
    frozen_map,
)

PF_EXITING = 0x00000004
PF_KTHREAD = 0x00200000

# Files under these paths are shmem (tmpfs) objects: POSIX shm, SysV shm,
# memfd, and MAP_SHARED|MAP_ANONYMOUS memory, which the kernel backs with a
# deleted shmem file named "dev/zero". Other tmpfs mounts (/run, a tmpfs /tmp)
# cannot be told apart from numa_maps alone and count as FILE.
SHMEM_PATH_PREFIXES = ("/dev/shm/", "/SYSV", "/memfd:", "/dev/zero (deleted)")
_SHMEM_PREFIXES_RAW = (b"/dev/shm/", b"/SYSV", b"/memfd:", b"/dev/zero\\040(deleted)")

# Fields the kernel prints after the policy and mapping type (show_numa_map).
_COUNT_FIELDS = frozenset(
    ("anon", "dirty", "mapped", "mapmax", "swapcache", "active", "writeback", "kernelpagesize_kB")
)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_NODE_FIELD = re.compile(r"N([0-9]+)=([0-9]+)", re.ASCII)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})", re.ASCII)

_NODE_ID_RAW = re.compile(rb" N([0-9]+)=")

_READ_CHUNK = 1 << 17

# Reading every thread's stat for a process with thousands of threads would
# dominate the scan; the nodes its threads run on are known well enough from
# the first threads listed.
MAX_THREADS_SAMPLED = 64


# ---------------------------------------------------------------- numa_maps


def unescape_path(raw: str) -> str:
    """Undo the kernel's octal escapes (`\\040` for space, also tab, newline and `=`)."""
    if "\\" not in raw:
        return raw
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), raw)


def classify(
    path: str | None, *, heap: bool = False, stack: bool = False, huge: bool = False
) -> MemoryKind:
    """The kind of a mapping from what its numa_maps line says.

    hugetlb wins over everything (a hugetlbfs file or MFD_HUGETLB memfd is
    HUGE); then heap and stack; a mapping without a file is ANON; shmem
    objects (SHMEM_PATH_PREFIXES) are SHMEM; every other file is FILE, even
    its private copied-on-write pages (numa_maps does not split them per node).
    A private mapping of /dev/zero is anonymous memory and counts as ANON.
    """
    if huge:
        return MemoryKind.HUGE
    if heap:
        return MemoryKind.HEAP
    if stack:
        return MemoryKind.STACK
    if path is None or path == "/dev/zero":
        return MemoryKind.ANON
    if path.startswith(SHMEM_PATH_PREFIXES):
        return MemoryKind.SHMEM
    return MemoryKind.FILE


def _parse_line(line: str, default_page_size: int) -> MappedRegion | None:
    tokens = line.split(" ")
    if len(tokens) < 2 or not _HEX.fullmatch(tokens[0]):
        return None
    # The policy runs until the first token that is a known field: policies
    # may contain spaces ("weighted interleave", "prefer (many)=static:0").
    policy_parts: list[str] = []
    path: str | None = None
    heap = stack = huge = False
    counts: dict[str, int] = {}
    node_pages: dict[int, int] = {}
    in_policy = True
    for token in tokens[1:]:
        if not token:
            continue
        key, sep, value = token.partition("=")
        if key == "file" and sep:
            path = unescape_path(value)
        elif token == "heap" and not sep:
            heap = True
        elif (token == "stack" or token.startswith("stack:")) and not sep:
            stack = True
        elif token == "huge":
            huge = True
        elif sep and (key in _COUNT_FIELDS or (key[:1] == "N" and _DIGITS.fullmatch(key, 1))):
            if not _DIGITS.fullmatch(value):
                return None
            if key[0] == "N":
                node = int(key[1:])
                node_pages[node] = node_pages.get(node, 0) + int(value)
            else:
                counts[key] = int(value)
        elif in_policy:
            policy_parts.append(token)
            continue
        # Anything else after the fields started: a field this parser does
        # not know (a newer kernel); ignored.
        in_policy = False
    if not policy_parts:
        return None
    kb = counts.get("kernelpagesize_kB")
    page_size = kb * 1024 if kb else default_page_size
    return MappedRegion(
        start=int(tokens[0], 16),
        policy=" ".join(policy_parts),
        kind=classify(path, heap=heap, stack=stack, huge=huge),
        path=path,
        node_pages=MappingProxyType(node_pages),
        page_size=page_size,
        anon=counts.get("anon", 0),
        dirty=counts.get("dirty", 0),
        mapped=counts.get("mapped", 0),
        mapmax=counts.get("mapmax", 0),
        swapcache=counts.get("swapcache", 0),
    )


def parse_numa_maps(text: str, page_size: int = 4096) -> NumaMaps:
    """Every line of /proc/PID/numa_maps as a `MappedRegion`.

    `page_size` applies to lines without `kernelpagesize_kB=` (they have no
    pages). `mapped` is the count as printed (the kernel omits it when it
    equals anon or dirty). Malformed lines are skipped; this never raises.
    """
    regions: list[MappedRegion] = []
    for line in text.split("\n"):
        if not line:
            continue
        try:
            region = _parse_line(line, page_size)
        except ValueError:  # an integer too long for int() (str-digits limit)
            continue
        if region is not None:
            regions.append(region)
    return NumaMaps(mappings=tuple(regions))


@dataclass(frozen=True, slots=True)
class MemorySummary:
    """numa_maps reduced to what a process row needs (bytes)."""

    node_bytes: dict[int, int]
    kind_bytes: dict[MemoryKind, dict[int, int]]
    shared_bytes: dict[int, int]
    mapping_count: int


def _add(target: dict[int, int], values: Mapping[int, int], scale: int = 1) -> None:
    for n, v in values.items():
        if v:
            target[n] = target.get(n, 0) + v * scale


def summary_of(maps: NumaMaps) -> MemorySummary:
    """The same sums from parsed mappings (the slow, always-right path)."""
    node: dict[int, int] = {}
    kinds: dict[MemoryKind, dict[int, int]] = {}
    shared: dict[int, int] = {}
    for m in maps.mappings:
        _add(node, m.node_pages, m.page_size)
        _add(kinds.setdefault(m.kind, {}), m.node_pages, m.page_size)
        if m.shared:
            _add(shared, m.node_pages, m.page_size)
    return MemorySummary(node, {k: v for k, v in kinds.items() if v}, shared, len(maps.mappings))


class _SummaryPatterns:
    """The regexes of the fast summary for one base page size.

    Every pattern starts with a literal, so the regex engine skips to
    candidates with its fast search; within a line only possessive
    single-class runs are used (no backtracking). A run of node fields is
    `N<id>=<pages> ...` up to `kernelpagesize_kB=`: node fields hold no "k",
    and no field before them holds an upper-case "N".
    """

    def __init__(self, base_kb: int) -> None:
        kb = str(base_kb).encode()
        run = rb"[^N\n]*+(N[^k\n]*+)kernelpagesize_kB=" + kb + rb"(?=\n)"
        self.tail = b" kernelpagesize_kB=" + kb + b"\n"
        # A VMA without a file: the policy (two of which hold a space) is
        # followed directly by the counters, not by file=, heap or stack.
        self.anon = re.compile(
            rb"\n[0-9a-f]++ (?:weighted |prefer \(many\))?+[^ \n]*+ (?!file=|heap|stack)" + run
        )
        self.shmem = re.compile(
            rb" file=/(?:dev/shm/|SYSV|memfd:|dev/zero\\040\(deleted\))[^ \n]*+" + run
        )
        self.shared = re.compile(rb" mapmax=" + run)
        self.odd_size = re.compile(rb" kernelpagesize_kB=(?!" + kb + rb"\n)")


_PATTERNS: dict[int, _SummaryPatterns] = {}
_NODE_PATTERNS: dict[int, re.Pattern[bytes]] = {}
_SHMEM_OR_ZERO = re.compile(rb" file=/(?:dev/shm/|dev/zero[ \\]|SYSV|memfd:)")


def _node_pattern(node: int) -> re.Pattern[bytes]:
    pattern = _NODE_PATTERNS.get(node)
    if pattern is None:
        pattern = _NODE_PATTERNS[node] = re.compile(b" N%d=([0-9]+)" % node)
    return pattern


def _node_sums(text: bytes, nodes: Iterable[int]) -> tuple[dict[int, int], int]:
    """Pages per node in `text`, one C-level pass per node; and how many fields were seen."""
    out: dict[int, int] = {}
    seen = 0
    for node in nodes:
        values = _node_pattern(node).findall(text)
        if values:
            seen += len(values)
            out[node] = sum(map(int, values))
    return out, seen


def _line_at(data: bytes, pos: int) -> tuple[int, bytes]:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return start, data[start : end if end >= 0 else len(data)]


def _lines_with(data: bytes, marker: bytes, seen: set[int]) -> list[bytes]:
    """Each line holding `marker`, once (by line start), skipping lines already in `seen`."""
    out: list[bytes] = []
    pos = data.find(marker)
    while pos >= 0:
        start, line = _line_at(data, pos)
        if start not in seen:
            seen.add(start)
            out.append(line)
        pos = data.find(marker, start + len(line))
    return out


def summarize_numa_maps(
    data: bytes, base_page_size: int = 4096, nodes: Iterable[int] | None = None
) -> MemorySummary:
    """Bytes per node, per kind and shared (mapmax > 1) from raw numa_maps bytes.

    Agrees with `summary_of(parse_numa_maps(...))` on what the kernel prints
    and never raises. `nodes` are the machine's memory nodes (numa_maps
    prints no others); None finds them in the text, at the cost of one pass.

    Speed: a scan reads every process's numa_maps, so per-line Python work is
    avoided. The sums are a few C-level passes over the whole text: per node
    over all lines; anonymous, shmem and shared lines are picked out by
    literal-led regexes and summed the same way; FILE is what remains. Only
    rare lines (heap, stack, private /dev/zero, hugetlb and any page size
    other than the base one) are parsed one by one.
    """
    if not data:
        return MemorySummary({}, {}, {}, 0)
    try:
        return _summarize_fast(data, base_page_size, nodes)
    except ValueError:  # a number too long for int(): not kernel output
        return summary_of(parse_numa_maps(data.decode("utf-8", "replace"), base_page_size))


def _patterns(base_page_size: int) -> _SummaryPatterns:
    base_kb = base_page_size // 1024
    patterns = _PATTERNS.get(base_kb)
    if patterns is None:
        patterns = _PATTERNS[base_kb] = _SummaryPatterns(base_kb)
    return patterns


def _all_node_pages(text: bytes, nodes: Iterable[int] | None) -> tuple[dict[int, int], set[int]]:
    node_ids = set(nodes) if nodes is not None else {int(n) for n in _NODE_ID_RAW.findall(text)}
    return _node_sums(text, node_ids)[0], node_ids


def _summarize_fast(data: bytes, base_page_size: int, nodes: Iterable[int] | None) -> MemorySummary:
    patterns = _patterns(base_page_size)
    mapping_count = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    # Framing newlines: every line, the first and last too, is "\n...\n".
    text = b"\n" + data if data.endswith(b"\n") else b"\n" + data + b"\n"
    all_pages, node_ids = _all_node_pages(text, nodes)
    if not all_pages:
        return MemorySummary({}, {}, {}, mapping_count)

    # Lines parsed one by one (hugetlb and any other page size, heap, stack,
    # private /dev/zero): their pages come out of the base-page sums.
    taken: set[int] = set()
    raw_lines: list[bytes] = []
    for match in patterns.odd_size.finditer(text):
        start, line = _line_at(text, match.start())
        if start not in taken:
            taken.add(start)
            raw_lines.append(line)
    raw_lines.extend(_lines_with(text, b" heap", taken))
    raw_lines.extend(_lines_with(text, b" stack", taken))
    shm_or_zero = _SHMEM_OR_ZERO.search(text) is not None
    if shm_or_zero:
        raw_lines.extend(_lines_with(text, b" file=/dev/zero ", taken))
    regions: list[MappedRegion] = []
    special_pages: dict[int, int] = {}
    for line in raw_lines:
        region = _parse_line(line.decode("utf-8", "replace"), base_page_size)
        if region is not None:
            regions.append(region)
            _add(special_pages, region.node_pages)

    def run_pages(pattern: re.Pattern[bytes]) -> dict[int, int]:
        runs = pattern.findall(text)
        if not runs:
            return {}
        return _node_sums(b" " + b" ".join(runs), node_ids)[0]

    anon = run_pages(patterns.anon)
    shmem = run_pages(patterns.shmem) if shm_or_zero else {}
    shared = run_pages(patterns.shared)
    for region in regions:
        # Base-page shared lines parsed one by one are counted from their region.
        if region.mapmax and region.page_size == base_page_size:
            for n, p in region.node_pages.items():
                shared[n] = shared.get(n, 0) - p

    node_bytes: dict[int, int] = {}
    kinds: dict[MemoryKind, dict[int, int]] = {}
    shared_bytes: dict[int, int] = {}
    for n in node_ids:
        regular = all_pages.get(n, 0) - special_pages.get(n, 0)
        file_pages = regular - anon.get(n, 0) - shmem.get(n, 0)
        for kind, pages in (
            (MemoryKind.ANON, anon.get(n, 0)),
            (MemoryKind.SHMEM, shmem.get(n, 0)),
            (MemoryKind.FILE, file_pages),
        ):
            if pages > 0:
                kinds.setdefault(kind, {})[n] = pages * base_page_size
        if regular > 0:
            node_bytes[n] = regular * base_page_size
        if shared.get(n, 0) > 0:
            shared_bytes[n] = shared[n] * base_page_size
    for region in regions:
        _add(node_bytes, region.node_pages, region.page_size)
        _add(kinds.setdefault(region.kind, {}), region.node_pages, region.page_size)
        if region.shared:
            _add(shared_bytes, region.node_pages, region.page_size)
    return MemorySummary(
        node_bytes, {k: v for k, v in kinds.items() if v}, shared_bytes, mapping_count
    )


def node_bytes_from_numa_maps(
    data: bytes, base_page_size: int = 4096, nodes: Iterable[int] | None = None
) -> dict[int, int]:
    """Only the bytes per node: the cheapest read, for sampling during a migration.

    One C-level pass per node over the whole text; lines whose page size is
    not the base one (hugetlb) are the only ones handled one by one.
    """
    try:
        return _node_bytes_fast(data, base_page_size, nodes)
    except ValueError:
        return dict(parse_numa_maps(data.decode("utf-8", "replace"), base_page_size).node_bytes)


def _node_bytes_fast(
    data: bytes, base_page_size: int, nodes: Iterable[int] | None
) -> dict[int, int]:
    text = b"\n" + data + b"\n"
    pages, _ = _all_node_pages(text, nodes)
    out = {n: p * base_page_size for n, p in pages.items()}
    taken: set[int] = set()
    for match in _patterns(base_page_size).odd_size.finditer(text):
        start, line = _line_at(text, match.start())
        if start in taken:
            continue
        taken.add(start)
        region = _parse_line(line.decode("utf-8", "replace"), base_page_size)
        if region is None:
            continue
        for n, p in region.node_pages.items():
            out[n] = out.get(n, 0) + p * (region.page_size - base_page_size)
    return {n: b for n, b in out.items() if b > 0}


# ---------------------------------------------------------------- /proc/PID/stat and status


@dataclass(frozen=True, slots=True)
class PidStat:
    """The fields of /proc/PID/stat the scanner uses."""

    comm: str
    state: str
    flags: int
    minflt: int
    majflt: int
    num_threads: int
    start_ticks: int
    vsize: int
    rss_pages: int
    processor: int

    @property
    def change_signature(self) -> tuple[int, ...]:
        """What changes when a process's numa_maps changes by its own doing.

        Every page a process gains comes through a fault (minflt/majflt, which
        also count NUMA-balancing hinting faults, the moment balancing
        migrates a page); unmapping or reclaim changes vsize or rss; pid reuse
        changes start_ticks. Not seen: pages moved without a fault
        (migrate_pages/move_pages/mbind, by this or another process, demotion
        to a slower tier, memory hot-unplug, khugepaged collapsing pages into
        a huge page on another node), a shared page moved by NUMA balancing
        through another sharer's fault, sharing changes made by other
        processes (mapmax), KSM merging, and mprotect splitting a VMA (the
        mapping count). The machine-wide /proc/vmstat counters
        (`MigrationCounters`) tell the scanner when pages moved without a
        fault, and it then re-reads every process; the rest is bounded by
        `max_age_s`, and `invalidate()` forgets one process at once.
        """
        return (
            self.start_ticks,
            self.minflt,
            self.majflt,
            self.vsize,
            self.rss_pages,
            self.num_threads,
        )


def parse_stat(data: bytes) -> PidStat | None:
    """/proc/PID/stat, or None when it is empty or malformed (the process is gone)."""
    # comm may hold spaces and parentheses: it ends at the LAST ")".
    open_paren = data.find(b"(")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    rest = data[close_paren + 2 :].split()
    if len(rest) < 37:
        return None
    try:
        return PidStat(
            comm=data[open_paren + 1 : close_paren].decode("utf-8", "replace"),
            state=rest[0].decode("ascii", "replace"),
            flags=int(rest[6]),
            minflt=int(rest[7]),
            majflt=int(rest[9]),
            num_threads=int(rest[17]),
            start_ticks=int(rest[19]),
            vsize=int(rest[20]),
            rss_pages=int(rest[21]),
            processor=int(rest[36]),
        )
    except ValueError:
        return None


_STATUS_FIELDS = re.compile(
    rb"^(Name|State|Uid|Threads|VmRSS|Mems_allowed_list):[ \t]*([^\n]*)$", re.MULTILINE
)


def parse_status(data: bytes) -> dict[str, str]:
    """The few /proc/PID/status fields the scanner uses, as text."""
    return {
        key.decode("ascii"): value.decode("utf-8", "replace")
        for key, value in _STATUS_FIELDS.findall(data)
    }


def parse_cmdline(data: bytes) -> str:
    return data.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


# ---------------------------------------------------------------- /proc/vmstat


@dataclass(frozen=True, slots=True)
class MigrationCounters:
    """Cumulative /proc/vmstat counts of pages moved without a fault in the process they belong to.

    Only whether they changed between two reads matters (see `ProcessScanner.scan`).

    `not_by_balancing` = pgmigrate_success - numa_pages_migrated. migrate_pages()
    in mm/migrate.c adds every page it moves, for any reason, to
    pgmigrate_success: the migrate_pages/move_pages/mbind syscalls and cpuset
    memory_migrate (pages moved in a syscall, not in a fault of their
    process), demotion to a slower tier (kswapd, direct and khugepaged
    reclaim; pgdemote_* are a subset, so they are not added again), memory
    hot-unplug, compaction and contiguous allocations (same node, but not
    told apart: no counter says how many pages compaction moved),
    soft-offlining and long-term pinning. NUMA balancing's
    own moves (numa_pages_migrated, promotions between tiers included, so
    pgpromote_success is not added either) are made inside a hinting fault of
    the process, which its minflt already shows, so they are taken out; the
    other processes sharing such a page see it only at their max age.

    `collapsed` = thp_collapse_alloc: khugepaged (and MADV_COLLAPSE) copy
    base pages into a newly allocated huge page, on the node holding most of
    them, without migrate_pages() and without a fault in the process.

    The two are kept apart rather than summed, so a change of one can never
    be cancelled by the other.
    """

    not_by_balancing: int
    collapsed: int


def parse_migration_counters(data: bytes) -> MigrationCounters | None:
    """The counters from /proc/vmstat bytes; None without pgmigrate_success.

    Without pgmigrate_success (a kernel built without CONFIG_MIGRATION, a
    file that is not vmstat) there is no signal. An absent numa_pages_migrated
    (no CONFIG_NUMA_BALANCING) or thp_collapse_alloc (no THP) means no such
    event can happen: 0. Never raises; lines that are not `name value` are ignored.
    """
    values = parse_key_values(data.decode("ascii", "replace"))
    migrated = values.get("pgmigrate_success")
    if migrated is None:
        return None
    return MigrationCounters(
        not_by_balancing=migrated - values.get("numa_pages_migrated", 0),
        collapsed=values.get("thp_collapse_alloc", 0),
    )


# ---------------------------------------------------------------- reading


def hides_other_users(proc_root: Path = Path("/proc")) -> bool:
    """Whether `proc_root` is a proc mount with hidepid (other users' processes invisible).

    Such processes are not even counted by a scan, so a face must say the list is partial.
    """
    try:
        mountinfo = _read("/proc/self/mountinfo").decode("utf-8", "replace")
        target = os.path.realpath(proc_root)
    except OSError:
        return False
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or fields[4] != target or " - proc " not in line:
            continue
        options = line.rsplit(" ", 1)[-1].split(",")
        return any(
            o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off") for o in options
        )
    return False


class _Vanished(Exception):
    """The process exited while we read it."""


class _StatUnreadable(Exception):
    """Not even /proc/PID/stat is readable (hidepid=1 or a stricter LSM)."""


def _read_fd(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def _read(path: str, dir_fd: int | None = None) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


_GONE_ERRNOS = frozenset((errno.ENOENT, errno.ESRCH))
_DENIED_ERRNOS = frozenset((errno.EACCES, errno.EPERM))


@dataclass(slots=True)
class _Known:
    """What the scanner remembers of a process it read fully."""

    signature: tuple[int, ...]
    memory: ProcessMemory
    read_at: float
    unreadable: bool


class _Forced:
    """A remembered entry re-read because the migration counters changed."""


_FORCED = _Forced()

_ReadOutcome = tuple[PidStat, ProcessMemory, bool] | type[_Vanished] | type[_StatUnreadable]
_PARALLEL_MIN_PIDS = 48  # below this, starting threads costs more than it saves


def _default_read_threads() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0))))


class ProcessScanner:
    """Reads processes' identity and memory per node from a /proc tree.

    `cpu_to_node` maps CPU ids to node ids (see `topology.cpu_node_map`); when
    None it is read from `sys_root` (default: /sys for /proc, else the `sys`
    folder beside `proc_root`, the recorded-fixture layout).

    A scan given the previous one re-reads numa_maps only for processes whose
    stat `change_signature` changed, plus every process when /proc/vmstat
    shows pages moved in a way no signature sees (`MigrationCounters`), at
    most once per `min_forced_interval_s` (a pending one is kept until then),
    plus each process after `max_age_s` (staggered 1-2x per pid) for what no
    counter sees (KSM merging, sharing changes). Without /proc/vmstat that
    age is `max_age_without_counters_s`. With one memory node no move can
    change a per-node sum, so the counters are not read.
    """

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        *,
        cpu_to_node: Mapping[int, int] | None = None,
        sys_root: Path | None = None,
        memory_nodes: Iterable[int] | None = None,
        max_age_s: float = 300.0,
        page_size: int | None = None,
        read_threads: int | None = None,
        max_age_without_counters_s: float = 30.0,
        min_forced_interval_s: float = 10.0,
    ) -> None:
        self.proc_root = proc_root
        self.read_threads = read_threads if read_threads is not None else _default_read_threads()
        self._proc = str(proc_root)
        if sys_root is None:
            sys_root = Path("/sys") if proc_root == Path("/proc") else proc_root.parent / "sys"
        self.sys_root = sys_root
        self._cpu_to_node: Mapping[int, int] | None = cpu_to_node
        self.max_age_s = max_age_s
        self.max_age_without_counters_s = max_age_without_counters_s
        self.min_forced_interval_s = min_forced_interval_s
        # The counters as last read (kept when a read fails, so a move made
        # meanwhile still shows as a change once they can be read again).
        self._counters: MigrationCounters | None = None
        # Entries read before this monotonic time may miss a move the
        # counters showed; -inf: none. The last re-read they forced.
        self._stale_before = -math.inf
        self._forced_at = -math.inf
        self.last_forced_by_counters = 0
        """How many processes the last scan re-read because the counters changed.

        Decided before their stat is read: some may have changed by themselves too.
        """
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self._clock_ticks = os.sysconf("SC_CLK_TCK")
        self._boot_time: float | None = None
        self._users: dict[int, str] = {}
        self._known: dict[int, _Known] = {}
        self._memory_nodes = frozenset(memory_nodes) if memory_nodes is not None else None
        self.last_unreadable: frozenset[int] = frozenset()
        """Pids whose numa_maps the last scan could not read (listed with no memory)."""

    # ------------------------------------------------------------ helpers

    def _read_machine(self) -> None:
        topology = TopologyReader(sys_root=self.sys_root, proc_root=self.proc_root).read()
        if self._cpu_to_node is None:
            self._cpu_to_node = cpu_node_map(topology)
        if self._memory_nodes is None and topology.numa_available:
            # numa_maps prints only N_MEMORY nodes; a node hot-added later
            # makes the sums miss it until a new scanner is made.
            self._memory_nodes = topology.with_memory

    def use_topology(self, topology: Topology) -> None:
        """Map CPUs and memory nodes with this topology from now on."""
        self._cpu_to_node = cpu_node_map(topology)
        self._memory_nodes = topology.with_memory if topology.numa_available else None

    @property
    def cpu_to_node(self) -> Mapping[int, int]:
        if self._cpu_to_node is None:
            self._read_machine()
        return self._cpu_to_node or {}

    @property
    def memory_nodes(self) -> frozenset[int] | None:
        """The node ids the numa_maps sums look for (None: found in each file)."""
        if self._memory_nodes is None and self._cpu_to_node is None:
            self._read_machine()
        return self._memory_nodes

    def boot_time(self) -> float:
        if self._boot_time is None:
            self._boot_time = 0.0
            try:
                for line in _read(f"{self._proc}/stat").splitlines():
                    if line.startswith(b"btime "):
                        self._boot_time = float(int(line.split()[1]))
                        break
            except (OSError, ValueError, IndexError):
                pass
        return self._boot_time

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = str(uid)
            self._users[uid] = name
        return name

    def pids(self) -> list[int]:
        try:
            names = os.listdir(self._proc)
        except OSError:
            return []
        return [int(name) for name in names if name.isdigit()]

    def invalidate(self, pid: int | None = None) -> None:
        """Forget what is known of `pid` (all pids when None): the next scan re-reads it.

        Call it after migrating a process: the change signature cannot see
        pages moved by another process.
        """
        if pid is None:
            self._known.clear()
        else:
            self._known.pop(pid, None)

    # ------------------------------------------------------------ one process

    def _cpu_nodes(self, dir_fd: int, stat: PidStat, cpu_map: Mapping[int, int]) -> frozenset[int]:
        nodes: set[int] = set()
        main = cpu_map.get(stat.processor)
        if main is not None:
            nodes.add(main)
        if stat.num_threads <= 1:
            return frozenset(nodes)
        try:
            task_fd = os.open("task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return frozenset(nodes)
        try:
            for tid in os.listdir(task_fd)[:MAX_THREADS_SAMPLED]:
                try:
                    thread = parse_stat(_read(f"{tid}/stat", dir_fd=task_fd))
                except OSError:
                    continue  # a thread that exited: the others still tell
                if thread is not None:
                    node = cpu_map.get(thread.processor)
                    if node is not None:
                        nodes.add(node)
        except OSError:
            pass
        finally:
            os.close(task_fd)
        return frozenset(nodes)

    def _read_full(
        self, pid: int, cpu_map: Mapping[int, int], want_memory: bool = True
    ) -> tuple[PidStat, ProcessMemory, bool]:
        """Read one process through a held directory fd; (stat, memory, numa_maps unreadable).

        Every file is opened relative to the /proc/PID directory opened
        first, so a pid reused meanwhile cannot mix two processes: the old
        directory's files then fail with ENOENT/ESRCH instead.
        """
        try:
            dir_fd = os.open(f"{self._proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in _DENIED_ERRNOS:
                raise _StatUnreadable from e
            raise _Vanished from e
        try:
            try:
                stat = parse_stat(_read("stat", dir_fd=dir_fd))
            except OSError as e:
                if e.errno in _DENIED_ERRNOS:
                    raise _StatUnreadable from e
                raise _Vanished from e
            if stat is None or stat.state in ("Z", "X", "x") or stat.flags & PF_EXITING:
                # Zombies and exiting processes have no memory left to show.
                raise _Vanished
            is_kthread = bool(stat.flags & PF_KTHREAD)
            summary: MemorySummary | None = None
            unreadable = False
            if want_memory and not is_kthread:
                try:
                    summary = summarize_numa_maps(
                        _read("numa_maps", dir_fd=dir_fd), self.page_size, self.memory_nodes
                    )
                except OSError as e:
                    if e.errno in _DENIED_ERRNOS:
                        unreadable = True
                    else:
                        raise _Vanished from e
            try:
                status = parse_status(_read("status", dir_fd=dir_fd))
                cmdline = "" if is_kthread else parse_cmdline(_read("cmdline", dir_fd=dir_fd))
            except OSError as e:
                raise _Vanished from e
            # Read after numa_maps: a live user process still has its mm
            # (VmRSS); without one, numa_maps may have been cut short by exit.
            if not status or (not is_kthread and "VmRSS" not in status):
                raise _Vanished
            if status.get("State", "")[:1] in ("Z", "X"):
                raise _Vanished
            cpu_nodes = self._cpu_nodes(dir_fd, stat, cpu_map)
        finally:
            os.close(dir_fd)
        memory = self._build(pid, stat, status, cmdline, summary, cpu_nodes, is_kthread)
        if unreadable:
            memory = dataclasses.replace(memory, memory_readable=False)
        return stat, memory, unreadable

    def _build(
        self,
        pid: int,
        stat: PidStat,
        status: Mapping[str, str],
        cmdline: str,
        summary: MemorySummary | None,
        cpu_nodes: frozenset[int],
        is_kthread: bool,
    ) -> ProcessMemory:
        try:
            uid = int(status.get("Uid", "").split()[0])
            user = self._user(uid)
        except (ValueError, IndexError):
            user = "?"
        try:
            mems_allowed = parse_kernel_list(status.get("Mems_allowed_list", ""))
        except ValueError:
            mems_allowed = frozenset()
        empty: NodeBytes = frozen_map()
        return ProcessMemory(
            pid=pid,
            name=status.get("Name") or stat.comm,
            user=user,
            cmdline=cmdline,
            rss_bytes=stat.rss_pages * self.page_size,
            threads=stat.num_threads,
            node_bytes=frozen_map(summary.node_bytes) if summary else empty,
            kind_bytes=MappingProxyType(
                {k: frozen_map(v) for k, v in summary.kind_bytes.items()} if summary else {}
            ),
            shared_bytes=frozen_map(summary.shared_bytes) if summary else empty,
            mems_allowed=mems_allowed,
            cpu_nodes=cpu_nodes,
            mapping_count=summary.mapping_count if summary else 0,
            start_time=self.boot_time() + stat.start_ticks / self._clock_ticks,
            is_kernel_thread=is_kthread,
        )

    def _poll_counters(self, now: float) -> tuple[float, float]:
        """Read /proc/vmstat once for this scan: (re-read entries read before this, max age)."""
        nodes = self.memory_nodes
        if nodes is not None and len(nodes) <= 1:
            return -math.inf, self.max_age_s  # moves cannot change a sum over one node
        try:
            counters = parse_migration_counters(_read(f"{self._proc}/vmstat"))
        except OSError:
            counters = None
        if counters is None:
            return -math.inf, min(self.max_age_s, self.max_age_without_counters_s)
        # Any change, not only a rise: the two counters behind `not_by_balancing`
        # are bumped one after the other, so a read between them can overshoot
        # and the next one fall back; "changed" still catches a move made then.
        if self._counters is not None and counters != self._counters:
            self._stale_before = now
        self._counters = counters
        if now - self._forced_at < self.min_forced_interval_s:
            return -math.inf, self.max_age_s  # rate limit: kept pending in _stale_before
        return self._stale_before, self.max_age_s

    def _reusable(
        self,
        pid: int,
        previous: ProcessMemory | None,
        now: float,
        max_age_s: float,
        stale_before: float,
    ) -> _Known | _Forced | None:
        """The remembered entry if `previous` is what we read last and nothing changed.

        `_FORCED` when it was, but before the counters showed an unseen move
        (decided before its stat is read: it is re-read either way).
        """
        known = self._known.get(pid)
        if known is None or previous is None or known.memory is not previous:
            return None
        if known.read_at < stale_before:
            return _FORCED
        # Stagger forced re-reads over pids so they do not all land on one refresh.
        if now - known.read_at > max_age_s * (1.0 + (pid % 16) / 16.0):
            return None
        try:
            stat = parse_stat(_read(f"{self._proc}/{pid}/stat"))
        except OSError:
            return None  # the full read decides: vanished or unreadable
        if stat is None or stat.change_signature != known.signature:
            return None
        return known

    # ------------------------------------------------------------ public

    def scan(
        self,
        previous: ProcessScan | None = None,
        pids: Iterable[int] | None = None,
        cpu_to_node: Mapping[int, int] | None = None,
        topology: Topology | None = None,
    ) -> ProcessScan:
        """Every process (or `pids`), reusing `previous` for processes that did not change.

        A process that exits while being read is counted in `vanished` and
        left out (zombies too). A process whose numa_maps may not be read
        (another user's, without CAP_SYS_PTRACE) is listed with its identity
        and no memory, and counted in `unreadable` (`last_unreadable` has
        the pids); one whose stat may not be read either (hidepid=1) is only
        counted. With hidepid=2 other users' processes are invisible and not
        counted at all.

        `topology` (or `cpu_to_node`) updates the machine the scanner maps
        CPUs and memory nodes with; without either it reads its own once.
        When /proc/vmstat shows pages moved that no process's stat shows,
        every process is re-read (see the class docstring for the limits).
        """
        if topology is not None:
            self.use_topology(topology)
        started = time.monotonic()
        taken_at = time.time()
        cpu_map = cpu_to_node if cpu_to_node is not None else self.cpu_to_node
        # Before any process is read: a move made during this scan shows next time.
        stale_before, max_age_s = self._poll_counters(started)
        previous_by_pid = {p.pid: p for p in previous.processes} if previous else {}
        pid_list = list(pids) if pids is not None else self.pids()
        processes: list[ProcessMemory] = []
        unreadable_pids: list[int] = []
        skipped = vanished = stat_unreadable = forced = 0
        known_now: dict[int, _Known] = {}
        reused: dict[int, _Known] = {}
        to_read: list[int] = []
        for pid in pid_list:
            prior = previous_by_pid.get(pid)
            known = self._reusable(pid, prior, started, max_age_s, stale_before)
            if known is _FORCED:
                forced += 1
            elif isinstance(known, _Known):
                reused[pid] = known
                continue
            to_read.append(pid)
        if forced:
            self._forced_at = started
        self.last_forced_by_counters = forced
        fresh = self._read_many(to_read, cpu_map)
        for pid in pid_list:
            known = reused.get(pid)
            if known is not None:
                processes.append(known.memory)
                known_now[pid] = known
                skipped += 1
                if known.unreadable:
                    unreadable_pids.append(pid)
                continue
            outcome = fresh[pid]
            if outcome is _Vanished:
                vanished += 1
                continue
            if outcome is _StatUnreadable:
                stat_unreadable += 1
                continue
            assert isinstance(outcome, tuple)
            stat, memory, unreadable = outcome
            processes.append(memory)
            known_now[pid] = _Known(stat.change_signature, memory, started, unreadable)
            if unreadable:
                unreadable_pids.append(pid)
        if pids is None:
            self._known = known_now  # forget processes that are gone
        else:
            self._known.update(known_now)
        self.last_unreadable = frozenset(unreadable_pids)
        return ProcessScan(
            processes=tuple(processes),
            taken_at=taken_at,
            duration_s=time.monotonic() - started,
            skipped_unchanged=skipped,
            unreadable=len(unreadable_pids) + stat_unreadable,
            vanished=vanished,
        )

    def _read_one(self, pid: int, cpu_map: Mapping[int, int]) -> _ReadOutcome:
        try:
            return self._read_full(pid, cpu_map)
        except _Vanished:
            return _Vanished
        except _StatUnreadable:
            return _StatUnreadable

    def _read_many(self, pids: list[int], cpu_map: Mapping[int, int]) -> dict[int, _ReadOutcome]:
        """Full reads, overlapped on several threads when there are many.

        Most of a full scan is the kernel walking address spaces inside
        read(2) of numa_maps, which runs without the GIL: a few threads let
        one process's walk overlap another's parse, on every core. They are
        daemon threads pulling from one queue (not a ThreadPoolExecutor,
        whose workers the interpreter joins at exit): quitting the app in
        the middle of a scan on a big machine must not wait for the scan.
        """
        if self.read_threads <= 1 or len(pids) < _PARALLEL_MIN_PIDS:
            return {pid: self._read_one(pid, cpu_map) for pid in pids}
        pending = iter(pids)
        take = threading.Lock()
        results: dict[int, _ReadOutcome] = {}
        failures: list[BaseException] = []

        def work() -> None:
            try:
                while not failures:
                    with take:
                        pid = next(pending, None)
                    if pid is None:
                        return
                    results[pid] = self._read_one(pid, cpu_map)
            except BaseException as exc:  # handed to the caller, as the serial path would
                failures.append(exc)

        workers = [
            threading.Thread(target=work, name="numatui-scan", daemon=True)
            for _ in range(self.read_threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if failures:
            raise failures[0]
        return results

    def read_process(self, pid: int, topology: Topology | None = None) -> ProcessMemory:
        """One process, read now. Raises ProcessGone; unreadable memory shows as none."""
        if topology is not None:
            self.use_topology(topology)
        try:
            _, memory, _ = self._read_full(pid, self.cpu_to_node)
        except _Vanished as e:
            raise ProcessGone(pid) from e
        except _StatUnreadable as e:
            raise PermissionError(errno.EACCES, f"/proc/{pid}/stat is not readable") from e
        return memory

    def _numa_maps_bytes(self, pid: int) -> bytes:
        try:
            data = _read(f"{self._proc}/{pid}/numa_maps")
        except OSError as e:
            if e.errno in _GONE_ERRNOS:
                raise ProcessGone(pid) from e
            raise  # PermissionError: the caller says "run as root"
        if not data:
            # Empty for a kernel thread, but also for a process that exited
            # (zombie) between calls: a migration sampler must not read that
            # as "no memory left".
            try:
                stat = parse_stat(_read(f"{self._proc}/{pid}/stat"))
            except OSError as e:
                raise ProcessGone(pid) from e
            if stat is None or stat.state in ("Z", "X", "x") or stat.flags & PF_EXITING:
                raise ProcessGone(pid)
        return data

    def numa_maps(self, pid: int) -> NumaMaps:
        """All mappings of `pid`. Raises ProcessGone, or PermissionError if not ours to read."""
        data = self._numa_maps_bytes(pid)
        return parse_numa_maps(data.decode("utf-8", "replace"), self.page_size)

    def node_pages(self, pid: int) -> dict[int, int]:
        """Bytes per node of `pid` (present pages times page size), read as cheaply as possible.

        Raises ProcessGone, or PermissionError.
        """
        data = self._numa_maps_bytes(pid)
        return node_bytes_from_numa_maps(data, self.page_size, self.memory_nodes)

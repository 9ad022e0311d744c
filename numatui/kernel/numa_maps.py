"""numa_maps: where each mapping of a process has its pages, per node.

Three readers live here:

* `parse_numa_maps` builds one `MappedRegion` per line, for the detail view.
* `region_pages` only finds where each mapping's pages are (`RegionPages`), for
  a move that walks the address space: a process of 10,000 mappings took
  `parse_numa_maps` seconds in the emulated guest, more than the move.
* `summarize_numa_maps` only sums bytes per node, per kind and for shared
  mappings, for the scan of every process. It works on the raw bytes (no
  decoding) with compiled regexes over the whole file, so the Python work is
  one small step per line that has pages; lines without pages never reach Python.

Pure parsing: no file is read here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from numatui.model.memory import MappedRegion, MemoryKind, NumaMaps, RegionPages

# Files under these paths are shmem (tmpfs) objects: POSIX shm, SysV shm,
# memfd, and MAP_SHARED|MAP_ANONYMOUS memory, which the kernel backs with a
# deleted shmem file named "dev/zero". Other tmpfs mounts (/run, a tmpfs /tmp)
# cannot be told apart from numa_maps alone and count as FILE.
SHMEM_PATH_PREFIXES = ("/dev/shm/", "/SYSV", "/memfd:", "/dev/zero (deleted)")

# Fields the kernel prints after the policy and mapping type (show_numa_map).
_COUNT_FIELDS = frozenset(
    ("anon", "dirty", "mapped", "mapmax", "swapcache", "active", "writeback", "kernelpagesize_kB")
)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})", re.ASCII)

_NODE_ID_RAW = re.compile(rb" N([0-9]+)=")


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


_LINE_WITH_PAGES = re.compile(rb"^(([0-9a-f]+) [^\n]* N[0-9]+=[^\n]*)", re.MULTILINE)
"""A line with a node field, and its start: the kernel escapes spaces in a file's path
(and no policy holds " N"), so " N<id>=" starts one of its fields."""
_NODE_FIELD_RAW = re.compile(rb" N([0-9]+)=([^ ]*)")
_PAGE_SIZE_RAW = re.compile(rb" kernelpagesize_kB=([0-9]+)(?: |$)")


def region_pages(data: bytes, page_size: int = 4096) -> tuple[RegionPages, ...]:
    """Each mapping of raw numa_maps that has pages: its start, page size and pages per
    node, as `parse_numa_maps` finds them in kernel text. A line it would reject (pages
    that are not a number) is left out here too; this never raises.

    The walk of a paced move reads it for every mapping (10,000 in a JVM or a database),
    so the common line is taken without a regex search: one that ends in the base page
    size and names it once."""
    regions: list[RegionPages] = []
    base_size_last = b" kernelpagesize_kB=%d" % (page_size // 1024)
    for line, start in _LINE_WITH_PAGES.findall(data):
        node_pages: dict[int, int] = {}
        try:
            for node, pages in _NODE_FIELD_RAW.findall(line):
                if not pages.isdigit():
                    raise ValueError(pages)
                number = int(node)
                node_pages[number] = node_pages.get(number, 0) + int(pages)
            if line.endswith(base_size_last) and line.count(b" kernelpagesize_kB=") == 1:
                size = page_size
            else:
                found = _PAGE_SIZE_RAW.search(line)
                size = (int(found.group(1)) * 1024 if found else 0) or page_size
            regions.append(RegionPages(int(start, 16), size, MappingProxyType(node_pages)))
        except ValueError:  # not a number, or longer than int() takes: not kernel output
            continue
    return tuple(regions)


@dataclass(frozen=True, slots=True)
class MemorySummary:
    """numa_maps reduced to what a process row needs (bytes)."""

    node_bytes: dict[int, int]
    kind_bytes: dict[MemoryKind, dict[int, int]]
    shared_bytes: dict[int, int]
    mapping_count: int


def merge_summaries(parts: list[MemorySummary]) -> MemorySummary:
    """The summary of a text from those of its pieces (split where lines end): every
    figure is a sum over lines."""
    if len(parts) == 1:
        return parts[0]
    node: dict[int, int] = {}
    kinds: dict[MemoryKind, dict[int, int]] = {}
    shared: dict[int, int] = {}
    for part in parts:
        _add(node, part.node_bytes)
        for kind, by_node in part.kind_bytes.items():
            _add(kinds.setdefault(kind, {}), by_node)
        _add(shared, part.shared_bytes)
    return MemorySummary(node, kinds, shared, sum(p.mapping_count for p in parts))


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
        # A VMA of a file: the kernel escapes spaces and "=" in the path, so a path holds
        # neither " file=" nor a space.
        self.file = re.compile(rb" file=[^ \n]*+" + run)
        self.shmem = re.compile(
            rb" file=/(?:dev/shm/|SYSV|memfd:|dev/zero\\040\(deleted\))[^ \n]*+" + run
        )
        self.shared = re.compile(rb" mapmax=" + run)
        self.odd_size = re.compile(rb" kernelpagesize_kB=(?!" + kb + rb"\n)")
        # Every line the summary parses one by one, in one pass: any other page
        # size (hugetlb), heap, stack (older kernels print "stack:<tid>") and
        # private mappings of /dev/zero (anonymous memory with a file name).
        self.one_by_one = re.compile(
            rb" (?:heap|stack|file=/dev/zero |kernelpagesize_kB=(?!" + kb + rb"\n))"
        )


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


def mapping_count(data: bytes) -> int:
    """How many mappings (lines) a raw numa_maps holds."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _summarize_fast(
    data: bytes, base_page_size: int, nodes: Iterable[int] | None, by_files: bool | None = None
) -> MemorySummary:
    """`by_files`: find anonymous pages as the regular ones outside file lines (True) or
    by their own pass (False); None picks the pass over the fewer lines."""
    patterns = _patterns(base_page_size)
    count = mapping_count(data)
    # Framing newlines: every line, the first and last too, is "\n...\n".
    text = b"\n" + data if data.endswith(b"\n") else b"\n" + data + b"\n"
    all_pages, node_ids = _all_node_pages(text, nodes)
    if not all_pages:
        return MemorySummary({}, {}, {}, count)

    # Lines parsed one by one (hugetlb and any other page size, heap, stack,
    # private /dev/zero): their pages come out of the base-page sums.
    taken: set[int] = set()
    raw_lines: list[bytes] = []
    for match in patterns.one_by_one.finditer(text):
        start, line = _line_at(text, match.start())
        if start not in taken:
            taken.add(start)
            raw_lines.append(line)
    shm_or_zero = _SHMEM_OR_ZERO.search(text) is not None
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

    shmem = run_pages(patterns.shmem) if shm_or_zero else {}
    # Anonymous pages are the regular ones not in a file. One pass finds either kind: the
    # one over the fewer lines is cheaper (each match copies its run of node fields).
    if by_files is None:
        by_files = 2 * text.count(b" file=") < count
    if by_files:
        in_files = run_pages(patterns.file)
        for region in regions:
            # A special line of a file at the base page size (private /dev/zero) was
            # summed by that pass too; its pages are counted from its region.
            if region.path is not None and region.page_size == base_page_size:
                _add(in_files, region.node_pages, -1)
        anon = {
            n: all_pages.get(n, 0) - special_pages.get(n, 0) - in_files.get(n, 0) for n in node_ids
        }
    else:
        anon = run_pages(patterns.anon)
    shared = run_pages(patterns.shared)
    for region in regions:
        # Base-page shared lines parsed one by one are counted from their region.
        if region.mapmax and region.page_size == base_page_size:
            _add(shared, region.node_pages, -1)

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
    return MemorySummary(node_bytes, {k: v for k, v in kinds.items() if v}, shared_bytes, count)


def node_summary(
    data: bytes, base_page_size: int = 4096, nodes: Iterable[int] | None = None
) -> MemorySummary:
    """Only bytes per node and the mapping count (`node_bytes_from_numa_maps`)."""
    return MemorySummary(
        node_bytes_from_numa_maps(data, base_page_size, nodes), {}, {}, mapping_count(data)
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

"""The process scan: every process's identity and memory per node, skipping unchanged ones.

Files are read through `pid_files` (which says what a failed read means) and
numa_maps is summed by `numa_maps`; this module decides what to re-read.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from numatui.errors import ProcessGone
from numatui.kernel import scan_pool
from numatui.kernel.numa_maps import (
    node_bytes_from_numa_maps,
    parse_numa_maps,
    region_pages,
)
from numatui.kernel.pid_files import (
    ProcessUnreadable,
    read_numa_maps,
    read_pid_file,
    stat_signature,
)
from numatui.kernel.pid_reader import (
    PidReader,
    ReadOutcome,
    StatUnreadable,
    Vanished,
    decode_outcome,
)
from numatui.kernel.topology import cpu_node_map
from numatui.kernel.vmstat import MigrationCounters, migration_counters, read_vmstat
from numatui.model.memory import NumaMaps, ProcessMemory, ProcessScan, RegionPages
from numatui.model.topology import Topology


@dataclass(slots=True)
class _Known:
    """What the scanner remembers of a process it read fully."""

    signature: tuple[int, ...]
    memory: ProcessMemory
    read_at: float
    unreadable: bool
    nodes_only: bool = False
    cmdline_read: bool = True
    checked_at: float = -math.inf  # when its stat last showed no change (QUIET_CHECKS)

    def lacks(self, nodes_only: bool, cmdline: bool) -> bool:
        """Read with less than a scan asking for this shows."""
        return (self.nodes_only and not nodes_only) or (cmdline and not self.cmdline_read)


class _Forced:
    """A remembered entry re-read because the migration counters changed."""


_FORCED = _Forced()

_PARALLEL_MIN_PIDS = 48  # below this, starting threads costs more than it saves
QUIET_CHECKS = ((120.0, 7.5), (10.0, 3.5))
"""(unchanged for this many seconds, its stat checked at most every this many), longest
first.

Checking that a process did not change costs a read of its stat (~10-30 µs); an idle app
with ~570 processes spent most of its CPU on those reads, every 2 s. A process unchanged
for 10 s is checked every 3.5 s (every 2nd refresh at the default 2 s), for 2 minutes
every 7.5 s (every 4th): a quiet process that wakes up shows its change within 4 (8) s,
not 2 s. In seconds, not scans, so a slower caller (an exporter scraped every 15 s)
checks every process every time. A migration numatui makes forgets the process
(`invalidate`), and new processes are read at once.
"""


BESIDE_UI_NICE = 10
"""How much lower the helpers of a scan beside the UI run (`scan(beside_ui=True)`): at
nice 10 a CPU they share with the UI's thread gives them about a tenth of it, and they
take every cycle left. They still cost Textual's import something (two nice-10 CPU
burners beside it: 23-36 ms on a 2-CPU host), the app's first frame 0-70 ms in all."""


def _default_read_threads() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0))))


class ProcessScanner:
    """Reads processes' identity and memory per node from a /proc tree.

    It learns the machine (which node each CPU is on, which nodes have
    memory) one way: `use_topology` (also called by `scan` and
    `read_process` when given a topology).

    A scan given the previous one re-reads numa_maps only for processes whose
    stat `change_signature` changed, plus every process when /proc/vmstat
    shows pages moved in a way no signature sees (`MigrationCounters`), at
    most once per `min_forced_interval_s` (a pending one is kept until then),
    plus each process after `max_age_s` (staggered 1-2x per pid) for what no
    counter sees (KSM merging, sharing changes). Without /proc/vmstat that
    age is `max_age_without_counters_s`. With one memory node no move can
    change a per-node sum, so the counters are not read. The stat of a process
    that has not changed for a while is checked less often (`quiet_checks`).
    """

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        *,
        max_age_s: float = 300.0,
        page_size: int | None = None,
        read_threads: int | None = None,
        helpers: int | None = None,
        max_age_without_counters_s: float = 30.0,
        min_forced_interval_s: float = 10.0,
        quiet_checks: tuple[tuple[float, float], ...] = QUIET_CHECKS,
    ) -> None:
        self.proc_root = proc_root
        self.read_threads = read_threads if read_threads is not None else _default_read_threads()
        workers = read_threads if read_threads is not None else scan_pool.one_shot_readers()
        if helpers is None:
            # A command's one scan reads in processes (see scan_pool): this one and
            # `workers - 1` helpers, each on one thread. Explicit threads: no helpers.
            helpers = workers - 1 if read_threads is None else 0
        self.one_shot_helpers = max(0, helpers)
        self.one_shot_threads = 1 if self.one_shot_helpers else workers
        self._proc = str(proc_root)
        self._cpu_to_node: Mapping[int, int] = {}
        self.max_age_s = max_age_s
        self.max_age_without_counters_s = max_age_without_counters_s
        self.min_forced_interval_s = min_forced_interval_s
        self.quiet_checks = quiet_checks
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
        self.reader = PidReader(self._proc, page_size or os.sysconf("SC_PAGE_SIZE"))
        """Reads one process (the helpers' `pid_reader.helper_reader` reads as it does)."""
        self._known: dict[int, _Known] = {}
        self.last_unreadable: frozenset[int] = frozenset()
        """Pids whose numa_maps the last scan could not read (listed with no memory)."""

    # ------------------------------------------------------------ helpers

    def use_topology(self, topology: Topology) -> None:
        """Map CPUs and memory nodes with this topology from now on.

        The one way the scanner learns the machine (`scan` and `read_process`
        given a `topology` call it). Until it is called, the nodes threads run
        on are unknown (`cpu_nodes` empty) and each numa_maps is searched for
        the nodes it names.
        """
        self._cpu_to_node = cpu_node_map(topology)
        # numa_maps prints only N_MEMORY nodes; a node hot-added later shows
        # once the next topology read is handed in.
        self.reader.memory_nodes = topology.with_memory if topology.numa_available else None

    @property
    def cpu_to_node(self) -> Mapping[int, int]:
        """CPU id -> node id of the last topology given ({} before one)."""
        return self._cpu_to_node

    @property
    def memory_nodes(self) -> frozenset[int] | None:
        """The node ids the numa_maps sums look for (None: found in each file)."""
        return self.reader.memory_nodes

    @property
    def page_size(self) -> int:
        return self.reader.page_size

    def boot_time(self) -> float:
        return self.reader.boot_time()

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

    def _poll_counters(self, now: float) -> tuple[float, float]:
        """Read /proc/vmstat once for this scan: (re-read entries read before this, max age)."""
        nodes = self.memory_nodes
        if nodes is not None and len(nodes) <= 1:
            return -math.inf, self.max_age_s  # moves cannot change a sum over one node
        vm = read_vmstat(self.proc_root)
        counters = migration_counters(vm) if vm is not None else None
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
        unchanged_for = now - known.read_at
        # Stagger forced re-reads over pids so they do not all land on one refresh.
        if unchanged_for > max_age_s * (1.0 + (pid % 16) / 16.0):
            return None
        every = next((every for age, every in self.quiet_checks if unchanged_for >= age), 0.0)
        if now - known.checked_at < every:
            return known  # a quiet process, checked a moment ago
        try:
            signature = stat_signature(read_pid_file(self._proc, pid, "stat"))
        except (ProcessGone, OSError):
            return None  # the full read decides: vanished or unreadable
        if signature is None or signature != known.signature:
            return None
        known.checked_at = now
        return known

    # ------------------------------------------------------------ public

    def scan(
        self,
        previous: ProcessScan | None = None,
        pids: Iterable[int] | None = None,
        topology: Topology | None = None,
        *,
        nodes_only: bool = False,
        cmdline: bool = True,
        one_shot: bool = False,
        beside_ui: bool = False,
    ) -> ProcessScan:
        """Every process (or `pids`), reusing `previous` for processes that did not change.

        `nodes_only`: read only what a process list shows (bytes per node; no
        kinds or shared bytes: those stay empty, and `kinds_read` is False).
        `cmdline`: read command lines (else they stay empty). An entry read
        with less than a later scan asks for is read again by it.
        `one_shot`: nothing else in this process waits on the GIL meanwhile (a
        command's one scan): read on `one_shot_threads` threads, not `read_threads`.
        `beside_ui`: a long scan while this process's main thread loads and draws the UI
        (the app's first): helper processes at a lower priority read, one per CPU, and
        this process only decodes what they send (see `BESIDE_UI_NICE`).

        A process that exits while being read is counted in `vanished` and
        left out (zombies too). A process whose numa_maps may not be read
        (another user's, without CAP_SYS_PTRACE) is listed with its identity
        and no memory, and counted in `unreadable` (`last_unreadable` has
        the pids); one whose stat may not be read either (hidepid=1) is only
        counted. With hidepid=2 other users' processes are invisible and not
        counted at all.

        `topology`, when given, is the machine the scanner maps CPUs and
        memory nodes with from now on (`use_topology`).
        When /proc/vmstat shows pages moved that no process's stat shows,
        every process is re-read (see the class docstring for the limits).
        """
        if topology is not None:
            self.use_topology(topology)
        started = time.monotonic()
        taken_at = time.time()
        cpu_map = self.cpu_to_node
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
            if isinstance(known, _Known) and known.lacks(nodes_only, cmdline):
                known = None
            if known is _FORCED:
                forced += 1
            elif isinstance(known, _Known):
                reused[pid] = known
                continue
            to_read.append(pid)
        if forced:
            self._forced_at = started
        self.last_forced_by_counters = forced
        threads = self.one_shot_threads if one_shot else self.read_threads
        helpers = self.one_shot_helpers if one_shot else 0
        if beside_ui:
            # Helpers even for a few pids: reading here would hold the GIL the UI wants.
            chunks = -(-len(to_read) // scan_pool.BESIDE_UI_CHUNK_PIDS)
            helpers = min(len(os.sched_getaffinity(0)), chunks)
        fresh = self._read_many(
            to_read, cpu_map, nodes_only, threads, cmdline, helpers, beside_ui=beside_ui
        )
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
            if outcome is Vanished:
                vanished += 1
                continue
            if outcome is StatUnreadable:
                stat_unreadable += 1
                continue
            assert isinstance(outcome, tuple)
            signature, memory, unreadable = outcome
            processes.append(memory)
            known_now[pid] = _Known(signature, memory, started, unreadable, nodes_only, cmdline)
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

    def _read_many(
        self,
        pids: list[int],
        cpu_map: Mapping[int, int],
        nodes_only: bool = False,
        threads: int | None = None,
        cmdline: bool = True,
        helpers: int = 0,
        beside_ui: bool = False,
    ) -> dict[int, ReadOutcome]:
        """Full reads, overlapped on several threads when there are many.

        Most of a full scan is the kernel walking address spaces inside
        read(2) of numa_maps, which runs without the GIL: a few threads let
        one process's walk overlap another's parse, on every core. They are
        daemon threads pulling from one queue (not a ThreadPoolExecutor,
        whose workers the interpreter joins at exit): quitting the app in
        the middle of a scan on a big machine must not wait for the scan.
        """
        threads = self.read_threads if threads is None else threads
        if helpers > 0 and (beside_ui or len(pids) >= scan_pool.HELPER_MIN_PIDS):
            return scan_pool.read_shared(
                pids,
                helpers=helpers,
                setup=self.reader.helper_setup(
                    cpu_map, nodes_only, cmdline, nice=BESIDE_UI_NICE if beside_ui else 0
                ),
                read_here=lambda pid: self.reader.read_one(pid, cpu_map, nodes_only, cmdline),
                decode=decode_outcome,
                chunk_size=scan_pool.BESIDE_UI_CHUNK_PIDS if beside_ui else scan_pool.CHUNK_PIDS,
                read_here_too=not beside_ui,
            )
        if threads <= 1 or len(pids) < _PARALLEL_MIN_PIDS:
            return {pid: self.reader.read_one(pid, cpu_map, nodes_only, cmdline) for pid in pids}
        pending = iter(pids)
        take = threading.Lock()
        results: dict[int, ReadOutcome] = {}
        failures: list[BaseException] = []

        def work() -> None:
            try:
                while not failures:
                    with take:
                        pid = next(pending, None)
                    if pid is None:
                        return
                    results[pid] = self.reader.read_one(pid, cpu_map, nodes_only, cmdline)
            except BaseException as exc:  # handed to the caller, as the serial path would
                failures.append(exc)

        workers = [
            threading.Thread(target=work, name="numatui-scan", daemon=True) for _ in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if failures:
            raise failures[0]
        return results

    def read_process(self, pid: int, topology: Topology | None = None) -> ProcessMemory:
        """One process, read now; unreadable memory shows as none.

        Raises ProcessGone, or ProcessUnreadable (a PermissionError) when not
        even its stat may be read.
        """
        if topology is not None:
            self.use_topology(topology)
        try:
            _, memory, _ = self.reader.read_full(pid, self.cpu_to_node)
        except ProcessUnreadable:
            raise
        except OSError as e:
            raise ProcessGone(pid) from e
        return memory

    def numa_maps(self, pid: int) -> NumaMaps:
        """All mappings of `pid`. Raises ProcessGone, or PermissionError if not ours to read."""
        data = read_numa_maps(self._proc, pid)
        return parse_numa_maps(data.decode("utf-8", "replace"), self.page_size)

    def node_and_region_pages(self, pid: int) -> tuple[dict[int, int], tuple[RegionPages, ...]]:
        """`node_pages(pid)`, and where each mapping with pages has them (what a move through
        the address space walks), from one read: the kernel walks the page tables once
        for both. Raises ProcessGone, or PermissionError if not ours to read."""
        data = read_numa_maps(self._proc, pid)
        return (
            node_bytes_from_numa_maps(data, self.page_size, self.memory_nodes),
            region_pages(data, self.page_size),
        )

    def node_pages(self, pid: int) -> dict[int, int]:
        """Bytes per node of `pid` (present pages times page size), read as cheaply as possible.

        Raises ProcessGone, or PermissionError.
        """
        data = read_numa_maps(self._proc, pid)
        return node_bytes_from_numa_maps(data, self.page_size, self.memory_nodes)

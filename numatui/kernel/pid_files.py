"""Reading one process's files under /proc/PID, and what a failed read means.

Every read of a /proc/PID file goes through `PidDir` or `read_pid_file`, and
every error they meet goes through `pid_error`, the one place that decides
what an errno means for a process (the idea of psutil's `wrap_exceptions`):
ENOENT and ESRCH say it is gone (`ProcessGone`), EACCES and EPERM that it is
not ours to read (`ProcessUnreadable`, a `PermissionError`); any other error
is passed on as it is.

The scanner reads these files itself rather than through psutil: psutil
reads the same files one attribute at a time and cost about 94 us per
process against about 25 us for the three reads the scanner makes, and it
cannot read through a held /proc/PID directory descriptor, which is what
makes a scan race-proof (`PidDir`).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from types import TracebackType

from numatui.errors import ProcessGone
from numatui.kernel.reader_child import copy_through_child

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable

PF_EXITING = 0x00000004
PF_KTHREAD = 0x00200000

_READ_CHUNK = 1 << 17

HANDOFF_BYTES = 1 << 19
"""A file longer than this is read on by a child process (`reader_child`) while the
caller parses: ~6,000 mappings of numa_maps, ~8 ms of the kernel's walk. Starting the
child costs ~0.2 ms here and ~0.8 ms of its own CPU."""

GONE_ERRNOS = frozenset((errno.ENOENT, errno.ESRCH))
DENIED_ERRNOS = frozenset((errno.EACCES, errno.EPERM))


class ProcessUnreadable(PermissionError):
    """A /proc/PID file this process may not read (another user's process
    without CAP_SYS_PTRACE, hidepid, an LSM). The caller says "run as root"."""

    def __init__(self, pid: int, name: str, errno_code: int = errno.EACCES) -> None:
        where = f"/proc/{pid}/{name}" if name else f"/proc/{pid}"
        super().__init__(errno_code, f"{where} is not readable")
        self.pid = pid
        self.name = name


def pid_error(pid: int, name: str, error: OSError) -> OSError | ProcessGone:
    """What `error`, met reading /proc/`pid`/`name`, means: the one place that decides."""
    if error.errno in GONE_ERRNOS:
        return ProcessGone(pid)
    if error.errno in DENIED_ERRNOS:
        return ProcessUnreadable(pid, name, error.errno)
    return error


SINGLE_RECORD_FILES = frozenset({"stat", "status", "statm"})
"""/proc/PID files the kernel writes as one record (`single_open`): a read(2) given more
room than the record returns all of it, so a short read is the whole file and the read
that would only see end-of-file is not made. Not numa_maps or maps (a record per
mapping, a page per read) nor cmdline (the process's own memory)."""


def read_file(path: str, dir_fd: int | None = None, single_record: bool = False) -> bytes:
    """The whole file, in as few read(2) calls as it takes. Raises OSError as met.

    `single_record`: the file is one of SINGLE_RECORD_FILES (see there)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            if single_record and len(chunk) < _READ_CHUNK:
                break
    finally:
        os.close(fd)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def read_in_pieces(
    path: str,
    on_piece: Callable[[bytes], None],
    dir_fd: int | None = None,
    handoff_bytes: int = HANDOFF_BYTES,
) -> None:
    """The whole file handed to `on_piece`: in one piece if it is short, else in
    pieces that end at a line's end, the rest of it read by a child process while
    `on_piece` parses (see `reader_child`). Raises OSError as met."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks: list[bytes] = []
        size = 0
        while size < handoff_bytes:
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                on_piece(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                return
            chunks.append(chunk)
            size += len(chunk)
        head = b"".join(chunks)
        cut = head.rfind(b"\n") + 1
        copy_through_child(fd, on_piece, head=head[:cut], carried=head[cut:], done=size)
    finally:
        os.close(fd)


def read_pid_file(proc: str, pid: int, name: str) -> bytes:
    """/proc/`pid`/`name` under the proc root `proc`. Raises as `pid_error` says."""
    try:
        return read_file(f"{proc}/{pid}/{name}", single_record=name in SINGLE_RECORD_FILES)
    except OSError as e:
        raise pid_error(pid, name, e) from e


class PidDir:
    """/proc/PID opened once; every file is read relative to it.

    A pid reused meanwhile cannot mix two processes: the old directory's
    files then fail with ENOENT/ESRCH instead (`ProcessGone`).
    """

    __slots__ = ("_fd", "pid")

    def __init__(self, proc: str, pid: int) -> None:
        self.pid = pid
        try:
            self._fd = os.open(f"{proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise pid_error(pid, "", e) from e

    def __enter__(self) -> PidDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        os.close(self._fd)

    def read(self, name: str) -> bytes:
        """The file `name` of this process. Raises as `pid_error` says."""
        try:
            return read_file(name, dir_fd=self._fd, single_record=name in SINGLE_RECORD_FILES)
        except OSError as e:
            raise pid_error(self.pid, name, e) from e

    def read_in_pieces(self, name: str, on_piece: Callable[[bytes], None]) -> None:
        """The file `name` of this process, through `read_in_pieces`. Raises as
        `pid_error` says."""
        try:
            read_in_pieces(name, on_piece, dir_fd=self._fd)
        except OSError as e:
            raise pid_error(self.pid, name, e) from e

    def thread_processors(self, limit: int) -> list[int]:
        """The CPU each of the first `limit` threads last ran on; [] when they cannot be read.

        A thread that exits meanwhile is left out: the others still tell.
        """
        try:
            task_fd = os.open("task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._fd)
        except OSError:
            return []
        cpus: list[int] = []
        try:
            for tid in os.listdir(task_fd)[:limit]:
                try:
                    thread = parse_stat(read_file(f"{tid}/stat", dir_fd=task_fd))
                except OSError:
                    continue
                if thread is not None:
                    cpus.append(thread.processor)
        except OSError:
            pass
        finally:
            os.close(task_fd)
        return cpus


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


def stat_signature(data: bytes) -> tuple[int, ...] | None:
    """`parse_stat(data).change_signature` without building the rest: the check a refresh
    makes of every process it may reuse (~570 of them every 2 s in an idle app), 2.7 µs
    against parse_stat's 9. None when `parse_stat` would give None."""
    open_paren = data.find(b"(")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    # Fields 0-36 split off, the ~15 after them left whole: only these are looked at.
    rest = data[close_paren + 2 :].split(None, 37)
    if len(rest) < 37:
        return None
    try:
        int(rest[6]), int(rest[36])  # flags and processor: a stat parse_stat rejects, this does
        # start_ticks, minflt, majflt, vsize, rss, threads: PidStat.change_signature's order.
        return (
            int(rest[19]),
            int(rest[7]),
            int(rest[9]),
            int(rest[20]),
            int(rest[21]),
            int(rest[17]),
        )
    except ValueError:
        return None


def parent_pid(proc: str, pid: int) -> int | None:
    """The parent of `pid` (field 4 of /proc/PID/stat), or None when it is gone or unreadable."""
    try:
        data = read_pid_file(proc, pid, "stat")
    except (OSError, ProcessGone):
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    if len(rest) < 2 or not rest[1].isdigit():
        return None
    return int(rest[1])


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


def exited(stat: PidStat | None) -> bool:
    """Whether a stat read shows a process with no memory left to show (zombie, exiting)."""
    return stat is None or stat.state in ("Z", "X", "x") or bool(stat.flags & PF_EXITING)


def read_numa_maps(proc: str, pid: int) -> bytes:
    """/proc/`pid`/numa_maps. Raises ProcessGone, or ProcessUnreadable if not ours to read."""
    data = read_pid_file(proc, pid, "numa_maps")
    if not data:
        # Empty for a kernel thread, but also for a process that exited
        # (zombie) between calls: a migration sampler must not read that
        # as "no memory left".
        try:
            stat = parse_stat(read_pid_file(proc, pid, "stat"))
        except OSError as e:
            raise ProcessGone(pid) from e
        if exited(stat):
            raise ProcessGone(pid)
    return data


def read_boot_time(proc: str) -> float:
    """The boot time (`btime` in /proc/stat), in seconds since the epoch; 0.0 when unknown."""
    try:
        for line in read_file(f"{proc}/stat").splitlines():
            if line.startswith(b"btime "):
                return float(int(line.split()[1]))
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def hides_other_users(proc_root: str | os.PathLike[str] = "/proc") -> bool:
    """Whether `proc_root` is a proc mount with hidepid (other users' processes invisible).

    Such processes are not even counted by a scan, so a face must say the list is partial.
    """
    try:
        mountinfo = read_file("/proc/self/mountinfo").decode("utf-8", "replace")
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

"""The audit trail: two JSON lines per migration (the attempt, then its outcome), and syslog.

Operators need to answer "who moved what, when, and did it work" after the
fact; the app and `numatui log` read the same file. numatui runs as root to
move other users' memory, so the trail must not be a way to write as root
where another user points (a symlink, a FIFO, a directory they own), and a
migration that cannot be recorded does not happen (fail closed).

Where: `--audit-log` or `$NUMATUI_AUDIT_LOG` if set; as root,
`/var/log/numatui/audit.jsonl` (never under `$HOME`/`$XDG_STATE_HOME`, which
`sudo -E` passes from the calling user); otherwise
`$XDG_STATE_HOME/numatui/audit.jsonl`. Every path is checked the same way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import pwd
import secrets
import stat
import syslog
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numatui.kernel.nodemask import format_kernel_list
from numatui.model.drain import DrainPlan, DrainReport
from numatui.model.groups import GroupMigrationResult
from numatui.model.migration import AuditStatus, MigrationOutcome, MigrationPlan, MigrationResult

PATH_ENV = "NUMATUI_AUDIT_LOG"
"""An explicit audit log path (validated like the default one)."""

SYSTEM_LOG_PATH = Path("/var/log/numatui/audit.jsonl")
"""Root's trail: a system location (directory 0700, file 0600), whatever the environment says."""

MAX_LINE_BYTES = 256 * 1024
"""Longer lines are not entries (a process's entry is ~400 bytes, a group's ~250 per member)."""

MAX_GROUP_MEMBERS = 512
"""Members listed in a group's entry (the rest are counted), so it stays under MAX_LINE_BYTES."""

MAX_NAME_CHARS = 1024
BLOCK_BYTES = 64 * 1024
LOCK_WAIT_S = 2.0
ATTEMPTED = "attempted"


class AuditError(Exception):
    """The trail could not be written; the message says where and why."""


def default_log_path() -> Path:
    explicit = os.environ.get(PATH_ENV)
    if explicit:
        return Path(os.path.abspath(explicit))
    if os.geteuid() == 0:
        # sudo -E keeps the caller's HOME and XDG_STATE_HOME: never write there as root.
        return SYSTEM_LOG_PATH
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.path.abspath(state)) / "numatui" / "audit.jsonl"


@dataclass(frozen=True)
class AuditEntry:
    time: float
    user: str
    uid: int
    pid: int
    process: str
    from_nodes: str
    to_nodes: str
    outcome: str
    bytes_moved: int
    pages_not_moved: int | None
    error: str | None
    id: str = ""
    phase: str = "outcome"  # "attempt" (before the syscall) or "outcome" (after)
    cgroup: str | None = None
    """A group move: the cgroup path; `pid` is 0 and `members` holds each process's result."""
    members: tuple[dict[str, Any], ...] | None = None
    drain: int | None = None
    """A node drain: the node; `pid` is 0 (each process moved has its own entries)."""

    def as_json(self) -> dict[str, Any]:
        group: dict[str, Any] = {}
        if self.cgroup is not None:
            group = {"cgroup": self.cgroup, "members": list(self.members or ())}
        if self.drain is not None:
            group["drain"] = self.drain
        return group | {
            "id": self.id,
            "phase": self.phase,
            "time": self.time,
            "user": self.user,
            "uid": self.uid,
            "pid": self.pid,
            "process": self.process,
            "from": self.from_nodes,
            "to": self.to_nodes,
            "outcome": self.outcome,
            "bytes_moved": self.bytes_moved,
            "pages_not_moved": self.pages_not_moved,
            "error": self.error,
        }


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def new_id() -> str:
    return secrets.token_hex(8)


def attempt_entry(plan: MigrationPlan, entry_id: str) -> AuditEntry:
    uid = os.geteuid()
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=plan.pid,
        process=plan.process_name[:MAX_NAME_CHARS],
        from_nodes=format_kernel_list(plan.from_nodes),
        to_nodes=format_kernel_list(plan.to_nodes),
        outcome=ATTEMPTED,
        bytes_moved=0,
        pages_not_moved=None,
        error=None,
        id=entry_id,
        phase="attempt",
    )


def entry_for(result: MigrationResult, process_name: str, entry_id: str = "") -> AuditEntry:
    uid = os.geteuid()
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=result.plan.pid,
        process=process_name[:MAX_NAME_CHARS],
        from_nodes=format_kernel_list(result.plan.from_nodes),
        to_nodes=format_kernel_list(result.plan.to_nodes),
        outcome=str(result.outcome),
        bytes_moved=result.bytes_moved,
        pages_not_moved=result.pages_not_moved,
        error=f"{result.error.errno_name}: {result.error.message}" if result.error else None,
        id=entry_id or new_id(),
        phase="outcome",
    )


def group_entry_for(
    result: GroupMigrationResult, entry_id: str = "", phase: str = "outcome"
) -> AuditEntry:
    """One line for the whole group move, with every member's own outcome in it."""
    uid = os.geteuid()
    members = tuple(
        {
            "pid": m.pid,
            "process": m.name,
            "status": str(m.status),
            "outcome": None if m.result is None else str(m.result.outcome),
            "bytes_moved": 0 if m.result is None else m.result.bytes_moved,
            "pages_not_moved": None if m.result is None else m.result.pages_not_moved,
            "error": (
                f"{m.result.error.errno_name}: {m.result.error.message}"
                if m.result is not None and m.result.error is not None
                else (m.message or None)
            ),
            "joined_during_move": m.joined_during_move,
        }
        for m in result.members[:MAX_GROUP_MEMBERS]
    )
    left_out = len(result.members) - len(members)
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=0,
        process=result.name.label,
        from_nodes=format_kernel_list(result.from_nodes),
        to_nodes=format_kernel_list(result.to_nodes),
        outcome=str(result.outcome),
        bytes_moved=result.bytes_moved,
        pages_not_moved=None,
        error="; ".join(
            part
            for part in (
                f"{result.error.errno_name}: {result.error.message}".lstrip(": ")
                if result.error
                else "",
                f"{left_out} more members not listed" if left_out else "",
            )
            if part
        )
        or None,
        cgroup=result.path,
        members=members,
        id=entry_id,
        phase=phase,
    )


def _drain_entry(
    node: int, entry_id: str, phase: str, to_nodes: str, outcome: str, moved: int, error: str | None
) -> AuditEntry:
    uid = os.geteuid()
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=0,
        process=f"drain of node {node}",
        from_nodes=str(node),
        to_nodes=to_nodes,
        outcome=outcome,
        bytes_moved=moved,
        pages_not_moved=None,
        error=error,
        id=entry_id,
        phase=phase,
        drain=node,
    )


def _drain_targets(plan: DrainPlan) -> str:
    return format_kernel_list(frozenset(i.target for i in plan.items if i.target is not None))


def drain_refusal_entry(node: int, message: str) -> AuditEntry:
    """A drain refused before any process was touched (a node that does not exist, the
    only memory node): outcome "failed", the reason."""
    return _drain_entry(
        node, new_id(), "outcome", "", str(MigrationOutcome.FAILED), 0, f"refused: {message}"
    )


def drain_attempt_entry(plan: DrainPlan, entry_id: str) -> AuditEntry:
    """Written before the drain moves anything (each process's move has its own entries)."""
    return _drain_entry(plan.node, entry_id, "attempt", _drain_targets(plan), ATTEMPTED, 0, None)


def drain_outcome_entry(
    plan: DrainPlan, entry_id: str, report: DrainReport | None, error: str | None = None
) -> AuditEntry:
    """The drain's outcome (`report` None: it failed with `error`), with the attempt's id."""
    if report is None:
        return _drain_entry(
            plan.node, entry_id, "outcome", _drain_targets(plan), "failed", 0, error
        )
    moved = report.bytes_moved
    not_moved = [r for r in report.results if r.outcome != MigrationOutcome.ALL_MOVED]
    skipped = sum(1 for i in plan.items if i.plan is None)
    if not report.results and not skipped:
        outcome = MigrationOutcome.NOTHING_TO_MOVE
    elif moved == 0:
        outcome = MigrationOutcome.FAILED
    elif not_moved or skipped or report.stopped:
        outcome = MigrationOutcome.PARTLY_MOVED
    else:
        outcome = MigrationOutcome.ALL_MOVED
    notes = [
        f"{len(report.results)} of {len(plan.items)} processes on the node were run",
        f"{len(not_moved)} not all moved" if not_moved else "",
        f"{skipped} had no target" if skipped else "",
        "stopped by the operator" if report.stopped else "",
    ]
    error = None
    if outcome in (MigrationOutcome.FAILED, MigrationOutcome.PARTLY_MOVED):
        error = "; ".join(n for n in notes if n)
    return _drain_entry(
        plan.node,
        entry_id,
        "outcome",
        _drain_targets(plan),
        str(outcome),
        moved,
        error,
    )


# ----------------------------------------------------------------- writing


def _check_dir(fd: int, where: str, final: bool) -> None:
    """A directory on the way to the log: only root or this user may change what is in it."""
    st = os.fstat(fd)
    euid = os.geteuid()
    if st.st_uid not in (0, euid):
        raise AuditError(f"{where} belongs to another user (uid {st.st_uid})")
    others_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    # A sticky directory (/tmp) on the way is fine: others cannot rename what is ours
    # in it. The log's own directory must be writable by no one else at all.
    if others_write and (final or not st.st_mode & stat.S_ISVTX):
        raise AuditError(
            f"{where} can be written by other users (mode {stat.S_IMODE(st.st_mode):04o})"
        )


def _open_dir(directory: Path) -> int:
    """Walk from / to `directory` without following a symlink, creating what is missing (0700)."""
    if not directory.is_absolute() or ".." in directory.parts:
        raise AuditError(f"{directory} is not an absolute path without '..'")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        _check_dir(fd, "/", final=directory == Path("/"))
        where = Path("/")
        for name in directory.parts[1:]:
            where = where / name
            try:
                child = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
                child = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = child
            _check_dir(fd, str(where), final=where == directory)
        return fd
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise AuditError(
                f"{directory}: a part of the path is a symlink or not a directory"
            ) from None
        raise AuditError(f"{directory}: {exc.strerror}") from None
    except AuditError:
        os.close(fd)
        raise


def _open_log(path: Path) -> int:
    dir_fd = _open_dir(path.parent)
    try:
        try:
            st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(st.st_mode):
                raise AuditError(f"{path} is not a regular file ({_kind(st.st_mode)})")
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path.name, flags, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AuditError(f"{path} is a symlink") from None
            raise AuditError(f"{path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped in between the two looks
            raise AuditError(f"{path} is not a regular file ({_kind(st.st_mode)})")
        if st.st_uid != os.geteuid():
            raise AuditError(f"{path} belongs to another user (uid {st.st_uid})")
        if st.st_nlink != 1:
            raise AuditError(f"{path} has {st.st_nlink} hard links: it may be another file")
        if not st.st_mode & stat.S_IWUSR:
            raise AuditError(f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o})")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise AuditError(
                f"{path} can be written by other users (mode {stat.S_IMODE(st.st_mode):04o})"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _lock(fd: int, path: Path) -> None:
    """flock without ever blocking for long: another numatui holds it only for one write."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise AuditError(f"{path} stayed locked by another process") from None
            time.sleep(0.01)


def _append_line(fd: int, path: Path, line: bytes) -> None:
    _lock(fd, path)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a line cut by someone else: ours starts on its own line
        try:
            written = os.write(fd, line)
        except OSError as exc:
            os.ftruncate(fd, size)
            raise AuditError(f"{path}: {exc.strerror}") from None
        if written != len(line):
            # A short write (full disk): take the cut line back, never leave half a line.
            os.ftruncate(fd, size)
            raise AuditError(
                f"{path}: only {written} of {len(line)} bytes could be written (disk full?)"
            )
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def encode(entry: AuditEntry) -> bytes:
    return (json.dumps(entry.as_json(), sort_keys=True, allow_nan=False) + "\n").encode()


def _to_syslog(entry: AuditEntry) -> None:
    # journald keeps this even if the file is deleted; JSON already escapes control codes.
    syslog.openlog("numatui", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    syslog.syslog(syslog.LOG_NOTICE, json.dumps(entry.as_json(), sort_keys=True))


def record(entry: AuditEntry, path: Path | None = None) -> AuditStatus:
    """Append one entry to the file and the system log; raises AuditError (nothing written)."""
    path = path or default_log_path()
    fd = _open_log(path)
    try:
        _append_line(fd, path, encode(entry))
    except OSError as exc:
        raise AuditError(f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    _to_syslog(entry)
    return AuditStatus(str(path), True)


def try_record(entry: AuditEntry, path: Path | None = None) -> AuditStatus:
    """`record`, with the failure as a status (after the syscall nothing can be undone).

    The system log gets the entry even when the file cannot.
    """
    path = path or default_log_path()
    try:
        return record(entry, path)
    except AuditError as exc:
        _to_syslog(entry)
        return AuditStatus(str(path), False, str(exc))


def append(entry: AuditEntry, path: Path | None = None) -> str | None:
    """Append one line; returns a warning instead of raising."""
    status = try_record(entry, path)
    return None if status.written else f"could not write the audit log: {status.reason}"


# ----------------------------------------------------------------- reading


class _NotAnEntry(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotAnEntry(name)  # NaN, Infinity


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotAnEntry(text)  # 1e400
    return value


def _int(d: dict[str, Any], key: str, low: int, high: int) -> int:
    value = d[key]
    if type(value) is not int or not low <= value <= high:
        raise _NotAnEntry(key)
    return value


def _str(d: dict[str, Any], key: str, limit: int = MAX_NAME_CHARS) -> str:
    value = d[key]
    if type(value) is not str or len(value) > limit:
        raise _NotAnEntry(key)
    return value


def parse_line(raw: bytes) -> AuditEntry:
    """One line as an entry, or _NotAnEntry/ValueError: only what numatui itself writes."""
    if len(raw) > MAX_LINE_BYTES:
        raise _NotAnEntry("too long")
    d = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    if type(d) is not dict:
        raise _NotAnEntry("not an object")
    moment = d["time"]
    if type(moment) not in (int, float) or not 0 <= moment < 2**40:
        raise _NotAnEntry("time")
    pages = d["pages_not_moved"]
    error = d["error"]
    phase = d.get("phase", "outcome")
    if phase not in ("attempt", "outcome"):
        raise _NotAnEntry("phase")
    cgroup = None if d.get("cgroup") is None else _str(d, "cgroup", 4096)
    drain = None if d.get("drain") is None else _int(d, "drain", 0, 2**16)
    members = d.get("members") if cgroup is not None else None
    if members is not None and (
        type(members) is not list
        or len(members) > MAX_GROUP_MEMBERS
        or not all(type(m) is dict for m in members)
    ):
        raise _NotAnEntry("members")
    return AuditEntry(
        time=float(moment),
        user=_str(d, "user"),
        uid=_int(d, "uid", 0, 2**32 - 1),
        # a group's or a drain's entry: 0
        pid=_int(d, "pid", 0 if cgroup is not None or drain is not None else 1, 2**22),
        process=_str(d, "process"),
        from_nodes=_str(d, "from"),
        to_nodes=_str(d, "to"),
        outcome=_str(d, "outcome"),
        bytes_moved=_int(d, "bytes_moved", 0, 2**63),
        pages_not_moved=None if pages is None else _int(d, "pages_not_moved", 0, 2**63),
        error=None if error is None else _str(d, "error", MAX_LINE_BYTES),
        id=_str(d, "id", 64) if "id" in d else "",
        phase=phase,
        cgroup=cgroup,
        members=None if members is None else tuple(members),
        drain=drain,
    )


def _lines_backwards(fd: int, size: int) -> Iterator[bytes | None]:
    """The file's lines, last first, reading blocks from the end; None for an overlong line."""
    pos = size
    tail = b""  # the end of a line whose start is in a block not read yet
    overlong = False
    first = True
    while pos > 0:
        n = min(BLOCK_BYTES, pos)
        pos -= n
        parts = (os.pread(fd, n, pos) + tail).split(b"\n")
        if first:
            first = False
            if parts[-1] == b"":
                parts.pop()  # the file's final newline
                if not parts:
                    parts = [b""]
        if len(parts) == 1:
            tail = parts[0]
            if overlong or len(tail) > MAX_LINE_BYTES:
                tail, overlong = b"", True
            continue
        later = parts[1:]
        if overlong:
            later[-1] = b"x" * (MAX_LINE_BYTES + 1)  # stands for the dropped line
            overlong = False
        for line in reversed(later):
            yield None if len(line) > MAX_LINE_BYTES else line
        tail = parts[0]
        if len(tail) > MAX_LINE_BYTES:
            tail, overlong = b"", True
    if overlong:
        yield None
    elif size:
        yield tail


@dataclass(frozen=True)
class LogRead:
    entries: list[AuditEntry]
    """Newest last: one per migration (its outcome; the attempt if no outcome was written)."""
    skipped: int
    """Lines read that are not valid entries."""
    path: Path
    missing: bool = False


def read_tail(path: Path | None = None, limit: int | None = None) -> LogRead:
    """The last `limit` migrations, reading from the end of the file (never all of a big one)."""
    path = path or default_log_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return LogRead([], 0, path, missing=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AuditError(f"{path} is a symlink: not read") from None
        raise AuditError(f"{path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuditError(f"{path} is not a regular file ({_kind(st.st_mode)})")
        entries: list[AuditEntry] = []
        finished: set[str] = set()
        skipped = 0
        for raw in _lines_backwards(fd, st.st_size):
            if limit is not None and len(entries) >= limit:
                break
            if raw is None or not raw.strip():
                skipped += raw is None or bool(raw)
                continue
            try:
                entry = parse_line(raw)
            except (ValueError, KeyError, RecursionError):
                skipped += 1
                continue
            if entry.phase == "attempt":
                if entry.id in finished:
                    continue  # its outcome is already listed
                entries.append(entry)
            else:
                if entry.id:
                    finished.add(entry.id)
                entries.append(entry)
    finally:
        os.close(fd)
    entries.reverse()
    return LogRead(entries, skipped, path)


def read(path: Path | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Newest last; lines that are not entries (a torn write, a hand edit) are skipped."""
    try:
        return read_tail(path, limit).entries
    except AuditError:
        return []

"""The audit log: one JSON line per migration attempted, in the user's state directory.

Operators need to answer "who moved what, when, and did it work" after the
fact; the app and `numatui log` read the same file. Appends are single
`write` calls of one line, so concurrent numatui instances do not interleave.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numatui.kernel.nodemask import format_kernel_list
from numatui.model import MigrationResult


def default_log_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "numatui" / "audit.jsonl"


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

    def as_json(self) -> dict[str, Any]:
        return {
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


def entry_for(result: MigrationResult, process_name: str) -> AuditEntry:
    uid = os.geteuid()
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=result.plan.pid,
        process=process_name,
        from_nodes=format_kernel_list(result.plan.from_nodes),
        to_nodes=format_kernel_list(result.plan.to_nodes),
        outcome=str(result.outcome),
        bytes_moved=result.bytes_moved,
        pages_not_moved=result.pages_not_moved,
        error=f"{result.error.errno_name}: {result.error.message}" if result.error else None,
    )


def refusal_entry(what: str, from_nodes: str, message: str) -> AuditEntry:
    """An operation refused before any process was touched (a drain of a node that does
    not exist or of the only memory node): pid 0, outcome "failed", the reason."""
    uid = os.geteuid()
    return AuditEntry(
        time=time.time(),
        user=_user_name(uid),
        uid=uid,
        pid=0,
        process=what,
        from_nodes=from_nodes,
        to_nodes="",
        outcome="failed",
        bytes_moved=0,
        pages_not_moved=None,
        error=f"refused: {message}",
    )


def append(entry: AuditEntry, path: Path | None = None) -> str | None:
    """Append one line; returns a warning instead of raising (the migration already happened)."""
    path = path or default_log_path()
    line = json.dumps(entry.as_json(), sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        return f"could not write the audit log {path}: {exc.strerror}"
    return None


def read(path: Path | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Newest last; lines that do not parse (a torn write, a hand edit) are skipped."""
    path = path or default_log_path()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    entries: list[AuditEntry] = []
    for line in lines:
        try:
            d = json.loads(line)
            entries.append(
                AuditEntry(
                    time=float(d["time"]),
                    user=str(d["user"]),
                    uid=int(d["uid"]),
                    pid=int(d["pid"]),
                    process=str(d["process"]),
                    from_nodes=str(d["from"]),
                    to_nodes=str(d["to"]),
                    outcome=str(d["outcome"]),
                    bytes_moved=int(d["bytes_moved"]),
                    pages_not_moved=None
                    if d["pages_not_moved"] is None
                    else int(d["pages_not_moved"]),
                    error=None if d["error"] is None else str(d["error"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return entries[-limit:] if limit else entries

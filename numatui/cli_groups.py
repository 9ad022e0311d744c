"""`numatui groups`, `ps --cgroup PATH` and `migrate --cgroup PATH FROM TO`.

Kept apart from numatui/cli.py (which loads this lazily) so the group commands are
their own functions. Cgroup paths and container names are untrusted text: shown
through `visible` (text) or exact in JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from numatui.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    _confirm,
    _node_map,
    _plan_json,
    _print_plan,
    _print_table,
    _result_json,
    _write_json,
)
from numatui.errors import MigrationRefused, NodeStringError, ProcessGone
from numatui.kernel.cgroups import CgroupError
from numatui.kernel.live import LiveSource
from numatui.kernel.nodemask import NodeMask, format_kernel_list
from numatui.model.groups import (
    GROUP_STAT_KINDS,
    Group,
    GroupMember,
    GroupMigrationResult,
    GroupProgress,
)
from numatui.model.migration import MigrationOutcome, MigrationPlan
from numatui.model.node_bytes import NodeBytes
from numatui.safe_text import visible
from numatui.units import format_bytes, format_rate

GROUP_SORT_KEYS = ("numa", "path", "name", "procs", "cgroup")


# ----------------------------------------------------------------- groups


def _stat_json(stat: Mapping[str, NodeBytes] | None) -> dict[str, dict[str, int]] | None:
    if stat is None:
        return None
    return {kind: _node_map(per_node) for kind, per_node in sorted(stat.items())}


def group_json(g: Group) -> dict[str, Any]:
    return {
        "path": g.path,
        "label": g.name.label,
        "kind": str(g.name.kind),
        "unit": g.name.unit or None,
        "runtime": g.name.runtime or None,
        "container_id": g.name.container_id or None,
        "container_name": g.name.container_name or None,
        "pod_uid": g.name.pod_uid or None,
        "qos": g.name.qos or None,
        "pids": list(g.pids),
        "numa_bytes": g.numa_bytes,
        "node_bytes": _node_map(g.node_bytes),
        "numa_stat": _stat_json(g.numa_stat),
        "numa_stat_missing": g.numa_stat_missing or None,
        "unreadable": g.unreadable,
    }


def _group_sort(key: str) -> Any:
    if key == "numa":
        return lambda g: -g.numa_bytes
    if key == "path":
        return lambda g: g.path
    if key == "name":
        return lambda g: g.name.label.lower()
    if key == "procs":
        return lambda g: -len(g.pids)
    if key == "cgroup":
        return lambda g: -sum((g.stat_node_bytes or {}).values())
    if key.startswith("node") and key[4:].isdigit():
        node = int(key[4:])
        return lambda g: -g.node_bytes.get(node, 0)
    raise UsageError(f"unknown sort key {key!r}; use one of {', '.join(GROUP_SORT_KEYS)} or nodeN")


def cmd_groups(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    key = _group_sort(args.sort)
    topo = source.topology()
    scan = source.scan()
    groups = source.groups(scan)
    listed = sorted(groups.groups, key=key)
    if args.limit:
        listed = listed[: args.limit]
    if args.json:
        _write_json(
            {
                "cgroup_v2": groups.support.unified,
                "memory_controller": groups.support.memory,
                "missing": groups.support.missing or None,
                "groups": [group_json(g) for g in listed],
            },
            out,
        )
        return EXIT_OK
    node_ids = sorted(topo.with_memory) or [n.id for n in topo.nodes]
    rows = [
        (
            "group",
            "kind",
            "procs",
            *(f"N{n}" for n in node_ids),
            *(f"cg N{n}" for n in node_ids),
            "path",
        )
    ]
    for g in listed:
        stat = g.stat_node_bytes
        rows.append(
            (
                g.name.label,
                str(g.name.kind),
                str(len(g.pids)),
                *(format_bytes(g.node_bytes.get(n, 0)) for n in node_ids),
                *(
                    ("-",) * len(node_ids)
                    if stat is None
                    else (format_bytes(stat.get(n, 0)) for n in node_ids)
                ),
                g.path,
            )
        )
    _print_table(rows, out, right=set(range(2, 3 + 2 * len(node_ids))))
    print(
        "N<n>: bytes the group's processes map on node n (what a move can move); "
        "cg N<n>: the group's memory.numa_stat (anon + file + kernel), page cache included",
        file=out,
    )
    if groups.support.missing:
        print(f"numatui: {visible(groups.support.missing)}", file=sys.stderr)
    return EXIT_OK


def cgroup_pids(source: LiveSource, text: str) -> list[int]:
    """`ps --cgroup PATH`: the pids in the cgroup (CgroupError: unknown, unsafe, gone)."""
    return list(source.group_members(source.group_path(text)))


# ----------------------------------------------------------------- migrate --cgroup


def _member_json(m: GroupMember) -> dict[str, Any]:
    return {
        "pid": m.pid,
        "process": m.name,
        "status": str(m.status),
        "joined_during_move": m.joined_during_move,
        "message": m.message or None,
        "code": m.code or None,
        "result": None if m.result is None else _result_json(m.result),
    }


def group_result_json(r: GroupMigrationResult) -> dict[str, Any]:
    return {
        "cgroup": r.path,
        "label": r.name.label,
        "from": format_kernel_list(r.from_nodes),
        "to": format_kernel_list(r.to_nodes),
        "outcome": str(r.outcome),
        "bytes_moved": r.bytes_moved,
        "elapsed_s": round(r.elapsed_s, 6),
        "rounds": r.rounds,
        "members": [_member_json(m) for m in r.members],
        "numa_stat_before": _stat_json(r.stat_before),
        "numa_stat_after": _stat_json(r.stat_after),
        "numa_stat_missing": r.numa_stat_missing or None,
        "explanations": list(r.explanations),
        "error": None
        if r.error is None
        else {
            "errno": r.error.errno_name or None,
            "message": r.error.message,
            "code": r.error_code or None,
        },
    }


def print_group_result(r: GroupMigrationResult, out: TextIO) -> None:
    print(
        f"{r.outcome}: {format_bytes(r.bytes_moved)} moved from {len(r.members)} process(es) "
        f"of {visible(r.name.label)} in {r.elapsed_s:.2f} s",
        file=out,
    )
    if r.error is not None:
        code = f" [{r.error_code}]" if r.error_code else ""
        print(f"  error{code}: {visible(r.error.message)}", file=out)
    for m in r.members:
        joined = " (joined during the move)" if m.joined_during_move else ""
        head = f"  pid {m.pid} ({visible(m.name)}){joined}: "
        if m.result is None:
            print(f"{head}{m.status}: {visible(m.message)}", file=out)
            continue
        res = m.result
        line = f"{head}{res.outcome}, {format_bytes(res.bytes_moved)} moved"
        if res.elapsed_s > 0:
            line += f" ({format_rate(res.throughput_bytes_s)})"
        if res.error is not None:
            line += f"; {visible(res.error.message)}"
        print(line, file=out)
        for why in res.explanations:
            print(f"      why: {visible(why)}", file=out)
    if r.stat_before is not None and r.stat_after is not None:
        print("  the group's memory.numa_stat, before -> after:", file=out)
        nodes = sorted({n for s in (r.stat_before, r.stat_after) for v in s.values() for n in v})
        for kind in GROUP_STAT_KINDS:
            cells = [
                f"N{n} {format_bytes(r.stat_before.get(kind, {}).get(n, 0))} -> "
                f"{format_bytes(r.stat_after.get(kind, {}).get(n, 0))}"
                for n in nodes
            ]
            print(f"    {kind:<7} " + "   ".join(cells), file=out)
    for why in r.explanations:
        print(f"  why: {visible(why)}", file=out)


class _GroupProgressLine:
    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.lock = threading.Lock()
        self.shown = False

    def __call__(self, p: GroupProgress) -> None:
        with self.lock:
            self.shown = True
            self.err.write(
                f"\r  {p.elapsed_s:6.1f} s  pid {p.pid}  {p.done}/{p.known} processes done, "
                f"{format_bytes(p.bytes_moved):>10} moved   "
            )
            self.err.flush()

    def done(self) -> None:
        if self.shown:
            self.err.write("\r" + " " * 72 + "\r")
            self.err.flush()


@contextlib.contextmanager
def _ctrl_c_stops_group(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C stops a group move before the next process (and between chunks of a
    stoppable one); the result is still printed and audited."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if not stop.is_set():
            stop.set()
            print(
                "\nnumatui: stopping before the next process (what moved stays moved)…",
                file=sys.stderr,
            )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _dry_run(
    source: LiveSource,
    path: str,
    pids: tuple[int, ...],
    frm: NodeMask,
    to: NodeMask,
    args: argparse.Namespace,
    out: TextIO,
) -> int:
    plans: list[MigrationPlan] = []
    refusals: list[dict[str, Any]] = []
    for pid in pids:
        try:
            plans.append(source.plan(pid, frm, to, stoppable=args.stoppable))
        except (MigrationRefused, ProcessGone) as exc:
            code = exc.code if isinstance(exc, MigrationRefused) else "process_gone"
            refusals.append({"pid": pid, "message": str(exc), "code": code or None})
    if args.json:
        _write_json(
            {
                "cgroup": path,
                "from": str(frm),
                "to": str(to),
                "dry_run": True,
                "plans": [_plan_json(p) for p in plans],
                "refused": refusals,
                "bytes_to_move": sum(p.bytes_to_move for p in plans),
            },
            out,
        )
        return EXIT_OK
    print(f"cgroup {visible(path)}: {len(pids)} process(es) now", file=out)
    for plan in plans:
        _print_plan(plan, out)
    for refusal in refusals:
        print(f"pid {refusal['pid']}: refused: {visible(refusal['message'])}", file=out)
    print(f"total: {format_bytes(sum(p.bytes_to_move for p in plans))}", file=out)
    print(
        "processes that join the group during the move are moved too; page cache no "
        "member maps stays",
        file=out,
    )
    return EXIT_OK


def cmd_migrate_group(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    """`migrate --cgroup PATH FROM TO`: the two positionals are FROM and TO."""
    if args.to_nodes is not None:
        raise UsageError("with --cgroup give FROM and TO only (no PID)")
    from_text, to_text = args.pid, args.from_nodes
    topo = source.topology()
    all_nodes = topo.possible or frozenset(n.id for n in topo.nodes)
    try:
        frm = NodeMask.parse(from_text, all_nodes=all_nodes, allowed=topo.with_memory)
        to = NodeMask.parse(to_text, all_nodes=all_nodes, allowed=topo.with_memory)
    except NodeStringError as exc:
        raise UsageError(str(exc)) from None
    if args.dry_run:
        path = source.group_path(args.cgroup)
        return _dry_run(source, path, source.group_members(path), frm, to, args, out)
    if not args.yes:
        # A group that cannot be moved is refused now, not after the operator said yes.
        try:
            members = source.group_move_members(args.cgroup, frm, to)
        except CgroupError as exc:
            return _report_group(source.refuse_group(args.cgroup, frm, to, exc), source, args, out)
        question = (
            f"Move every process of cgroup {visible(args.cgroup)} ({len(members)} now, and "
            "any that join during the move)?"
        )
        if not _confirm(question, "migrate", sys.stdin, sys.stderr):
            return EXIT_FAILED
    progress = _GroupProgressLine(sys.stderr) if sys.stderr.isatty() and not args.json else None
    stop = threading.Event()
    with _ctrl_c_stops_group(stop):
        result = source.migrate_group(
            args.cgroup, frm, to, progress, stop, stoppable=args.stoppable
        )
    if progress is not None:
        progress.done()
    return _report_group(result, source, args, out)


def _report_group(
    result: GroupMigrationResult, source: LiveSource, args: argparse.Namespace, out: TextIO
) -> int:
    """A group move's outcome on `out` (text or --json), a refusal on stderr; its exit code."""
    if source.audit_warning:
        print(f"numatui: {visible(source.audit_warning)}", file=sys.stderr)
    if args.json:
        _write_json(group_result_json(result), out)
    else:
        print_group_result(result, out)
    if result.error_code and not result.members:
        print(
            f"numatui: refused: {visible(result.error.message if result.error else '')}",
            file=sys.stderr,
        )
    return {
        MigrationOutcome.ALL_MOVED: EXIT_OK,
        MigrationOutcome.NOTHING_TO_MOVE: EXIT_OK,
        MigrationOutcome.PARTLY_MOVED: EXIT_PARTIAL,
        MigrationOutcome.FAILED: EXIT_FAILED,
    }[result.outcome]

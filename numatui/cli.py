"""`numatui` command line: the TUI by default, and `nodes`, `ps`, `migrate`, `log` for scripts.

The script commands never import Textual (fast start, and usable where the
UI is not); only a bare `numatui` loads the app.

Exit status: 0 success / all moved, 1 refused or failed (nothing changed),
2 usage error, 3 partly moved.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

# Only light modules at start: `numatui --version` and a usage error never load the
# kernel layer; each command imports what it needs once its arguments are parsed.
from numatui import __version__
from numatui.errors import NumatuiError
from numatui.kernel.nodemask import format_kernel_list
from numatui.safe_text import visible
from numatui.units import format_bytes, format_rate, format_share

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from numatui.app import NumatuiApp
    from numatui.first_read import FirstRead
    from numatui.kernel import audit
    from numatui.kernel.live import LiveSource
    from numatui.model.drain import DrainItem, DrainPlan, DrainProgress, DrainReport
    from numatui.model.findings import Finding
    from numatui.model.memory import ProcessMemory
    from numatui.model.migration import (
        AuditStatus,
        MigrationPlan,
        MigrationProgress,
        MigrationResult,
        Pacing,
    )
    from numatui.model.node_bytes import NodeBytes
    from numatui.model.topology import Topology

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


class UsageError(Exception):
    """Bad arguments: exit status 2."""


def _node_map(values: NodeBytes) -> dict[str, int]:
    return {str(n): b for n, b in sorted(values.items())}


# ----------------------------------------------------------------- nodes


def _nodes_json(topo: Topology) -> dict[str, Any]:
    return {
        "numa_available": topo.numa_available,
        "reason": topo.unavailable_reason or None,
        "numa_balancing": topo.numa_balancing,
        "nodes": [
            {
                "id": n.id,
                "online": n.online,
                "cpus": format_kernel_list(n.cpus),
                "cpu_list": list(n.cpus),
                "has_cpu": n.has_cpu,
                "has_memory": n.has_memory,
                "memory_only": n.memory_only,
                "mem_total_bytes": n.mem_total,
                "mem_free_bytes": n.mem_free,
                "mem_used_bytes": n.mem_used,
                "file_bytes": n.file_bytes,
                "anon_bytes": n.anon_bytes,
                "shmem_bytes": n.shmem_bytes,
                "hugepages": [
                    {
                        "size_bytes": h.size_bytes,
                        "total": h.total,
                        "free": h.free,
                        "surplus": h.surplus,
                    }
                    for h in n.hugepages
                ],
                "distances": {str(k): v for k, v in sorted(n.distances.items())},
                "tier": n.tier,
            }
            for n in topo.nodes
        ],
    }


def _print_nodes(topo: Topology, out: TextIO) -> None:
    if not topo.numa_available:
        print(f"NUMA information unavailable: {visible(topo.unavailable_reason)}", file=out)
    rows = [("node", "cpus", "total", "used", "free", "hugepages", "tier", "")]
    for n in topo.nodes:
        huge = ", ".join(
            f"{h.free}/{h.total}x{format_bytes(h.size_bytes, precision=0)}"
            for h in n.hugepages
            if h.total
        )
        flags = []
        if not n.online:
            flags.append("offline")
        if n.memory_only:
            flags.append("memory-only")
        elif not n.has_memory:
            flags.append("no memory")
        rows.append(
            (
                str(n.id),
                format_kernel_list(n.cpus) or "-",
                format_bytes(n.mem_total),
                format_bytes(n.mem_used),
                format_bytes(n.mem_free),
                huge or "-",
                "-" if n.tier is None else str(n.tier),
                " ".join(flags),
            )
        )
    _print_table(rows, out, right={2, 3, 4})
    ids = [n.id for n in topo.nodes if n.distances]
    if ids:
        print("distances:", file=out)
        dist_rows = [("node", *map(str, ids))]
        for n in topo.nodes:
            if n.distances:
                dist_rows.append((str(n.id), *(str(n.distances.get(i, "-")) for i in ids)))
        _print_table(dist_rows, out, right=set(range(1, len(ids) + 1)))
    if topo.numa_balancing:
        print(
            "note: automatic NUMA balancing is on: the kernel moves pages by itself too.",
            file=out,
        )


def _print_table(rows: Sequence[Sequence[str]], out: TextIO, right: set[int]) -> None:
    """Aligned columns; every cell is shown through `visible` (names are untrusted), so a
    tab, newline or escape sequence in a name cannot break a column or reach the terminal."""
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    # One write: with an unbuffered stdout (PYTHONUNBUFFERED) each print is a write(2).
    out.write("\n".join(lines) + "\n")


def _write_json(document: Any, out: TextIO, *, allow_nan: bool = True) -> None:
    """`document` as indented JSON in one write (json.dump makes one per token, and with an
    unbuffered stdout each is a write(2))."""
    out.write(json.dumps(document, indent=2, allow_nan=allow_nan) + "\n")


def _write_json_list(head: str, items: Sequence[Any], tail: dict[str, Any], out: TextIO) -> None:
    """`{head: [items...], **tail}` with one item per line, in one write.

    Each item is encoded compact by json's C encoder (an indented document goes
    through its pure-Python encoder: 4x slower for 2,000 processes). Still one
    JSON document; a line per item also suits grep.
    """
    body = ",\n".join("    " + json.dumps(item) for item in items)
    rest = "".join(f",\n  {json.dumps(k)}: {json.dumps(v)}" for k, v in tail.items())
    opening = f"{{\n  {json.dumps(head)}: ["
    out.write(f"{opening}\n{body}\n  ]{rest}\n}}\n" if items else f"{opening}]{rest}\n}}\n")


def cmd_nodes(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    topo = source.topology()
    if args.json:
        _write_json(_nodes_json(topo), out)
    else:
        _print_nodes(topo, out)
    return EXIT_OK


# ----------------------------------------------------------------- ps

SORT_KEYS: dict[str, Callable[[ProcessMemory], Any]] = {
    "pid": lambda p: p.pid,
    "name": lambda p: p.name.lower(),
    "user": lambda p: p.user,
    "rss": lambda p: -p.rss_bytes,
    "numa": lambda p: -p.numa_bytes,
    "locality": lambda p: (p.locality is None, p.locality or 0.0),
}


def _sort_key(key: str, topo: Topology | None = None) -> Callable[[ProcessMemory], Any]:
    """The sort for `--sort KEY`; with `topo`, a `nodeN` must name a node that exists."""
    if key in SORT_KEYS:
        return SORT_KEYS[key]
    if key.startswith("node") and _is_decimal(key[4:], max_digits=4):
        node = int(key[4:])
        if topo is not None and topo.nodes and node not in {n.id for n in topo.nodes}:
            known = ", ".join(f"node{n.id}" for n in topo.nodes)
            raise UsageError(f"--sort {key}: this machine has no node {node} (it has {known})")
        return lambda p: -p.node_bytes.get(node, 0)
    raise UsageError(f"unknown sort key {key!r}; use one of {', '.join(SORT_KEYS)} or nodeN")


def _process_json(p: ProcessMemory) -> dict[str, Any]:
    return {
        "pid": p.pid,
        "name": p.name,
        "user": p.user,
        "cmdline": p.cmdline,
        "rss_bytes": p.rss_bytes,
        "threads": p.threads,
        "numa_bytes": p.numa_bytes,
        "node_bytes": _node_map(p.node_bytes),
        "kind_bytes": {str(k): _node_map(v) for k, v in p.kind_bytes.items()},
        "shared_bytes": _node_map(p.shared_bytes),
        "mems_allowed": format_kernel_list(p.mems_allowed),
        "cpu_nodes": format_kernel_list(p.cpu_nodes),
        "locality": p.locality,
        "mappings": p.mapping_count,
        "memory_readable": p.memory_readable,
    }


def _flat_pids(groups: Sequence[Sequence[int]] | None) -> list[int]:
    """`--pid 1,2 --pid 3 4` arrives as [[1, 2], [3], [4]]: one ordered list, no repeats."""
    return list(dict.fromkeys(pid for group in groups or () for pid in group))


def cmd_ps(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    args.pid = _flat_pids(args.pid)
    _sort_key(args.sort)  # a malformed key is a usage error before anything is read
    if args.cgroup is not None:
        from numatui.cli_groups import cgroup_pids

        args.pid = cgroup_pids(source, args.cgroup)
        if not args.pid:
            print("numatui: the cgroup has no processes", file=sys.stderr)
            return EXIT_OK
    topo = source.topology()
    key = _sort_key(args.sort, topo)
    # The text table shows bytes per node only: kinds and shared bytes (json) and
    # command lines (json, --match) are not read for it.
    scan = source.scan(
        pids=args.pid or None,
        nodes_only=not args.json,
        cmdline=bool(args.json or args.match),
        one_shot=True,
    )
    procs = [p for p in scan.processes if not p.is_kernel_thread]
    # numatui never lists itself (unless asked by pid); with --match, neither the shell or
    # sudo that started it: their command lines hold TEXT because numatui's own arguments do.
    own = source.own_lineage()
    hidden = own if args.match else own & {os.getpid()}
    procs = [p for p in procs if p.pid not in hidden or p.pid in args.pid]
    if args.match:
        needle = args.match.lower()
        procs = [
            p
            for p in procs
            if needle in p.name.lower() or needle in p.cmdline.lower() or needle in p.user.lower()
        ]
    if args.pid:
        missing = sorted(set(args.pid) - {p.pid for p in procs})
        for pid in missing:
            why = source.describe_pid(pid)
            if why is not None:  # None: it is there, only left out by --match
                print(f"numatui: process {pid} {why}", file=sys.stderr)
    procs.sort(key=key)
    if args.limit:
        procs = procs[: args.limit]
    if args.json:
        _write_json_list(
            "processes",
            [_process_json(p) for p in procs],
            {"unreadable": scan.unreadable, "vanished": scan.vanished},
            out,
        )
    else:
        node_ids = sorted(topo.with_memory) or [n.id for n in topo.nodes]
        rows = [("pid", "user", "name", "rss", *(f"N{n}" for n in node_ids), "local")]
        for p in procs:
            rows.append(
                (
                    str(p.pid),
                    p.user,
                    p.name,
                    format_bytes(p.rss_bytes),
                    *(
                        format_bytes(p.node_bytes.get(n, 0)) if p.memory_readable else "?"
                        for n in node_ids
                    ),
                    format_share(p.locality),
                )
            )
        _print_table(rows, out, right=set(range(3, len(rows[0]))))
    if scan.unreadable:
        remedy = (
            "even by root (a security module denies it)"
            if source.privileges().is_root
            else "by this user; run as root to see all"
        )
        print(
            f"numatui: the memory of {_plural(scan.unreadable, 'process is', 'processes are')} "
            f"not readable {remedy}",
            file=sys.stderr,
        )
    if source.privileges().processes_hidden:
        print(
            f"numatui: {source.proc_root} is mounted with hidepid: other users' processes "
            "are hidden from this list; run as root to see them",
            file=sys.stderr,
        )
    if args.pid and not procs:
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------- migrate


def _is_decimal(text: str, max_digits: int) -> bool:
    """ASCII digits only: int() also takes Arabic-Indic or full-width digits, "+1", "1_0"."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _parse_pid(text: str) -> int:
    if not _is_decimal(text, max_digits=20):
        raise UsageError(f"PID must be a positive number in ASCII digits, not {text!r}")
    pid = int(text, 10)
    if pid <= 0:
        # 0 would mean "numatui itself" to the kernel; negative ids are process groups elsewhere.
        raise UsageError(f"PID must be a positive number, not {text!r}")
    if pid > 2**22:
        raise UsageError(f"PID {pid} is larger than any pid Linux hands out (4194304)")
    return pid


def _parse_pids(text: str) -> list[int]:
    """One `--pid` word: a pid, or pids separated by commas (`1,2`)."""
    # Strict like every number here: " 1" is an error; a trailing comma ("1,") is not.
    words = [word for word in text.split(",") if word]
    if not words:
        raise UsageError(f"PID must be a positive number, not {text!r}")
    return [_parse_pid(word) for word in words]


def _positive_count(text: str) -> int:
    if not _is_decimal(text, max_digits=9) or int(text, 10) <= 0:
        raise UsageError(f"a count must be a positive number in ASCII digits, not {text!r}")
    return int(text, 10)


def _plan_json(plan: MigrationPlan) -> dict[str, Any]:
    return {
        "pid": plan.pid,
        "process": plan.process_name,
        "from": format_kernel_list(plan.from_nodes),
        "to": format_kernel_list(plan.to_nodes),
        "pairs": [[s, d] for s, d in plan.pairs],
        "bytes_per_pair": list(plan.bytes_per_pair),
        "bytes_to_move": plan.bytes_to_move,
        "shared_bytes_staying": plan.shared_bytes_staying,
        "warnings": [_finding_json(w) for w in plan.warnings],
        "stoppable": plan.stoppable,
        "stall_ms": plan.pacing.stall_s * 1000 if plan.stoppable else None,
        "max_rate_bytes_s": plan.pacing.max_rate_bytes_s if plan.stoppable else None,
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {"code": str(finding.code), "message": finding.message}


def _result_json(result: MigrationResult) -> dict[str, Any]:
    out = _plan_json(result.plan)
    out.update(
        {
            "outcome": str(result.outcome),
            "pages_not_moved": result.pages_not_moved,
            "bytes_moved": result.bytes_moved,
            "before": _node_map(result.before),
            "after": _node_map(result.after),
            "elapsed_s": round(result.elapsed_s, 6),
            "explanations": list(result.explanations),
            "error": None
            if result.error is None
            else {"errno": result.error.errno_name or None, "message": result.error.message},
        }
    )
    return out


def _refusal_json(
    pid: int, frm: str, to: str, message: str, errno_name: str | None, code: str | None = None
) -> dict[str, Any]:
    """A request numatui refused before any syscall: `code` is the rules' reason, `errno`
    what the kernel would have answered (so a script sees the same either way)."""
    from numatui.model.migration import MigrationOutcome

    return {
        "pid": pid,
        "from": frm,
        "to": to,
        "pairs": [],
        "outcome": str(MigrationOutcome.FAILED),
        "pages_not_moved": None,
        "before": {},
        "after": {},
        "elapsed_s": 0.0,
        "error": {"errno": errno_name, "message": message, "code": code},
    }


def _print_plan(plan: MigrationPlan, out: TextIO) -> None:
    name = f" ({visible(plan.process_name)})" if plan.process_name else ""
    print(
        f"pid {plan.pid}{name}: nodes {format_kernel_list(plan.from_nodes)} -> "
        f"{format_kernel_list(plan.to_nodes)}",
        file=out,
    )
    if plan.is_noop:
        print("  nothing to move: the kernel would not move any page for these nodes", file=out)
    for (src, dst), nbytes in zip(plan.pairs, plan.bytes_per_pair, strict=False):
        print(f"  node {src} -> node {dst}: {format_bytes(nbytes)}", file=out)
    if plan.pairs:
        print(f"  total: {format_bytes(plan.bytes_to_move)}", file=out)
    for w in plan.warnings:
        print(f"  warning: {visible(w.message)}", file=out)


def _print_result(result: MigrationResult, out: TextIO) -> None:
    print(f"{result.outcome}: {format_bytes(result.bytes_moved)} moved", end="", file=out)
    if result.elapsed_s > 0:
        print(
            f" in {result.elapsed_s:.2f} s ({format_rate(result.throughput_bytes_s)})",
            end="",
            file=out,
        )
    print(file=out)
    if result.pages_not_moved:
        print(f"  the kernel could not move {result.pages_not_moved} pages", file=out)
    if result.error is not None:
        tag = f"{result.error.errno_name}: " if result.error.errno_name else ""
        print(f"  error: {tag}{visible(result.error.message)}", file=out)
    nodes = sorted(set(result.before) | set(result.after))
    for n in nodes:
        print(
            f"  node {n}: {format_bytes(result.before.get(n, 0)):>10} -> "
            f"{format_bytes(result.after.get(n, 0)):>10}",
            file=out,
        )
    for why in result.explanations:
        print(f"  why: {visible(why)}", file=out)


def _confirm(question: str, verb: str, stdin: TextIO, err: TextIO) -> bool:
    """The operator's yes to `question` (already made safe to show), asked on the terminal;
    without one (a pipe, a script), no: `--yes` is how a script says it."""
    if not stdin.isatty():
        print(
            f"numatui: refusing to {verb} without confirmation: pass --yes, "
            "or run on a terminal to be asked",
            file=err,
        )
        return False
    err.write(f"{question} [y/N] ")
    err.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


class _ProgressLine:
    """Rewrites one stderr line as samples arrive (only on a terminal)."""

    def __init__(self, plan: MigrationPlan, err: TextIO) -> None:
        self.plan = plan
        self.err = err
        self.before: NodeBytes | None = None
        self.lock = threading.Lock()

    def __call__(self, sample: MigrationProgress) -> None:
        with self.lock:
            if self.before is None:
                self.before = sample.node_bytes
                return
            left = sum(sample.node_bytes.get(s, 0) for s, _ in self.plan.pairs)
            self.err.write(
                f"\r  {sample.elapsed_s:6.1f} s  left on sources: {format_bytes(left):>10}   "
            )
            self.err.flush()

    def done(self) -> None:
        if self.before is not None:
            self.err.write("\r" + " " * 60 + "\r")
            self.err.flush()


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event, stoppable: bool) -> Iterator[None]:
    """Ctrl-C during a migration: a stoppable one stops between chunks; the other goes on.

    Either way the result is still printed and audited. A plain KeyboardInterrupt
    would leave with pages moved and neither a summary nor an audit entry.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            return
        stop.set()
        if stoppable:
            message = "stopping after the current chunk (what moved stays moved)…"
        else:
            message = (
                "one migrate_pages call cannot be stopped once started: waiting for it to "
                "finish (--stoppable moves in chunks that Ctrl-C can stop)…"
            )
        print(f"\nnumatui: {message}", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _audit_path(source: LiveSource) -> Path:
    from numatui.kernel import audit

    return source.audit_path or audit.default_log_path()


def _audit_json(status: AuditStatus) -> dict[str, Any]:
    return {"path": status.path, "written": status.written, "reason": status.reason}


def _not_attempted(source: LiveSource) -> dict[str, Any]:
    from numatui.model.migration import AuditStatus

    return _audit_json(
        AuditStatus(str(_audit_path(source)), False, "nothing was attempted: nothing to record")
    )


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _add_pacing_arguments(parser: argparse.ArgumentParser) -> None:
    """--stall-ms and --max-rate: the paced (stoppable) mode's budget and rate cap."""
    parser.add_argument(
        "--stall-ms",
        type=_positive_number,
        metavar="MS",
        help="move in chunks of about MS milliseconds each (implies --stoppable; default 20)",
    )
    parser.add_argument(
        "--max-rate",
        type=_positive_number,
        metavar="MB/s",
        help="move no faster than this many MiB per second (implies --stoppable)",
    )


def _pacing_from_args(args: argparse.Namespace) -> tuple[bool, Pacing]:
    """(stoppable, pacing) as the options ask: a budget or a rate cap means the paced mode."""
    from numatui.model.migration import DEFAULT_STALL_S, Pacing

    stall_ms: float | None = getattr(args, "stall_ms", None)
    max_rate: float | None = getattr(args, "max_rate", None)
    pacing = Pacing(
        stall_s=DEFAULT_STALL_S if stall_ms is None else stall_ms / 1000,
        max_rate_bytes_s=None if max_rate is None else max_rate * 1024 * 1024,
    )
    stoppable = bool(args.stoppable) or stall_ms is not None or max_rate is not None
    return stoppable, pacing


def cmd_migrate(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    if args.cgroup is not None:
        from numatui.cli_groups import cmd_migrate_group

        return cmd_migrate_group(args, source, out)
    if args.to_nodes is None:
        raise UsageError("give PID FROM TO (or --cgroup PATH FROM TO)")
    from numatui.errors import MigrationRefused, NodeStringError, ProcessGone
    from numatui.kernel.nodemask import NodeMask
    from numatui.model.findings import RuleCode
    from numatui.model.migration import AuditStatus, MigrationOutcome

    pid = _parse_pid(args.pid)
    topo = source.topology()
    all_nodes = topo.possible or frozenset(n.id for n in topo.nodes)
    try:
        allowed = source.scan(pids=[pid]).processes
        mems = allowed[0].mems_allowed if allowed else topo.with_memory
        frm = NodeMask.parse(args.from_nodes, all_nodes=all_nodes, allowed=mems)
        to = NodeMask.parse(args.to_nodes, all_nodes=all_nodes, allowed=mems)
    except NodeStringError as exc:
        raise UsageError(str(exc)) from None
    try:
        stoppable, pacing = _pacing_from_args(args)
        plan = source.plan(pid, frm, to, stoppable=stoppable, pacing=pacing)
    except (MigrationRefused, ProcessGone) as exc:
        if isinstance(exc, MigrationRefused):
            errno_name, code = exc.errno_name or None, exc.code or None
        else:
            errno_name, code = "ESRCH", str(RuleCode.PROCESS_GONE)
        if args.json:
            refusal = _refusal_json(pid, str(frm), str(to), str(exc), errno_name, code)
            _write_json({**refusal, "audit": _not_attempted(source)}, out)
        print(f"numatui: refused: {visible(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        if args.json:
            _write_json({**_plan_json(plan), "dry_run": True}, out)
        else:
            _print_plan(plan, out)
        return EXIT_OK
    if not args.json:
        _print_plan(plan, out)
    if plan.is_noop:
        if args.json:
            _write_json({**_plan_json(plan), "outcome": str(MigrationOutcome.NOTHING_TO_MOVE)}, out)
        return EXIT_OK
    question = f"Move {format_bytes(plan.bytes_to_move)} of pid {plan.pid}?"
    if not args.yes and not _confirm(question, "migrate", sys.stdin, sys.stderr):
        if args.json:
            msg = "not confirmed: nothing was done"
            refusal = _refusal_json(pid, str(frm), str(to), msg, None)
            _write_json({**refusal, "audit": _not_attempted(source)}, out)
        return EXIT_FAILED
    progress = _ProgressLine(plan, sys.stderr) if sys.stderr.isatty() and not args.json else None
    stop = threading.Event()
    with _ctrl_c_stops(stop, plan.stoppable):
        result = source.migrate(plan, on_progress=progress, cancel=stop)
    if progress is not None:
        progress.done()
    status = result.audit or AuditStatus(str(_audit_path(source)), False, "not recorded")
    if not status.written:
        reason = visible(status.reason or "")
        print(f"numatui: the audit log was not written: {reason}", file=sys.stderr)
    if args.json:
        _write_json({**_result_json(result), "audit": _audit_json(status)}, out)
    else:
        _print_result(result, out)
        if status.written:
            print(f"  audit: recorded in {visible(status.path)}", file=out)
        else:
            reason = visible(status.reason or "")
            print(f"  audit: NOT recorded in {visible(status.path)}: {reason}", file=out)
    return {
        MigrationOutcome.ALL_MOVED: EXIT_OK,
        MigrationOutcome.NOTHING_TO_MOVE: EXIT_OK,
        MigrationOutcome.PARTLY_MOVED: EXIT_PARTIAL,
        MigrationOutcome.FAILED: EXIT_FAILED,
    }[result.outcome]


# ----------------------------------------------------------------- log


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def cmd_log(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    from numatui.kernel import audit

    path = args.file or source.audit_path or audit.default_log_path()
    try:
        got = audit.read_tail(path, limit=args.limit)
    except audit.AuditError as exc:
        print(f"numatui: cannot read the audit log: {visible(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    if got.skipped:
        print(
            f"numatui: skipped {_plural(got.skipped, 'line', 'lines')} of {visible(str(path))} "
            "that are not valid entries",
            file=sys.stderr,
        )
    entries = got.entries
    if args.json:
        data = {
            "path": str(path),
            "entries": [e.as_json() for e in entries],
            "skipped_lines": got.skipped,
        }
        _write_json(data, out, allow_nan=False)
        return EXIT_OK
    if not entries:
        print(f"no migrations recorded in {visible(str(path))}", file=out)
    for e in entries:
        print(_format_log_entry(e), file=out)
    return EXIT_OK


def _format_log_entry(e: audit.AuditEntry) -> str:
    """One entry as a line. Everything in it was read back from a file: shown through
    `visible`, so a process name holding escape sequences cannot reach the terminal."""
    from numatui.kernel import audit

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
    who = f"pid {e.pid}"
    if e.cgroup is not None:  # a group move: one line, its processes counted
        who = f"cgroup {visible(e.cgroup)}, {len(e.members or ())} process(es)"
    line = (
        f"{when}  {visible(str(e.user)):<8} {who} ({visible(str(e.process))}) "
        f"{visible(str(e.from_nodes))} -> {visible(str(e.to_nodes))}: "
        + (
            "attempted, no outcome recorded (numatui stopped during the migration)"
            if e.outcome == audit.ATTEMPTED
            else f"{visible(str(e.outcome))}, {format_bytes(e.bytes_moved)} moved"
        )
    )
    if e.error:
        line += f" [{visible(str(e.error))}]"
    return line


# ----------------------------------------------------------------- main


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops write errors: `numatui --help > /dev/full` would say nothing, exit 0.
        if message:
            (file or sys.stderr).write(message)


_EXIT_CODES = """\
exit status:
  0  success (migrate: all moved, or nothing to move)
  1  refused or failed, nothing changed (e.g. a pid that does not exist)
  2  usage error (e.g. a malformed pid or node string, an unknown --sort key)
  3  partly moved (migrate: the output says how much stayed and why)"""

_NODE_GRAMMAR = """\
FROM and TO use numactl's node grammar:
  1        node 1
  0-3,5    nodes 0, 1, 2, 3 and 5
  all      every node of the machine
  !2       every node but 2
  +0-1     counted within the process's allowed nodes: the first two of them"""

_MAIN_EPILOG = f"""\
Without a command, opens the interactive terminal UI (press ? in it for help).
Each command has its own help: numatui ps --help

examples:
  sudo numatui                         the UI, seeing every user's processes
  numatui nodes                        the nodes, their memory and distances
  numatui ps --match java --sort node1 processes named java, most on node 1 first
  numatui migrate 4242 0 1 --dry-run   what moving pid 4242 from node 0 to 1 would do
  numatui log                          the migrations attempted so far

{_EXIT_CODES}
"""

_NODES_EPILOG = f"""\
examples:
  numatui nodes                        a table, then the distance matrix
  numatui nodes --json | jq '.nodes[] | {{id, mem_free_bytes}}'

{_EXIT_CODES}
"""

_PS_EPILOG = f"""\
examples:
  numatui ps --limit 10                the 10 processes with most memory on NUMA nodes
  numatui ps --sort node1              most memory on node 1 first
  numatui ps --match postgres          names, users or command lines holding "postgres"
  numatui ps --pid 4242,4243 --json    two processes, everything numatui knows about them
  sudo numatui ps                      every user's processes (others' need root)

Columns: rss is resident memory; N0, N1, ... the bytes on each node (? when the
process's memory is not readable); local the share on the nodes its threads run on.
numatui does not list itself; with --match, nor the shell or sudo that started it.

{_EXIT_CODES}
"""

_MIGRATE_EPILOG = f"""\
{_NODE_GRAMMAR}

examples:
  numatui migrate 4242 0 1 --dry-run   the kernel's plan: pairs and bytes, nothing moved
  sudo numatui migrate 4242 0 1        move pid 4242's pages from node 0 to node 1 (asks first)
  sudo numatui migrate 4242 all 2 --yes --json      everything to node 2, no question, JSON
  sudo numatui migrate 4242 0-1 2-3 --stoppable     in ~20 ms chunks; Ctrl-C stops between them

Every attempt is recorded in the audit log (numatui log).

{_EXIT_CODES}
"""

_LOG_EPILOG = f"""\
examples:
  numatui log                          the last 50 migrations attempted
  numatui log --limit 5 --json         the last 5, machine-readable

{_EXIT_CODES}
"""

_DRAIN_EPILOG = f"""\
Every process with memory on NODE gets its pages there moved to the nearest
nodes it may use, one process after another, in chunks of about 20 ms.

examples:
  numatui drain 1 --dry-run            where each process on node 1 would go; nothing moved
  sudo numatui drain 1                 move everything off node 1 (asks first)
  sudo numatui drain 1 --yes --stall-ms 5 --max-rate 200    5 ms chunks, at most 200 MiB/s

The drain and each process's move are recorded in the audit log (numatui log).

{_EXIT_CODES}
"""

_EXPORT_EPILOG = f"""\
examples:
  numatui export --once                one exposition on stdout, then exit
  numatui export                       serve /metrics on 127.0.0.1:9787 (this machine only)
  sudo numatui export --textfile /var/lib/node_exporter/textfile_collector

It never migrates. As non-root it sees what that user may read.

{_EXIT_CODES}
"""


def _command(
    sub: argparse._SubParsersAction[_Parser], name: str, summary: str, epilog: str
) -> argparse.ArgumentParser:
    """A command whose --help keeps its examples laid out as written."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="numatui",
        description="See where every process's memory lives on a NUMA machine, and move it.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"numatui {__version__}")
    p.add_argument("--sys-root", type=Path, default=Path("/sys"), help=argparse.SUPPRESS)
    p.add_argument("--proc-root", type=Path, default=Path("/proc"), help=argparse.SUPPRESS)
    p.add_argument(
        "--audit-log",
        type=Path,
        default=None,
        metavar="FILE",
        # Literal, not audit.PATH_ENV: parsing arguments must not load the kernel layer.
        help="the audit trail (default: $NUMATUI_AUDIT_LOG, else the state directory; see README)",
    )
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    nodes = _command(
        sub, "nodes", "NUMA nodes: cpus, memory, huge pages, distances, tiers", _NODES_EPILOG
    )
    nodes.add_argument("--json", action="store_true", help="machine-readable output")

    ps = _command(sub, "ps", "processes with their memory per node", _PS_EPILOG)
    ps.add_argument("--json", action="store_true", help="machine-readable output")
    ps.add_argument(
        "--pid",
        nargs="+",
        action="extend",
        type=_parse_pids,
        metavar="PID",
        help="only these pids: --pid 1 2 3, --pid 1,2, or --pid repeated (like numastat -p)",
    )
    ps.add_argument("--match", metavar="TEXT", help="only names, users or command lines with TEXT")
    ps.add_argument(
        "--sort",
        default="numa",
        metavar="KEY",
        help="pid, name, user, rss, numa (bytes on NUMA nodes, the default), locality, "
        "or nodeN (bytes on node N, a node this machine has)",
    )
    ps.add_argument("--limit", type=_positive_count, metavar="N", help="show the first N only")
    ps.add_argument("--cgroup", metavar="PATH", help="only the processes of this cgroup")

    mig = _command(
        sub, "migrate", "move a process's pages between nodes (migrate_pages)", _MIGRATE_EPILOG
    )
    mig.add_argument(
        "pid", metavar="PID", help="the process to move (numatui ps lists them; not with --cgroup)"
    )
    mig.add_argument(
        "from_nodes", metavar="FROM", help="the nodes to move pages from (grammar below)"
    )
    mig.add_argument(
        "to_nodes", metavar="TO", nargs="?", help="the nodes to move them to (grammar below)"
    )
    mig.add_argument(
        "--cgroup",
        metavar="PATH",
        help="move every process of this cgroup: migrate --cgroup PATH FROM TO",
    )
    mig.add_argument("--json", action="store_true", help="machine-readable result")
    mig.add_argument("--dry-run", action="store_true", help="print the kernel's plan, move nothing")
    mig.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    mig.add_argument(
        "--stoppable",
        action="store_true",
        help="move with move_pages in chunks of about 20 ms, so Ctrl-C can stop it part way",
    )
    _add_pacing_arguments(mig)

    log = _command(sub, "log", "the audit log of migrations attempted", _LOG_EPILOG)
    log.add_argument("--json", action="store_true", help="machine-readable output")
    log.add_argument(
        "--limit", type=_positive_count, default=50, metavar="N", help="last N entries (50)"
    )
    log.add_argument("--file", type=Path, default=None, help=argparse.SUPPRESS)

    groups = sub.add_parser("groups", help="cgroups (services, containers, pods) per node")
    groups.add_argument("--json", action="store_true", help="machine-readable output")
    groups.add_argument(
        "--sort", default="numa", metavar="KEY", help="numa, path, name, procs, cgroup, nodeN"
    )
    groups.add_argument("--limit", type=_positive_count, metavar="N", help="show the first N only")

    from numatui.exporter.options import add_export_arguments  # argparse only, light

    add_export_arguments(
        _command(sub, "export", "metrics for Prometheus (read-only)", _EXPORT_EPILOG)
    )
    _add_drain_parser(sub)
    return p


def cmd_export(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    from numatui.exporter.serve import run_export  # prometheus_client loads only for export

    return run_export(args, source, out)


def cmd_groups(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    from numatui.cli_groups import cmd_groups as run_groups

    return run_groups(args, source, out)


# ----------------------------------------------------------------- drain


def _add_drain_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    drain = _command(
        sub, "drain", "move every process's memory off one node (paced, stoppable)", _DRAIN_EPILOG
    )
    drain.add_argument("node", metavar="NODE", type=_parse_node)
    drain.add_argument("--dry-run", action="store_true", help="print the plan, move nothing")
    drain.add_argument("--json", action="store_true", help="machine-readable output")
    drain.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_pacing_arguments(drain)


def _parse_node(text: str) -> int:
    try:
        node = int(text, 10)
    except ValueError:
        raise UsageError(f"a node is a number, not {text!r}") from None
    if node < 0:
        raise UsageError(f"a node is a number from 0, not {text!r}")
    return node


def _drain_item_json(item: DrainItem) -> dict[str, Any]:
    return {
        "pid": item.pid,
        "process": item.name,
        "bytes_on_node": item.bytes_on_node,
        "target": item.target,
        "refusal": None if item.refusal is None else _finding_json(item.refusal),
    }


def _drain_plan_json(plan: DrainPlan) -> dict[str, Any]:
    return {
        "node": plan.node,
        "processes": [_drain_item_json(item) for item in plan.items],
        "bytes_to_move": plan.bytes_to_move,
        "bytes_staying": plan.bytes_staying,
        "unreadable_processes": plan.unreadable,
        "refusal": None if plan.refusal is None else _finding_json(plan.refusal),
    }


def _print_drain_plan(plan: DrainPlan, out: TextIO) -> None:
    print(f"Drain node {plan.node}: {len(plan.items)} process(es) with memory there", file=out)
    rows = [["PID", "NAME", "ON NODE", "TO"]]
    for item in plan.items:
        target = (
            str(item.target)
            if item.target is not None
            else f"stays: {item.refusal.short if item.refusal else '?'}"
        )
        rows.append([str(item.pid), visible(item.name), format_bytes(item.bytes_on_node), target])
    _print_table(rows, out, right={0, 2})
    print(
        f"total: {format_bytes(plan.bytes_to_move)} to move, "
        f"{format_bytes(plan.bytes_staying)} staying",
        file=out,
    )
    for item in plan.items:
        if item.refusal is not None:
            print(f"  stays: {visible(item.refusal.message)}", file=out)
    if plan.unreadable:
        print(f"  {plan.unreadable} process(es) could not be read (run as root)", file=out)


def _drain_report_json(report: DrainReport) -> dict[str, Any]:
    return {
        **_drain_plan_json(report.plan),
        "results": [_result_json(result) for result in report.results],
        "bytes_moved": report.bytes_moved,
        "node_used_before_bytes": report.used_before,
        "node_used_after_bytes": report.used_after,
        "not_moved": [
            {"reason": left.reason, "bytes": left.bytes, "detail": left.detail}
            for left in report.leftovers
        ],
        "stopped": report.stopped,
        "elapsed_s": report.elapsed_s,
    }


def _print_drain_report(report: DrainReport, out: TextIO) -> None:
    node = report.plan.node
    print(
        f"Drained node {node}: {format_bytes(report.bytes_moved)} moved in "
        f"{report.elapsed_s:.1f} s" + (" (stopped)" if report.stopped else ""),
        file=out,
    )
    for result in report.results:
        moved = max(0, result.before.get(node, 0) - result.after.get(node, 0))
        print(
            f"  {result.plan.pid} {visible(result.plan.process_name)}: {result.outcome}, "
            f"{format_bytes(moved)} to node {format_kernel_list(result.plan.to_nodes)}",
            file=out,
        )
        for why in result.explanations:
            print(f"      {visible(why)}", file=out)
    print(
        f"node {node} used: {format_bytes(report.used_before)} before, "
        f"{format_bytes(report.used_after)} after (its meminfo)",
        file=out,
    )
    if report.leftovers:
        print("not moved:", file=out)
    for left in report.leftovers:
        print(f"  {format_bytes(left.bytes):>10}  {visible(left.detail)}", file=out)


def cmd_drain(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    from numatui.errors import MigrationRefused
    from numatui.model.migration import MigrationOutcome

    _, pacing = _pacing_from_args(argparse.Namespace(stoppable=True, **vars(args)))
    plan = source.plan_drain(args.node, pacing)
    if plan.refusal is not None:
        if args.json:
            _write_json(_drain_plan_json(plan), out)
        print(f"numatui: refused: {visible(plan.refusal.message)}", file=sys.stderr)
        if source.audit_warning:
            print(f"numatui: {visible(source.audit_warning)}", file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        if args.json:
            _write_json({**_drain_plan_json(plan), "dry_run": True}, out)
        else:
            _print_drain_plan(plan, out)
        return EXIT_OK
    if not args.json:
        _print_drain_plan(plan, out)
    question = (
        f"Move {format_bytes(plan.bytes_to_move)} of {len(plan.items)} process(es) off "
        f"node {plan.node}?"
    )
    if not args.yes and not _confirm(question, "drain", sys.stdin, sys.stderr):
        return EXIT_FAILED
    stop = threading.Event()
    progress = _drain_progress_line(sys.stderr) if sys.stderr.isatty() and not args.json else None
    try:
        with _ctrl_c_stops(stop, True):
            report = source.drain(plan, on_progress=progress, cancel=stop)
    except MigrationRefused as exc:  # its attempt could not be recorded: nothing moved
        if progress is not None:
            sys.stderr.write("\r" + " " * 70 + "\r")
        print(f"numatui: refused: {visible(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    if progress is not None:
        sys.stderr.write("\r" + " " * 70 + "\r")
    if source.audit_warning:
        print(f"numatui: {visible(source.audit_warning)}", file=sys.stderr)
    if args.json:
        _write_json(_drain_report_json(report), out)
    else:
        _print_drain_report(report, out)
    if report.stopped or report.plan.bytes_staying:
        return EXIT_PARTIAL
    outcomes = {result.outcome for result in report.results}
    if outcomes <= {MigrationOutcome.ALL_MOVED, MigrationOutcome.NOTHING_TO_MOVE}:
        return EXIT_OK
    return EXIT_PARTIAL


def _drain_progress_line(err: TextIO) -> Callable[[DrainProgress], None]:
    lock = threading.Lock()

    def show(progress: DrainProgress) -> None:
        with lock:
            err.write(
                f"\r  {progress.elapsed_s:6.1f} s  {progress.processes_done}/"
                f"{progress.processes_total} processes  {format_bytes(progress.bytes_moved)} "
                f"of {format_bytes(progress.bytes_total)}   "
            )
            err.flush()

    return show


COMMANDS: dict[str, Callable[[argparse.Namespace, LiveSource, TextIO], int]] = {
    "nodes": cmd_nodes,
    "ps": cmd_ps,
    "migrate": cmd_migrate,
    "log": cmd_log,
    "groups": cmd_groups,
    "export": cmd_export,
    "drain": cmd_drain,
}


class Terminated(BaseException):
    """SIGTERM or SIGHUP before the app could handle it itself: leave like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def blocking_terminal(fds: Sequence[int] = (0, 1, 2)) -> Iterator[None]:
    """The terminal in blocking mode while the app runs, as it was afterwards.

    Textual writes each frame from a thread that dies on the first EAGAIN: on a
    terminal left non-blocking (virtme-ng's guest console is opened O_NONBLOCK) a
    frame larger than the tty can take at once kills it, and the app freezes with
    its frame half drawn (issue 12: the demo guest's emulated serial port).
    """
    changed: list[int] = []
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.isatty(fd) and not os.get_blocking(fd):
                os.set_blocking(fd, True)
                changed.append(fd)
    try:
        yield
    finally:
        for fd in changed:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, False)


def start_first_read(source: LiveSource) -> FirstRead:
    """Read the nodes and every process while Textual loads (numatui/first_read.py): the
    first frame shows the nodes, and the first table needs no scan of its own."""
    from numatui.first_read import FirstRead

    return FirstRead(source, first_scan=lambda: source.scan(None, nodes_only=True, beside_ui=True))


SPLASH_WAIT_S = 0.05
"""How long the splash waits for the nodes (read in ~2 ms) before it says "reading"."""


def run_tui(source: LiveSource) -> int:
    """The app's exit status: 0, 130 for Ctrl-C, 128+N for signal N, 1 after a crash.

    Until the app installs its own handlers (numatui/app.py, on load) SIGTERM and
    SIGHUP unwind like Ctrl-C, so Textual's clean-up gives the terminal back.
    """
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        first_read = start_first_read(source)
        from numatui.splash import Splash

        with blocking_terminal():
            # The nodes while Textual loads (numatui/splash.py): read in ~2 ms.
            first_read.wait(SPLASH_WAIT_S)
            splash = Splash.for_terminal()
            app: NumatuiApp | None = None
            try:
                # Drawn inside the try: a Ctrl-C from its first byte on withdraws it.
                if splash is not None:
                    splash.draw(first_read.ready())
                from numatui.app import NumatuiApp  # Textual loads only for the UI

                app = NumatuiApp(source, first_read=first_read)
                app.run()
            finally:
                # Textual's driver, once started, gives the terminal back on every way out;
                # leaving the alternate screen twice would move the cursor (xterm, tmux).
                if splash is not None and (app is None or not app.took_terminal):
                    splash.withdraw()
        # Textual prints a crash's traceback itself, after the terminal is restored.
        return app.return_code or EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def __getattr__(name: str) -> Any:
    """`cli.LiveSource` loads the kernel layer on first use (tests replace it)."""
    if name == "LiveSource":
        return _live_source()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _live_source() -> type[LiveSource]:
    """The source class, imported only once the arguments are good: `--version` and a
    usage error never load the kernel layer. A `LiveSource` set on this module wins."""
    replaced = globals().get("LiveSource")
    if replaced is not None:
        return cast("type[LiveSource]", replaced)
    from numatui.kernel.live import LiveSource

    return LiveSource


EXIT_INTERRUPTED = 130
_OUTPUT_ERRNOS = {errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _usage_error(exc: UsageError) -> int:
    print(f"numatui: {exc}", file=sys.stderr)
    print("usage: see `numatui --help`", file=sys.stderr)
    return EXIT_USAGE


def _scan_pid_count(args: argparse.Namespace) -> int:
    """How many pids `ps` will read, if that is known before anything loads; else 0.

    Every process under the proc root without --pid or --cgroup (cgroup members are
    read later, from the cgroup)."""
    if args.command != "ps" or args.cgroup is not None:
        return 0
    if args.pid:
        return len(_flat_pids(args.pid))
    try:
        return sum(1 for name in os.listdir(args.proc_root) if name.isdigit())
    except OSError:
        return 0


def _joined_pid_options(argv: Sequence[str]) -> list[str]:
    """`--pid 1 --pid 2 ...` as `--pid 1 2 ...`: the same pids (`--pid` extends one list).

    argparse looks for the next option among all the options' positions at every
    option, so repeated options cost quadratic time: 2,000 `--pid`s took 121 ms to
    parse and 4,000 took 323 ms, against 2.5 and 4.8 ms as one `--pid`. Only a
    `--pid` right after a pid word and before another is dropped (a last `--pid` with
    no word of its own stays, for argparse to refuse); `--` ends the rewriting."""
    out: list[str] = []
    in_pids = False  # after `--pid` and only its words so far
    for i, word in enumerate(argv):
        if word == "--":
            out.extend(argv[i:])
            break
        if word == "--pid":
            has_word = i + 1 < len(argv) and not argv[i + 1].startswith("-")
            if in_pids and out[-1] != "--pid" and has_word:
                continue
            in_pids = True
        elif word.startswith("-"):
            in_pids = False
        out.append(word)
    return out


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_joined_pid_options(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:  # a --pid that is no pid
        return _usage_error(exc)
    pid_count = _scan_pid_count(args)
    if not pid_count:
        return _run_parsed(args)
    from numatui.kernel import scan_pool

    try:
        # The scan's helper processes load numatui while this one does.
        scan_pool.warm_up(pid_count)
        return _run_parsed(args)
    finally:
        scan_pool.stop_warm()


def _run_parsed(args: argparse.Namespace) -> int:
    try:
        audit_path = None if args.audit_log is None else Path(os.path.abspath(args.audit_log))
        with _live_source()(
            sys_root=args.sys_root, proc_root=args.proc_root, audit_path=audit_path
        ) as source:
            if args.command is None:
                return run_tui(source)
            return COMMANDS[args.command](args, source, sys.stdout)
    except UsageError as exc:
        return _usage_error(exc)
    except NumatuiError as exc:
        print(f"numatui: {exc}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Every way out is an exit status and at most one line: never a traceback for
    Ctrl-C, a signal, or an output that is closed (`| head`) or full (`> /dev/full`)."""
    try:
        try:
            code = _run(argv)
        except SystemExit as exc:  # --help and --version
            code = exc.code if isinstance(exc.code, int) else EXIT_OK
        sys.stdout.flush()  # here, not at interpreter exit, so a full disk is reported
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated as exc:
        return 128 + exc.signum
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and exc.errno not in _OUTPUT_ERRNOS:
            raise
        # Whatever is still buffered goes nowhere: the interpreter's own flush must not fail.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        reason = "the reader went away" if isinstance(exc, BrokenPipeError) else exc.strerror
        with contextlib.suppress(OSError):
            print(f"numatui: cannot write the output: {reason}", file=sys.stderr)
        return EXIT_FAILED

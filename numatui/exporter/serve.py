"""Running the exporter: an HTTP /metrics endpoint, a node_exporter textfile, or one print.

Exit status: 0 after a clean stop (SIGINT/SIGTERM) or a printed exposition,
1 when the address cannot be listened on or the directory cannot be written
(the message says why; nothing was half-written).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from numatui.exporter.collector import ExportLimits, NumaCollector
from numatui.exporter.options import DEFAULT_LISTEN, parse_listen
from numatui.kernel.live import LiveSource

TEXTFILE_NAME = "numatui.prom"
EXIT_OK = 0
EXIT_FAILED = 1


class ExportError(Exception):
    """A clear reason the exporter cannot run (exit status 1)."""


def build_registry(collector: NumaCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def write_textfile(directory: Path, registry: CollectorRegistry) -> Path:
    """Write `directory/numatui.prom` whole or not at all (temporary file, then rename).

    The temporary name does not end in `.prom`, so node_exporter never reads
    it; a file left by a crash is removed on the next failed or good write of
    this process only (its name is unique), and is harmless to the collector.
    """
    data = generate_latest(registry)
    target = directory / TEXTFILE_NAME
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".numatui.", suffix=".prom.tmp")
    except OSError as exc:
        raise ExportError(f"cannot write to {directory}: {exc.strerror or exc}") from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o644)  # node_exporter usually runs as another user
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)  # replaces a symlink itself, never writes through it
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def serve(
    collector: NumaCollector, host: str, port: int, stop: threading.Event, err: TextIO
) -> int:
    registry = build_registry(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ExportError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
    try:
        collector.prime()  # a scrape arriving meanwhile waits for it, then is a cheap refresh
        shown = f"[{host}]" if ":" in host else host
        print(f"numatui: serving http://{shown}:{server.server_port}/metrics", file=err, flush=True)
        while not stop.wait(1.0):  # a timeout keeps the wait responsive to signals
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return EXIT_OK


def textfile_loop(
    collector: NumaCollector,
    directory: Path,
    interval: float,
    stop: threading.Event,
    err: TextIO,
) -> int:
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a directory")
    registry = build_registry(collector)
    target = write_textfile(directory, registry)  # the first failure is fatal: a wrong DIR
    print(f"numatui: writing {target} every {interval:g} s", file=err, flush=True)
    while not stop.wait(interval):
        try:
            write_textfile(directory, registry)
        except ExportError as exc:
            # Later failures (a full disk) keep the last good file and try again next time.
            print(f"numatui: {exc}", file=err, flush=True)
    return EXIT_OK


def run_export(args: argparse.Namespace, source: LiveSource, out: TextIO) -> int:
    err = sys.stderr
    collector = NumaCollector(
        source,
        ExportLimits(min_bytes=args.min_bytes, top=args.top),
        audit_path=args.audit_log,
    )
    try:
        if args.once:
            out.write(generate_latest(build_registry(collector)).decode("utf-8"))
            out.flush()
            return EXIT_OK
        stop = threading.Event()
        with _stop_on_signals(stop):
            if args.textfile is not None:
                return textfile_loop(collector, args.textfile, args.interval, stop, err)
            listen = args.listen or parse_listen(DEFAULT_LISTEN)
            return serve(collector, listen.host, listen.port, stop, err)
    except ExportError as exc:
        print(f"numatui: {exc}", file=err)
        return EXIT_FAILED

"""The nodes read while Textual is still loading, so the app's first frame shows them.

Importing Textual and building the first screen take ~150-250 ms of the interpreter;
reading the topology and privileges takes ~2 ms. Started before that import, in a
daemon thread of its own (a quit never waits for it), the read is done by the time
the first screen mounts, and that screen shows the nodes instead of a blank summary.
The app's first refresh still reads both again; this read only fills the first frame.

Given `first_scan`, the thread then makes the app's first scan too, so reading every
process overlaps Textual's import instead of following the first frame. The source
reads it in helper processes at a lower priority (`scan(beside_ui=True)`): a scan in
this process's threads would take the GIL from the import and delay the first frame.
The app's first refresh takes this scan instead of making its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from numatui.model.memory import ProcessScan
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.source import DataSource


class FirstRead:
    """The source's privileges and topology, read once in a background thread."""

    def __init__(
        self, source: DataSource, first_scan: Callable[[], ProcessScan] | None = None
    ) -> None:
        self._done = threading.Event()
        self._result: tuple[Privileges, Topology] | None = None
        self._first_scan = first_scan
        self._scan_done = threading.Event()
        self._scan: ProcessScan | None = None
        if first_scan is None:
            self._scan_done.set()
        self._thread = threading.Thread(
            target=self._read, args=(source,), name="numatui-first-read", daemon=True
        )
        self._thread.start()

    def _read(self, source: DataSource) -> None:
        try:
            self._result = (source.privileges(), source.topology())
        except Exception:  # the first refresh reads again and reports it
            self._result = None
        finally:
            self._done.set()
        if self._first_scan is None:
            return
        try:
            self._scan = self._first_scan()
        except Exception:  # the first refresh scans again and reports it
            self._scan = None
        finally:
            self._scan_done.set()

    def wait(self, timeout_s: float) -> bool:
        """Whether the read has ended (read or failed) within `timeout_s`."""
        return self._done.wait(timeout_s)

    def ready(self) -> tuple[Privileges, Topology] | None:
        """What was read, if it is done by now; never waits (called on the UI thread)."""
        return self._result if self._done.is_set() else None

    def take_scan(self) -> ProcessScan | None:
        """The first scan, waiting for it (a refresh worker's thread, never the UI's);
        None if there was none or it failed. Given once: later refreshes scan themselves."""
        self._scan_done.wait()
        scan, self._scan = self._scan, None
        return scan

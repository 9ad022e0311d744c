"""Fixtures shared by the unit tests that need real processes of a certain shape."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from numatui.kernel.migration import MigrationJob
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.migration import MigrationPlan
from numatui.model.privileges import Privileges
from tests.tooling.privileges import ROOT

FOUR_NODES_SYS = Path(__file__).parents[1] / "fixtures" / "four_nodes" / "sys"

MAPPINGS_CHILD = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
c = ctypes
libc.mmap.restype = c.c_void_p
libc.mmap.argtypes = [c.c_void_p, c.c_size_t, c.c_int, c.c_int, c.c_int, c.c_long]
libc.mprotect.argtypes = [c.c_void_p, c.c_size_t, c.c_int]
pages = int(sys.argv[1])
base = libc.mmap(None, pages * 4096, 3, 0x22, -1, 0)
ctypes.memset(base, 1, pages * 4096)
for i in range(0, pages, 2):
    libc.mprotect(base + i * 4096, 4096, 1)  # alternate protections: one VMA per page
print(base, flush=True)
time.sleep(300)
"""


@pytest.fixture
def process_with_mappings() -> Iterator[Callable[[int], tuple[int, int]]]:
    """`start(wanted)` -> (pid, pages) of a child with about `pages` mappings, one per page.

    `pages` is `wanted` capped 2,000 below vm.max_map_count. Children are killed at the end.
    """
    children: list[subprocess.Popen[str]] = []

    def start(wanted: int) -> tuple[int, int]:
        pages = min(wanted, int(Path("/proc/sys/vm/max_map_count").read_text()) - 2000)
        child = subprocess.Popen(
            [sys.executable, "-c", MAPPINGS_CHILD, str(pages)], stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None
        child.stdout.readline()
        return child.pid, pages

    yield start
    for child in children:
        child.kill()
        child.wait()


@pytest.fixture(autouse=True)
def _private_audit_trail(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the trail's default is /var/log/numatui: tests never write to the machine's own."""
    directory = tmp_path_factory.mktemp("audit")
    directory.chmod(0o700)
    monkeypatch.setenv("NUMATUI_AUDIT_LOG", str(directory / "audit.jsonl"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that sleeps: its memory does not change while a test reads it."""
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


@pytest.fixture
def job_on_sleeper(sleeper: subprocess.Popen[bytes]) -> Callable[..., MigrationJob]:
    """`make(stoppable=False, privileges=ROOT, **job_options)` -> a MigrationJob moving the
    sleeper from node 0 to node 1 on the recorded four-node machine: a stoppable plan (in
    chunks) or not, with those privileges; options (`migrate`, `move_pages`, `scanner`,
    ...) go to the job.

    Its reads of the process are real; the kernel call is whatever `migrate` or
    `move_pages` the test gives.
    """

    def make(
        *, stoppable: bool = False, privileges: Privileges = ROOT, **options: Any
    ) -> MigrationJob:
        process = ProcessScanner().read_process(sleeper.pid)
        plan = MigrationPlan(
            sleeper.pid,
            frozenset({0}),
            frozenset({1}),
            ((0, 1),),
            process_start_time=process.start_time,
            stoppable=stoppable,
        )
        options.setdefault("scanner", ProcessScanner())
        return MigrationJob(
            plan,
            privileges=privileges,
            topology_reader=TopologyReader(sys_root=FOUR_NODES_SYS),
            **options,
        )

    return make

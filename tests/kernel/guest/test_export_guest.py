"""`numatui export --once` on the real multi-node kernel: nodes, a workload, a migration.

Every value is compared with what the kernel itself says (/sys node files,
/proc/PID/numa_maps, /proc/vmstat), read here with independent code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_external_migration_guest import kernel_node_bytes

pytestmark = [pytest.mark.guest]

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[3]
NODE_SYSFS = Path("/sys/devices/system/node")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def meminfo(node: int) -> dict[str, int]:
    text = (NODE_SYSFS / f"node{node}" / "meminfo").read_text()
    return {
        m[1]: int(m[2]) * 1024 for m in re.finditer(r"^Node \d+ (\w+):\s+(\d+) kB$", text, re.M)
    }


def node_list(name: str) -> set[int]:
    from numatui.kernel.nodemask import parse_kernel_list

    return set(parse_kernel_list((NODE_SYSFS / name).read_text()))


def numatui(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "numatui", *argv],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def export(tmp_path: Path) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    proc = numatui(tmp_path, "export", "--once", "--min-bytes", "0", "--top", "100000")
    assert proc.returncode == 0, proc.stderr
    out: Samples = {}
    for family in text_string_to_metric_families(proc.stdout):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(data: Samples, name: str, **labels: str) -> float:
    found = [
        v for (n, key), v in data.items() if n == name and all(kv in key for kv in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def process_bytes(data: Samples, pid: int) -> dict[int, int]:
    return {
        int(dict(key)["node"]): int(v)
        for (n, key), v in data.items()
        if n == "numatui_process_resident_bytes" and ("pid", str(pid)) in key
    }


@pytest.mark.four_nodes
def test_export_nodes_match_sys(tmp_path: Path) -> None:
    online = node_list("online")
    with_cpu, with_memory = node_list("has_cpu"), node_list("has_memory")
    before = {n: meminfo(n) for n in online}
    data = export(tmp_path)
    after = {n: meminfo(n) for n in online}
    assert with_memory - with_cpu, "this guest should have memory-only nodes"
    for node in sorted(online):
        n = str(node)
        assert value(data, "numatui_node_memory_total_bytes", node=n) == after[node]["MemTotal"]
        # Free memory moves on its own (the exporter's own interpreter allocates): it must lie
        # between the two reads around the export, give or take what that start-up takes.
        low = min(before[node]["MemFree"], after[node]["MemFree"]) - 16 * MIB
        high = max(before[node]["MemFree"], after[node]["MemFree"]) + 16 * MIB
        assert low <= value(data, "numatui_node_memory_free_bytes", node=n) <= high
        assert value(data, "numatui_node_has_cpu", node=n) == (node in with_cpu)
        assert value(data, "numatui_node_has_memory", node=n) == (node in with_memory)
        memory_only = node in with_memory and node not in with_cpu
        assert value(data, "numatui_node_memory_only", node=n) == memory_only
        for pool in (NODE_SYSFS / f"node{node}" / "hugepages").glob("hugepages-*kB"):
            size = int(pool.name[len("hugepages-") : -2]) * 1024
            total = int((pool / "nr_hugepages").read_text()) * size
            got = value(data, "numatui_node_hugepages_bytes", node=n, page_size_bytes=str(size))
            assert got == total


@pytest.mark.four_nodes
def test_export_follows_a_workload_and_its_migration(
    tmp_path: Path, workload: Callable[..., Any]
) -> None:
    memory_only = sorted(node_list("has_memory") - node_list("has_cpu"))
    source, target = memory_only[0], memory_only[-1] if len(memory_only) > 1 else 0
    work = workload(kind="private", size_mib=32, node=source)
    before = export(tmp_path)
    assert process_bytes(before, work.pid) == {
        n: kernel_node_bytes(work.pid).get(n, 0) for n in sorted(node_list("has_memory"))
    }
    assert process_bytes(before, work.pid)[source] >= 32 * MIB
    assert value(before, "numatui_migrations_total", outcome="all_moved") == 0

    moved = numatui(tmp_path, "migrate", str(work.pid), str(source), str(target), "--yes", "--json")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    report = json.loads(moved.stdout)

    after = export(tmp_path)
    kernel = kernel_node_bytes(work.pid)
    assert process_bytes(after, work.pid) == {
        n: kernel.get(n, 0) for n in sorted(node_list("has_memory"))
    }
    assert process_bytes(after, work.pid)[target] >= 32 * MIB
    assert value(after, "numatui_migrations_total", outcome="all_moved") == 1
    assert value(after, "numatui_migrated_bytes_total") == report["bytes_moved"] >= 32 * MIB
    pages = 32 * MIB // 4096
    assert (
        value(after, "numatui_vmstat_pgmigrate_success_total")
        - value(before, "numatui_vmstat_pgmigrate_success_total")
        >= pages
    )

"""Draining a node: the rules' choice of targets, the plan over a recorded machine, the CLI.

That a drain really empties a node is proven in the guest
(tests/kernel/guest/test_drain_guest.py); here: which node each process may go to,
refusals with their stable codes, and the dry run's shape.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from numatui import rules
from numatui.cli import EXIT_FAILED, EXIT_OK, main
from numatui.kernel import audit
from numatui.kernel.drain import leftovers
from numatui.model.drain import DrainItem, DrainPlan
from numatui.model.findings import RuleCode
from numatui.model.memory import ProcessMemory
from numatui.model.migration import MigrationOutcome, MigrationPlan, MigrationResult
from numatui.model.node_bytes import frozen_map
from numatui.model.topology import HugePagePool, Node, Topology
from tests.tooling.privileges import ROOT
from tests.tooling.terminal_input import TerminalInput

MIB = 1024 * 1024
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _node(
    node_id: int,
    *,
    memory: bool = True,
    free: int = 900,
    online: bool = True,
    distances: dict[int, int] | None = None,
) -> Node:
    return Node(
        id=node_id,
        online=online,
        has_cpu=node_id < 2,
        has_memory=memory,
        mem_total=1024 * MIB if memory else 0,
        mem_free=free * MIB if memory else 0,
        distances=frozen_map(distances or {}),
    )


# Node 3 is drained: 4 is nearest (but fullest), 0 and 1 farther, 2 memory-less, 5 offline.
TOPOLOGY = Topology(
    nodes=(
        _node(0, free=500),
        _node(1, free=800),
        _node(2, memory=False),
        _node(3, distances={0: 20, 1: 20, 3: 10, 4: 14, 5: 30}),
        _node(4, free=100),
        _node(5, online=False, memory=False),
    )
)


def _process(
    pid: int = 42, on_3: int = 50 * MIB, mems: frozenset[int] = frozenset()
) -> ProcessMemory:
    return ProcessMemory(
        pid=pid,
        name="worker",
        user="alice",
        cmdline="worker",
        rss_bytes=on_3,
        threads=1,
        node_bytes=frozen_map({3: on_3}),
        mems_allowed=mems,
    )


def test_targets_nearest_first_then_most_free_never_memoryless_offline_or_itself() -> None:
    assert rules.drain_targets(3, TOPOLOGY, _process(), ROOT) == (4, 1, 0)


def test_targets_stay_inside_the_process_cpuset() -> None:
    assert rules.drain_targets(3, TOPOLOGY, _process(mems=frozenset({0, 3})), ROOT) == (0,)


def test_pick_takes_the_first_with_room_and_counts_what_was_planned_before() -> None:
    free = {0: 500 * MIB, 1: 800 * MIB, 4: 100 * MIB}
    assert rules.pick_drain_target(3, _process(on_3=50 * MIB), (4, 1, 0), free) == (4, None)
    big = _process(on_3=300 * MIB)
    assert rules.pick_drain_target(3, big, (4, 1, 0), free) == (1, None)
    huge = _process(on_3=2000 * MIB)  # fits nowhere: the most room, and the verdict says
    assert rules.pick_drain_target(3, huge, (4, 1, 0), free) == (1, None)


def test_a_process_its_cpuset_keeps_on_the_node_is_not_planned_and_says_why() -> None:
    bound = _process(mems=frozenset({3}))
    candidates = rules.drain_targets(3, TOPOLOGY, bound, ROOT)
    target, why = rules.pick_drain_target(3, bound, candidates, {})
    assert target is None and why is not None
    assert why.code is RuleCode.DRAIN_NO_TARGET and "cpuset allows only node 3" in why.message


@pytest.mark.parametrize(
    ("node", "code"),
    [(9, RuleCode.NODE_MISSING), (2, RuleCode.DRAIN_NO_MEMORY)],
)
def test_drain_refusals(node: int, code: RuleCode) -> None:
    refusal = rules.drain_refusal(node, TOPOLOGY)
    assert refusal is not None and refusal.code is code


def test_the_only_memory_node_is_refused() -> None:
    single = Topology(nodes=(_node(0), _node(1, memory=False)))
    refusal = rules.drain_refusal(0, single)
    assert refusal is not None and refusal.code is RuleCode.SINGLE_MEMORY_NODE
    assert "only node with memory" in refusal.message
    assert rules.drain_refusal(3, TOPOLOGY) is None


def test_leftovers_name_each_reason_from_the_node_meminfo() -> None:
    plan = MigrationPlan(
        7, frozenset({1}), frozenset({0}), ((1, 0),), (10 * MIB,), process_name="w"
    )
    result = MigrationResult(
        plan,
        MigrationOutcome.PARTLY_MOVED,
        frozen_map({1: 10 * MIB}),
        frozen_map({1: 2 * MIB}),
        3,
        1.0,
        explanations=("2.0 MiB of 10.0 MiB stayed on node 1",),
    )
    stays = rules.Finding(RuleCode.DRAIN_NO_TARGET, "process 8 (bound) cannot leave node 1")
    drain = DrainPlan(
        1,
        (
            DrainItem(7, "w", 10 * MIB, 0, plan),
            DrainItem(8, "bound", 5 * MIB, None, None, stays),
        ),
    )
    topology = Topology(
        nodes=(
            Node(0, True, True, True, hugepages=(HugePagePool(2 * MIB, 4, 0),)),
            Node(1, True, True, True, hugepages=(HugePagePool(2 * MIB, 4, 1),)),
        )
    )
    meminfo = {"Slab": 3 * MIB, "KernelStack": MIB, "FilePages": 9 * MIB, "Shmem": 4 * MIB}
    left = {item.reason: item for item in leftovers(drain, (result,), meminfo, topology)}
    assert left["process"].bytes == 2 * MIB and "process 7 (w)" in left["process"].detail
    assert left["not_planned"].bytes == 5 * MIB
    assert left["kernel"].bytes == 4 * MIB
    assert left["page_cache"].bytes == 5 * MIB and left["shmem"].bytes == 4 * MIB
    assert left["hugetlb"].bytes == 6 * MIB and "the targets have 0 free" in left["hugetlb"].detail


def _roots(name: str) -> list[str]:
    return [
        "--sys-root",
        str(FIXTURES / name / "sys"),
        "--proc-root",
        str(FIXTURES / name / "proc"),
    ]


@pytest.fixture(autouse=True)
def _own_audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))


def test_dry_run_on_a_recorded_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_roots("four_nodes"), "drain", "1", "--dry-run", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] and data["refusal"] is None and data["processes"]
    sys_nodes = FIXTURES / "four_nodes/sys/devices/system/node"
    with_memory = (sys_nodes / "has_memory").read_text().strip()
    for item in data["processes"]:
        assert item["bytes_on_node"] > 0
        assert item["target"] != 1
        if item["target"] is not None:
            meminfo = (sys_nodes / f"node{item['target']}" / "meminfo").read_text()
            assert "MemTotal" in meminfo
    assert data["bytes_to_move"] + data["bytes_staying"] == sum(
        item["bytes_on_node"] for item in data["processes"]
    )
    assert with_memory
    assert main([*_roots("four_nodes"), "drain", "1", "--dry-run"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "Drain node 1" in text and "total:" in text


def test_refused_drains_exit_1_and_are_audited(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*_roots("four_nodes"), "drain", "9", "--dry-run"]) == EXIT_FAILED
    assert "does not exist" in capsys.readouterr().err
    assert main([*_roots("no_numa"), "drain", "0", "--yes"]) == EXIT_FAILED
    log = Path(os.environ["NUMATUI_AUDIT_LOG"])  # the conftest's private trail
    lines = log.read_text().splitlines()
    assert [json.loads(line)["outcome"] for line in lines] == ["failed", "failed"]
    # `numatui log` reads them back (pid 0, the drain's node), not skipped as malformed.
    got = audit.read_tail(log)
    assert got.skipped == 0
    assert [(e.pid, e.drain, e.process) for e in got.entries] == [
        (0, 9, "drain of node 9"),
        (0, 0, "drain of node 0"),
    ]
    # A recorded machine is never changed.
    assert main([*_roots("four_nodes"), "drain", "1", "--yes"]) == EXIT_FAILED
    assert "recorded snapshot" in capsys.readouterr().err


def test_a_drain_without_yes_asks_and_a_no_or_no_terminal_moves_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Path(os.environ["NUMATUI_AUDIT_LOG"])  # the conftest's private trail
    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    assert main([*_roots("four_nodes"), "drain", "1"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert re.search(r"Move \S+ \S+ of \d+ process\(es\) off node 1\? \[y/N\] $", err), err
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # a pipe: never taken as a yes
    assert main([*_roots("four_nodes"), "drain", "1"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "refusing to drain without confirmation: pass --yes" in err and "[y/N]" not in err
    assert not log.exists() or log.read_text() == ""  # nothing attempted, nothing recorded

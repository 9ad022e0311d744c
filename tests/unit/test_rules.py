"""One set of migration rules: the dialog's target list, `validate` and the CLI agree.

`numatui.rules` decides; these tests hold every face to the same answer, with the
stable code and the errno the kernel would give.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from numatui import cli, rules
from numatui.errors import MigrationRefused
from numatui.kernel.migration import validate
from numatui.kernel.privileges import read_privileges
from numatui.model.findings import RuleCode
from numatui.model.memory import ProcessMemory
from numatui.model.node_bytes import frozen_map
from numatui.model.privileges import Privileges
from numatui.model.topology import Node, Topology
from numatui.screens.common import machine_migration_blocker, target_choices
from tests.tooling.privileges import ROOT

MIB = 1024 * 1024
USER = Privileges(uid=1000, is_root=False, cap_sys_nice=False, cap_sys_ptrace=False)
FOUR_NODES_SYS = Path(__file__).parents[1] / "fixtures" / "four_nodes" / "sys"


def _node(node_id: int, *, online: bool = True, memory: bool = True, free: int = 900) -> Node:
    return Node(
        id=node_id,
        online=online,
        has_cpu=node_id < 2,
        has_memory=memory,
        mem_total=1024 * MIB if memory else 0,
        mem_free=free * MIB if memory else 0,
    )


# 0-3 memory (3 full), 4 memory-less, 5 offline.
TOPOLOGY = Topology(
    nodes=(
        _node(0),
        _node(1),
        _node(2),
        _node(3, free=0),
        _node(4, memory=False),
        _node(5, online=False, memory=False),
    )
)


def _process(mems: frozenset[int] = frozenset({0, 1})) -> ProcessMemory:
    return ProcessMemory(
        pid=4242,
        name="worker",
        user="alice",
        cmdline="worker",
        rss_bytes=0,
        threads=1,
        node_bytes=frozen_map({0: 64 * MIB}),
        mems_allowed=mems,
    )


@pytest.mark.parametrize("privileges", [ROOT, USER], ids=["root", "user"])
@pytest.mark.parametrize("mems", [frozenset({0, 1}), frozenset()], ids=["cpuset", "no-cpuset"])
def test_the_dialogs_targets_are_exactly_what_validate_accepts(
    privileges: Privileges, mems: frozenset[int]
) -> None:
    process = _process(mems)
    for choice in target_choices(TOPOLOGY, process, privileges):
        target = choice.node.id
        if target == 0:
            continue  # the source itself: a no-op, not a choice to judge
        try:
            plan = validate(
                4242,
                {0},
                {target},
                TOPOLOGY,
                process,
                privileges,
                caller_mems=TOPOLOGY.with_memory,
                process_uid=privileges.uid,
            )
        except MigrationRefused as exc:
            assert not choice.enabled, (target, str(exc))
            assert choice.refusal is not None and exc.code == str(choice.refusal.code)
            assert exc.errno_name == choice.refusal.errno_name
            continue
        assert choice.enabled, (target, choice.reason)
        # What the dialog notes beside an accepted node, the plan warns about too.
        if choice.warning is not None:
            assert choice.warning.code in {w.code for w in plan.warnings} | {
                RuleCode.TARGET_NO_FREE_MEMORY
            }


def test_as_root_a_target_outside_the_cpuset_is_offered_with_a_warning() -> None:
    choices = {c.node.id: c for c in target_choices(TOPOLOGY, _process(), ROOT)}
    assert choices[2].enabled
    assert choices[2].warning is not None
    assert choices[2].warning.code is RuleCode.TARGET_OUTSIDE_CPUSET
    as_user = {c.node.id: c for c in target_choices(TOPOLOGY, _process(), USER)}
    assert not as_user[2].enabled and as_user[2].refusal is not None
    assert as_user[2].refusal.code is RuleCode.TARGET_OUTSIDE_CPUSET
    assert as_user[2].refusal.errno_name == "EPERM"
    # A full node is accepted by the kernel (pages that do not fit stay): offered, noted.
    anywhere = {c.node.id: c for c in target_choices(TOPOLOGY, _process(frozenset()), USER)}
    assert anywhere[3].enabled and anywhere[3].warning is not None
    assert anywhere[3].warning.code is RuleCode.TARGET_NO_FREE_MEMORY


@pytest.mark.parametrize(
    ("to_nodes", "kwargs", "code", "errno_name"),
    [
        ({9}, {}, RuleCode.NODE_MISSING, "EINVAL"),
        ({5}, {}, RuleCode.TARGET_OFFLINE, "EINVAL"),
        ({4}, {}, RuleCode.TARGET_NO_MEMORY, "EINVAL"),
        (set(), {}, RuleCode.NO_TARGET, "EINVAL"),
        ({2}, {"privileges": USER, "process": _process()}, RuleCode.TARGET_OUTSIDE_CPUSET, "EPERM"),
        ({1}, {"privileges": USER, "process_uid": 0}, RuleCode.OTHER_USER, "EPERM"),
        ({2}, {"caller_mems": frozenset({0, 1})}, RuleCode.TARGET_OUTSIDE_NUMATUI_CPUSET, "EINVAL"),
        ({1}, {"process": None}, RuleCode.PROCESS_GONE, "ESRCH"),
        (
            {1},
            {"process": dataclasses.replace(_process(), is_kernel_thread=True)},
            RuleCode.KERNEL_THREAD,
            "EINVAL",
        ),
    ],
)
def test_refusals_carry_a_stable_code_and_the_kernels_errno(
    to_nodes: set[int], kwargs: dict[str, object], code: RuleCode, errno_name: str
) -> None:
    arguments: dict[str, object] = {
        "privileges": ROOT,
        "process": _process(frozenset()),
        "caller_mems": TOPOLOGY.with_memory,
        "process_uid": None,
    }
    arguments.update(kwargs)
    privileges = arguments["privileges"]
    assert isinstance(privileges, Privileges)
    uid = arguments["process_uid"]
    with pytest.raises(MigrationRefused) as refused:
        validate(
            4242,
            {0},
            to_nodes,
            TOPOLOGY,
            arguments["process"],  # type: ignore[arg-type]
            privileges,
            caller_mems=arguments["caller_mems"],  # type: ignore[arg-type]
            process_uid=privileges.uid if uid is None else uid,  # type: ignore[arg-type]
        )
    assert refused.value.code == str(code)
    assert refused.value.errno_name == errno_name


def test_the_machine_rule_is_the_one_can_migrate_and_the_screens_use() -> None:
    single = Topology(nodes=(_node(0), _node(1, memory=False)))
    no_numa = Topology(nodes=(_node(0),), numa_available=False, unavailable_reason="no /sys")
    for topology in (TOPOLOGY, single, no_numa):
        refusal = rules.machine_refusal(topology)
        assert topology.can_migrate is (refusal is None)
        blocker = machine_migration_blocker(topology)
        assert (blocker is None) is (refusal is None)
        if refusal is not None:
            assert blocker is not None and refusal.message in blocker
    single_refusal = rules.machine_refusal(single)
    assert single_refusal is not None and single_refusal.code is RuleCode.SINGLE_MEMORY_NODE


# ---------------------------------------------------------------- the CLI renders the codes


def _migrate_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    rc = cli.main(["--sys-root", str(FOUR_NODES_SYS), "migrate", *argv, "--json", "--yes"])
    return rc, json.loads(capsys.readouterr().out)


def test_migrate_json_gives_the_code_and_errno_of_an_up_front_refusal(
    capsys: pytest.CaptureFixture[str], sleeper: subprocess.Popen[bytes]
) -> None:
    # The recorded 4-node /sys over this host's /proc, where every process (numatui too)
    # may use node 0 only: node 1 is outside the sleeper's cpuset (EPERM without
    # CAP_SYS_NICE) and, with it, outside numatui's own (EINVAL), as the kernel checks.
    rc, out = _migrate_json(capsys, str(sleeper.pid), "0", "1")
    assert rc == cli.EXIT_FAILED
    expected = (
        ("EINVAL", "target_outside_numatui_cpuset")
        if read_privileges().cap_sys_nice
        else ("EPERM", "target_outside_cpuset")
    )
    error = out["error"]
    assert isinstance(error, dict)
    assert (error["errno"], error["code"]) == expected, error
    gone = subprocess.Popen(["true"])
    gone.wait()
    rc, out = _migrate_json(capsys, str(gone.pid), "0", "1")
    assert rc == cli.EXIT_FAILED
    error = out["error"]
    assert isinstance(error, dict)
    assert error["errno"] == "ESRCH" and error["code"] == "process_gone"


def test_ps_takes_several_pids_in_every_spelling(
    capsys: pytest.CaptureFixture[str], sleeper: subprocess.Popen[bytes]
) -> None:
    me = os.getpid()
    spellings = [
        ["--pid", str(me), str(sleeper.pid)],
        ["--pid", f"{me},{sleeper.pid}"],
        ["--pid", str(me), "--pid", str(sleeper.pid)],
        ["--pid", f"{me},", str(sleeper.pid), "--pid", str(me)],
    ]
    for spelling in spellings:
        assert cli.main(["ps", "--json", "--sort", "pid", *spelling]) == cli.EXIT_OK, spelling
        pids = [p["pid"] for p in json.loads(capsys.readouterr().out)["processes"]]
        assert pids == sorted({me, sleeper.pid}), spelling
    assert cli.main(["ps", "--pid", "1,x"]) == cli.EXIT_USAGE
    assert cli.main(["ps", "--pid", ","]) == cli.EXIT_USAGE

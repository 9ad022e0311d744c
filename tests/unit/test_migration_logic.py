"""What the migration job decides, from snapshots: refusals, the plan, and the verdict.

`validate` and `decide_outcome` are pure decisions over typed snapshots; they are
tested here with hand-built ones. That the kernel then does what the plan says is
proven in the multi-node guest (tests/kernel/guest/test_migration_guest.py).
"""

from __future__ import annotations

import dataclasses
import errno
import subprocess
from types import MappingProxyType
from typing import Any

import pytest

from numatui.errors import MigrationRefused
from numatui.kernel import syscalls
from numatui.kernel.migration import Observation, decide_outcome, tolerance_bytes, validate
from numatui.kernel.plan import kernel_pairs, predict_node_bytes
from numatui.model.findings import RuleCode
from numatui.model.memory import MemoryKind, ProcessMemory
from numatui.model.migration import MigrationOutcome, MigrationPlan, MigrationResult, planned_bytes
from numatui.model.node_bytes import frozen_map
from numatui.model.privileges import Privileges
from numatui.model.topology import HugePagePool, Node, Topology
from tests.tooling.privileges import ROOT

MIB = 1024 * 1024
KIB = 1024
PAGE = 4096
USER = Privileges(uid=1000, is_root=False, cap_sys_nice=False, cap_sys_ptrace=False)


def _node(node_id: int, *, online: bool = True, memory: bool = True, free: int = 900 * MIB) -> Node:
    return Node(
        id=node_id,
        online=online,
        has_cpu=node_id < 2,
        has_memory=memory,
        mem_total=1024 * MIB if memory else 0,
        mem_free=free if memory else 0,
    )


# Nodes 0-3 online with memory, 4 memory-less, 5 offline.
TOPOLOGY = Topology(
    nodes=(
        _node(0),
        _node(1),
        _node(2),
        _node(3),
        _node(4, memory=False),
        _node(5, online=False, memory=False),
    ),
    possible=frozenset(range(6)),
    numa_balancing=False,
)
ALL_MEMS = frozenset({0, 1, 2, 3})


def _process(
    node_bytes: dict[int, int] | None = None,
    *,
    shared: dict[int, int] | None = None,
    mems: frozenset[int] = ALL_MEMS,
    kernel_thread: bool = False,
    huge: dict[int, int] | None = None,
) -> ProcessMemory:
    kinds = {MemoryKind.HUGE: frozen_map(huge)} if huge else {}
    return ProcessMemory(
        pid=4242,
        name="worker",
        user="alice",
        cmdline="worker",
        rss_bytes=0,
        threads=1,
        node_bytes=frozen_map(node_bytes or {0: 64 * MIB}),
        kind_bytes=MappingProxyType(kinds),
        shared_bytes=frozen_map(shared),
        mems_allowed=mems,
        is_kernel_thread=kernel_thread,
    )


def _plan(
    from_nodes: set[int],
    to_nodes: set[int],
    *,
    process: ProcessMemory | None = None,
    privileges: Privileges = ROOT,
    topology: Topology = TOPOLOGY,
    caller_mems: frozenset[int] = ALL_MEMS,
    process_uid: int | None = None,
) -> MigrationPlan:
    return validate(
        4242,
        from_nodes,
        to_nodes,
        topology,
        process if process is not None else _process(),
        privileges,
        caller_mems=caller_mems,
        process_uid=privileges.uid if process_uid is None else process_uid,
    )


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("to_nodes", "reason"),
    [
        ({9}, r"node 9 does not exist \(this machine has 0-5\)"),
        ({5}, r"node 5 is offline: pick one of 0-4"),
        ({4}, r"node 4 has no memory .*pick one of 0-3"),
        (set(), r"no target node"),
    ],
)
def test_bad_targets_are_refused(to_nodes: set[int], reason: str) -> None:
    with pytest.raises(MigrationRefused, match=reason):
        _plan({0}, to_nodes)


def test_no_numa_and_single_node_are_refused() -> None:
    no_numa = Topology(nodes=(_node(0),), numa_available=False, unavailable_reason="no /sys")
    with pytest.raises(MigrationRefused, match=r"NUMA is not available here \(no /sys\)"):
        _plan({0}, {1}, topology=no_numa)
    single = Topology(nodes=(_node(0), _node(1, memory=False)))
    with pytest.raises(MigrationRefused, match="single NUMA node with memory"):
        _plan({0}, {1}, topology=single)


def test_missing_process_and_kernel_thread_are_refused() -> None:
    with pytest.raises(MigrationRefused, match="process 4242 does not exist"):
        validate(4242, {0}, {1}, TOPOLOGY, None, ROOT, caller_mems=ALL_MEMS, process_uid=0)
    with pytest.raises(MigrationRefused, match="kernel thread"):
        _plan({0}, {1}, process=_process(kernel_thread=True))


def test_exited_pid_is_refused_when_its_owner_is_looked_up() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(MigrationRefused, match=f"process {child.pid} does not exist"):
        validate(
            child.pid,
            {0},
            {1},
            TOPOLOGY,
            _process(),
            ROOT,
            caller_mems=ALL_MEMS,
        )


def test_another_users_process_needs_ptrace_capability() -> None:
    with pytest.raises(MigrationRefused, match=r"another user.*CAP_SYS_PTRACE"):
        _plan({0}, {1}, privileges=USER, process_uid=0)
    plan = _plan({0}, {1}, privileges=ROOT, process_uid=1000)
    assert plan.pairs == ((0, 1),)


def test_target_outside_the_process_cpuset() -> None:
    inside_0_1 = _process(mems=frozenset({0, 1}))
    with pytest.raises(MigrationRefused, match=r"node 2 is outside process 4242's cpuset.*EPERM"):
        _plan({0}, {2}, process=inside_0_1, privileges=USER)
    plan = _plan({0}, {2}, process=inside_0_1, privileges=ROOT)  # CAP_SYS_NICE may
    assert plan.pairs == ((0, 2),)
    assert any("outside the process's cpuset" in w.message for w in plan.warnings)
    assert RuleCode.TARGET_OUTSIDE_CPUSET in {w.code for w in plan.warnings}


def test_target_outside_numatuis_own_cpuset() -> None:
    with pytest.raises(MigrationRefused, match=r"outside numatui's own cpuset.*EINVAL"):
        _plan({0}, {2}, caller_mems=frozenset({0, 1}))
    # Part of the targets allowed: the kernel pairs with what is left, and so does the preview.
    plan = _plan({0, 1}, {2, 3}, caller_mems=frozenset({0, 1, 2}))
    assert plan.pairs == kernel_pairs({0, 1}, {2})
    assert any("moves memory only to 2" in w.message for w in plan.warnings)


# ---------------------------------------------------------------- plans


def test_noop_requests_are_plans_without_pairs() -> None:
    assert _plan(set(), {1}).is_noop
    assert _plan({0, 1}, {1, 0}).is_noop
    assert _plan({1}, {1}).pairs == ()


def test_plan_pairs_and_bytes_follow_the_kernel() -> None:
    process = _process({0: 10 * MIB, 1: 20 * MIB, 2: 30 * MIB, 3: 40 * MIB})
    plan = _plan({0, 1, 2, 3}, {1, 3}, process=process)
    assert plan.pairs == kernel_pairs({0, 1, 2, 3}, {1, 3})
    assert plan.bytes_per_pair == tuple(process.node_bytes[s] for s, _ in plan.pairs)
    plan = _plan({0, 1}, {2, 3}, process=process)
    assert set(plan.pairs) == {(0, 2), (1, 3)}
    assert plan.bytes_to_move == 30 * MIB


def test_shared_pages_stay_without_cap_sys_nice() -> None:
    process = _process({0: 64 * MIB, 1: 8 * MIB}, shared={0: 16 * MIB, 1: 8 * MIB})
    as_user = _plan({0}, {1}, process=process, privileges=USER)
    assert as_user.shared_bytes_staying == 16 * MIB
    assert any("16.0 MiB is shared" in w.message for w in as_user.warnings)
    assert [w.code for w in as_user.warnings] == [RuleCode.SHARED_PAGES_STAY]
    assert _plan({0}, {1}, process=process, privileges=ROOT).shared_bytes_staying == 0


def test_warnings_for_a_full_target_hugetlb_and_numa_balancing() -> None:
    topology = Topology(
        nodes=(_node(0), _node(1, free=10 * MIB)),
        numa_balancing=True,
    )
    process = _process({0: 64 * MIB}, huge={0: 4 * MIB})
    plan = _plan({0}, {1}, process=process, topology=topology)
    text = "\n".join(w.message for w in plan.warnings)
    assert [w.code for w in plan.warnings] == [
        RuleCode.TARGET_TOO_FULL,
        RuleCode.HUGETLB_NO_FREE_PAGE,
        RuleCode.NUMA_BALANCING,
    ]
    assert "node 1 has 10.0 MiB free for 64.0 MiB" in text
    assert "no free huge page" in text
    assert "automatic NUMA balancing is on" in text
    pool = (HugePagePool(size_bytes=2 * MIB, total=4, free=4),)
    with_pool = Topology(nodes=(_node(0), dataclasses.replace(_node(1), hugepages=pool)))
    assert not _plan({0}, {1}, process=process, topology=with_pool).warnings


# ---------------------------------------------------------------- the verdict


PLAN_0_TO_1 = MigrationPlan(
    pid=4242,
    from_nodes=frozenset({0}),
    to_nodes=frozenset({1}),
    pairs=((0, 1),),
    bytes_per_pair=(64 * MIB,),
)


def _seen(before: dict[int, int], after: dict[int, int], **kw: Any) -> Observation:
    return Observation(before=frozen_map(before), after=frozen_map(after), **kw)


def test_tolerance_is_half_a_percent_and_at_least_32_pages() -> None:
    assert tolerance_bytes(0, PAGE) == 32 * PAGE
    assert tolerance_bytes(512 * MIB, PAGE) == 512 * MIB // 200


def test_everything_moved() -> None:
    outcome, error, notes = decide_outcome(
        PLAN_0_TO_1, _seen({0: 64 * MIB}, {0: 0, 1: 64 * MIB}, pages_not_moved=0), ROOT
    )
    assert (outcome, error, notes) == (MigrationOutcome.ALL_MOVED, None, ())


def test_pages_that_appeared_during_the_move_are_tolerated_and_said() -> None:
    outcome, _, notes = decide_outcome(
        PLAN_0_TO_1, _seen({0: 64 * MIB}, {0: 8 * PAGE, 1: 64 * MIB}, pages_not_moved=0), ROOT
    )
    assert outcome is MigrationOutcome.ALL_MOVED
    assert "touched while it ran" in notes[0]


def test_kernel_counting_unmoved_pages_is_partial_even_within_tolerance() -> None:
    outcome, _, notes = decide_outcome(
        PLAN_0_TO_1, _seen({0: 64 * MIB}, {0: 3 * PAGE, 1: 64 * MIB}, pages_not_moved=3), ROOT
    )
    assert outcome is MigrationOutcome.PARTLY_MOVED
    assert any("3 page(s) it could not move" in n for n in notes)


def test_return_value_zero_with_shared_pages_left_is_partial() -> None:
    seen = _seen(
        {0: 64 * MIB},
        {0: 16 * MIB, 1: 48 * MIB},
        pages_not_moved=0,
        shared_on_sources_after=16 * MIB,
    )
    outcome, error, notes = decide_outcome(PLAN_0_TO_1, seen, USER)
    assert outcome is MigrationOutcome.PARTLY_MOVED and error is None
    assert notes[0] == "16.0 MiB of 64.0 MiB stayed on node 0"
    assert "without CAP_SYS_NICE" in notes[1]


def test_full_target_is_named() -> None:
    seen = _seen(
        {0: 64 * MIB},
        {0: 40 * MIB, 1: 24 * MIB},
        pages_not_moved=0,
        target_free_after=frozen_map({1: 5 * MIB}),
        target_total=frozen_map({1: 1024 * MIB}),
    )
    outcome, _, notes = decide_outcome(PLAN_0_TO_1, seen, ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED
    assert any("node 1 is full (5.0 MiB free of 1.0 GiB)" in n for n in notes)


def test_unexplained_leftover_and_numa_balancing() -> None:
    seen = _seen({0: 64 * MIB}, {0: 10 * MIB, 1: 54 * MIB}, pages_not_moved=0)
    _, _, notes = decide_outcome(PLAN_0_TO_1, seen, ROOT)
    assert notes[-1] == "the kernel did not say why (it returned 0)"
    seen = _seen({0: 64 * MIB}, {0: 10 * MIB, 1: 54 * MIB}, pages_not_moved=0, numa_balancing=True)
    _, _, notes = decide_outcome(PLAN_0_TO_1, seen, ROOT)
    assert "automatic NUMA balancing is on" in notes[-1]


def test_failed_call_that_changed_nothing_is_failed() -> None:
    seen = _seen(
        {0: 64 * MIB},
        {0: 64 * MIB},
        pages_not_moved=None,
        error=syscalls.syscall_error("migrate_pages", errno.EPERM),
    )
    outcome, error, _ = decide_outcome(PLAN_0_TO_1, seen, USER)
    assert outcome is MigrationOutcome.FAILED
    assert error is not None and error.errno_name == "EPERM" and "CAP_SYS_PTRACE" in error.message


def test_enomem_after_moving_part_is_partial() -> None:
    seen = _seen(
        {0: 64 * MIB},
        {0: 40 * MIB, 1: 24 * MIB},
        pages_not_moved=None,
        error=syscalls.syscall_error("migrate_pages", errno.ENOMEM),
    )
    outcome, error, notes = decide_outcome(PLAN_0_TO_1, seen, ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED
    assert error is not None and error.errno_name == "ENOMEM"
    assert any("stopped with ENOMEM after moving 24.0 MiB" in n for n in notes)


def test_process_exiting_reports_only_what_was_seen_to_move() -> None:
    last_look = _seen(
        {0: 64 * MIB}, {0: 44 * MIB, 1: 20 * MIB}, pages_not_moved=None, process_exited=True
    )
    outcome, error, notes = decide_outcome(PLAN_0_TO_1, last_look, ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED
    assert error is not None and error.errno_name == "ESRCH"
    assert "20.0 MiB had left node 0 at the last look" in notes[0]
    nothing_seen = _seen({0: 64 * MIB}, {0: 64 * MIB}, pages_not_moved=None, process_exited=True)
    outcome, error, _ = decide_outcome(PLAN_0_TO_1, nothing_seen, ROOT)
    assert outcome is MigrationOutcome.FAILED and error is not None


def test_nothing_on_the_sources_is_nothing_to_move() -> None:
    outcome, error, _ = decide_outcome(
        PLAN_0_TO_1, _seen({1: 64 * MIB}, {1: 64 * MIB}, pages_not_moved=0), ROOT
    )
    assert (outcome, error) == (MigrationOutcome.NOTHING_TO_MOVE, None)


def test_a_source_refilled_by_an_earlier_pair_is_judged_on_what_it_held() -> None:
    # 0-3 -> 1,3 with unequal weights: 1 and 3 are targets and stay; 0 and 2 both go to 1.
    plan = MigrationPlan(
        pid=4242,
        from_nodes=frozenset({0, 1, 2, 3}),
        to_nodes=frozenset({1, 3}),
        pairs=kernel_pairs({0, 1, 2, 3}, {1, 3}),
    )
    before = {0: 8 * MIB, 1: 8 * MIB, 2: 8 * MIB, 3: 8 * MIB}
    assert set(plan.pairs) == {(0, 1), (2, 1)}
    after = {0: 0, 1: 24 * MIB, 2: 0, 3: 8 * MIB}
    outcome, _, _ = decide_outcome(plan, _seen(before, after, pages_not_moved=0), ROOT)
    assert outcome is MigrationOutcome.ALL_MOVED


# ---------------------------------------------------------------- overlapping pairs


def _plan_for_sets(from_nodes: set[int], to_nodes: set[int]) -> MigrationPlan:
    pairs = kernel_pairs(from_nodes, to_nodes)
    return MigrationPlan(
        pid=4242, from_nodes=frozenset(from_nodes), to_nodes=frozenset(to_nodes), pairs=pairs
    )


def test_a_node_both_source_and_target_is_judged_by_where_the_pairs_put_its_bytes() -> None:
    """The reported defect: `0-1 → 1-2`, every page where the kernel's pairs put it."""
    plan = _plan_for_sets({0, 1}, {1, 2})
    assert plan.pairs == ((1, 2), (0, 1))
    before = {0: 8 * MIB, 1: 8 * MIB, 2: 8 * MIB, 3: 8 * MIB}
    after = {0: 0, 1: 8 * MIB, 2: 16 * MIB, 3: 8 * MIB}
    outcome, error, notes = decide_outcome(plan, _seen(before, after, pages_not_moved=0), ROOT)
    assert (outcome, error, notes) == (MigrationOutcome.ALL_MOVED, None, ())
    result = MigrationResult(plan, outcome, frozen_map(before), frozen_map(after), 0, 1.0)
    assert result.bytes_moved == 16 * MIB and result.bytes_misplaced == 0
    # Node 1's own pages did not leave: 8 MiB is not where the plan puts it.
    stuck = {0: 0, 1: 16 * MIB, 2: 8 * MIB, 3: 8 * MIB}
    outcome, _, notes = decide_outcome(plan, _seen(before, stuck, pages_not_moved=0), ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED
    assert notes[0] == "8.0 MiB of 16.0 MiB stayed on node 1"


@pytest.mark.parametrize(
    ("from_nodes", "to_nodes"),
    [
        ({0, 1}, {1, 2}),
        ({0, 1, 2, 3}, {1, 3}),
        ({0, 2}, {1, 2}),
        ({0, 1}, {1, 0}),
        ({1, 2}, {0, 1}),
        ({0, 1, 2}, {3}),
        ({3}, {0, 1, 2}),
    ],
)
def test_all_moved_exactly_when_every_byte_is_where_the_pairs_put_it(
    from_nodes: set[int], to_nodes: set[int]
) -> None:
    plan = _plan_for_sets(from_nodes, to_nodes)
    before = {0: 8 * MIB, 1: 12 * MIB, 2: 16 * MIB, 3: 20 * MIB}
    exact = predict_node_bytes(before, plan.pairs)
    expected = MigrationOutcome.ALL_MOVED if plan.pairs else MigrationOutcome.NOTHING_TO_MOVE
    if plan.pairs:
        assert decide_outcome(plan, _seen(before, exact, pages_not_moved=0), ROOT)[0] is expected
    # Nothing moved at all: partial whenever the plan moves anything.
    if planned_bytes(before, plan.pairs):
        seen = _seen(before, before, pages_not_moved=0)
        outcome, _, notes = decide_outcome(plan, seen, ROOT)
        assert outcome is MigrationOutcome.PARTLY_MOVED, notes


# The stoppable guest case `0,1,3,4 → 1,4`: pairs (3,1),(0,1); node 4 is in neither pair.
PLAN_ONTO_1 = _plan_for_sets({0, 1, 3, 4}, {1, 4})
BEFORE_ONTO_1 = {0: 2 * MIB, 1: 4 * MIB, 3: 14 * MIB, 4: 4 * MIB}


def test_pages_gone_from_a_destination_while_a_node_no_pair_names_grew_is_not_all_moved() -> None:
    assert PLAN_ONTO_1.pairs == ((3, 1), (0, 1))
    after = {0: 0, 1: 20 * MIB - 600 * KIB, 3: 0, 4: 4 * MIB + 768 * KIB}
    outcome, error, notes = decide_outcome(
        PLAN_ONTO_1, _seen(BEFORE_ONTO_1, after, pages_not_moved=0), ROOT
    )
    assert outcome is MigrationOutcome.PARTLY_MOVED and error is None
    # Nothing stayed on a source: the verdict must not say so.
    assert not any("stayed" in n for n in notes), notes
    assert notes[0].startswith("600.0 KiB is not on node 1 where the pairs put it, and node 4")
    assert "768.0 KiB more than before" in notes[0]


def test_memory_new_on_a_node_no_pair_names_is_said_as_new_not_moved() -> None:
    after = {0: 0, 1: 20 * MIB, 3: 0, 4: 5 * MIB}
    outcome, _, notes = decide_outcome(
        PLAN_ONTO_1, _seen(BEFORE_ONTO_1, after, pages_not_moved=0), ROOT
    )
    assert outcome is MigrationOutcome.ALL_MOVED
    assert notes == (
        "node 4, which no pair names, holds 1.0 MiB more than before: memory the process "
        "allocated there while it ran, not moved pages",
    )


def test_memory_freed_on_a_destination_is_all_moved_and_said() -> None:
    after = {0: 0, 1: 19 * MIB, 3: 0, 4: 4 * MIB}
    outcome, _, notes = decide_outcome(
        PLAN_ONTO_1, _seen(BEFORE_ONTO_1, after, pages_not_moved=0), ROOT
    )
    assert outcome is MigrationOutcome.ALL_MOVED
    assert notes == (
        "node 1 holds 1.0 MiB less than the pairs leave there: memory the process freed "
        "(or the kernel reclaimed) while it ran",
    )


def test_displacement_within_the_tolerance_is_all_moved() -> None:
    after = {0: 0, 1: 20 * MIB - 8 * PAGE, 3: 0, 4: 4 * MIB + 8 * PAGE}
    outcome, _, notes = decide_outcome(
        PLAN_ONTO_1, _seen(BEFORE_ONTO_1, after, pages_not_moved=0), ROOT
    )
    assert (outcome, notes) == (MigrationOutcome.ALL_MOVED, ())

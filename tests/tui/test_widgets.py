"""Pure pieces of the UI, tested without an app: units, charts, bars, history, reasons."""

from __future__ import annotations

from dataclasses import replace

from numatui.history import NodeHistory
from numatui.model.node_bytes import frozen_map
from numatui.screens.common import (
    NOT_PRIVILEGED,
    is_misplaced,
    machine_migration_blocker,
    privilege_note,
    process_migration_blocker,
    target_choices,
)
from numatui.units import human_bytes, human_count_rate, node_list
from numatui.widgets.chart import BLOCKS, spark
from numatui.widgets.node_bars import bar
from tests.tooling.privileges import ROOT, USER

from .fakes import (
    GiB,
    MiB,
    four_nodes,
    make_processes,
    make_topology,
    no_numa,
    single_node,
    two_nodes,
)


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.50 KiB"
    assert human_bytes(300 * MiB) == "300 MiB"
    assert human_bytes(int(1.5 * GiB)) == "1.50 GiB"
    assert human_bytes(-2 * MiB) == "-2.00 MiB"
    assert human_count_rate(12_345) == "12.3k/s"


def test_spark_scales_to_ceiling_and_pads() -> None:
    assert spark([], 4) == "    "
    assert spark([0, 50, 100], 5, ceiling=100) == "  " + BLOCKS[0] + BLOCKS[4] + BLOCKS[8]
    # Only the last `width` values are shown.
    assert spark([100, 0, 0], 2) == BLOCKS[0] * 2
    # A tiny non-zero value still shows.
    assert spark([1, 1000], 2)[0] == BLOCKS[1]
    assert spark([5], 0) == ""


def test_bar_fills_in_eighths() -> None:
    assert bar(0.0, 4) == "    "
    assert bar(1.0, 4) == "████"
    assert bar(0.5, 4) == "██  "
    assert bar(1 / 8, 4) == "▌   "
    assert bar(1 / 16, 4) == "▎   "
    assert bar(2.0, 3) == "███"


def test_history_rates_are_deltas_over_time() -> None:
    history = NodeHistory(capacity=3)
    for tick in range(5):
        history.add(two_nodes(tick))
    assert len(history) == 3
    # Fake counters: pgmigrate_success = 10000 + 150 t^2, samples 2 s apart.
    assert history.rate_series("pgmigrate_success") == [
        (150 * (t * t - (t - 1) ** 2)) / 2 for t in (2, 3, 4)
    ]
    # numa_hit per node grows 5000 + 700*index per tick: both nodes summed / 2 s.
    assert history.latest_rates is not None
    assert history.latest_rates.numa_hit == (5000 + 5700) / 2
    assert history.used_series(0) == [two_nodes(t).nodes[0].mem_used for t in (2, 3, 4)]
    assert history.node_rate_series(1, "numa_miss") == [65 / 2, 65 / 2]


def test_history_ignores_counter_reset_and_same_instant() -> None:
    history = NodeHistory()
    history.add(two_nodes(5))
    history.add(two_nodes(5))  # same taken_at: replaced, no rate
    assert history.rate_series("numa_hit") == []
    history.add(replace(two_nodes(6), vm=replace(two_nodes(6).vm, pgmigrate_success=0)))
    assert history.rate_series("pgmigrate_success") == [0.0]


def test_node_list_writes_kernel_ranges() -> None:
    assert node_list((0, 1, 2, 3, 8, 10, 11)) == "0-3,8,10-11"
    assert node_list(()) == "-"


def test_machine_blockers_say_why() -> None:
    assert machine_migration_blocker(two_nodes()) is None
    single = machine_migration_blocker(single_node())
    assert single is not None and "single NUMA node" in single
    container = machine_migration_blocker(no_numa())
    assert container is not None and "container" in container
    assert privilege_note(ROOT) is None
    note = privilege_note(USER)
    assert note is not None and NOT_PRIVILEGED in note and "hidepid" not in note
    hidden = privilege_note(replace(USER, processes_hidden=True))
    assert hidden is not None and "hidepid" in hidden and NOT_PRIVILEGED in hidden
    assert privilege_note(replace(ROOT, processes_hidden=True)) == (
        "/proc hides other users' processes (hidepid): only yours are listed"
    )


def test_target_choices_disable_with_reason() -> None:
    topology = make_topology([0, 1, 2, 3], memory_only=[2], offline=[3], cpu_only=[1])
    process = replace(make_processes(topology, 1)[0], mems_allowed=frozenset({0, 1, 3}))
    reasons = {c.node.id: c.reason for c in target_choices(topology, process, USER)}
    assert reasons[0] is None
    assert reasons[1] == "no memory"
    assert reasons[2] is not None and "outside allowed nodes" in reasons[2]
    assert reasons[3] == "offline"
    assert {c.reason for c in target_choices(single_node(), process, USER)} == {"single node"}
    # With CAP_SYS_NICE the kernel takes a node outside the cpuset: offered, with a note.
    as_root = {c.node.id: c for c in target_choices(topology, process, ROOT)}
    assert as_root[2].enabled and as_root[2].warning is not None


def test_misplaced_needs_low_locality_and_size() -> None:
    processes = make_processes(four_nodes(), 30)
    misplaced = [p for p in processes if is_misplaced(p)]
    assert misplaced, "the fake machine must contain misplaced processes"
    for p in misplaced:
        assert p.locality is not None and p.locality < 0.5
    small = replace(misplaced[0], node_bytes=frozen_map({n: 4096 for n in misplaced[0].node_bytes}))
    assert not is_misplaced(small)
    kthread = next(p for p in processes if p.is_kernel_thread)
    assert process_migration_blocker(kthread) is not None

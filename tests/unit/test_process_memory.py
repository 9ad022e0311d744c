"""ProcessMemory's derived figures: cached per object, never carried to a changed copy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from numatui.model.memory import ProcessMemory
from numatui.model.node_bytes import frozen_map

THREE_LOCAL = frozen_map({0: 3 * 4096, 1: 4096})


def _process(
    node_bytes: Mapping[int, int] = THREE_LOCAL, cpu_nodes: frozenset[int] = frozenset({0})
) -> ProcessMemory:
    return ProcessMemory(
        pid=7,
        name="worker",
        user="root",
        cmdline="",
        rss_bytes=0,
        threads=1,
        node_bytes=node_bytes,
        cpu_nodes=cpu_nodes,
    )


def test_locality_and_total_are_computed_from_the_fields() -> None:
    process = _process()
    assert process.numa_bytes == 4 * 4096
    assert process.locality == 0.75
    assert _process(cpu_nodes=frozenset()).locality is None
    assert _process(node_bytes=frozen_map({})).locality is None


def test_a_replaced_copy_computes_its_own_figures() -> None:
    """The figures are cached on the object (a table row asks several times); a copy
    with other fields must not inherit the cache."""
    process = _process()
    assert (process.locality, process.numa_bytes) == (0.75, 4 * 4096)
    moved = replace(process, node_bytes=frozen_map({1: 4 * 4096}))
    assert (moved.locality, moved.numa_bytes) == (0.0, 4 * 4096)
    elsewhere = replace(process, cpu_nodes=frozenset({1}))
    assert elsewhere.locality == 0.25
    assert process.locality == 0.75  # the original keeps its own
    assert process == _process()  # the cache takes no part in equality

"""The kernel's source→destination pairing for migrate_pages(2), reproduced exactly.

`kernel_pairs` is `do_migrate_pages` from mm/mempolicy.c (v6.x) with the page moving
left out; `effective_targets` is the target-set trimming `kernel_migrate_pages` does
before it. Pure functions: a preview that the guest tests compare with the real kernel.
"""

from __future__ import annotations

from collections.abc import Iterable

# Where each node's pages end once the pairs ran in order: pure model functions, used by
# the preview here, the chunked mover and the verdict alike.
from numatui.model.migration import expected_after as predict_node_bytes
from numatui.model.migration import final_placement

__all__ = [
    "effective_targets",
    "final_placement",
    "kernel_pairs",
    "node_remap",
    "predict_node_bytes",
]


def _ascending(nodes: Iterable[int]) -> tuple[int, ...]:
    ordered = tuple(sorted(set(nodes)))
    if ordered and ordered[0] < 0:
        raise ValueError(f"negative node id {ordered[0]}")
    return ordered


def node_remap(node: int, old: Iterable[int], new: Iterable[int]) -> int:
    """The kernel's `node_remap(oldbit, old, new)` (`bitmap_bitremap`).

    If `node` is the n-th set node of `old`, return the (n % weight(new))-th node of
    `new`; a node not in `old`, or an empty `new`, maps to itself.
    """
    old_order = _ascending(old)
    new_order = _ascending(new)
    if node not in old_order or not new_order:
        return node
    return new_order[old_order.index(node) % len(new_order)]


def kernel_pairs(from_nodes: Iterable[int], to_nodes: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """The (source, destination) moves `do_migrate_pages` makes, in the kernel's order.

    `to_nodes` must already be the set the kernel pairs with: pass it through
    `effective_targets` first. Each pair moves every page then on `source`.
    """
    sources = _ascending(from_nodes)
    targets = _ascending(to_nodes)
    target_set = frozenset(targets)
    # Position of each source in `from`, and the kernel's weight test, never change.
    remap = {
        node: targets[index % len(targets)] if targets else node
        for index, node in enumerate(sources)
    }
    weights_differ = len(sources) != len(targets)

    remaining = set(sources)  # the kernel's `tmp`
    pairs: list[tuple[int, int]] = []
    while remaining:
        source: int | None = None
        dest = 0
        for candidate in sorted(remaining):  # for_each_node_mask walks ascending
            # With unequal weights a node that is also a target is never emptied.
            if weights_differ and candidate in target_set:
                continue
            mapped = remap[candidate]
            if mapped == candidate:
                continue
            source, dest = candidate, mapped
            # Prefer a move whose destination will not be emptied later; otherwise the
            # kernel settles for the last candidate it saw.
            if dest not in remaining:
                break
        if source is None:
            break
        remaining.discard(source)
        pairs.append((source, dest))
    return tuple(pairs)


def effective_targets(to_nodes: Iterable[int], caller_allowed: Iterable[int]) -> frozenset[int]:
    """The target set `do_migrate_pages` pairs with: `to` ∩ the caller's cpuset mems.

    `kernel_migrate_pages` trims the targets this way (nodes without memory are never in
    a cpuset's effective mems), and fails with EINVAL when nothing is left.
    """
    return frozenset(to_nodes) & frozenset(caller_allowed)

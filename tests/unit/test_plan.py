"""The kernel's migrate_pages pairing (do_migrate_pages), reproduced in numatui.kernel.plan."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from numatui.kernel.nodemask import NodeMask
from numatui.kernel.plan import (
    effective_targets,
    final_placement,
    kernel_pairs,
    node_remap,
    predict_node_bytes,
)

Pairs = tuple[tuple[int, int], ...]


def _bits(nodes: frozenset[int]) -> int:
    mask = 0
    for node in nodes:
        mask |= 1 << node
    return mask


def _reference_pairs(from_nodes: frozenset[int], to_nodes: frozenset[int]) -> Pairs:
    """A line-by-line transliteration of the kernel loop over integer bitmaps, written
    independently of plan.py so a slip in either shows up as a difference."""

    def weight(mask: int) -> int:
        return bin(mask).count("1")

    def isset(bit: int, mask: int) -> bool:
        return bool(mask >> bit & 1)

    def for_each(mask: int) -> list[int]:
        return [bit for bit in range(mask.bit_length()) if isset(bit, mask)]

    def bitremap(oldbit: int, old: int, new: int) -> int:  # lib/bitmap.c bitmap_bitremap
        w = weight(new)
        n = weight(old & ((1 << oldbit) - 1)) if isset(oldbit, old) else -1
        if n < 0 or w == 0:
            return oldbit
        return for_each(new)[n % w]

    frm, to = _bits(from_nodes), _bits(to_nodes)
    tmp = frm
    out: list[tuple[int, int]] = []
    while tmp:
        source, dest = -1, 0
        for s in for_each(tmp):
            if weight(frm) != weight(to) and isset(s, to):
                continue
            d = bitremap(s, frm, to)
            if s == d:
                continue
            source, dest = s, d
            if not isset(dest, tmp):
                break
        if source == -1:
            break
        tmp &= ~(1 << source)
        out.append((source, dest))
    return tuple(out)


# -- node_remap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "old", "new", "expected"),
    [
        (2, [2, 3, 4], [3, 4, 5], 3),
        (4, [2, 3, 4], [3, 4, 5], 5),
        (6, range(8), [3, 4, 5], 3),  # ordinal 6 % 3 = 0
        (7, range(8), [3, 4, 5], 4),
        (5, [0, 1], [2, 3], 5),  # not in old: maps to itself
        (0, [0, 1], [], 0),  # empty new: maps to itself
        (200, [3, 200], [1023], 1023),
        (1, [1, 0], [0, 1], 1),  # unordered input is a set
    ],
)
def test_node_remap(node: int, old: list[int], new: list[int], expected: int) -> None:
    assert node_remap(node, old, new) == expected


def test_node_remap_rejects_negative_ids() -> None:
    with pytest.raises(ValueError, match="negative"):
        node_remap(0, [0, -1], [1])


# -- kernel_pairs: worked examples ---------------------------------------------------------


@pytest.mark.parametrize(
    ("from_nodes", "to_nodes", "expected"),
    [
        # Equal weights: each node is emptied before anything lands on it.
        ([2, 3, 4], [3, 4, 5], ((4, 5), (3, 4), (2, 3))),
        # Unequal weights: sources that are also targets (3, 4, 5) stay put.
        (range(8), [3, 4, 5], ((7, 4), (6, 3), (2, 5), (1, 4), (0, 3))),
        # Swapping a set onto itself is the same set: nothing moves.
        ([0, 1], [1, 0], ()),
        ([0, 1], [0, 1], ()),
        # The 4-node guest.
        ([0, 1], [2, 3], ((0, 2), (1, 3))),
        (range(4), [1, 3], ((2, 1), (0, 1))),
        ([0], [1], ((0, 1),)),
        ([1], [0], ((1, 0),)),
        ([0, 1], [1, 2], ((1, 2), (0, 1))),
        ([0, 2], [1, 2], ((0, 1),)),  # 2 is its own image
        ([0], [0, 1], ()),  # 0 is also a target and weights differ
        ([], [0, 1], ()),
        ([0, 1], [], ()),
        # Sparse and high node ids.
        ([0, 64], [200, 1023], ((0, 200), (64, 1023))),
        ([1023], [0], ((1023, 0),)),
    ],
)
def test_kernel_pairs_examples(from_nodes: list[int], to_nodes: list[int], expected: Pairs) -> None:
    assert kernel_pairs(from_nodes, to_nodes) == expected
    assert kernel_pairs(NodeMask(from_nodes), NodeMask(to_nodes)) == expected
    assert _reference_pairs(frozenset(from_nodes), frozenset(to_nodes)) == expected


def test_kernel_pairs_everything_moves_in_the_shifted_set() -> None:
    pairs = kernel_pairs([2, 3, 4], [3, 4, 5])
    assert {source for source, _ in pairs} == {2, 3, 4}
    assert predict_node_bytes({2: 10, 3: 20, 4: 30}, pairs) == {2: 0, 3: 10, 4: 20, 5: 30}


def test_kernel_pairs_eight_onto_three_moves_only_non_targets() -> None:
    pairs = kernel_pairs(range(8), [3, 4, 5])
    assert sorted(source for source, _ in pairs) == [0, 1, 2, 6, 7]


# -- effective_targets ---------------------------------------------------------------------


def test_effective_targets_trims_to_caller_cpuset_mems() -> None:
    assert effective_targets([1, 2], [0, 1]) == frozenset({1})
    assert effective_targets([2, 3], [0, 1]) == frozenset()
    assert effective_targets(NodeMask([0, 3]), NodeMask(range(4))) == frozenset({0, 3})
    # Trimming changes the pairing: 0 -> {1, 2} would split; 2 is not allowed here.
    assert kernel_pairs([0, 1], effective_targets([2, 3], [0, 1, 3])) == ((0, 3), (1, 3))


# -- final_placement / predict_node_bytes --------------------------------------------------


def test_final_placement_follows_memory_that_moves_twice() -> None:
    # Pairs the kernel would not produce, but the rule must hold: 0's memory lands on 1,
    # then 1 is emptied onto 2, carrying it along.
    assert final_placement([(0, 1), (1, 2)]) == {0: 2, 1: 2, 2: 2}
    assert final_placement([(1, 2), (0, 1)]) == {0: 1, 1: 2, 2: 2}
    assert final_placement([(0, 1), (1, 0)]) == {0: 0, 1: 0}
    assert final_placement([]) == {}


def test_final_placement_of_kernel_examples() -> None:
    assert final_placement(kernel_pairs([2, 3, 4], [3, 4, 5])) == {2: 3, 3: 4, 4: 5, 5: 5}
    assert final_placement(kernel_pairs(range(4), [1, 3])) == {0: 1, 1: 1, 2: 1}


def test_predict_node_bytes() -> None:
    before = {0: 100, 1: 50, 2: 0, 7: 5}
    assert predict_node_bytes(before, kernel_pairs([0, 1], [2, 3])) == {
        0: 0,
        1: 0,
        2: 100,
        3: 50,
        7: 5,
    }
    assert predict_node_bytes(before, [(0, 1), (1, 2)]) == {0: 0, 1: 0, 2: 150, 7: 5}
    assert predict_node_bytes(before, ()) == before
    assert predict_node_bytes({}, [(4, 5)]) == {4: 0, 5: 0}
    assert before == {0: 100, 1: 50, 2: 0, 7: 5}  # input untouched


# -- properties ------------------------------------------------------------------------------

small_node_sets = st.frozensets(st.integers(min_value=0, max_value=11), max_size=12)
wide_node_sets = st.frozensets(st.integers(min_value=0, max_value=300), max_size=12)
node_set_pairs = st.one_of(
    st.tuples(small_node_sets, small_node_sets), st.tuples(wide_node_sets, wide_node_sets)
)


@given(node_set_pairs)
def test_kernel_pairs_match_the_bitmap_transliteration(
    sets: tuple[frozenset[int], frozenset[int]],
) -> None:
    from_nodes, to_nodes = sets
    assert kernel_pairs(from_nodes, to_nodes) == _reference_pairs(from_nodes, to_nodes)


@given(node_set_pairs)
def test_kernel_pairs_properties(sets: tuple[frozenset[int], frozenset[int]]) -> None:
    from_nodes, to_nodes = sets
    pairs = kernel_pairs(from_nodes, to_nodes)
    sources = [source for source, _ in pairs]

    assert all(source != dest for source, dest in pairs)
    assert len(sources) == len(set(sources))
    assert set(sources) <= from_nodes
    assert all(dest in to_nodes for _, dest in pairs)
    for source, dest in pairs:
        assert dest == node_remap(source, from_nodes, to_nodes)

    # Exactly the nodes whose image differs move, minus (when the weights differ) the
    # nodes that are also targets.
    weights_differ = len(from_nodes) != len(to_nodes)
    expected_sources = {
        node
        for node in from_nodes
        if node_remap(node, from_nodes, to_nodes) != node
        and not (weights_differ and node in to_nodes)
    }
    assert set(sources) == expected_sources

    # A node is emptied before it is filled whenever the kernel can: at each step, if
    # some eligible move lands outside the nodes still to be emptied, the chosen one does.
    remaining = set(from_nodes)
    for source, dest in pairs:
        can_avoid = any(
            node_remap(node, from_nodes, to_nodes) not in remaining
            for node in remaining & expected_sources
        )
        if can_avoid:
            assert dest not in remaining
        remaining.discard(source)

    # The kernel's order never moves memory twice: a destination is never a later source.
    for index, (_, dest) in enumerate(pairs):
        assert dest not in sources[index + 1 :]

    placement = final_placement(pairs)
    assert all(placement[source] in to_nodes for source in sources)
    assert set(placement) == {node for pair in pairs for node in pair}


@given(
    node_set_pairs,
    st.dictionaries(st.integers(0, 300), st.integers(0, 1 << 40), max_size=12),
)
@example(sets=(frozenset({0, 1, 2, 3}), frozenset({0, 1, 3, 4})), before={2: 1})
def test_predict_node_bytes_conserves_bytes_and_matches_placement(
    sets: tuple[frozenset[int], frozenset[int]], before: dict[int, int]
) -> None:
    from_nodes, to_nodes = sets
    pairs = kernel_pairs(from_nodes, to_nodes)
    after = predict_node_bytes(before, pairs)
    assert sum(after.values()) == sum(before.values())
    # A source ends empty unless a later move fills it again: the kernel empties a node
    # before it fills it ({0-3} -> {0,1,3,4} moves 3->4, then 2->3).
    assert all(
        after[source] == 0
        for i, (source, _) in enumerate(pairs)
        if source not in {dest for _, dest in pairs[i + 1 :]}
    )
    placement = final_placement(pairs)
    expected: dict[int, int] = {}
    for node, size in before.items():
        expected[placement.get(node, node)] = expected.get(placement.get(node, node), 0) + size
    assert {node: size for node, size in after.items() if size} == {
        node: size for node, size in expected.items() if size
    }


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=10))
def test_final_placement_agrees_with_byte_prediction_for_any_moves(
    pairs: list[tuple[int, int]],
) -> None:
    # Give each node a distinct power of two so the bytes say which node they came from.
    nodes = {node for pair in pairs for node in pair}
    before = {node: 1 << node for node in nodes}
    after = predict_node_bytes(before, pairs)
    placement = final_placement(pairs)
    for node in nodes:
        assert after[placement[node]] & (1 << node)

"""NodeMask, the kernel's range lists and bitmasks, and numactl's node-string grammar."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numatui.errors import NodeStringError
from numatui.kernel import nodemask
from numatui.kernel.nodemask import (
    ULONG_BITS,
    NodeMask,
    format_kernel_list,
    parse_kernel_list,
)

FOUR = range(4)
EIGHT = range(8)

node_ids = st.integers(min_value=0, max_value=4095)
node_sets = st.frozensets(node_ids, max_size=40)
small_sets = st.frozensets(st.integers(min_value=0, max_value=80), max_size=30)


# -- format_kernel_list / parse_kernel_list ------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ([], ""),
        ([0], "0"),
        ([0, 1], "0-1"),
        ([3, 2, 1, 0, 5], "0-3,5"),
        ([0, 2, 4], "0,2,4"),
        ([1, 1, 2], "1-2"),
        ([7, 64, 65, 66, 1023], "7,64-66,1023"),
    ],
)
def test_format_kernel_list(nodes: list[int], expected: str) -> None:
    assert format_kernel_list(nodes) == expected
    assert format_kernel_list(iter(nodes)) == expected


def test_format_kernel_list_rejects_negative_ids() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_kernel_list([0, -1])


@given(small_sets)
def test_kernel_list_round_trip(nodes: frozenset[int]) -> None:
    assert parse_kernel_list(format_kernel_list(nodes)) == nodes


# -- NodeMask as a set ----------------------------------------------------------------------


def test_nodemask_is_an_ordered_immutable_set() -> None:
    mask = NodeMask([5, 0, 3, 3])
    assert list(mask) == [0, 3, 5]
    assert len(mask) == 3
    assert 3 in mask
    assert 4 not in mask
    text_three: object = "3"
    assert text_three not in mask
    assert bool(mask)
    assert not NodeMask()
    assert len(NodeMask()) == 0
    with pytest.raises(AttributeError):
        mask._nodes = frozenset()
    with pytest.raises(AttributeError):
        del mask._ordered


def test_nodemask_equality_and_hash() -> None:
    assert NodeMask([1, 2]) == NodeMask([2, 1])
    assert NodeMask([1, 2]) != NodeMask([1])
    # Equal to the matching frozenset and set, hashed alike so dict keys agree.
    assert NodeMask([1, 2]) == frozenset({1, 2})
    assert frozenset({1, 2}) == NodeMask([1, 2])
    assert {1, 2} == NodeMask([1, 2])
    assert hash(NodeMask([1, 2])) == hash(frozenset({1, 2}))
    assert len({NodeMask([1, 2]), NodeMask([2, 1]), NodeMask([3])}) == 2
    assert NodeMask([1]) != [1]
    assert NodeMask([1]) != "1"


def test_nodemask_set_operations_return_nodemasks() -> None:
    a, b = NodeMask([0, 1, 2]), NodeMask([2, 3])
    results = {
        "or": a | b,
        "and": a & b,
        "sub": a - b,
        "xor": a ^ b,
        "ror": frozenset({9}) | a,
        "rand": frozenset({1, 9}) & a,
        "rsub": frozenset({1, 9}) - a,
        "mixed_or": a | frozenset({7}),
    }
    assert {name: type(value) for name, value in results.items()} == dict.fromkeys(
        results, NodeMask
    )
    assert results["or"] == NodeMask([0, 1, 2, 3])
    assert results["and"] == NodeMask([2])
    assert results["sub"] == NodeMask([0, 1])
    assert results["xor"] == NodeMask([0, 1, 3])
    assert results["ror"] == NodeMask([0, 1, 2, 9])
    assert results["rand"] == NodeMask([1])
    assert results["rsub"] == NodeMask([9])
    assert results["mixed_or"] == NodeMask([0, 1, 2, 7])
    assert NodeMask([2]) <= a
    assert a.isdisjoint(NodeMask([5]))


def test_nodemask_rejects_bad_ids() -> None:
    with pytest.raises(ValueError, match="negative node id -1"):
        NodeMask([0, -1])
    with pytest.raises(TypeError):
        NodeMask(["1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        NodeMask([True])
    with pytest.raises(TypeError):
        NodeMask([1.0])  # type: ignore[list-item]


def test_nodemask_str_repr_and_pickle() -> None:
    mask = NodeMask([0, 1, 2, 3, 5])
    assert str(mask) == "0-3,5"
    assert repr(mask) == "NodeMask('0-3,5')"
    assert repr(NodeMask()) == "NodeMask('')"
    assert pickle.loads(pickle.dumps(mask)) == mask


# -- the kernel's bitmask ----------------------------------------------------------------


def _kernel_reads(words: list[int], maxnode: int) -> frozenset[int]:
    """What get_nodes() in mm/mempolicy.c sees: it decrements maxnode, then copies
    that many bits. It must not need more words than we hand it."""
    bits_read = maxnode - 1
    words_needed = -(-bits_read // ULONG_BITS)
    assert words_needed <= len(words), "the kernel would read past our buffer"
    seen = set()
    for bit in range(bits_read):
        if words[bit // ULONG_BITS] >> (bit % ULONG_BITS) & 1:
            seen.add(bit)
    return frozenset(seen)


@pytest.mark.skipif(ULONG_BITS != 64, reason="literal words assume a 64-bit unsigned long")
@pytest.mark.parametrize(
    ("nodes", "nbits", "words", "maxnode"),
    [
        ([], None, [0], 65),
        ([0], None, [1], 65),
        ([0, 1, 2, 3], None, [0b1111], 65),
        ([63], None, [1 << 63], 65),
        ([64], None, [0, 1], 129),
        ([1, 200], None, [0b10, 0, 0, 1 << 8], 257),
        ([1023], None, [0] * 15 + [1 << 63], 1025),
        ([0], 1024, [1] + [0] * 15, 1025),
        ([0], 65, [1, 0], 129),
        ([100], 8, [0, 1 << 36], 129),
    ],
)
def test_to_kernel_words_on_64_bit(
    nodes: list[int], nbits: int | None, words: list[int], maxnode: int
) -> None:
    assert NodeMask(nodes).to_kernel(nbits) == (words, maxnode)
    assert NodeMask.from_kernel(words) == NodeMask(nodes)


def test_to_kernel_with_32_bit_unsigned_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodemask, "ULONG_BITS", 32)
    assert NodeMask([0, 40]).to_kernel() == ([1, 1 << 8], 65)
    assert NodeMask([64]).to_kernel() == ([0, 0, 1], 97)
    assert NodeMask.from_kernel([1, 1 << 8]) == NodeMask([0, 40])
    with pytest.raises(ValueError, match="32-bit"):
        NodeMask.from_kernel([1 << 32])


def test_to_kernel_rejects_negative_nbits() -> None:
    with pytest.raises(ValueError, match="nbits"):
        NodeMask([0]).to_kernel(-1)


def test_from_kernel_rejects_values_no_unsigned_long_holds() -> None:
    with pytest.raises(ValueError, match="word 1"):
        NodeMask.from_kernel([0, -1])
    with pytest.raises(ValueError, match="word 0"):
        NodeMask.from_kernel([1 << ULONG_BITS])
    assert NodeMask.from_kernel([]) == NodeMask()


@given(node_sets, st.one_of(st.none(), st.integers(min_value=0, max_value=5000)))
def test_to_kernel_round_trip_and_kernel_view(nodes: frozenset[int], nbits: int | None) -> None:
    mask = NodeMask(nodes)
    words, maxnode = mask.to_kernel(nbits)
    buffer_bits = len(words) * ULONG_BITS
    assert maxnode == buffer_bits + 1
    assert buffer_bits >= 64
    assert buffer_bits >= (nbits or 0)
    assert all(0 <= word < 1 << ULONG_BITS for word in words)
    # One word more would be a wasted word: the buffer is the smallest that fits.
    assert buffer_bits - ULONG_BITS < max(64, max(nodes, default=-1) + 1, nbits or 0)
    assert _kernel_reads(words, maxnode) == nodes
    assert NodeMask.from_kernel(words) == mask


# -- numactl's node-string grammar -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "all_nodes", "allowed", "expected"),
    [
        ("0-3,5", EIGHT, None, {0, 1, 2, 3, 5}),
        ("all", FOUR, None, {0, 1, 2, 3}),
        ("ALL", FOUR, None, {0, 1, 2, 3}),
        ("1,all", FOUR, None, {0, 1, 2, 3}),
        ("!0", FOUR, None, {1, 2, 3}),
        ("!1-2", FOUR, None, {0, 3}),
        ("1,1,1-2,2", FOUR, None, {1, 2}),
        ("  1 , 2 - 3 ", FOUR, None, {1, 2, 3}),
        ("\t0\n", FOUR, None, {0}),
        ("007", EIGHT, None, {7}),
        ("3-3", FOUR, None, {3}),
        # `+` counts within the allowed set, as numactl's relative node strings do.
        ("+0-1", EIGHT, [2, 5, 7], {2, 5}),
        ("+2", EIGHT, [7, 5, 2], {7}),
        ("+0,2", EIGHT, [2, 5, 7], {2, 7}),
        ("+all", EIGHT, [2, 5, 7], {2, 5, 7}),
        ("!+0", FOUR, [1, 3], {0, 2, 3}),
        ("! + 1", FOUR, [1, 3], {0, 1, 2}),
        ("+1", FOUR, None, {1}),
        # Sparse node ids: a range takes the existing nodes between its ends.
        ("0-16", [0, 8, 16, 200], None, {0, 8, 16}),
        ("200", [0, 8, 16, 200], None, {200}),
        ("!0", [0, 8, 16, 200], None, {8, 16, 200}),
        # More than 64 nodes.
        ("64-127", range(128), None, set(range(64, 128))),
        ("!0-63", range(128), None, set(range(64, 128))),
        ("1023", [0, 1023], None, {1023}),
    ],
)
def test_parse_accepts(
    text: str, all_nodes: range | list[int], allowed: list[int] | None, expected: set[int]
) -> None:
    parsed = NodeMask.parse(text, all_nodes=all_nodes, allowed=allowed)
    assert isinstance(parsed, NodeMask)
    assert parsed == NodeMask(expected)


def test_parse_accepts_memory_only_nodes() -> None:
    # The 4-node guest: nodes 2 and 3 have memory but no CPUs (like CXL expanders).
    # numactl's parser refuses them (numactl issues 165, 184); the grammar never looks
    # at CPUs, so they parse like any node, alone, in ranges and in inversions.
    all_nodes = [0, 1, 2, 3]
    assert NodeMask.parse("2-3", all_nodes=all_nodes) == NodeMask([2, 3])
    assert NodeMask.parse("3", all_nodes=all_nodes) == NodeMask([3])
    assert NodeMask.parse("!0-1", all_nodes=all_nodes) == NodeMask([2, 3])
    assert NodeMask.parse("+1", all_nodes=all_nodes, allowed=[0, 2]) == NodeMask([2])


@pytest.mark.parametrize(
    ("text", "all_nodes", "allowed", "message"),
    [
        ("", FOUR, None, "empty node string"),
        ("   ", FOUR, None, "empty node string"),
        ("3-1", FOUR, None, "reversed range '3-1': write 1-3"),
        ("a", FOUR, None, "'a' is not a node number"),
        ("1a", FOUR, None, "'1a' is not a node number"),
        ("1 2", FOUR, None, "'1 2' is not a node number"),
        ("1.0", FOUR, None, "'1.0' is not a node number"),
        ("0x1", FOUR, None, "'0x1' is not a node number"),
        ("1_0", EIGHT, None, "'1_0' is not a node number"),
        ("\u0661", FOUR, None, "is not a node number"),  # Arabic-Indic one: not ASCII
        ("-1", FOUR, None, "'-1': node numbers cannot be negative"),
        ("0,-2", FOUR, None, "'-2': node numbers cannot be negative"),
        ("1--2", FOUR, None, "range '1--2': node numbers cannot be negative"),
        ("7", FOUR, None, "node 7 does not exist; nodes are 0-3"),
        ("1-7", FOUR, None, "node 7 does not exist; nodes are 0-3"),
        ("1", [0, 8, 16, 200], None, "node 1 does not exist; nodes are 0,8,16,200"),
        ("0", [], None, "node 0 does not exist; there are no nodes"),
        ("!all", FOUR, None, "selects no nodes"),
        ("!0-3", FOUR, None, "selects no nodes"),
        ("1,", FOUR, None, "trailing comma"),
        ("1, ", FOUR, None, "trailing comma"),
        (",1", FOUR, None, "leading comma"),
        ("1,,2", FOUR, None, "empty item between two commas"),
        ("99999999999999999999", FOUR, None, "too large"),
        ("0-" + "9" * 5000, FOUR, None, "too large"),
        ("1-", FOUR, None, "range '1-' has no end"),
        ("!", FOUR, None, "no nodes after the prefix"),
        ("+", FOUR, None, "no nodes after the prefix"),
        ("!+", FOUR, None, "no nodes after the prefix"),
        ("1,!2", FOUR, None, "'!2': '!' inverts the whole string and must come first"),
        ("+!1", FOUR, None, "'!1': '!' inverts the whole string and must come first"),
        ("1,+2", FOUR, None, "'+2': '+' makes the whole string relative and must come first"),
        ("0-all", FOUR, None, "'all' cannot be part of a range"),
        ("+3", EIGHT, [2, 5, 7], "relative node +3 is out of range: there are 3 allowed nodes"),
        ("+0-5", EIGHT, [2, 5, 7], "numbered +0 to +2"),
        ("+0", EIGHT, [], "no nodes are allowed"),
        ("+1", FOUR, [0, 9], "node 9 does not exist; nodes are 0-3"),
    ],
)
def test_parse_rejects_with_a_precise_message(
    text: str, all_nodes: range | list[int], allowed: list[int] | None, message: str
) -> None:
    with pytest.raises(NodeStringError) as caught:
        NodeMask.parse(text, all_nodes=all_nodes, allowed=allowed)
    assert message in str(caught.value)


def test_parse_error_quotes_long_input_briefly() -> None:
    with pytest.raises(NodeStringError) as caught:
        NodeMask.parse("1," + "x" * 10_000, all_nodes=FOUR)
    assert len(str(caught.value)) < 200


universes = st.frozensets(st.integers(min_value=0, max_value=300), min_size=1, max_size=40)


@given(st.data())
def test_parse_round_trips_formatted_sets(data: st.DataObject) -> None:
    universe = data.draw(universes)
    chosen = data.draw(st.frozensets(st.sampled_from(sorted(universe)), min_size=1))
    assert NodeMask.parse(format_kernel_list(chosen), all_nodes=universe) == chosen
    assert NodeMask.parse(str(NodeMask(chosen)), all_nodes=universe) == chosen
    # Ranges spanning holes in a sparse universe still mean "the nodes between".
    span = f"{min(chosen)}-{max(chosen)}"
    expected = {n for n in universe if min(chosen) <= n <= max(chosen)}
    assert NodeMask.parse(span, all_nodes=universe) == expected
    rest = universe - chosen
    if rest:
        assert NodeMask.parse("!" + format_kernel_list(chosen), all_nodes=universe) == rest
    else:
        with pytest.raises(NodeStringError, match="selects no nodes"):
            NodeMask.parse("!" + format_kernel_list(chosen), all_nodes=universe)


@given(st.data())
def test_relative_strings_pick_the_nth_allowed_nodes(data: st.DataObject) -> None:
    universe = data.draw(universes)
    allowed = sorted(data.draw(st.frozensets(st.sampled_from(sorted(universe)), min_size=1)))
    ordinals = data.draw(st.frozensets(st.integers(0, len(allowed) - 1), min_size=1))
    parsed = NodeMask.parse(
        "+" + format_kernel_list(ordinals), all_nodes=universe, allowed=reversed(allowed)
    )
    assert parsed == {allowed[i] for i in ordinals}


grammar_alphabet = st.sampled_from([*"0123456789,-!+ \tal", "all", "12", "3-1", ",,"])


@given(
    st.one_of(st.text(), st.lists(grammar_alphabet, max_size=12).map("".join)),
    st.frozensets(st.integers(0, 20), max_size=10),
    st.one_of(st.none(), st.frozensets(st.integers(0, 25), max_size=10)),
)
def test_parse_raises_only_node_string_errors(
    text: str, universe: frozenset[int], allowed: frozenset[int] | None
) -> None:
    try:
        parsed = NodeMask.parse(text, all_nodes=universe, allowed=allowed)
    except NodeStringError as error:
        assert str(error)
    else:
        assert parsed
        assert parsed <= universe

"""Node sets: the kernel's range lists and bitmasks, and numactl's node-string grammar."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar, overload

from numatui.errors import NodeStringError
from numatui.kernel.kernel_list import format_kernel_list as format_kernel_list
from numatui.kernel.kernel_list import parse_kernel_list as parse_kernel_list

_T = TypeVar("_T")

# Bits in the C `unsigned long` the mask syscalls take: 64 on LP64, 32 on 32-bit ABIs.
ULONG_BITS: int = struct.calcsize("L") * 8  # struct, not ctypes: ctypes slows the start

# Never pass the kernel a mask buffer shorter than this; libnuma does the same.
MIN_MASK_BITS = 64

# Node ids are far below a million (the kernel's MAX_NUMNODES is at most 1024); longer
# numbers are refused before int() so a pasted megabyte of digits costs nothing.
_MAX_NODE_DIGITS = 6

_ASCII_DIGITS = re.compile(r"[0-9]+")


def _checked_node_id(value: object) -> int:
    # bool is an int subclass; True as a node id is always a bug in the caller.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"node ids are ints, not {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"negative node id {value}")
    return value


class NodeMask(AbstractSet[int]):
    """An immutable set of NUMA node ids, iterated in ascending order.

    Converts to and from the `unsigned long[]` + `maxnode` pair the mask syscalls take,
    and parses what users type (numactl's node-string grammar) via `NodeMask.parse`.
    """

    __slots__ = ("_nodes", "_ordered")

    _nodes: frozenset[int]
    _ordered: tuple[int, ...]

    def __init__(self, nodes: Iterable[int] = ()) -> None:
        checked = frozenset(_checked_node_id(node) for node in nodes)
        object.__setattr__(self, "_nodes", checked)
        object.__setattr__(self, "_ordered", tuple(sorted(checked)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("NodeMask is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("NodeMask is immutable")

    # -- the set protocol -------------------------------------------------------------

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __iter__(self) -> Iterator[int]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._nodes)

    def __bool__(self) -> bool:
        return bool(self._nodes)

    def __hash__(self) -> int:
        # Same hash as the equal frozenset, since the two compare equal.
        return hash(self._nodes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NodeMask):
            return self._nodes == other._nodes
        if isinstance(other, AbstractSet):
            return self._nodes == frozenset(other)
        return NotImplemented

    @overload
    def __or__(self, other: AbstractSet[int]) -> NodeMask: ...
    @overload
    def __or__(self, other: AbstractSet[_T]) -> AbstractSet[int | _T]: ...
    def __or__(self, other: AbstractSet[Any]) -> AbstractSet[Any]:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(self._nodes | frozenset(other))

    @overload
    def __ror__(self, other: AbstractSet[int]) -> NodeMask: ...
    @overload
    def __ror__(self, other: AbstractSet[_T]) -> AbstractSet[int | _T]: ...
    def __ror__(self, other: AbstractSet[Any]) -> AbstractSet[Any]:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(frozenset(other) | self._nodes)

    def __and__(self, other: AbstractSet[Any]) -> NodeMask:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(self._nodes & frozenset(other))

    def __rand__(self, other: AbstractSet[Any]) -> NodeMask:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(frozenset(other) & self._nodes)

    def __sub__(self, other: AbstractSet[Any]) -> NodeMask:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(self._nodes - frozenset(other))

    def __rsub__(self, other: AbstractSet[int]) -> NodeMask:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(frozenset(other) - self._nodes)

    @overload
    def __xor__(self, other: AbstractSet[int]) -> NodeMask: ...
    @overload
    def __xor__(self, other: AbstractSet[_T]) -> AbstractSet[int | _T]: ...
    def __xor__(self, other: AbstractSet[Any]) -> AbstractSet[Any]:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(self._nodes ^ frozenset(other))

    @overload
    def __rxor__(self, other: AbstractSet[int]) -> NodeMask: ...
    @overload
    def __rxor__(self, other: AbstractSet[_T]) -> AbstractSet[int | _T]: ...
    def __rxor__(self, other: AbstractSet[Any]) -> AbstractSet[Any]:
        if not isinstance(other, AbstractSet):
            return NotImplemented
        return NodeMask(frozenset(other) ^ self._nodes)

    def __str__(self) -> str:
        return format_kernel_list(self._ordered)

    def __repr__(self) -> str:
        return f"NodeMask({format_kernel_list(self._ordered)!r})"

    def __reduce__(self) -> tuple[type[NodeMask], tuple[tuple[int, ...]]]:
        # __slots__ plus the blocked __setattr__ defeat pickle's default; rebuild from ids.
        return (NodeMask, (self._ordered,))

    # -- the kernel's bitmask -----------------------------------------------------------

    def to_kernel(self, nbits: int | None = None) -> tuple[list[int], int]:
        """Return (`unsigned long` words, `maxnode`) for mbind/set_mempolicy/migrate_pages.

        Node n is bit n % ULONG_BITS of word n // ULONG_BITS. The kernel decrements
        maxnode and reads bits 0 .. maxnode-2, so a buffer of N bits goes with
        maxnode = N + 1. N is a whole number of words, at least 64, at least `nbits`
        (e.g. the count of possible nodes) and large enough for the highest node here.
        """
        if nbits is not None and nbits < 0:
            raise ValueError(f"nbits must not be negative, got {nbits}")
        highest_needed = self._ordered[-1] + 1 if self._ordered else 0
        wanted_bits = max(MIN_MASK_BITS, highest_needed, nbits or 0)
        word_count = -(-wanted_bits // ULONG_BITS)
        words = [0] * word_count
        for node in self._ordered:
            words[node // ULONG_BITS] |= 1 << (node % ULONG_BITS)
        return words, word_count * ULONG_BITS + 1

    @classmethod
    def from_kernel(cls, words: Sequence[int]) -> NodeMask:
        """The inverse of `to_kernel`: node ids from `unsigned long` words."""
        limit = 1 << ULONG_BITS
        nodes: list[int] = []
        for index, word in enumerate(words):
            if not 0 <= word < limit:
                raise ValueError(f"word {index} = {word} is not an unsigned {ULONG_BITS}-bit value")
            bit = 0
            while word:
                if word & 1:
                    nodes.append(index * ULONG_BITS + bit)
                word >>= 1
                bit += 1
        return cls(nodes)

    # -- numactl's node-string grammar -------------------------------------------------

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        all_nodes: Iterable[int],
        allowed: Iterable[int] | None = None,
    ) -> NodeMask:
        """Parse what a user types for a node set, in numactl's grammar.

        `0-3,5` lists and ranges; `all` means every node in `all_nodes`; a leading `!`
        inverts against `all_nodes`; a leading `+` counts within `allowed` (default
        `all_nodes`): `+0-1` is the first two allowed nodes. A range takes the existing
        nodes between its two ends, which must both exist. Nodes are never checked for
        CPUs: memory-only (CXL) nodes are as valid as any other.

        Raises NodeStringError naming the bad part for anything else, including a string
        that selects no node at all.
        """
        return cls(_NodeStringParser(text, all_nodes, allowed).parse())


def _quote(text: str, limit: int = 24) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


class _NodeStringParser:
    """One parse of one node string; keeps the context every error message needs."""

    def __init__(self, text: str, all_nodes: Iterable[int], allowed: Iterable[int] | None) -> None:
        self.text = text
        self.universe = frozenset(all_nodes)
        self.allowed_order = tuple(sorted(set(allowed) if allowed is not None else self.universe))

    def fail(self, message: str) -> NodeStringError:
        return NodeStringError(f"{message} (in node string {_quote(self.text, 40)})")

    def parse(self) -> frozenset[int]:
        body = self.text.strip()
        if not body:
            raise NodeStringError("empty node string: type node numbers such as 0-3,5, or all")
        invert = body.startswith("!")
        if invert:
            body = body[1:].lstrip()
        relative = body.startswith("+")
        if relative:
            body = body[1:].lstrip()
        if not body:
            raise self.fail("no nodes after the prefix")

        chosen: set[int] = set()
        items = body.split(",")
        for position, raw_item in enumerate(items):
            item = raw_item.strip()
            if not item:
                raise self.fail(self._empty_item_message(position, len(items)))
            chosen.update(self._item(item, relative))

        result = self.universe - chosen if invert else frozenset(chosen)
        if not result:
            raise self.fail("this selects no nodes at all")
        return result

    @staticmethod
    def _empty_item_message(position: int, count: int) -> str:
        if position == count - 1:
            return "trailing comma"
        if position == 0:
            return "leading comma"
        return "empty item between two commas"

    def _item(self, item: str, relative: bool) -> frozenset[int]:
        if item.casefold() == "all":
            return frozenset(self.allowed_order) if relative else self.universe
        if item[0] == "!":
            raise self.fail(f"{_quote(item)}: '!' inverts the whole string and must come first")
        if item[0] == "+":
            raise self.fail(
                f"{_quote(item)}: '+' makes the whole string relative and must come first"
            )
        if item[0] == "-":
            raise self.fail(f"{_quote(item)}: node numbers cannot be negative")

        lo_text, is_range, hi_text = item.partition("-")
        lo = self._number(lo_text.strip(), item)
        if not is_range:
            hi = lo
        else:
            hi_text = hi_text.strip()
            if not hi_text:
                raise self.fail(f"range {_quote(item)} has no end")
            if hi_text[0] == "-":
                raise self.fail(f"range {_quote(item)}: node numbers cannot be negative")
            hi = self._number(hi_text, item)
            if hi < lo:
                raise self.fail(f"reversed range {_quote(item)}: write {hi}-{lo}")
        return self._relative_range(lo, hi) if relative else self._absolute_range(lo, hi)

    def _number(self, part: str, item: str) -> int:
        if not _ASCII_DIGITS.fullmatch(part):
            if part.casefold() == "all":
                raise self.fail(f"{_quote(item)}: 'all' cannot be part of a range")
            raise self.fail(f"{_quote(part)} is not a node number")
        if len(part.lstrip("0")) > _MAX_NODE_DIGITS:
            raise self.fail(f"node number {_quote(part)} is too large")
        return int(part)

    def _absolute_range(self, lo: int, hi: int) -> frozenset[int]:
        for end in (lo, hi):
            if end not in self.universe:
                raise self.fail(self._missing_node_message(end))
        # numactl's rule: both ends must exist; the range takes the existing nodes between.
        return frozenset(node for node in self.universe if lo <= node <= hi)

    def _relative_range(self, lo: int, hi: int) -> frozenset[int]:
        count = len(self.allowed_order)
        if hi >= count:
            allowed_text = format_kernel_list(self.allowed_order) or "none"
            raise self.fail(
                f"relative node +{hi} is out of range: there are {count} allowed nodes"
                f" ({allowed_text}), numbered +0 to +{count - 1}"
                if count
                else f"relative node +{hi} is out of range: no nodes are allowed"
            )
        picked = frozenset(self.allowed_order[lo : hi + 1])
        for node in sorted(picked):
            if node not in self.universe:
                raise self.fail(self._missing_node_message(node))
        return picked

    def _missing_node_message(self, node: int) -> str:
        if not self.universe:
            return f"node {node} does not exist; there are no nodes"
        return f"node {node} does not exist; nodes are {format_kernel_list(self.universe)}"

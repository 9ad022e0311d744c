"""Bytes per node: how every snapshot counts memory (bytes, never pages or kB)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

NodeBytes = Mapping[int, int]
"""Bytes per node id. Missing ids mean zero."""


def frozen_map(values: Mapping[int, int] | None = None) -> NodeBytes:
    """A read-only copy, so a snapshot cannot be changed behind a screen's back."""
    return MappingProxyType(dict(values or {}))


def total_bytes(values: NodeBytes) -> int:
    return sum(values.values())

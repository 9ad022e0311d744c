"""The migration rules' answers: stable codes and the words that go with them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RuleCode(enum.StrEnum):
    """Stable names of the migration rules' answers (`numatui.rules`), for scripts and tests."""

    NUMA_UNAVAILABLE = "numa_unavailable"
    SINGLE_MEMORY_NODE = "single_memory_node"
    PROCESS_GONE = "process_gone"
    KERNEL_THREAD = "kernel_thread"
    NO_PAGES = "no_pages"
    NO_TARGET = "no_target"
    NODE_MISSING = "node_missing"
    TARGET_OFFLINE = "target_offline"
    TARGET_NO_MEMORY = "target_no_memory"
    TARGET_NO_FREE_MEMORY = "target_no_free_memory"
    OTHER_USER = "other_user"
    TARGET_OUTSIDE_CPUSET = "target_outside_cpuset"
    TARGET_OUTSIDE_NUMATUI_CPUSET = "target_outside_numatui_cpuset"
    SHARED_PAGES_STAY = "shared_pages_stay"
    TARGET_TOO_FULL = "target_too_full"
    HUGETLB_NO_FREE_PAGE = "hugetlb_no_free_page"
    NUMA_BALANCING = "numa_balancing"
    DRAIN_NO_MEMORY = "drain_no_memory"
    DRAIN_NO_TARGET = "drain_no_target"


@dataclass(frozen=True)
class Finding:
    """One answer of the migration rules: a refusal or a warning, with a stable code.

    `errno_name` is what the kernel would answer for the same request ("EPERM",
    "ESRCH", "EINVAL"), or "" when numatui refuses for a reason of its own.
    `short` is the few words a list of targets shows next to a disabled node.
    """

    code: RuleCode
    message: str
    errno_name: str = ""
    short: str = ""

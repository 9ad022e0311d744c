"""The NUMA syscalls against the host's real kernel (one node): what one node can prove.

Real calls, not mocks: a no-op migration returns 0, an unknown pid is ESRCH, a node
that does not exist is EINVAL, page queries report the node a touched page is on.
Migration itself is proven in the multi-node guest (tests/kernel/guest/).
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import mmap
import os
import platform
import subprocess
import threading
from pathlib import Path

import pytest

from numatui.errors import SyscallError, UnsupportedArchitecture
from numatui.kernel import syscalls
from numatui.kernel.nodemask import NodeMask, parse_kernel_list
from numatui.kernel.privileges import (
    CAP_SYS_NICE,
    CAP_SYS_PTRACE,
    parse_capeff,
    privileges_from,
    read_privileges,
)
from tests.tooling import mempolicy

PAGE = mmap.PAGESIZE
ONLINE = parse_kernel_list(Path("/sys/devices/system/node/online").read_text())
WITH_MEMORY = parse_kernel_list(Path("/sys/devices/system/node/has_memory").read_text())
ABSENT_NODE = max(ONLINE) + 1


def _reaped_pid() -> int:
    """A pid that existed a moment ago and is gone now."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _address(buffer: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


# ---------------------------------------------------------------- syscall numbers


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", (237, 238, 239, 256, 279)),
        ("aarch64", (235, 237, 236, 238, 239)),
        ("riscv64", (235, 237, 236, 238, 239)),
        ("i686", (274, 276, 275, 294, 317)),
        ("ppc64le", (259, 261, 260, 258, 301)),
        ("s390x", (268, 270, 269, 287, 310)),
    ],
)
def test_syscall_numbers_per_architecture(machine: str, expected: tuple[int, ...]) -> None:
    calls = ("mbind", "set_mempolicy", "get_mempolicy", "migrate_pages", "move_pages")
    assert tuple(syscalls.syscall_number(c, machine) for c in calls) == expected


def test_unknown_architecture_fails_at_call_time_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "vax")
    importlib.reload(syscalls)  # importing must still work
    with pytest.raises(UnsupportedArchitecture, match=r"'vax'.*migration is not possible"):
        syscalls.migrate_pages(0, NodeMask([0]), NodeMask([0]))


# ---------------------------------------------------------------- migrate_pages on the host


def test_noop_migration_of_self_returns_zero() -> None:
    node = min(WITH_MEMORY)
    assert syscalls.migrate_pages(0, NodeMask([node]), NodeMask([node])) == 0
    assert syscalls.migrate_pages(os.getpid(), NodeMask([node]), NodeMask([node])) == 0


def test_masks_of_different_width_are_passed_with_one_maxnode() -> None:
    # A source bit past the first word: both buffers must be read with the same maxnode.
    node = min(WITH_MEMORY)
    assert syscalls.migrate_pages(0, NodeMask([node, 100]), NodeMask([node])) == 0
    (old_words, new_words), maxnode = syscalls._kernel_masks(NodeMask([100]), NodeMask([0]))
    assert len(old_words) == len(new_words) == 2
    assert maxnode == 2 * 64 + 1
    assert new_words == (1, 0)
    assert old_words == (0, 1 << 36)


def test_unknown_pid_is_esrch_with_advice() -> None:
    with pytest.raises(SyscallError) as info:
        syscalls.migrate_pages(_reaped_pid(), NodeMask([0]), NodeMask([0]))
    assert info.value.errno == errno.ESRCH
    assert info.value.errno_name == "ESRCH"
    assert info.value.call == "migrate_pages"
    assert "exited" in info.value.message


def test_nonexistent_target_node_is_einval() -> None:
    with pytest.raises(SyscallError) as info:
        syscalls.migrate_pages(0, NodeMask([0]), NodeMask([ABSENT_NODE]))
    assert info.value.errno_name == "EINVAL"
    assert "offline" in info.value.message and "no memory" in info.value.message


def test_node_beyond_the_kernel_maximum_is_einval() -> None:
    with pytest.raises(SyscallError) as info:
        syscalls.migrate_pages(0, NodeMask([0]), NodeMask([4000]))
    assert info.value.errno_name == "EINVAL"


# ---------------------------------------------------------------- move_pages, mbind, policies


def test_move_pages_query_reports_node_or_enoent() -> None:
    with mmap.mmap(-1, 4 * PAGE) as buffer:
        buffer[0:1] = b"x"  # only the first page is present
        start = _address(buffer)
        status = syscalls.move_pages(0, [start + i * PAGE for i in range(4)])
    assert status[0] in WITH_MEMORY
    assert status[1:] == [-errno.ENOENT] * 3


def test_move_pages_to_the_same_node_and_to_an_absent_node() -> None:
    node = min(WITH_MEMORY)
    with mmap.mmap(-1, PAGE) as buffer:
        buffer[0:1] = b"x"
        start = _address(buffer)
        assert syscalls.move_pages(0, [start], [node]) == [node]
        with pytest.raises(SyscallError) as info:
            syscalls.move_pages(0, [start], [ABSENT_NODE])
    assert info.value.errno_name == "ENODEV"
    assert "not online or has no memory" in info.value.message


def test_move_pages_needs_one_node_per_address() -> None:
    with pytest.raises(ValueError, match="one target node per address"):
        syscalls.move_pages(0, [0, PAGE], [0])
    assert syscalls.move_pages(0, []) == []


def test_mbind_then_get_mempolicy_of_the_range() -> None:
    node = min(WITH_MEMORY)
    with mmap.mmap(-1, 4 * PAGE) as buffer:
        start = _address(buffer)
        mempolicy.mbind(start, 4 * PAGE, mempolicy.MPOL_BIND, NodeMask([node]))
        mode, nodes = mempolicy.get_mempolicy(start, mempolicy.MPOL_F_ADDR)
        assert (mode, set(nodes)) == (mempolicy.MPOL_BIND, {node})
        buffer[0:1] = b"x"
        page_node, _ = mempolicy.get_mempolicy(start, mempolicy.MPOL_F_ADDR | mempolicy.MPOL_F_NODE)
        assert page_node == node
        with pytest.raises(SyscallError) as info:
            mempolicy.mbind(start, 4 * PAGE, mempolicy.MPOL_BIND, NodeMask([ABSENT_NODE]))
    assert info.value.errno_name == "EINVAL"


def test_set_mempolicy_is_per_thread() -> None:
    node = min(WITH_MEMORY)
    seen: list[tuple[int, frozenset[int]]] = []

    def in_thread() -> None:
        mempolicy.set_mempolicy(mempolicy.MPOL_BIND, NodeMask([node]))
        mode, nodes = mempolicy.get_mempolicy()
        seen.append((mode, frozenset(nodes)))
        mempolicy.set_mempolicy(mempolicy.MPOL_DEFAULT)
        mode, nodes = mempolicy.get_mempolicy()
        seen.append((mode, frozenset(nodes)))

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen == [(mempolicy.MPOL_BIND, frozenset({node})), (mempolicy.MPOL_DEFAULT, frozenset())]
    with pytest.raises(SyscallError) as info:
        mempolicy.set_mempolicy(mempolicy.MPOL_BIND, NodeMask([ABSENT_NODE]))
    assert info.value.call == "set_mempolicy"
    assert info.value.errno_name == "EINVAL"


def test_mems_allowed_query_matches_proc_status() -> None:
    _, nodes = mempolicy.get_mempolicy(flags=mempolicy.MPOL_F_MEMS_ALLOWED)
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("Mems_allowed_list:"))
    assert frozenset(nodes) == parse_kernel_list(line.split(":", 1)[1])


# ---------------------------------------------------------------- errno → advice


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        ("migrate_pages", errno.ESRCH, "exited"),
        ("migrate_pages", errno.EPERM, "CAP_SYS_PTRACE"),
        ("migrate_pages", errno.EPERM, "CAP_SYS_NICE"),
        ("migrate_pages", errno.EINVAL, "cpuset"),
        ("migrate_pages", errno.ENOSYS, "CONFIG_NUMA"),
        ("migrate_pages", errno.ENOMEM, "part of the memory may already have moved"),
        ("migrate_pages", errno.EFAULT, "bug"),
        ("move_pages", errno.EACCES, "cpuset"),
        ("move_pages", errno.ENODEV, "not online"),
        ("move_pages", errno.EPERM, "MPOL_MF_MOVE_ALL"),
        ("move_pages", errno.EBUSY, "retry"),
    ],
)
def test_errno_advice_is_specific_to_the_call(call: str, code: int, words: str) -> None:
    error = syscalls.syscall_error(call, code)
    assert isinstance(error, OSError)
    assert error.errno == code
    assert error.errno_name == errno.errorcode[code]
    assert words in error.message
    assert str(error).startswith(f"{call}: {errno.errorcode[code]}: ")


def test_unlisted_errno_still_names_itself() -> None:
    error = syscalls.syscall_error("migrate_pages", errno.EXDEV)
    assert error.errno_name == "EXDEV"
    assert error.message == "EXDEV"


# ---------------------------------------------------------------- privileges


def test_capeff_bits() -> None:
    nice_only = f"Name:\tx\nCapEff:\t{1 << CAP_SYS_NICE:016x}\n"
    p = privileges_from(1000, parse_capeff(nice_only))
    assert (p.uid, p.is_root, p.cap_sys_nice, p.cap_sys_ptrace) == (1000, False, True, False)
    p = privileges_from(0, parse_capeff("CapEff:\t0000000000080000\n"))
    assert (p.is_root, p.cap_sys_nice, p.cap_sys_ptrace) == (True, False, True)
    assert 1 << CAP_SYS_PTRACE == 0x80000
    assert parse_capeff("Name:\tno caps line\n") == 0


def test_read_privileges_of_this_process() -> None:
    p = read_privileges()
    assert p.uid == os.geteuid()
    status = Path("/proc/self/status").read_text()
    capeff = int(next(x for x in status.splitlines() if x.startswith("CapEff:")).split()[1], 16)
    assert p.cap_sys_nice == bool(capeff & (1 << 23))
    assert p.cap_sys_ptrace == bool(capeff & (1 << 19))

"""The NUMA syscalls, called through cffi's ABI mode (no compiler, no libnuma).

`syscall(2)` is variadic, so every argument is passed as a cdata of the exact C
type. cffi releases the GIL for the duration of the call, so a long
`migrate_pages` in a worker thread does not freeze the UI thread.

Importing this module never fails: the library is opened and the syscall
number looked up at call time, where an unknown architecture raises
`UnsupportedArchitecture` with a clear message.
"""

from __future__ import annotations

import array
import errno
import functools
import platform
from collections.abc import Sequence
from typing import Any

from numatui.errors import SyscallError, UnsupportedArchitecture
from numatui.kernel.nodemask import NodeMask

# ------------------------------------------------ constants (uapi/linux/mempolicy.h)

# move_pages flags
MPOL_MF_STRICT = 1 << 0
MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2

# A move_pages status the kernel never writes: it leaves statuses of pages it
# did not get to untouched, so they keep this value.
STATUS_NOT_TRIED = -(1 << 20)

# ---------------------------------------------------------------- syscall numbers

# The memory-policy calls are numbered too: the tests place memory with them
# (tests/tooling/mempolicy.py) through this module's one syscall path.
_CALLS = ("mbind", "set_mempolicy", "get_mempolicy", "migrate_pages", "move_pages")


def _numbers(*values: int) -> dict[str, int]:
    return dict(zip(_CALLS, values, strict=True))


_GENERIC = _numbers(235, 237, 236, 238, 239)  # asm-generic table: arm64, riscv64
_I386 = _numbers(274, 276, 275, 294, 317)
_PPC64 = _numbers(259, 261, 260, 258, 301)

SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": _numbers(237, 238, 239, 256, 279),
    "amd64": _numbers(237, 238, 239, 256, 279),
    "aarch64": _GENERIC,
    "arm64": _GENERIC,
    "riscv64": _GENERIC,
    "i386": _I386,
    "i486": _I386,
    "i586": _I386,
    "i686": _I386,
    "ppc64": _PPC64,
    "ppc64le": _PPC64,
    "s390x": _numbers(268, 270, 269, 287, 310),
}


def syscall_number(call: str, machine: str | None = None) -> int:
    """The number of `call` on this machine (or `machine`, as platform.machine() names it)."""
    arch = machine if machine is not None else platform.machine()
    table = SYSCALL_NUMBERS.get(arch)
    if table is None:
        known = ", ".join(sorted(SYSCALL_NUMBERS))
        raise UnsupportedArchitecture(
            f"numatui does not know the NUMA syscall numbers for the {arch or 'unknown'!r} "
            f"architecture (it knows {known}); reading memory placement still works, "
            f"but migration is not possible here"
        )
    return table[call]


# ---------------------------------------------------------------- cffi


@functools.cache
def _ffi_lib() -> tuple[Any, Any]:
    # The declaration is pre-parsed (scripts/build-ffi.py): no pycparser at start-up.
    from numatui.kernel._syscall_ffi import ffi

    return ffi, ffi.dlopen(None)


def _call(call: str, *args: Any) -> int:
    """Run a syscall; raise `SyscallError` with an explanation on -1."""
    number = syscall_number(call)
    ffi, lib = _ffi_lib()
    result = int(lib.syscall(ffi.cast("long", number), *args))
    if result == -1:
        code = int(ffi.errno)
        raise syscall_error(call, code)
    return result


def _ulong(value: int) -> Any:
    ffi, _ = _ffi_lib()
    return ffi.cast("unsigned long", value)


def _long(value: int) -> Any:
    ffi, _ = _ffi_lib()
    return ffi.cast("long", value)


def _mask_buffer(words: Sequence[int]) -> Any:
    ffi, _ = _ffi_lib()
    return ffi.new("unsigned long[]", list(words) or [0])


def _kernel_masks(*masks: NodeMask) -> tuple[list[tuple[int, ...]], int]:
    """Encode masks with one common width: the kernel reads both with one maxnode."""
    encoded = [mask.to_kernel() for mask in masks]
    maxnode = max(m for _, m in encoded)
    if any(m != maxnode for _, m in encoded):
        encoded = [mask.to_kernel(maxnode - 1) for mask in masks]
    return [tuple(words) for words, _ in encoded], maxnode


# ---------------------------------------------------------------- errno → words

_GENERIC_MESSAGES: dict[int, str] = {
    errno.ESRCH: "the process does not exist (it may have exited); refresh and pick it again",
    errno.ENOSYS: (
        "this kernel has no NUMA page migration (built without CONFIG_NUMA or "
        "CONFIG_MIGRATION, or blocked by seccomp in a container)"
    ),
    errno.ENOMEM: (
        "the kernel ran out of memory for its bookkeeping; free some memory and retry "
        "(part of the memory may already have moved: compare the per-node counts)"
    ),
    errno.EFAULT: "the kernel could not read an argument (a bug in numatui: please report it)",
    errno.EACCES: "a target node is outside the process's cpuset (cpuset.mems)",
    errno.ENODEV: "a target node is not online or has no memory",
    errno.EBUSY: "the pages are busy (pinned or under I/O); retry in a moment",
    errno.EINVAL: "the kernel rejected the arguments (malformed node mask or flags)",
    errno.EPERM: "permission denied: run as root, or with CAP_SYS_NICE",
}

_CALL_MESSAGES: dict[tuple[str, int], str] = {
    ("migrate_pages", errno.EPERM): (
        "permission denied: another user's process needs root or CAP_SYS_PTRACE "
        "(or the same uid, and a dumpable process); target nodes outside the "
        "process's cpuset need CAP_SYS_NICE; run numatui with sudo"
    ),
    ("migrate_pages", errno.EINVAL): (
        "no usable target node: the targets are offline, have no memory, or lie outside "
        "numatui's own cpuset (or the node mask is malformed); pick an online node with memory"
    ),
    ("move_pages", errno.EPERM): (
        "permission denied: moving another user's pages needs root or CAP_SYS_PTRACE, and "
        "MPOL_MF_MOVE_ALL (shared pages) needs CAP_SYS_NICE; run numatui with sudo"
    ),
    ("move_pages", errno.ENODEV): "a target node is not online or has no memory; pick another",
    ("move_pages", errno.EACCES): (
        "a target node is outside the process's cpuset (cpuset.mems); widen the cpuset "
        "or pick a node inside it"
    ),
    ("move_pages", errno.EINVAL): "invalid flags or node numbers passed to move_pages",
}


def explain(call: str, code: int) -> str:
    """What went wrong and what the user can do, for `call` failing with errno `code`."""
    message = _CALL_MESSAGES.get((call, code)) or _GENERIC_MESSAGES.get(code)
    if message is None:
        message = errno.errorcode.get(code, f"errno {code}")
    return message


def syscall_error(call: str, code: int) -> SyscallError:
    name = errno.errorcode.get(code, f"E{code}")
    return SyscallError(code, name, call, explain(call, code))


# ---------------------------------------------------------------- typed wrappers


def migrate_pages(pid: int, old: NodeMask, new: NodeMask) -> int:
    """Move all of `pid`'s pages on `old` nodes to `new` (0 = the caller).

    Returns the number of folios the kernel could NOT move. 0 does not prove
    that everything moved (shared pages skipped without CAP_SYS_NICE are not
    counted): compare per-node counts.
    """
    (old_words, new_words), maxnode = _kernel_masks(old, new)
    return _call(
        "migrate_pages",
        _long(pid),
        _ulong(maxnode),
        _mask_buffer(old_words),
        _mask_buffer(new_words),
    )


def move_pages(
    pid: int,
    addresses: Sequence[int],
    nodes: Sequence[int] | None = None,
    flags: int = 0,
) -> list[int]:
    """Query (`nodes=None`) or move single pages; one status per address.

    A status is the node the page is on (after the move), or a negative
    errno: -ENOENT not present, -EFAULT no mapping/zero page, -EACCES shared
    page without MPOL_MF_MOVE_ALL, -EBUSY could not isolate. Pages the kernel
    did not get to keep `STATUS_NOT_TRIED`.
    """
    if nodes is not None and len(nodes) != len(addresses):
        raise ValueError("move_pages: one target node per address")
    count = len(addresses)
    if count == 0:
        return []
    ffi, _ = _ffi_lib()
    # Arrays filled at C speed (array.array), not one cffi cast per page: a chunk of
    # thousands of pages otherwise costs more Python time than the kernel's copy.
    pointer_type = "Q" if ffi.sizeof("void *") == 8 else "I"
    page_buffer = array.array(pointer_type, addresses)
    pages = ffi.from_buffer("void *[]", page_buffer)
    node_array = ffi.NULL if nodes is None else ffi.from_buffer("int[]", array.array("i", nodes))
    status_buffer = array.array("i", [STATUS_NOT_TRIED]) * count
    status = ffi.from_buffer("int[]", status_buffer, require_writable=True)
    _call("move_pages", _long(pid), _ulong(count), pages, node_array, status, _long(flags))
    return status_buffer.tolist()

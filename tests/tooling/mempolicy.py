"""Memory-policy syscalls that only the tests need: get_mempolicy, set_mempolicy, mbind.

numatui itself only moves pages (numatui.kernel.syscalls: migrate_pages, move_pages);
tests use these to place memory on chosen nodes and to read where a page is. They go
through the package's one syscall path (numbers per architecture, errno → SyscallError).
"""

from __future__ import annotations

from numatui.kernel.nodemask import ULONG_BITS, NodeMask
from numatui.kernel.syscalls import _call, _ffi_lib, _long, _mask_buffer, _ulong

# Policy modes (uapi/linux/mempolicy.h).
MPOL_DEFAULT = 0
MPOL_PREFERRED = 1
MPOL_BIND = 2
MPOL_INTERLEAVE = 3
MPOL_LOCAL = 4

# get_mempolicy flags.
MPOL_F_NODE = 1 << 0
MPOL_F_ADDR = 1 << 1
MPOL_F_MEMS_ALLOWED = 1 << 2

# Room for any node id the kernel can have (MAX_NUMNODES is at most 1024):
# get_mempolicy refuses a buffer smaller than the kernel's node count.
_QUERY_MASK_BITS = 1024


def get_mempolicy(address: int | None = None, flags: int = 0) -> tuple[int, NodeMask]:
    """The calling thread's policy (or the one at `address` with MPOL_F_ADDR).

    Returns (mode, nodes). With MPOL_F_NODE | MPOL_F_ADDR, `mode` is the node
    the page at `address` is on; with MPOL_F_MEMS_ALLOWED, `nodes` is the
    thread's cpuset mems.
    """
    ffi, _ = _ffi_lib()
    mode = ffi.new("int *")
    words = ffi.new("unsigned long[]", _QUERY_MASK_BITS // ULONG_BITS)
    addr = ffi.NULL if address is None else ffi.cast("void *", address)
    _call("get_mempolicy", mode, words, _ulong(_QUERY_MASK_BITS + 1), addr, _ulong(flags))
    return int(mode[0]), NodeMask.from_kernel(list(words))


def set_mempolicy(mode: int, nodes: NodeMask | None = None) -> None:
    """Set the calling thread's policy."""
    if nodes is None:
        _call("set_mempolicy", _long(mode), _ffi_lib()[0].NULL, _ulong(0))
        return
    words, maxnode = nodes.to_kernel()
    _call("set_mempolicy", _long(mode), _mask_buffer(words), _ulong(maxnode))


def mbind(address: int, length: int, mode: int, nodes: NodeMask | None, flags: int = 0) -> None:
    """Set the policy of [address, address+length) (page aligned); flags MPOL_MF_*."""
    ffi, _ = _ffi_lib()
    if nodes is None:
        mask, maxnode = ffi.NULL, 0
    else:
        words, maxnode = nodes.to_kernel()
        mask = _mask_buffer(words)
    _call(
        "mbind",
        ffi.cast("void *", address),
        _ulong(length),
        _long(mode),
        mask,
        _ulong(maxnode),
        _ulong(flags),
    )

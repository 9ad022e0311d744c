"""A process holding memory of a chosen kind on chosen NUMA nodes, for tests and demos.

It maps memory (private/shared anonymous, base pages only (THP refused), a shared file,
THP, hugetlb), optionally binds
the allocation to one node (set_mempolicy MPOL_BIND) and pins itself to one CPU, fills the
memory with a deterministic pattern (every 4 KiB page carries its own index, so a page that
lands in the wrong place after a migration changes the checksum), prints ONE JSON line

    {"pid": ..., "kind": ..., "bytes": ..., "checksum": "<sha256>", "start": <address>, ...}

and then answers each stdin line "checksum" with {"checksum": ...} re-hashed from memory,
"thp" with how much of it is THP, and "split" by dropping one page of every fourth huge
page (MADV_DONTNEED: its huge page is then mapped page by page) with the new checksum and
the addresses dropped. It exits on EOF or SIGTERM.

    python tests/tooling/workload.py --kind private --size-mib 64 --node 0

This module uses the standard library only and never imports numatui, so it runs as a
plain script under any Python 3.11 (the non-root path of `Workload.start` runs a copy with
the system interpreter because a pyenv under /root is not readable by others).
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

KINDS = ("private", "base", "shared", "file", "thp", "hugetlb")

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
HUGE_2M = 2 * 1024 * 1024
MPOL_BIND = 2
# Linux generic values (x86, arm64, riscv, s390, ppc share them).
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_FIXED = 0x10
MAP_NORESERVE = 0x4000
MAP_HUGETLB = 0x40000
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTNEED = 4

# set_mempolicy(2) syscall numbers, per architecture (the kernel's syscall tables). Its own
# table, not numatui's: this child runs with `python -S` (no site-packages, so no cffi) and,
# for another user, from a copy of this one file.
SET_MEMPOLICY_NR = {
    "x86_64": 238,
    "aarch64": 237,
    "riscv64": 237,
    "i386": 276,
    "i686": 276,
    "ppc64": 261,
    "ppc64le": 261,
    "s390x": 270,
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.restype = ctypes.c_int
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
MAP_FAILED = ctypes.c_void_p(-1).value


class WorkloadError(Exception):
    """The workload could not set up the memory it was asked for; the text says why."""


# --------------------------------------------------------------------------- in the child


def _os_error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")


def bind_to_node(node: int) -> None:
    """set_mempolicy(MPOL_BIND, {node}) for the calling thread's future allocations."""
    nr = SET_MEMPOLICY_NR.get(platform.machine())
    if nr is None:
        raise WorkloadError(f"no set_mempolicy syscall number known for {platform.machine()}")
    bits = ((node // 64) + 1) * 64
    mask = (ctypes.c_ulong * (bits // 64))()
    mask[node // 64] = 1 << (node % 64)
    # maxnode = bits + 1: the kernel reads bits 0 .. maxnode-2.
    if _libc.syscall(ctypes.c_long(nr), MPOL_BIND, mask, ctypes.c_ulong(bits + 1)) != 0:
        err = _os_error("set_mempolicy")
        raise WorkloadError(f"cannot bind to node {node}: {err.strerror}") from err


def _mmap(length: int, flags: int, fd: int = -1, addr: int | None = None, prot: int = 0) -> int:
    prot = prot or PROT_READ | PROT_WRITE
    got = _libc.mmap(addr, length, prot, flags, fd, 0)
    if got is None or got == MAP_FAILED:
        raise _os_error("mmap")
    return int(got)


def _guarded_slot(size: int) -> int:
    """A 2 MiB-aligned address for `size` bytes with an inaccessible page on each side.

    The guards keep the kernel from merging our mapping with a neighbouring one of the same
    kind, so the numa_maps line that starts at our address describes exactly our memory;
    the alignment lets THP and hugetlb use whole huge pages.
    """
    reserved = size + 2 * HUGE_2M
    base = _mmap(reserved, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, prot=PROT_NONE)
    return (base + PAGE_SIZE + HUGE_2M - 1) & ~(HUGE_2M - 1)


def free_huge_pages(node: int | None) -> int:
    """Free 2 MiB huge pages on `node`, or in total when node is None."""
    where = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
    if node is not None:
        where = Path(f"/sys/devices/system/node/node{node}/hugepages/hugepages-2048kB")
    try:
        return int((where / "free_hugepages").read_text())
    except OSError:
        return 0


def _hugetlb_hint(node: int | None) -> str:
    scope = f"on node {node}" if node is not None else "in total"
    return (
        f"{free_huge_pages(node)} free 2 MiB huge pages {scope}; "
        "reserve some: echo 20 > /proc/sys/vm/nr_hugepages"
    )


def map_memory(kind: str, size: int, node: int | None, file_dir: str | None) -> tuple[int, str]:
    """Map `size` bytes of `kind`; returns (address, backing file path or "")."""
    if kind not in KINDS:
        raise WorkloadError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    slot = _guarded_slot(size)
    if kind == "private":
        return _mmap(size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=slot), ""
    if kind == "base":
        start = _mmap(size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=slot)
        if _libc.madvise(start, size, MADV_NOHUGEPAGE) != 0:
            raise _os_error("madvise(MADV_NOHUGEPAGE)")
        return start, ""
    if kind == "shared":
        return _mmap(size, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, addr=slot), ""
    if kind == "file":
        directory = file_dir or "/dev/shm"
        fd, path = tempfile.mkstemp(prefix="numatui-workload-", dir=directory)
        try:
            os.ftruncate(fd, size)
            return _mmap(size, MAP_SHARED | MAP_FIXED, fd, addr=slot), path
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
    if kind == "thp":
        start = _mmap(size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=slot)
        if _libc.madvise(start, size, MADV_HUGEPAGE) != 0:
            raise _os_error("madvise(MADV_HUGEPAGE)")
        return start, ""
    # hugetlb
    if size % HUGE_2M:
        raise WorkloadError("hugetlb size must be a multiple of 2 MiB")
    needed = size // HUGE_2M
    if node is not None and free_huge_pages(node) < needed:
        # Faulting a bound hugetlb page with none free on the node is SIGBUS; refuse first.
        raise WorkloadError(f"hugetlb needs {needed} huge pages: {_hugetlb_hint(node)}")
    try:
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED
        return _mmap(size, flags, addr=slot), ""
    except OSError as exc:
        raise WorkloadError(f"hugetlb mmap failed ({exc.strerror}): {_hugetlb_hint(node)}") from exc


def page_pattern() -> bytes:
    """The 4 KiB-page template; bytes 0..7 of each page are then overwritten by its index."""
    return (bytes(range(251)) * (PAGE_SIZE // 251 + 1))[:PAGE_SIZE]


def fill(memory: memoryview) -> None:
    """Write the pattern: whole-chunk copies plus one strided write of page indexes per chunk."""
    chunk = 1024 * 1024
    chunk = min(chunk, len(memory))
    template = page_pattern() * (chunk // PAGE_SIZE)
    words = memory.cast("Q")
    per_page = PAGE_SIZE // 8
    for offset in range(0, len(memory), chunk):
        memory[offset : offset + chunk] = template
        first = offset // PAGE_SIZE
        indexes = array.array("Q", range(first, first + chunk // PAGE_SIZE))
        words[offset // 8 : (offset + chunk) // 8 : per_page] = memoryview(indexes)


def checksum(memory: memoryview) -> str:
    return hashlib.sha256(memory).hexdigest()


def anon_huge_bytes(start: int) -> int:
    """AnonHugePages of the VMA that starts at `start`, from /proc/self/smaps."""
    header = f"{start:x}-"
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(" ", 1)[0]
            if "-" in first and not first.endswith(":"):
                inside = first.startswith(header)
            elif inside and line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workload.py", description=__doc__)
    parser.add_argument("--kind", choices=KINDS, default="private")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--node", type=int, help="bind the allocation to this node (MPOL_BIND)")
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    parser.add_argument("--file-dir", help="directory for kind=file (default /dev/shm)")
    args = parser.parse_args(argv)
    if args.size_mib <= 0:
        parser.error("--size-mib must be positive")
    return args


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    size = args.size_mib * 1024 * 1024
    path = ""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        if args.node is not None:
            bind_to_node(args.node)
        start, path = map_memory(args.kind, size, args.node, args.file_dir)
        memory = memoryview((ctypes.c_char * size).from_address(start)).cast("B")
        fill(memory)
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "kind": args.kind,
            "bytes": size,
            "checksum": checksum(memory),
            "start": start,
            "node": args.node,
            "cpu": args.cpu,
            "path": path,
        }
        if args.kind == "thp":
            info["anon_huge_bytes"] = anon_huge_bytes(start)
        _emit(info)
        for line in sys.stdin:
            command = line.strip()
            if command == "checksum":
                _emit({"checksum": checksum(memory)})
            elif command == "thp":
                _emit({"anon_huge_bytes": anon_huge_bytes(start)})
            elif command == "split":
                dropped = [start + offset + 5 * PAGE_SIZE for offset in range(0, size, 4 * HUGE_2M)]
                for address in dropped:
                    if _libc.madvise(address, PAGE_SIZE, MADV_DONTNEED) != 0:
                        raise _os_error("madvise(MADV_DONTNEED)")
                _emit(
                    {
                        "checksum": checksum(memory),
                        "dropped": dropped,
                        "anon_huge_bytes": anon_huge_bytes(start),
                    }
                )
            elif command:
                _emit({"error": f"unknown command {command!r}"})
        return 0
    except (WorkloadError, OSError) as exc:
        _emit({"error": str(exc)})
        print(f"workload: {exc}", file=sys.stderr)
        return 1
    finally:
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)


# --------------------------------------------------------------------------- in the parent


def _world_executable(path: str) -> bool:
    """Whether a user outside the file's owner and group can reach and run `path`."""
    real = Path(os.path.realpath(path))
    for parent in real.parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    mode = os.stat(real).st_mode
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def _interpreter_for_other_user() -> str:
    if _world_executable(sys.executable):
        return sys.executable
    system = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
    if system is None:
        raise WorkloadError("no python3 readable by other users (e.g. /usr/bin/python3)")
    return system


class Workload:
    """A running workload child; use `Workload.start(...)` as a context manager."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any], script: str) -> None:
        self.process = process
        self.info = info
        self._script = script
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        kind: str = "private",
        size_mib: int = 64,
        node: int | None = None,
        cpu: int | None = None,
        file_dir: str | None = None,
        user: int | None = None,
        group: int | None = None,
        timeout: float = 300.0,
    ) -> Self:
        """Launch the child and wait for its JSON line; raises WorkloadError if it fails.

        `user`: run as this uid (and `group`, default the same number) with no extra groups;
        the child then runs from a world-readable copy of this file under the system python.
        """
        opts = ["--kind", kind, "--size-mib", str(size_mib)]
        if node is not None:
            opts += ["--node", str(node)]
        if cpu is not None:
            opts += ["--cpu", str(cpu)]
        if file_dir is not None:
            opts += ["--file-dir", file_dir]
        script = ""
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        if user is None:
            # -S: no site-packages needed (stdlib only), and startup is seconds shorter in a
            # TCG guest reading the interpreter's files over 9p.
            command = [sys.executable, "-S", str(Path(__file__).resolve()), *opts]
        else:
            # The other user may not read the repo or a pyenv under /root: give it a copy.
            fd, script = tempfile.mkstemp(prefix="numatui-workload-", suffix=".py")
            with os.fdopen(fd, "w") as out:
                out.write(Path(__file__).read_text())
            os.chmod(script, 0o644)
            command = [_interpreter_for_other_user(), "-S", script, *opts]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd="/",
            user=user,
            group=(group if group is not None else user) if user is not None else None,
            extra_groups=[] if user is not None else None,
        )
        workload = cls(process, {}, script)
        try:
            workload.info = workload._read_reply(timeout)
        except BaseException:
            workload.stop()
            raise
        return workload

    def _read_reply(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = _readline_with_timeout(self.process.stdout, timeout)
        if not line:
            self.process.wait(timeout=10)
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise WorkloadError(
                f"workload exited with {self.process.returncode} before reporting: "
                f"{stderr.strip()[-2000:]}"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise WorkloadError(f"workload failed: {reply['error']}")
        return reply

    def checksum(self, timeout: float = 300.0) -> str:
        """Re-hash the child's memory now (e.g. after a migration)."""
        return str(self.request("checksum", timeout)["checksum"])

    def anon_huge_bytes(self, timeout: float = 60.0) -> int:
        """How much of the region is backed by transparent huge pages now."""
        return int(self.request("thp", timeout)["anon_huge_bytes"])

    def request(self, command: str, timeout: float = 300.0) -> dict[str, Any]:
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return self._read_reply(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """Close stdin (the child exits), escalate to SIGTERM/SIGKILL; returns the exit code."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self._script:
            with contextlib.suppress(OSError):
                os.unlink(self._script)
            self._script = ""
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _readline_with_timeout(stream: IO[str], timeout: float) -> str:
    """readline() that gives up after `timeout` seconds (a stuck child must not hang a test)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise WorkloadError(f"workload did not answer within {timeout:.0f} s")
    return result[0]


if __name__ == "__main__":
    raise SystemExit(main())

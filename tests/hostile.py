"""Real processes that attack numatui's screens and output through the text they control.

Each hostile process is a fresh interpreter (subprocess, never a fork of the test
process) that, as another user (uid 65534 when the tests run as root, else the
current user), sets its name with prctl(PR_SET_NAME), runs under a chosen argv[0]
(exec -a), and maps a file whose path it chose, then waits until its stdin closes.
They run /usr/bin/python3 when present: uid 65534 often cannot read a Python
installed under /root.

The strings: terminal escape sequences (title change, clear screen, alternate
screen), the C1 CSI (U+009B), bidi overrides, Rich markup that would crash (`[/]`),
act (`[@click=...]`) or style (`[bold red]`), tabs and newlines, invalid UTF-8,
and a 100,000-character command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PR_SET_NAME_MAX = 15
"""The kernel keeps the first 15 bytes of a name (TASK_COMM_LEN - 1)."""

CHILD = r"""
import ctypes, mmap, os, sys
name, path = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0) != 0:  # PR_SET_NAME
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
fd = os.open(path, os.O_RDONLY)
mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
sum(mapped[i] for i in range(0, len(mapped), 4096))  # present pages: shown in numa_maps
heap = bytearray(4 << 20)
for i in range(0, len(heap), 4096):
    heap[i] = 1
print("ready", flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class HostileCase:
    id: str
    name: bytes
    """What the process calls itself (prctl; cut to 15 bytes by the kernel)."""
    argv0: bytes
    """Its argv[0], the start of its command line."""
    file_dir: bytes
    """Directories under the mapped file's parent (may be empty)."""
    file_name: bytes
    extra_arg: str = ""


LONG = "\x1b[2J" * 25_000
"""A 100,000-character argument made only of clear-screen sequences."""

CASES: tuple[HostileCase, ...] = (
    HostileCase(
        "escape",
        b"\x1b]0;pwn\x07\x1b[2J",
        b"\x1b]0;pwned\x07\x1b[2J\x1b[?1049h\x1b[?1000h",
        b"",
        b"\x1b[2J\x1b]0;map\x07",
    ),
    HostileCase(
        "c1",
        "\x9b31mC1\x9b2J".encode(),
        "\x9b2J\x9b31mroot".encode(),
        b"",
        "\x9b2Jmapped".encode(),
    ),
    HostileCase(
        "bidi",
        "\u202egnp.exe".encode(),
        "\u202e\u2066evil\u2069\u202d\u202a\u202b\u202c\u2067\u2068".encode(),
        b"",
        "\u202etxt.exe".encode(),
    ),
    HostileCase("close-markup", b"[/]", b"[/]", b"x[", b"]y[b]z"),
    HostileCase(
        "click",
        b"[@click=app.q]",
        b"[@click=app.screenshot()]click me[/]",
        b"",
        b"[@click=app.quit()]f",
    ),
    HostileCase("style", b"[bold red]x", b"[bold red]root[/]", b"", b"[reverse]f"),
    HostileCase("invalid-utf8", b"\xff\xfe\x80bad", b"\xff\xc3(\x80", b"", b"\xff\xfeinv"),
    HostileCase("whitespace", b"a\tb\nc", b"tab\there\nnewline", b"", b"tab\tnl\nf"),
    HostileCase("long-cmdline", b"long", b"long", b"", b"long", extra_arg=LONG),
)


@dataclass
class HostileProcess:
    case: HostileCase
    pid: int
    child: subprocess.Popen[bytes]
    path: bytes
    """The mapped file's full path, as bytes."""

    @property
    def name(self) -> str:
        """The name as numatui reads it: the `Name:` of /proc/PID/status, where the kernel
        writes a newline as `\\n` and a backslash as `\\\\` (and nothing else); invalid
        UTF-8 becomes U+FFFD."""
        raw = self.case.name[:PR_SET_NAME_MAX]
        kernel = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        return kernel.decode("utf-8", "replace")

    @property
    def cmdline(self) -> str:
        """The command line as numatui decodes it: arguments joined by spaces."""
        args = [self.case.argv0, b"-I", b"-c", CHILD.encode()]
        args += [self.case.name.hex().encode(), self.path.hex().encode()]
        if self.case.extra_arg:
            args.append(self.case.extra_arg.encode())
        return b" ".join(args).decode("utf-8", "replace")

    @property
    def path_text(self) -> str:
        return self.path.decode("utf-8", "replace")


def _interpreter() -> str:
    system = shutil.which("python3", path="/usr/bin:/bin")
    return system or sys.executable


def other_user() -> int | None:
    """uid 65534 (nobody) when we are root; None: the current user."""
    return 65534 if os.geteuid() == 0 else None


@contextlib.contextmanager
def hostile_processes(cases: tuple[HostileCase, ...] = CASES) -> Iterator[list[HostileProcess]]:
    """Start every case, wait until each has mapped its file, stop them all at the end."""
    uid = other_user()
    root = Path(tempfile.mkdtemp(prefix="numatui-hostile-"))
    started: list[HostileProcess] = []
    try:
        root.chmod(0o755)  # the other user maps files in here
        for index, case in enumerate(cases):
            parent = os.path.join(bytes(root), str(index).encode())
            os.mkdir(parent, 0o755)
            folder = os.path.join(parent, case.file_dir) if case.file_dir else parent
            os.makedirs(folder, 0o755, exist_ok=True)
            path = os.path.join(folder, case.file_name)
            with open(path, "wb") as f:
                f.write(b"\0" * 65536)
            os.chmod(path, 0o644)
            args: list[str | bytes] = [case.argv0, "-I", "-c", CHILD, case.name.hex(), path.hex()]
            if case.extra_arg:
                args.append(case.extra_arg)
            ids: dict[str, object] = {}
            if uid is not None:
                ids = {"user": uid, "group": uid, "extra_groups": []}
            child = subprocess.Popen(
                args,
                executable=_interpreter(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                **ids,  # type: ignore[arg-type]
            )
            started.append(HostileProcess(case, child.pid, child, path))
        for process in started:
            assert process.child.stdout is not None
            line = process.child.stdout.readline()  # ends at "ready", or EOF if it died
            if line != b"ready\n":
                raise RuntimeError(f"hostile process {process.case.id} did not start: {line!r}")
        yield started
    finally:
        for process in started:
            with contextlib.suppress(OSError):
                assert process.child.stdin is not None
                process.child.stdin.close()
        for process in started:
            try:
                process.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.child.kill()
                process.child.wait()
        shutil.rmtree(root, ignore_errors=True)


# The bytes nothing numatui writes to a terminal may hold.
ESC = b"\x1b"
C1_UTF8 = tuple(chr(c).encode() for c in range(0x80, 0xA0))
BIDI_UTF8 = tuple(
    ch.encode() for ch in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def terminal_hazards(data: bytes) -> list[str]:
    """What in `data` a terminal would act on: control bytes other than newline, C1, bidi."""
    found: list[str] = []
    controls = sorted({b for b in data if (b < 0x20 and b != 0x0A) or b == 0x7F})
    if controls:
        found.append(f"control bytes {[hex(b) for b in controls]}")
    found += [f"C1 {c!r}" for c in C1_UTF8 if c in data]
    found += [f"bidi {c!r}" for c in BIDI_UTF8 if c in data]
    return found

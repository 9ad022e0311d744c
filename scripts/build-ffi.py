"""Regenerate numatui/kernel/_syscall_ffi.py, cffi's out-of-line ABI module.

    python3 scripts/build-ffi.py

Why a generated module: in-line ABI mode parses the C declaration with
pycparser at every start, which costs more than the interpreter's own start
(measured in the QEMU guest: ~2 s of a 9 s `numatui migrate`). The generated
module holds the parsed declaration as tables and needs only _cffi_backend;
tests/unit/test_syscalls_ffi.py checks it matches DECLARATIONS.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "numatui" / "kernel" / "_syscall_ffi.py"
DECLARATIONS = "long syscall(long number, ...);"


def generate() -> str:
    from cffi import FFI

    builder = FFI()
    builder.cdef(DECLARATIONS)
    builder.set_source("numatui.kernel._syscall_ffi", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "_syscall_ffi.py"
        builder.emit_python_code(str(out))
        return out.read_text()


def main() -> int:
    TARGET.write_text(generate())
    print(f"wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

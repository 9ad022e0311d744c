"""The committed cffi module is what scripts/build-ffi.py generates, and loads without pycparser."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_module_is_current() -> None:
    spec = importlib.util.spec_from_file_location("build_ffi", ROOT / "scripts" / "build-ffi.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.TARGET.read_text() == build.generate(), "run: python3 scripts/build-ffi.py"


def test_syscalls_need_no_pycparser_at_run_time() -> None:
    code = (
        "import sys; from numatui.kernel import syscalls; "
        "from numatui.kernel.nodemask import NodeMask; "
        "syscalls.migrate_pages(0, NodeMask({0}), NodeMask({0})); "
        "assert 'pycparser' not in sys.modules, 'pycparser loaded'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

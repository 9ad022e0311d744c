"""`python -m numatui` exits 130 for Ctrl-C however Python delivers it during start-up.

Each case runs in a fresh interpreter: the entry point leaves with `os._exit`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import sys
import numatui.cli
numatui.cli.main = main
from numatui.__main__ import run
sys.exit(run())
"""

# A KeyboardInterrupt raised while a class body's descriptors are set up (what a
# dataclass field does while a module loads): Python 3.11 hands it on as a RuntimeError.
IN_SET_NAME = """
class Interrupting:
    def __set_name__(self, owner, name):
        raise KeyboardInterrupt
def main(argv=None):
    class Loading:
        field = Interrupting()
"""

PLAIN = """
def main(argv=None):
    raise KeyboardInterrupt
"""

OTHER_RUNTIME_ERROR = """
def main(argv=None):
    raise RuntimeError("a real bug")
"""


def run_entry_point(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", body + RUN],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("body", [PLAIN, IN_SET_NAME], ids=["plain", "wrapped-in-set-name"])
def test_ctrl_c_exits_130_without_a_traceback(body: str) -> None:
    done = run_entry_point(body)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr


def test_a_runtime_error_that_is_not_ctrl_c_is_a_crash_with_its_traceback() -> None:
    done = run_entry_point(OTHER_RUNTIME_ERROR)
    assert done.returncode == 1
    assert "RuntimeError: a real bug" in done.stderr

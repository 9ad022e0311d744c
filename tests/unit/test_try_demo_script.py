"""scripts/try-numa-guest.sh runs the app with the interpreter that has numatui, not python3.

After a pipx, `uv tool` or venv install the python3 first on PATH has no Textual; the
`numatui` command's own interpreter (its shebang) has everything. The demo's guest shares
the host's files, so that interpreter is the one to hand the guest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "try-numa-guest.sh"


def find_python(path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{path}:/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run(
        ["bash", "-c", f"source {SCRIPT} && find_python"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_numatui_commands_interpreter_wins_over_a_bare_python3(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A system python3 without numatui's dependencies, first on PATH.
    bare = bin_dir / "python3"
    bare.write_text("#!/bin/sh\nexit 1\n")
    # The `numatui` command a pipx/uv/venv install puts on PATH: its shebang names the
    # interpreter that has the dependencies (here: the one running this test).
    entry = bin_dir / "numatui"
    entry.write_text(f"#!{sys.executable}\nimport numatui\n")
    for script in (bare, entry):
        script.chmod(0o755)
    if (REPO / ".venv" / "bin" / "python").exists():
        expected = str((REPO / ".venv" / "bin" / "python").absolute())
    else:
        expected = os.path.realpath(sys.executable)
    done = find_python(bin_dir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert os.path.realpath(done.stdout.strip()) == os.path.realpath(expected)


def test_no_interpreter_with_numatui_is_a_clear_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bare = bin_dir / "python3"
    bare.write_text("#!/bin/sh\nexit 1\n")
    bare.chmod(0o755)
    installed = [
        p for p in (REPO / ".venv/bin/python", Path("/opt/numatui/bin/python")) if p.exists()
    ]
    if installed:
        pytest.skip(f"{installed[0]} is always a candidate here: nothing can be missing")
    done = find_python(bin_dir, tmp_path)
    assert done.returncode == 1
    assert "scripts/install.sh" in done.stderr
    assert done.stdout == ""

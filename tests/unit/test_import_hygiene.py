"""The kernel layer, the model and the CLI must not pull in Textual (fast start, no UI deps)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import numatui.kernel
import numatui.model

REPO = Path(__file__).resolve().parent.parent.parent
KERNEL_MODULES = sorted(
    f"numatui.kernel.{m.name}" for m in pkgutil.iter_modules(numatui.kernel.__path__)
)
MODEL_MODULES = sorted(
    f"numatui.model.{m.name}" for m in pkgutil.iter_modules(numatui.model.__path__)
)


def imports_textual(module: str) -> bool:
    code = f"import sys, {module}; print('textual' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    return result.stdout.strip() == "True"


@pytest.mark.parametrize(
    "module",
    [*KERNEL_MODULES, *MODEL_MODULES, "numatui.source", "numatui.errors", "numatui.splash"],
)
def test_module_does_not_import_textual(module: str) -> None:
    assert not imports_textual(module)


def test_cli_does_not_import_textual() -> None:
    if not (REPO / "numatui" / "cli.py").exists():
        pytest.skip("numatui/cli.py does not exist yet")
    assert not imports_textual("numatui.cli")


def test_the_check_itself_sees_textual() -> None:
    # If this failed, the tests above would pass for the wrong reason.
    pytest.importorskip("textual")
    assert imports_textual("textual")

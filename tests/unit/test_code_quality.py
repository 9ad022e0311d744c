"""The code stays ruff- and mypy-clean and free of known costly patterns: checked every run."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff not installed: pip install -e '.[test]'"
)
def test_ruff_check_is_clean() -> None:
    proc = _run("ruff", "check", "numatui", "tests", "benchmarks", "scripts")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff not installed: pip install -e '.[test]'"
)
def test_ruff_format_is_clean() -> None:
    proc = _run("ruff", "format", "--check", "numatui", "tests", "benchmarks", "scripts")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy not installed: pip install -e '.[test]'")
    proc = _run(sys.executable, "-m", "mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _work_decorators_without_description() -> list[str]:
    missing: list[str] = []
    for path in sorted((ROOT / "numatui").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call is not None else decorator
                if not (isinstance(target, ast.Name) and target.id == "work"):
                    continue
                if call is None or not any(k.arg == "description" for k in call.keywords):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return missing


def test_every_worker_says_what_it_does() -> None:
    """Textual's @work without `description` repr()s every argument on the UI thread each
    time the worker starts: a whole scan's dataclasses on every refresh (17 % of the idle
    app's CPU with 570 processes, a py-spy profile)."""
    assert _work_decorators_without_description() == []

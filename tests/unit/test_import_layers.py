"""The layers hold: import-linter's contracts in pyproject.toml, checked on every test run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("lint-imports") is None,
    reason="import-linter not installed: pip install -e '.[test]'",
)


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["lint-imports", "--no-cache", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_layer_contracts_are_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    proc = _lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in proc.stdout, proc.stdout
    assert len(contracts) >= 4


def test_a_broken_contract_is_seen(tmp_path: Path) -> None:
    # If this failed, the test above could pass for the wrong reason: the app does import
    # the screens, so a contract forbidding it must be reported broken.
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "numatui"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "must break"\ntype = "forbidden"\n'
        'source_modules = ["numatui.app"]\nforbidden_modules = ["numatui.screens"]\n'
    )
    proc = _lint("--config", str(config))
    assert proc.returncode != 0
    assert "must break BROKEN" in proc.stdout, proc.stdout

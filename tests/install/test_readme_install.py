"""README's install command, run as a stranger would on stock Debian: does `sudo numatui` work?

The command is read from README's "Setup" section (its first code block: the install line,
then the run line) and run from a clean copy of the repo the way sudo runs it: as root,
environment cleared, PATH = sudo's secure_path, so `python3` is Debian's own /usr/bin/python3
(PEP 668: it refuses `pip install`). Then `numatui` must be found on that same PATH.

So that the machine running the test keeps its own /opt and /usr/local/bin, the command runs
in a private mount namespace with an overlay on each (what it writes there vanishes with the
namespace; what the machine has stays visible). It installs real packages from the
configured index (tens of seconds), so it runs in CI (CI=true) or with NUMATUI_INSTALL_TEST=1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where the install may write as root: overlaid so the host is untouched.
OVERLAID = ("/opt", "/usr/local/bin")
INSTALL_TIMEOUT_S = 600


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def readme_setup_commands() -> list[str]:
    """The steps of the first command under README's '## Setup' heading (`A && B`: A, B)."""
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Setup.*?$(.*?)^## ", text, re.M | re.S)
    assert section, "README has no '## Setup' section"
    block = re.search(r"((?:^    \S.*\n)+)", section[1], re.M)
    assert block, "README's Setup section has no code block"
    return [step.strip() for step in block[1].splitlines()[0].split(" && ")]


def as_root_command(line: str) -> str:
    """The README line as root runs it: `sudo` dropped (we are root already)."""
    return line.removeprefix("sudo ").strip()


def clean_copy(target: Path) -> Path:
    """The repo's files as a fresh clone would have them (tracked + new, never ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def sudo_env(home: Path) -> list[str]:
    return ["env", "-i", f"PATH={SECURE_PATH}", f"HOME={home}", "TERM=dumb", "LANG=C.UTF-8"]


@pytest.fixture
def enabled() -> None:
    if not (in_ci() or os.environ.get("NUMATUI_INSTALL_TEST") == "1"):
        pytest.skip("installs real packages: runs with CI=true or NUMATUI_INSTALL_TEST=1")
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (it checks what `sudo` gives a user)")
    if not Path("/usr/bin/python3").is_file():
        problems.append("no Debian /usr/bin/python3")
    if shutil.which("unshare") is None:
        problems.append("no unshare(1) for the private mount namespace")
    if problems:
        message = "; ".join(problems)
        if in_ci():
            pytest.fail(message + " (CI=true: this test never skips in CI)", pytrace=False)
        pytest.skip(message)


def test_readme_says_sudo_install_then_sudo_numatui() -> None:
    lines = readme_setup_commands()
    assert len(lines) >= 2, lines
    assert lines[1] == "sudo numatui", f"README's command should end `&& sudo numatui`: {lines}"


def test_readme_install_command_gives_sudo_a_working_numatui(enabled: None, tmp_path: Path) -> None:
    install_line = as_root_command(readme_setup_commands()[0])
    repo = clean_copy(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    mounts = []
    for index, point in enumerate(OVERLAID):
        upper, work = tmp_path / f"upper{index}", tmp_path / f"work{index}"
        upper.mkdir()
        work.mkdir()
        mounts.append(
            f"mount -t overlay overlay -o lowerdir={point},upperdir={upper},workdir={work} {point}"
        )
    env = " ".join(map(shlex.quote, sudo_env(home)))
    script = "\n".join(
        [
            "set -eu",
            *mounts,
            f"cd {shlex.quote(str(repo))}",
            'echo "::: install: $0"',
            f"{env} bash -c {shlex.quote(install_line)} </dev/null",
            'echo "::: version"',
            f"{env} numatui --version",
            'echo "::: which"',
            f"{env} sh -c 'command -v numatui'",
            f'readlink -f "$({env} sh -c "command -v numatui")"',
            'echo "::: nodes"',
            f"{env} numatui nodes --json > {tmp_path}/nodes.json",
        ]
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", script, install_line],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README's `{install_line}` then `numatui` failed:\n{output}"
    assert re.search(r"^numatui \d+\.\d+", done.stdout, re.M), output
    found, target = done.stdout.split("::: which\n", 1)[1].split("\n")[:2]
    assert found in {f"{d}/numatui" for d in SECURE_PATH.split(":")}, output
    # The program itself runs on Debian's Python from a venv, not the system site-packages.
    assert target.endswith("/bin/numatui") and not target.startswith("/usr/bin"), output
    nodes = json.loads((tmp_path / "nodes.json").read_text())
    assert nodes["nodes"] and all("id" in node for node in nodes["nodes"]), nodes
    # The checkout stays as it was: no root-owned build/ or egg-info left behind.
    assert not (repo / "build").exists() and not list(repo.glob("*.egg-info")), output

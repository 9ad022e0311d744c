"""Boots a multi-node QEMU guest with virtme-ng, runs tests/kernel/guest in it, reads results.

The host has one NUMA node, so every claim about real page placement and migration is
proven inside a guest kernel that sees several nodes (see /work/shared/numa-vm.md). Each
topology boots ONCE per host pytest session; test_guests.py turns every guest test into one
host test so a failure names the guest test and carries its message and output.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = "tests/kernel/guest"

# qemu memory/cpu layout per topology marker; nodes the guest must then show online.
TWO_NODES = ["-m", "2G", "-p", "2", "--numa", "1G,cpus=0", "--numa", "1G,cpus=1"]
TOPOLOGIES: dict[str, list[str]] = {
    "two_nodes": TWO_NODES,
    # The same machine, booted afresh for timing tests alone. Measured: after the 2-node
    # guest's drain test, move_pages calls in that guest take 100 ms to 4 s at times (the
    # caller in synchronize_rcu_expedited < lru_cache_disable, or running), where a fresh
    # guest under two host CPU hogs keeps them at the budget. A timing test must not depend
    # on what the tests before it left in the kernel.
    "two_nodes_quiet": TWO_NODES,
    # Nodes 2 and 3 have memory and no CPUs (as CXL expanders appear); node 4 has a CPU
    # and no memory (a memory-less node: a target the kernel refuses).
    "four_nodes": [
        "-m",
        "2G",
        "-p",
        "3",
        "--numa",
        "512M,cpus=0",
        "--numa",
        "512M,cpus=1",
        "--numa",
        "512M",
        "--numa",
        "512M",
        "--numa",
        "0,cpus=2",
    ],
}
EXPECTED_ONLINE = {"two_nodes": "0-1", "two_nodes_quiet": "0-1", "four_nodes": "0-4"}
HUGEPAGES = {"four_nodes": 20}
CONSOLE_TAIL_LINES = 80
# pytest plugins the guest loads (autoload is off there; add one here if a guest test needs it).
GUEST_PLUGINS: list[str] = ["pytest_timeout"]
# Budgets, from measured TCG runs on this project's 2-core host (README, Tests), with
# headroom. Each guest test fails alone after TEST_TIMEOUT_S (pytest-timeout inside the
# guest, which prints every thread's stack); @pytest.mark.timeout(N) gives a test N instead.
# Measured on a host overloaded by two other guests (load 8-15): most guest tests 5-40 s,
# the app end to end 128 s, moving 256 MiB into a filling node 249 s (about 60 s idle).
TEST_TIMEOUT_S = 600.0
# Until the guest's first test starts (boot, topology checks, collection under TCG).
BOOT_BUDGET_S = 300.0
# Past a test's own limit before the host gives up on the guest (the in-guest timeout
# could not interrupt it: stuck in C code or the kernel); and after the last test ends.
GRACE_S = 90.0
# Exit codes of the guest script's own checks (before pytest runs).
EXIT_WRONG_TOPOLOGY = 97
EXIT_HUGEPAGES_NOT_SPREAD = 98


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def test_timeout() -> float:
    """Seconds one guest test may run before it fails (NUMATUI_TEST_TIMEOUT overrides)."""
    return float(os.environ.get("NUMATUI_TEST_TIMEOUT", TEST_TIMEOUT_S))


def per_test_timeout_args(seconds: float) -> list[str]:
    """pytest arguments that fail each test alone after `seconds`.

    SIGALRM, not pytest-timeout's thread method: that one ends the whole session, and the
    tests after a hung one would have no result. The signal method prints every other
    thread's stack, and the main thread's is the failure's traceback.
    """
    return [f"--timeout={seconds:g}", "--timeout-method=signal"]


def guest_timeout() -> float | None:
    """An optional hard cap on one guest's boot + run (NUMATUI_GUEST_TIMEOUT); None: no
    cap beyond the watchdog's (BOOT_BUDGET_S, then each test's limit + GRACE_S)."""
    value = os.environ.get("NUMATUI_GUEST_TIMEOUT")
    return float(value) if value else None


def _version_key(path: Path) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name)]


def find_kernel() -> Path | None:
    """NUMATUI_KERNEL, else the newest /boot/vmlinuz-*-amd64 (scripts/provision-vm.sh)."""
    override = os.environ.get("NUMATUI_KERNEL")
    if override:
        return Path(override)
    images = sorted(Path("/boot").glob("vmlinuz-*-amd64"), key=_version_key)
    return images[-1] if images else None


def vng_executable() -> str | None:
    """vng next to this interpreter (the .venv scripts/test.sh installs it in), else on PATH."""
    beside = Path(sys.executable).parent / "vng"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("vng")


def missing_prerequisites() -> list[str]:
    """What this machine lacks to boot a guest; empty when the tier can run."""
    missing = [
        f"`{tool}` not found"
        for tool in ("qemu-system-x86_64", "udevadm")
        if shutil.which(tool) is None
    ]
    if vng_executable() is None:
        missing.insert(0, "`vng` (virtme-ng) not found")
    kernel = find_kernel()
    if kernel is None:
        missing.append("no kernel image /boot/vmlinuz-*-amd64 (or set NUMATUI_KERNEL)")
    elif not kernel.is_file():
        missing.append(f"kernel image {kernel} does not exist")
    else:
        version = kernel.name.removeprefix("vmlinuz-")
        if kernel.parent == Path("/boot") and not Path("/lib/modules", version).is_dir():
            missing.append(f"no modules for {version} in /lib/modules (9p/virtio are modules)")
    return missing


def junit_address(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's junitxml writes for a node id (mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True)
class GuestCollection:
    """Guest test node ids and their topology markers, collected on the host."""

    ok: bool
    items: list[tuple[str, frozenset[str]]]
    output: str
    seconds: float

    def for_topology(self, topology: str) -> list[str]:
        return [nodeid for nodeid, marks in self.items if topology in marks]

    def without_topology(self) -> list[str]:
        return [nodeid for nodeid, marks in self.items if not marks & TOPOLOGIES.keys()]


_COLLECT_SCRIPT = """
import json, sys, pytest
class Grab:
    items = []
    def pytest_collection_finish(self, session):
        Grab.items = [[i.nodeid, sorted({m.name for m in i.iter_markers()})]
                      for i in session.items]
args = ["--collect-only", "-q", "-p", "no:cacheprovider", sys.argv[1]]
code = pytest.main(args, plugins=[Grab()])
print("@@NUMATUI-COLLECTED@@" + json.dumps({"code": int(code), "items": Grab.items}))
"""


@functools.cache
def collect_guest_tests() -> GuestCollection:
    """Collect tests/kernel/guest (cached: once per host session)."""
    return collect_tests(REPO, GUEST_DIR)


def collect_tests(root: Path, target: str) -> GuestCollection:
    """Collect `target` under `root` in a subprocess (the guest conftest must not load into
    the host session) with a plugin that reports exact node ids and markers."""
    began = time.monotonic()
    env = dict(os.environ, NUMATUI_COLLECT_GUEST="1", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", _COLLECT_SCRIPT, target],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - began
    output = proc.stdout + proc.stderr
    marker = "@@NUMATUI-COLLECTED@@"
    for line in proc.stdout.splitlines():
        if line.startswith(marker):
            report = json.loads(line.removeprefix(marker))
            items = [(nodeid, frozenset(marks)) for nodeid, marks in report["items"]]
            # 5 = nothing collected: not an error here, the host then has no guest tests.
            return GuestCollection(report["code"] in (0, 5), items, output, seconds)
    return GuestCollection(False, [], output, seconds)


# --------------------------------------------------------------------------- results


@dataclass
class GuestResult:
    outcome: str  # passed, failed, error, skipped, xfailed
    message: str = ""
    details: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


_SEVERITY = {"passed": 0, "xfailed": 1, "skipped": 1, "failed": 2, "error": 3}


def _merge(old: GuestResult | None, new: GuestResult) -> GuestResult:
    """A test can appear twice (call failure + teardown error): keep the worse, join texts."""
    if old is None:
        return new
    worse, other = (new, old) if _SEVERITY[new.outcome] > _SEVERITY[old.outcome] else (old, new)
    worse.details = "\n".join(t for t in (worse.details, other.details) if t)
    return worse


_SECTION_HEADER = re.compile(r"^-+ Captured \w+ -+$", re.MULTILINE)


def _drop_empty_sections(text: str) -> str:
    """junit_logging=all writes a header per capture even when it is empty."""
    return "" if not _SECTION_HEADER.sub("", text).strip() else text


def parse_junit(path: Path, nodeids: list[str]) -> dict[str, GuestResult]:
    by_address = {junit_address(nodeid): nodeid for nodeid in nodeids}
    results: dict[str, GuestResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = by_address.get((case.get("classname", ""), case.get("name", "")))
        if nodeid is None:
            continue
        result = GuestResult("passed", seconds=float(case.get("time", "0") or 0))
        for child in case:
            text = child.text or ""
            if child.tag in ("failure", "error"):
                result.outcome = "failed" if child.tag == "failure" else "error"
                result.message = child.get("message", "")
                result.details = text
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                result.outcome = "xfailed" if xfail else "skipped"
                result.message = child.get("message", "")
            elif child.tag == "system-out":
                result.stdout += _drop_empty_sections(text)
            elif child.tag == "system-err":
                result.stderr += _drop_empty_sections(text)
        results[nodeid] = _merge(results.get(nodeid), result)
    return results


def parse_progress(path: Path) -> tuple[dict[str, GuestResult], str | None]:
    """The guest conftest's line-per-report log: results of tests that finished before a
    crash, and the test that had started but not finished (if any)."""
    results: dict[str, GuestResult] = {}
    running: str | None = None
    if not path.exists():
        return results, None
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written when the guest died
        nodeid = record["nodeid"]
        if record["event"] == "start":
            running = nodeid
            continue
        if record["event"] == "finish":
            running = None
            continue
        outcome = record["outcome"]
        if outcome == "failed" and record["when"] != "call":
            outcome = "error"
        if outcome == "skipped" and record.get("wasxfail"):
            outcome = "xfailed"
        result = GuestResult(outcome, details=record.get("longrepr", ""))
        if outcome in ("skipped", "xfailed"):
            result.message = record.get("longrepr", "")
        results[nodeid] = _merge(results.get(nodeid), result)
    return results, running


@dataclass
class GuestRun:
    topology: str
    results: dict[str, GuestResult] = field(default_factory=dict)
    console: str = ""
    setup_error: str = ""
    running_at_end: str | None = None
    returncode: int | None = None
    timed_out: bool = False
    kill_reason: str = ""
    stacks: str = ""  # the guest's stack dump of a test that overran its limit
    boot_seconds: float | None = None  # guest uptime when our script started
    total_seconds: float = 0.0
    pytest_returncode: int | None = None

    def console_tail(self, lines: int = CONSOLE_TAIL_LINES) -> str:
        return "\n".join(self.console.splitlines()[-lines:])

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
        boot = f"boot {self.boot_seconds:.1f} s, " if self.boot_seconds is not None else ""
        note = f" KILLED: {self.kill_reason}" if self.timed_out else ""
        note += f" SETUP FAILED: {self.setup_error}" if self.setup_error else ""
        tested = sum(r.seconds for r in self.results.values())
        slowest = sorted(self.results.items(), key=lambda item: -item[1].seconds)[:3]
        slow = ", ".join(
            f"{nodeid.rsplit('::', 1)[-1]} {result.seconds:.0f} s" for nodeid, result in slowest
        )
        # Near the limit is worth saying: a slower machine would turn it into a failure.
        near = [nodeid for nodeid, r in self.results.items() if r.seconds > test_timeout() / 2]
        warn = (
            f"; SLOW, over half the {test_timeout():g} s limit: {', '.join(near)}" if near else ""
        )
        return (
            f"{self.topology}: {boot}boot+run {self.total_seconds:.1f} s (tests {tested:.0f} s;"
            f" slowest: {slow or 'none'}{warn}); results: {tally}{note}"
            f" (console: {console_log_path(self.topology)})"
        )


# --------------------------------------------------------------------------- booting


def guest_script(topology: str, rwdir: Path, only: list[str] | None = None) -> str:
    """The shell script the guest runs: check the topology, reserve huge pages, run pytest."""
    env = {
        "NUMATUI_IN_GUEST": "1",
        "NUMATUI_TOPOLOGY": topology,
        "NUMATUI_GUEST_RESULTS": str(rwdir / "progress.jsonl"),
        "NUMATUI_TEST_TIMEOUT": f"{test_timeout():g}",
        "NUMATUI_STACKS_GRACE": f"{GRACE_S / 2:g}",
        "PYTHONDONTWRITEBYTECODE": "1",
        # A killed guest must still leave pytest's progress on the console.
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO),
        # Autoloading every installed plugin (textual snapshots, hypothesis, ...) costs minutes
        # under TCG; guest tests get only GUEST_PLUGINS.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    plugins = [arg for name in GUEST_PLUGINS for arg in ("-p", name)]
    pytest_cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugins,
        *(only or [GUEST_DIR]),
        "-m", topology, f"--junitxml={rwdir / 'junit.xml'}",
        "-o", "junit_logging=all", "-v", "-ra", "--durations=0",
        *per_test_timeout_args(test_timeout()),
        "--continue-on-collection-errors",
        # pyproject's options for plugins not loaded in the guest (asyncio) are not errors.
        "-W", "ignore::pytest.PytestConfigWarning",
    ]  # fmt: skip
    rw = shlex.quote(str(rwdir))
    lines = [
        "cut -d' ' -f1 /proc/uptime > " + rw + "/boot_seconds",
        "online=$(cat /sys/devices/system/node/online)",
        f'if [ "$online" != {EXPECTED_ONLINE[topology]} ]; then',
        f'  echo "numatui-harness: expected nodes {EXPECTED_ONLINE[topology]},'
        f' the guest has $online" | tee {rw}/setup_error',
        f"  exit {EXIT_WRONG_TOPOLOGY}",
        "fi",
    ]
    if topology in HUGEPAGES:
        lines += [
            f"echo {HUGEPAGES[topology]} > /proc/sys/vm/nr_hugepages",
            "spread=''",
            "for node in /sys/devices/system/node/node[0-9]*; do",
            # A memory-less node holds no huge pages.
            '  if grep -q "MemTotal: *0 kB" $node/meminfo; then continue; fi',
            "  n=$(cat $node/hugepages/hugepages-2048kB/nr_hugepages)",
            '  spread="$spread ${node##*/}=$n"',
            '  if [ "$n" -eq 0 ]; then bad=1; fi',
            "done",
            'echo "numatui-harness: 2 MiB huge pages per node:$spread"',
            'if [ -n "${bad:-}" ]; then',
            '  echo "numatui-harness: huge pages not on every node:$spread"'
            f" | tee {rw}/setup_error",
            f"  exit {EXIT_HUGEPAGES_NOT_SPREAD}",
            "fi",
        ]
    lines += [
        f"cd {shlex.quote(str(REPO))}",
        "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
        + shlex.join(pytest_cmd),
        f"echo $? > {rw}/pytest_rc",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def vng_command(topology: str, kernel: Path, rwdir: Path) -> list[str]:
    return [
        vng_executable() or "vng",
        "--disable-kvm",  # nested KVM hangs after decompressing the kernel on these hosts
        "-r",
        str(kernel),
        *TOPOLOGIES[topology],
        "--rwdir",
        str(rwdir),
        "--cwd",
        str(REPO),
        "--",
        f"bash {shlex.quote(str(rwdir / 'run.sh'))}",
    ]


def console_log_path(topology: str) -> Path:
    """Where the last guest console of a topology is kept for a person to read."""
    return Path(tempfile.gettempdir()) / f"numatui-guest-{topology}-console.log"


@dataclass
class Watchdog:
    """Decides, from the guest's progress log, when a guest has stopped making progress.

    The guest fails a slow test itself (pytest-timeout); the host kills the guest only when
    that cannot have worked: no test started within BOOT_BUDGET_S, a test ran GRACE_S past
    its own limit, or the session did not end GRACE_S after its last test. So a guest that
    is merely slow keeps running, and a kill names what was running and for how long.
    """

    began: float
    hard_cap: float | None = None
    running: str | None = None
    running_since: float = 0.0
    running_limit: float = 0.0
    last_event: float = 0.0
    started_any: bool = False
    seen_lines: int = 0

    def observe(self, path: Path, now: float) -> None:
        """Take in the progress lines written since the last look (timed on the host)."""
        if not path.exists():
            return
        lines = path.read_text(errors="replace").splitlines()
        for line in lines[self.seen_lines :]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # half written: read it again next time
            self.seen_lines += 1
            self.last_event = now
            if record.get("event") == "start":
                self.started_any = True
                self.running, self.running_since = record["nodeid"], now
                self.running_limit = float(record.get("limit") or test_timeout())
            elif record.get("event") == "finish":
                self.running = None

    def verdict(self, now: float) -> str | None:
        """Why the guest must be killed now, or None."""
        elapsed = now - self.began
        if self.hard_cap is not None and elapsed > self.hard_cap:
            return f"NUMATUI_GUEST_TIMEOUT={self.hard_cap:g} s reached"
        if not self.started_any:
            if elapsed > BOOT_BUDGET_S:
                return f"no guest test started within {BOOT_BUDGET_S:g} s of booting"
            return None
        if self.running is not None:
            ran = now - self.running_since
            if ran > self.running_limit + GRACE_S:
                return (
                    f"{self.running} ran {ran:.0f} s, past its {self.running_limit:g} s limit "
                    f"+ {GRACE_S:g} s: its in-guest timeout could not stop it"
                )
            return None
        if now - self.last_event > GRACE_S:
            return f"the guest session did not end within {GRACE_S:g} s of its last test"
        return None


def boot_and_run(
    topology: str,
    nodeids: list[str],
    timeout: float | None = None,
    only: list[str] | None = None,
) -> GuestRun:
    """Boot the topology's guest once, run its guest tests, and collect every result.

    `only`: run just these guest node ids (the host deselected the rest), else all marked.
    `timeout`: a hard cap on the whole run (default NUMATUI_GUEST_TIMEOUT, else none: the
    Watchdog decides).
    """
    kernel = find_kernel()
    assert kernel is not None, "call missing_prerequisites() first"
    run = GuestRun(topology)
    # /tmp is a tmpfs overlay in the guest, but --rwdir mounts the host folder over it.
    rwdir = Path(tempfile.mkdtemp(prefix=f"numatui-guest-{topology}-"))
    progress_log = rwdir / "progress.jsonl"
    try:
        (rwdir / "run.sh").write_text(guest_script(topology, rwdir, only))
        began = time.monotonic()
        watchdog = Watchdog(began, guest_timeout() if timeout is None else timeout)
        with tempfile.TemporaryFile() as console:
            proc = subprocess.Popen(
                vng_command(topology, kernel, rwdir),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a timeout can kill QEMU along with vng
            )
            while True:
                try:
                    proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                watchdog.observe(progress_log, now)
                reason = watchdog.verdict(now)
                if reason is not None:
                    run.timed_out, run.kill_reason = True, reason
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
            run.total_seconds = time.monotonic() - began
            run.returncode = proc.returncode
            console.seek(0)
            run.console = console.read().decode(errors="replace")
        console_log_path(topology).write_text(run.console)
        if (rwdir / "boot_seconds").exists():
            with contextlib.suppress(ValueError):
                run.boot_seconds = float((rwdir / "boot_seconds").read_text())
        if (rwdir / "setup_error").exists():
            run.setup_error = (rwdir / "setup_error").read_text().strip()
        if (rwdir / "pytest_rc").exists():
            with contextlib.suppress(ValueError):
                run.pytest_returncode = int((rwdir / "pytest_rc").read_text())
        stacks = rwdir / "stacks.txt"
        if stacks.exists() and "Timeout (" in (text := stacks.read_text(errors="replace")):
            run.stacks = text  # faulthandler's dump: the test overran its limit
        progress, run.running_at_end = parse_progress(progress_log)
        junit = rwdir / "junit.xml"
        if junit.exists():
            try:
                run.results = parse_junit(junit, nodeids)
            except ET.ParseError:
                run.results = progress
        else:
            run.results = progress
    finally:
        shutil.rmtree(rwdir, ignore_errors=True)
    return run


def why_no_result(run: GuestRun, nodeid: str) -> str:
    """The explanation a host test shows when its guest test produced no result."""
    if run.setup_error:
        reason = f"the guest's setup failed before pytest ran: {run.setup_error}"
    elif run.timed_out:
        reason = f"the host killed the guest after {run.total_seconds:.0f} s: {run.kill_reason}"
    elif run.pytest_returncode is None:
        reason = f"the guest stopped before pytest finished (vng exit {run.returncode})"
    else:
        reason = f"guest pytest exited {run.pytest_returncode} without reporting this test"
    if run.running_at_end == nodeid:
        reason += "; this test was RUNNING when the guest stopped"
    elif run.running_at_end:
        reason += f"; {run.running_at_end} was running when the guest stopped"
    stacks = (
        f"--- every thread's stack when {run.running_at_end} overran its limit ---\n{run.stacks}\n"
        if run.stacks and run.running_at_end == nodeid
        else ""
    )
    return (
        f"no result for {nodeid} from the {run.topology} guest: {reason}\n{stacks}"
        f"--- last {CONSOLE_TAIL_LINES} lines of the guest console ---\n{run.console_tail()}"
    )


# --------------------------------------------------------------------------- session

RUNS: dict[str, GuestRun] = {}
# Guest node ids the host session selected, per topology (set after host collection).
SELECTED: dict[str, list[str]] = {}


class GuestSession:
    """Boots each topology lazily, once per host session, when a host test first asks."""

    def __init__(self) -> None:
        self.collection = collect_guest_tests()

    def run(self, topology: str) -> GuestRun:
        if topology not in RUNS:
            missing = missing_prerequisites()
            if missing:
                message = (
                    "the real-kernel tier cannot boot a guest: "
                    + "; ".join(missing)
                    + ". Run `bash scripts/test.sh` as root: scripts/provision-vm.sh installs"
                    " QEMU and a kernel, and the test extras (virtme-ng) go into the repo's .venv."
                )
                if in_ci():
                    pytest.fail(message + " (CI=true: this tier never skips in CI)", pytrace=False)
                pytest.skip(message)
            every = self.collection.for_topology(topology)
            chosen = SELECTED.get(topology, every)
            only = chosen if set(chosen) != set(every) else None
            RUNS[topology] = boot_and_run(topology, every, only=only)
        return RUNS[topology]

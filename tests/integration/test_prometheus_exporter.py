"""`numatui export` scraped by a real Prometheus server, and checked by promtool.

Debian's `prometheus` package provides both (scripts/provision-vm.sh installs
it). Without them these tests skip and say so; in CI (CI=true) they fail.
Everything runs on loopback ports picked free, in temporary directories.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
_NODE_FIELD = re.compile(r" N(\d+)=(\d+)")
_PAGE_KB = re.compile(r" kernelpagesize_kB=(\d+)")

WORKLOAD = r"""
import sys, time
data = bytearray(int(sys.argv[1]))
for i in range(0, len(data), 4096):
    data[i] = 1
print("ready", flush=True)
time.sleep(600)
"""

# Forks short-lived children as fast as it can (single-threaded: forking is safe here).
CHURN = r"""
import os, time
end = time.monotonic() + float(__import__("sys").argv[1])
while time.monotonic() < end:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = (
            f"{tool} not found: install Debian's prometheus package "
            "(sudo bash scripts/provision-vm.sh)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have it: {message}", pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def numa_maps_bytes(pid: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        size = _PAGE_KB.search(line)
        page = int(size[1]) * 1024 if size else 4096
        for node, pages in _NODE_FIELD.findall(line):
            out[int(node)] = out.get(int(node), 0) + int(pages) * page
    return out


def get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode("utf-8"))


def wait_for(what: str, check: object, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()  # type: ignore[operator]
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def workload() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, str(48 * MIB)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    yield child
    child.kill()
    child.wait()


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[str]:
    """`numatui export --listen 127.0.0.1:<port>`; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "numatui", "export", "--listen", f"127.0.0.1:{port}",
         "--min-bytes", str(32 * MIB), "--top", "20", "--audit-log", str(tmp_path / "none")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving http://127.0.0.1" in line, line + proc.stderr.read()
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.fixture
def prometheus(tmp_path: Path, exporter: str) -> Iterator[str]:
    binary = require("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = exporter.removeprefix("http://")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: numatui\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("prometheus to be ready", lambda: "Ready" in get(f"{base}/-/ready"))
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def query(base: str, promql: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    reply = json.loads(get(url))
    assert reply["status"] == "success", reply
    result: list[dict[str, object]] = reply["data"]["result"]
    return result


def test_prometheus_scrapes_a_workloads_bytes_per_node(
    prometheus: str, workload: subprocess.Popen[str]
) -> None:
    promql = f'numatui_process_resident_bytes{{pid="{workload.pid}"}}'
    result = wait_for("the workload's series in Prometheus", lambda: query(prometheus, promql))
    assert isinstance(result, list)
    expected = numa_maps_bytes(workload.pid)
    got = {
        int(r["metric"]["node"]): int(float(r["value"][1]))  # type: ignore[index]
        for r in result
    }
    assert got == {n: expected.get(n, 0) for n in got}
    assert sum(got.values()) >= 48 * MIB
    (up,) = query(prometheus, 'up{job="numatui"}')
    assert up["value"][1] == "1"  # type: ignore[index]
    nodes = query(prometheus, "numatui_node_memory_total_bytes")
    assert nodes and all(float(r["value"][1]) > 0 for r in nodes)  # type: ignore[index]


def test_promtool_finds_no_problem_in_the_exposition(exporter: str, tmp_path: Path) -> None:
    promtool = require("promtool")
    text = get(f"{exporter}/metrics")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    once = subprocess.run(
        [sys.executable, "-m", "numatui", "export", "--once", "--min-bytes", "0", "--top", "5"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    check = subprocess.run(
        [promtool, "check", "metrics"], input=once.stdout, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_scrapes_while_processes_vanish(exporter: str) -> None:
    churn = subprocess.Popen([sys.executable, "-c", CHURN, "8"])
    try:
        scrapes = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            families = {
                f.name: f for f in text_string_to_metric_families(get(f"{exporter}/metrics"))
            }
            assert "numatui_process_resident_bytes" in families
            scrapes += 1
        errors = families["numatui_scan_errors"].samples
        assert all(s.value == 0 for s in errors), errors
    finally:
        churn.kill()
        churn.wait()
    assert scrapes >= 5


def test_dashboard_queries_run_on_prometheus(
    prometheus: str, workload: subprocess.Popen[str]
) -> None:
    """Every query of assets/grafana-numatui.json is valid PromQL over the exporter's names."""
    dashboard = json.loads((ROOT / "assets" / "grafana-numatui.json").read_text())
    wait_for("a first scrape", lambda: query(prometheus, "numatui_node_memory_used_bytes"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 9
    for expr in exprs:
        query(prometheus, expr.replace("$instance", ".*"))  # asserts status "success"
    remote = dashboard["panels"][2]["targets"][0]["expr"].replace("$instance", ".*")
    rows = wait_for("the remote-memory table to have rows", lambda: query(prometheus, remote))
    assert isinstance(rows, list) and all("pid" in r["metric"] for r in rows)  # type: ignore[operator]


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(
    exporter: str, workload: subprocess.Popen[str]
) -> None:
    """Prometheus asks for OpenMetrics first; the library's own parser reads the reply."""
    request = urllib.request.Request(
        f"{exporter}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode("utf-8")
    assert content_type.startswith("application/openmetrics-text"), content_type
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    resident = families["numatui_process_resident_bytes"]
    mine = [s for s in resident.samples if s.labels["pid"] == str(workload.pid)]
    assert mine and all("group" in s.labels for s in mine), mine
    expected = numa_maps_bytes(workload.pid)
    assert {int(s.labels["node"]): int(s.value) for s in mine} == {
        int(s.labels["node"]): expected.get(int(s.labels["node"]), 0) for s in mine
    }
    # Counters keep their _total sample in OpenMetrics, under the family's base name.
    assert any(s.name == "numatui_migrations_total" for s in families["numatui_migrations"].samples)

"""`numatui export` over the recorded trees (and this host for the bad-input cases).

The values are checked against the recorded files themselves, read here with
independent code; the real Prometheus server and promtool are in
tests/integration/test_prometheus_exporter.py, the real multi-node kernel in
tests/kernel/guest/test_export_guest.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from numatui.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from numatui.exporter.collector import ExportLimits, NumaCollector
from numatui.exporter.labels import label_value
from numatui.exporter.serve import build_registry, write_textfile
from numatui.kernel import audit
from numatui.kernel.cgroups import parse_numa_stat, safe_relative
from numatui.kernel.live import LiveSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_NODE_FIELD = re.compile(r" N(\d+)=(\d+)")
_PAGE_KB = re.compile(r" kernelpagesize_kB=(\d+)")


def roots(tree: Path) -> list[str]:
    return ["--sys-root", str(tree / "sys"), "--proc-root", str(tree / "proc")]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def pick(data: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of `name` whose labels include `labels`."""
    return {
        key: value
        for (n, key), value in data.items()
        if n == name and all((k, v) in key for k, v in labels.items())
    }


def one(data: Samples, name: str, **labels: str) -> float:
    found = pick(data, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return next(iter(found.values()))


def export_once(capsys: pytest.CaptureFixture[str], tree: Path, *extra: str) -> str:
    rc = main([*roots(tree), "export", "--once", *extra])
    captured = capsys.readouterr()
    assert rc == EXIT_OK, captured.err
    return captured.out


def numa_maps_bytes(path: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in path.read_text().splitlines():
        size = _PAGE_KB.search(line)
        page = int(size[1]) * 1024 if size else 4096
        for node, pages in _NODE_FIELD.findall(line):
            out[int(node)] = out.get(int(node), 0) + int(pages) * page
    return out


def meminfo_bytes(tree: Path, node: int, key: str) -> int:
    text = (tree / f"sys/devices/system/node/node{node}/meminfo").read_text()
    match = re.search(rf"^Node {node} {key}:\s+(\d+) kB$", text, re.M)
    assert match, key
    return int(match[1]) * 1024


def workload_pids(tree: Path) -> list[int]:
    lines = (tree / "reference" / "workloads.txt").read_text().splitlines()
    return [int(line.split()[0]) for line in lines if line.strip()]


@pytest.fixture
def four_nodes_copy(tmp_path: Path) -> Path:
    tree = tmp_path / "four_nodes"
    shutil.copytree(FIXTURES / "four_nodes", tree)
    return tree


@pytest.mark.parametrize("name", ["two_nodes", "four_nodes"])
def test_node_series_match_the_recorded_sys_files(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    tree = FIXTURES / name
    data = samples(export_once(capsys, tree))
    node_dirs = sorted(
        int(d.name[4:]) for d in (tree / "sys/devices/system/node").glob("node[0-9]*")
    )
    assert node_dirs
    for node in node_dirs:
        n = str(node)
        assert one(data, "numatui_node_memory_total_bytes", node=n) == meminfo_bytes(
            tree, node, "MemTotal"
        )
        assert one(data, "numatui_node_memory_free_bytes", node=n) == meminfo_bytes(
            tree, node, "MemFree"
        )
        assert one(data, "numatui_node_memory_kind_bytes", node=n, kind="anon") == meminfo_bytes(
            tree, node, "AnonPages"
        )
        cpulist = (tree / f"sys/devices/system/node/node{node}/cpulist").read_text().strip()
        assert one(data, "numatui_node_has_cpu", node=n) == (1 if cpulist else 0)
        numastat = dict(
            line.split()
            for line in (tree / f"sys/devices/system/node/node{node}/numastat")
            .read_text()
            .splitlines()
        )
        assert one(data, "numatui_node_numa_hit_total", node=n) == int(numastat["numa_hit"])
        assert one(data, "numatui_node_other_node_total", node=n) == int(numastat["other_node"])
        for pool in (tree / f"sys/devices/system/node/node{node}/hugepages").iterdir():
            size = int(pool.name.removeprefix("hugepages-").removesuffix("kB")) * 1024
            total = int((pool / "nr_hugepages").read_text())
            got = one(data, "numatui_node_hugepages_bytes", node=n, page_size_bytes=str(size))
            assert got == total * size
    vmstat = dict(line.split() for line in (tree / "proc/vmstat").read_text().splitlines())
    assert one(data, "numatui_vmstat_pgmigrate_success_total") == int(vmstat["pgmigrate_success"])


def test_memory_only_nodes_are_marked(capsys: pytest.CaptureFixture[str]) -> None:
    data = samples(export_once(capsys, FIXTURES / "four_nodes"))
    memory_only = {
        dict(key)["node"] for key, v in pick(data, "numatui_node_memory_only").items() if v == 1
    }
    assert memory_only == {"2", "3"}


@pytest.mark.parametrize("name", ["two_nodes", "four_nodes"])
def test_workload_series_match_their_numa_maps(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    tree = FIXTURES / name
    data = samples(export_once(capsys, tree, "--min-bytes", "0", "--top", "1000"))
    memory_nodes = {
        dict(key)["node"] for key, v in pick(data, "numatui_node_has_memory").items() if v == 1
    }
    for pid in workload_pids(tree):
        expected = numa_maps_bytes(tree / f"proc/{pid}/numa_maps")
        got = pick(data, "numatui_process_resident_bytes", pid=str(pid))
        by_node = {int(dict(key)["node"]): value for key, value in got.items()}
        assert {str(n) for n in by_node} == memory_nodes
        assert by_node == {n: expected.get(n, 0) for n in by_node}, pid
        (key,) = pick(data, "numatui_process_locality_ratio", pid=str(pid))
        assert dict(key)["comm"] == "python3" and dict(key)["user"] == "root"


def test_top_and_min_bytes_bound_the_series(capsys: pytest.CaptureFixture[str]) -> None:
    tree = FIXTURES / "four_nodes"
    everything = samples(export_once(capsys, tree, "--min-bytes", "0", "--top", "1000"))
    totals: dict[str, float] = {}
    for key, value in pick(everything, "numatui_process_resident_bytes").items():
        totals[dict(key)["pid"]] = totals.get(dict(key)["pid"], 0) + value
    readable = int(one(everything, "numatui_processes_exported"))
    assert readable == len(totals) >= 4
    assert one(everything, "numatui_process_series_dropped") == 0

    top2 = samples(export_once(capsys, tree, "--min-bytes", "0", "--top", "2"))
    pids = {dict(k)["pid"] for k in pick(top2, "numatui_process_resident_bytes")}
    largest = sorted(totals, key=lambda p: -totals[p])[:2]
    assert pids == set(largest)
    per_process = 4 + 1  # one series per memory node, and the locality
    assert one(top2, "numatui_process_series_dropped") == (readable - 2) * per_process

    threshold = sorted(totals.values())[-3]  # the three largest reach it
    above = samples(export_once(capsys, tree, "--min-bytes", str(int(threshold))))
    pids = {dict(k)["pid"] for k in pick(above, "numatui_process_resident_bytes")}
    assert pids == {p for p, b in totals.items() if b >= threshold} and len(pids) == 3


def test_no_numa_machine_still_exports(capsys: pytest.CaptureFixture[str]) -> None:
    data = samples(export_once(capsys, FIXTURES / "no_numa"))
    assert one(data, "numatui_numa_available") == 0
    assert one(data, "numatui_node_memory_total_bytes", node="0") > 0


def test_untrusted_label_values_are_capped_and_made_visible(
    capsys: pytest.CaptureFixture[str], four_nodes_copy: Path
) -> None:
    pid = workload_pids(four_nodes_copy)[0]
    status = four_nodes_copy / f"proc/{pid}/status"
    hostile = "\x1b]0;owned\x07\u202e" + "A" * 500 + '"\\'
    text = re.sub(
        r"^Name:.*$", lambda _: "Name:\t" + hostile, status.read_text(), count=1, flags=re.M
    )
    status.write_text(text)
    out = export_once(capsys, four_nodes_copy, "--min-bytes", "0")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    (key,) = pick(samples(out), "numatui_process_locality_ratio", pid=str(pid))
    comm = dict(key)["comm"]
    assert comm.startswith("\\x1b]0;owned\\x07\\u202eAAA") and comm.endswith("…")
    assert len(comm) == 64


def test_label_value_keeps_plain_text_and_escapes_the_rest() -> None:
    assert label_value("python3", 64) == "python3"
    assert label_value("a\nb\tc\x7f", 64) == "a\\x0ab\\x09c\\x7f"
    assert label_value("x" * 10, 5) == "xxxx…"
    assert label_value("é 名前", 64) == "é 名前"
    assert label_value("\ud800", 64) == "\\ud800"  # a lone surrogate cannot be encoded


def test_cgroup_series_from_memory_numa_stat(
    capsys: pytest.CaptureFixture[str], four_nodes_copy: Path
) -> None:
    pid, hostile, climbing, *_ = workload_pids(four_nodes_copy)
    (four_nodes_copy / f"proc/{pid}/cgroup").write_text("0::/work.slice/job.scope\n")
    (four_nodes_copy / f"proc/{hostile}/cgroup").write_text("0::/work.slice/x\x1b[31m\n")
    (four_nodes_copy / f"proc/{climbing}/cgroup").write_text("0::/../../etc\n")
    cgroups = four_nodes_copy / "sys/fs/cgroup"
    (cgroups / "work.slice/job.scope").mkdir(parents=True)
    (cgroups / "work.slice/job.scope/memory.numa_stat").write_text(
        "anon N0=4096 N1=0 N2=8192 N3=0\nfile N0=12288 N1=0 N2=0 N3=0\n"
        "workingset_refault_anon N0=3 N1=0 N2=0 N3=0\n"
    )
    (cgroups / "work.slice/x\x1b[31m").mkdir()
    (cgroups / "work.slice/x\x1b[31m/memory.numa_stat").write_text("anon N0=1\n")
    (four_nodes_copy / "etc").mkdir()
    (four_nodes_copy / "etc/memory.numa_stat").write_text("anon N0=1\n")
    out = export_once(capsys, four_nodes_copy, "--min-bytes", "0")
    assert "\x1b" not in out
    data = samples(out)
    cgroup = "/work.slice/job.scope"
    assert one(data, "numatui_cgroup_memory_bytes", cgroup=cgroup, node="2", kind="anon") == 8192
    assert one(data, "numatui_cgroup_memory_bytes", cgroup=cgroup, node="0", kind="file") == 12288
    assert not pick(data, "numatui_cgroup_memory_bytes", kind="workingset_refault_anon")
    assert len(pick(data, "numatui_cgroup_memory_bytes")) == 8  # only the safe path was read
    assert pick(data, "numatui_process_resident_bytes", pid=str(pid), cgroup=cgroup)
    escaped = "/work.slice/x\\x1b[31m"
    assert pick(data, "numatui_process_resident_bytes", pid=str(hostile), cgroup=escaped)
    assert pick(data, "numatui_process_resident_bytes", pid=str(climbing), cgroup="/../../etc")


def test_groups_are_named_as_the_groups_view_names_them(
    capsys: pytest.CaptureFixture[str], four_nodes_copy: Path
) -> None:
    service, container, pod, *_ = workload_pids(four_nodes_copy)
    docker_id = "3f2a9c1b4e5d" + "a" * 52
    pod_uid = "5d3b1c2a_1111_2222_3333_444455556666"
    pod_dir = f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_uid}.slice"
    paths = {
        service: "/system.slice/nginx.service",
        container: f"/system.slice/docker-{docker_id}.scope",
        pod: "/" + pod_dir,
    }
    cgroups = four_nodes_copy / "sys/fs/cgroup"
    for pid, path in paths.items():
        (four_nodes_copy / f"proc/{pid}/cgroup").write_text(f"0::{path}\n")
        (cgroups / path.lstrip("/")).mkdir(parents=True)
        (cgroups / path.lstrip("/") / "memory.numa_stat").write_text("anon N0=4096 N1=0\n")
    data = samples(export_once(capsys, four_nodes_copy, "--min-bytes", "0"))
    expected = {
        service: ("nginx.service", "service"),
        container: ("docker 3f2a9c1b4e5d", "container"),
        pod: ("pod 5d3b1c2a-1111-2222-3333-444455556666 (burstable)", "pod"),
    }
    for pid, (group, kind) in expected.items():
        assert pick(data, "numatui_process_resident_bytes", pid=str(pid), group=group)
        labels = {"cgroup": paths[pid], "group": group, "group_kind": kind}
        assert one(data, "numatui_cgroup_memory_bytes", node="0", kind="anon", **labels) == 4096


def test_cgroup_paths_that_climb_out_are_refused() -> None:
    assert safe_relative("/a/b.scope") == "a/b.scope"
    assert safe_relative("/") == ""
    for bad in ("/../etc", "/a/./b", "relative", "/a/\nb"):
        assert safe_relative(bad) is None
    assert parse_numa_stat("anon N0=1 N1=2\nbogus line\nX N0=1\n") == {"anon": {0: 1, 1: 2}}


def test_per_node_tiering_counters_where_the_kernel_has_them(
    capsys: pytest.CaptureFixture[str], four_nodes_copy: Path
) -> None:
    node = four_nodes_copy / "sys/devices/system/node"
    (node / "node0/vmstat").write_text("nr_free_pages 10\npgpromote_success 0\npgdemote_kswapd 3\n")
    (node / "node2/vmstat").write_text("pgpromote_success 5\npgdemote_kswapd 0\n")
    data = samples(export_once(capsys, four_nodes_copy))
    assert one(data, "numatui_node_vmstat_pgpromote_success_total", node="2") == 5
    assert one(data, "numatui_node_vmstat_pgdemote_kswapd_total", node="0") == 3
    assert not pick(data, "numatui_node_vmstat_pgpromote_success_total", node="1")
    assert not pick(data, "numatui_node_vmstat_nr_free_pages_total")


def test_audit_trail_counts_by_outcome(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    base = audit.AuditEntry(1.0, "root", 0, 42, "w", "0", "1", "all moved", 4096, 0, None)
    for outcome, moved in (("all moved", 4096), ("all moved", 8192), ("partly moved", 100)):
        assert audit.append(base.__class__(**{**base.__dict__, "outcome": outcome,
                                              "bytes_moved": moved}), log) is None  # fmt: skip
    with log.open("a") as f:
        f.write('{"torn": \n')
    bad = {**base.__dict__, "outcome": 'x"\n}', "bytes_moved": 1}
    assert audit.append(audit.AuditEntry(**bad), log) is None
    data = samples(export_once(capsys, FIXTURES / "four_nodes", "--audit-log", str(log)))
    assert one(data, "numatui_migrations_total", outcome="all_moved") == 2
    assert one(data, "numatui_migrations_total", outcome="partly_moved") == 1
    assert one(data, "numatui_migrations_total", outcome="failed") == 0
    assert one(data, "numatui_migrations_total", outcome="other") == 1
    assert one(data, "numatui_migrated_bytes_total") == 4096 + 8192 + 100 + 1


def test_collector_refreshes_from_the_previous_scan() -> None:
    tree = FIXTURES / "four_nodes"
    source = LiveSource(sys_root=tree / "sys", proc_root=tree / "proc")
    collector = NumaCollector(source, ExportLimits(min_bytes=0, top=10), audit_path=Path("/none"))
    registry = build_registry(collector)
    first = registry.get_sample_value("numatui_scan_reused_processes")
    second = registry.get_sample_value("numatui_scan_reused_processes")
    assert first == 0 and second is not None and second >= 5


def test_textfile_is_written_whole(tmp_path: Path) -> None:
    tree = FIXTURES / "four_nodes"
    source = LiveSource(sys_root=tree / "sys", proc_root=tree / "proc")
    registry = build_registry(NumaCollector(source, audit_path=tmp_path / "none"))
    target = write_textfile(tmp_path, registry)
    assert target == tmp_path / "numatui.prom"
    assert os.listdir(tmp_path) == ["numatui.prom"]  # no temporary file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert samples(target.read_text())[("numatui_numa_available", ())] == 1


def run_cli(
    *argv: str, unprivileged: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real command; `unprivileged`: with every capability dropped (root's too).

    Root without capabilities reads what any user may (its own processes) and
    may not write into other users' directories: how a non-root exporter runs.
    """
    prefix: list[str] = []
    if unprivileged and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop root's capabilities")
        prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "numatui", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_textfile_into_an_unwritable_directory_fails_clearly(tmp_path: Path) -> None:
    target = tmp_path / "collector"
    target.mkdir(mode=0o555)
    if os.geteuid() == 0:
        os.chown(target, 65534, 65534)  # nobody's: root without CAP_DAC_OVERRIDE may not write
    proc = run_cli("export", "--textfile", str(target), "--interval", "1", unprivileged=True)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert f"cannot write to {target}: Permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(target) == []


def test_textfile_into_a_file_fails_clearly(tmp_path: Path) -> None:
    not_dir = tmp_path / "plain"
    not_dir.write_text("")
    proc = run_cli("export", "--textfile", str(not_dir))
    assert proc.returncode == EXIT_FAILED
    assert f"{not_dir} is not a directory" in proc.stderr


def test_port_in_use_fails_clearly() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = run_cli("export", "--listen", f"127.0.0.1:{port}")
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "listen", ["localhost:9787", "0.0.0.0", ":9787", "127.0.0.1:0", "127.0.0.1:99999", "[::1]:x"]
)
def test_listen_wants_an_explicit_ip_and_port(
    capsys: pytest.CaptureFixture[str], listen: str
) -> None:
    assert main(["export", "--listen", listen]) == EXIT_USAGE
    assert "--listen" in capsys.readouterr().err


def test_modes_are_exclusive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export", "--once", "--textfile", str(tmp_path)]) == EXIT_USAGE
    capsys.readouterr()


def test_without_privileges_other_users_processes_are_counted_not_shown() -> None:
    """Another user's process: its memory cannot be read, so it is counted, never zeros."""
    if os.geteuid() != 0:
        pytest.skip("starts a process as another user (nobody)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's capabilities")
    others = subprocess.Popen(["sleep", "120"], user=65534)
    own = subprocess.Popen([setpriv, "--bounding-set=-all", "--inh-caps=-all", "sleep", "120"])
    try:
        proc = run_cli("export", "--once", "--min-bytes", "0", "--top", "100000", unprivileged=True)
        assert proc.returncode == EXIT_OK, proc.stderr
        data = samples(proc.stdout)
        exported = {dict(k)["pid"] for k in pick(data, "numatui_process_resident_bytes")}
        assert str(others.pid) not in exported
        assert str(own.pid) in exported  # a process it may read is shown
        assert one(data, "numatui_processes_unreadable") >= 1
    finally:
        for child in (others, own):
            child.kill()
            child.wait()


def test_textfile_loop_rewrites_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "numatui", "export", "--textfile", str(tmp_path), "--interval",
         "0.2", "--audit-log", str(tmp_path / "none")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        target = tmp_path / "numatui.prom"
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = target.stat().st_ino
        while target.stat().st_ino == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.stat().st_ino != first, "the file was not rewritten"
        assert samples(target.read_text())[("numatui_numa_available", ())] in (0, 1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_OK, err
    assert sorted(os.listdir(tmp_path)) == ["numatui.prom"]


def test_cli_does_not_import_prometheus_client() -> None:
    code = "import sys, numatui.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"

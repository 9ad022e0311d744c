"""cgroups: parsing, naming, safe lookup, groups of a scan, the group verdict, the audit
line and the CLI, over hand-made trees (the real kernel: tests/kernel/guest/test_groups_guest.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numatui import rules
from numatui.cli import EXIT_FAILED, EXIT_OK, main
from numatui.kernel import audit
from numatui.kernel.cgroups import (
    CgroupError,
    ContainerNames,
    describe,
    group_numa_stat,
    group_procs,
    groups_of,
    normalise_user_path,
    open_group_dir,
    parse_numa_stat,
    parse_proc_cgroup,
    parse_procs,
    read_support,
    stat_by_kind,
)
from numatui.model.groups import (
    CgroupSupport,
    GroupKind,
    GroupMember,
    GroupMigrationResult,
    MemberStatus,
)
from numatui.model.memory import ProcessMemory, ProcessScan
from numatui.model.migration import MigrationError, MigrationOutcome, MigrationPlan, MigrationResult
from numatui.model.node_bytes import frozen_map
from tests.tooling.privileges import ROOT, USER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MIB = 1 << 20
DOCKER_ID = "3f2a9c1b4e5d" + "a" * 52
CRIO_ID = "b" * 64
UID = "5d3b1a2c-1111-2222-3333-444455556666"
V2 = CgroupSupport(unified=True, memory=True)

# ---------------------------------------------------------------- /proc/PID/cgroup


def test_proc_cgroup_v2_v1_and_hybrid() -> None:
    v2 = parse_proc_cgroup("0::/system.slice/nginx.service\n")
    assert v2.unified == "/system.slice/nginx.service" and not v2.v1
    v1 = parse_proc_cgroup("4:memory:/docker/abc\n9:name=systemd:/x.service\n3:cpu,cpuacct:/\n")
    assert v1.unified is None
    assert v1.v1["memory"] == "/docker/abc" and v1.v1["cpuacct"] == "/"
    assert v1.grouping_path(True) == "/docker/abc"
    hybrid = parse_proc_cgroup("9:name=systemd:/user.slice\n4:memory:/m\n0::/\n")
    assert hybrid.grouping_path(True) == "/" and hybrid.grouping_path(False) == "/m"
    assert parse_proc_cgroup("garbage\n0:x\n::/nope\n").grouping_path() is None


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_proc_cgroup_never_raises(text: str) -> None:
    parse_proc_cgroup(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_characters="/\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            ),
            min_size=1,
            max_size=20,
        ),
        max_size=6,
    )
)
def test_proc_cgroup_v2_path_round_trip(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    assert parse_proc_cgroup(f"1:memory:/x\n0::{path}\n").unified == path


def test_procs_file() -> None:
    assert parse_procs("12\n7\n12\nx\n-3\n99999999999\n") == (12, 7)


# ---------------------------------------------------------------- memory.numa_stat


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,20}", fullmatch=True).filter(
            lambda k: not k.startswith("workingset_")
        ),
        st.dictionaries(st.integers(0, 63), st.integers(0, 2**50), min_size=1, max_size=4),
        max_size=8,
    )
)
def test_numa_stat_round_trip(stat: dict[str, dict[int, int]]) -> None:
    text = "".join(
        f"{kind} " + " ".join(f"N{n}={v}" for n, v in sorted(per.items())) + "\n"
        for kind, per in stat.items()
    )
    assert parse_numa_stat(text + "workingset_refault_anon N0=5\n") == stat


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_numa_stat_never_raises(text: str) -> None:
    parse_numa_stat(text)


def test_stat_by_kind_sums_kernel_memory() -> None:
    raw = parse_numa_stat(
        "anon N0=4096 N1=0\nfile N0=8192 N1=4096\nshmem N0=0 N1=4096\n"
        "kernel_stack N0=16384 N1=0\npagetables N0=4096 N1=4096\n"
        "slab_reclaimable N0=1 N1=2\nslab_unreclaimable N0=3 N1=4\n"
    )
    kinds = stat_by_kind(raw)
    assert dict(kinds["kernel"]) == {0: 16384 + 4096 + 4, 1: 4096 + 6}
    assert dict(kinds["file"]) == {0: 8192, 1: 4096}
    assert set(kinds) == {"anon", "file", "shmem", "kernel"}


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("path", "kind", "label"),
    [
        ("/", GroupKind.ROOT, "/ (root)"),
        ("/system.slice/nginx.service", GroupKind.SERVICE, "nginx.service"),
        ("/user.slice/user-1000.slice/user@1000.service", GroupKind.SERVICE, "user@1000.service"),
        ("/user.slice/user-1000.slice/session-2.scope", GroupKind.SCOPE, "session-2.scope"),
        ("/system.slice", GroupKind.SLICE, "system.slice"),
        (f"/system.slice/docker-{DOCKER_ID}.scope", GroupKind.CONTAINER, "docker 3f2a9c1b4e5d"),
        (f"/docker/{DOCKER_ID}", GroupKind.CONTAINER, "docker 3f2a9c1b4e5d"),
        (f"/machine.slice/libpod-{CRIO_ID}.scope", GroupKind.CONTAINER, "podman bbbbbbbbbbbb"),
        (
            f"/machine.slice/libpod-conmon-{CRIO_ID}.scope",
            GroupKind.CONTAINER,
            "podman conmon bbbbbbbbbbbb",
        ),
        (f"/system.slice/nerdctl-{CRIO_ID}.scope", GroupKind.CONTAINER, "containerd bbbbbbbbbbbb"),
        ("/some/thing", GroupKind.OTHER, "/some/thing"),
    ],
)
def test_describe(path: str, kind: GroupKind, label: str) -> None:
    name = describe(path)
    assert name.kind is kind and name.label == label


def test_kubernetes_pods_and_containers() -> None:
    pod_slice = f"kubepods-burstable-pod{UID.replace('-', '_')}.slice"
    base = f"/kubepods.slice/kubepods-burstable.slice/{pod_slice}"
    pod = describe(base)
    assert pod.kind is GroupKind.POD and pod.pod_uid == UID and pod.qos == "burstable"
    crio = describe(f"{base}/crio-{CRIO_ID}.scope")
    assert crio.kind is GroupKind.CONTAINER and crio.runtime == "cri-o"
    assert crio.pod_uid == UID and crio.qos == "burstable" and crio.container_id == "b" * 12
    guaranteed = describe(
        f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/cri-containerd-{CRIO_ID}.scope"
    )
    assert guaranteed.runtime == "containerd" and guaranteed.qos == "guaranteed"
    cgroupfs = describe(f"/kubepods/besteffort/pod{UID}/{CRIO_ID}")
    assert cgroupfs.kind is GroupKind.CONTAINER and cgroupfs.qos == "besteffort"
    assert cgroupfs.pod_uid == UID and cgroupfs.runtime == "containerd"


def test_container_names_where_the_runtime_leaves_them(tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    (docker / "containers" / DOCKER_ID).mkdir(parents=True)
    (docker / "containers" / DOCKER_ID / "config.v2.json").write_text(
        json.dumps({"Name": "/web\x1b[31m"})
    )
    storage = tmp_path / "storage"
    (storage / "overlay-containers").mkdir(parents=True)
    (storage / "overlay-containers" / "containers.json").write_text(
        json.dumps([{"id": CRIO_ID, "names": ["k8s_app_pod"]}, {"id": 3}, "junk"])
    )
    names = ContainerNames(docker_root=docker, storage_roots=[storage])
    web = describe(f"/system.slice/docker-{DOCKER_ID}.scope", names)
    assert web.container_name == "web\x1b[31m"  # kept exact; shown only through safe_text
    assert describe(f"/machine.slice/libpod-{CRIO_ID}.scope", names).label.endswith("k8s_app_pod")
    assert names.lookup("../../etc") == ""
    # A symlinked config is not followed.
    other = "c" * 64
    (docker / "containers" / other).mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"Name": "/secret"}))
    (docker / "containers" / other / "config.v2.json").symlink_to(secret)
    assert names.lookup(other) == ""


# ---------------------------------------------------------------- paths


def make_group(root: Path, path: str, procs: str = "", numa_stat: str | None = None) -> Path:
    group = root / path.strip("/")
    group.mkdir(parents=True, exist_ok=True)
    (group / "cgroup.procs").write_text(procs)
    (group / "cgroup.controllers").write_text("cpu memory\n" if numa_stat is not None else "cpu\n")
    if numa_stat is not None:
        (group / "memory.numa_stat").write_text(numa_stat)
    return group


def test_paths_outside_the_mount_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    make_group(root, "/a.service", "1\n2\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "cgroup.procs").write_text("666\n")
    (root / "link").symlink_to(tmp_path / "etc")
    assert group_procs("/a.service", root) == (1, 2)
    for bad in ("/../etc", "/a.service/../../etc", "/./a.service", "/a\x1b"):
        with pytest.raises(CgroupError) as unsafe:
            group_procs(bad, root)
        assert unsafe.value.code == "cgroup_unsafe_path"
    with pytest.raises(CgroupError) as linked:
        group_procs("/link", root)
    assert linked.value.code == "cgroup_not_found"
    with pytest.raises(CgroupError) as missing:
        group_procs("/nope.service", root)
    assert missing.value.code == "cgroup_not_found"
    # A symlinked file in a real group is not read either.
    group = make_group(root, "/b.service")
    (group / "cgroup.procs").unlink()
    (group / "cgroup.procs").symlink_to(tmp_path / "etc" / "cgroup.procs")
    with pytest.raises(CgroupError):
        group_procs("/b.service", root)


def test_removed_while_open(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    group = make_group(root, "/gone.service", "5\n")
    with open_group_dir("/gone.service", root):
        shutil.rmtree(group)
    with pytest.raises(CgroupError) as gone:
        group_procs("/gone.service", root)
    assert gone.value.code == "cgroup_not_found"


@pytest.mark.parametrize(
    ("typed", "path"),
    [
        ("system.slice/x.service", "/system.slice/x.service"),
        ("/system.slice/x.service/", "/system.slice/x.service"),
        ("/sys/fs/cgroup/system.slice/x.service", "/system.slice/x.service"),
        ("/sys/fs/cgroup", "/"),
    ],
)
def test_typed_paths(typed: str, path: str) -> None:
    assert normalise_user_path(typed, Path("/sys/fs/cgroup")) == path


@pytest.mark.parametrize("typed", ["../../etc", "/sys/fs/cgroup/../../etc", "a/./b", "a\nb"])
def test_typed_paths_refused(typed: str) -> None:
    with pytest.raises(CgroupError, match="inside the cgroup mount"):
        normalise_user_path(typed)


# ---------------------------------------------------------------- support and groups


def test_support(tmp_path: Path) -> None:
    none = read_support(tmp_path / "absent", tmp_path)
    assert not none.unified and "no cgroup v2" in none.missing
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io\n")
    no_memory = read_support(tmp_path, tmp_path)
    assert no_memory.unified and not no_memory.memory and "memory controller" in no_memory.missing
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert read_support(tmp_path, tmp_path) == V2


def proc(pid: int, nodes: dict[int, int], readable: bool = True) -> ProcessMemory:
    return ProcessMemory(
        pid, f"p{pid}", "root", "", 0, 1, frozen_map(nodes), memory_readable=readable
    )


def test_groups_of_sums_members_and_reads_numa_stat(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    make_group(root, "/a.service", "1\n2\n", "anon N0=100 N1=200\nfile N0=7 N1=0\n")
    make_group(root, "/plain.service", "3\n")
    scan = ProcessScan(
        (proc(1, {0: MIB}), proc(2, {0: MIB, 1: 3 * MIB}, readable=False), proc(3, {1: 5})),
        taken_at=0.0,
    )
    members = {1: "/a.service", 2: "/a.service", 3: "/plain.service"}
    groups = {g.path: g for g in groups_of(scan, members, V2, cgroup_root=root)}
    a = groups["/a.service"]
    assert a.pids == (1, 2) and dict(a.node_bytes) == {0: 2 * MIB, 1: 3 * MIB}
    assert a.unreadable == 1 and a.name.label == "a.service"
    assert a.numa_stat is not None and dict(a.numa_stat["anon"]) == {0: 100, 1: 200}
    assert a.stat_node_bytes is not None and dict(a.stat_node_bytes) == {0: 107, 1: 200}
    plain = groups["/plain.service"]
    assert plain.numa_stat is None and "memory controller is not enabled" in plain.numa_stat_missing
    v1 = groups_of(scan, members, CgroupSupport(False, False, "cgroup v1 here"), cgroup_root=root)
    assert all(g.numa_stat is None and g.numa_stat_missing == "cgroup v1 here" for g in v1)


def test_root_and_unsafe_groups_say_why(tmp_path: Path) -> None:
    stat, why = group_numa_stat("/", V2, tmp_path)
    assert stat is None and "root cgroup" in why
    stat, why = group_numa_stat("/../x", V2, tmp_path)
    assert stat is None and why


# ---------------------------------------------------------------- the verdict and the audit


def _moved(pid: int, outcome: MigrationOutcome, moved: int) -> GroupMember:
    plan = MigrationPlan(pid, frozenset({0}), frozenset({1}), ((0, 1),), (moved,))
    after = {0: 0, 1: moved} if outcome is MigrationOutcome.ALL_MOVED else {0: moved, 1: 0}
    result = MigrationResult(plan, outcome, frozen_map({0: moved}), frozen_map(after), 0, 1.0)
    return GroupMember(pid, f"p{pid}", MemberStatus.MOVED, result)


def test_group_verdict() -> None:
    ok = _moved(1, MigrationOutcome.ALL_MOVED, MIB)
    stat_after = {"file": frozen_map({0: 3 * MIB}), "shmem": frozen_map({0: MIB})}
    outcome, why = rules.group_verdict((ok,), frozenset({0}), None, {}, stat_after, "", ROOT)
    assert outcome is MigrationOutcome.ALL_MOVED
    assert any("2.0 MiB of page cache stays on node 0" in w for w in why)
    assert any("outside the group moved too" in w for w in why)
    exited = GroupMember(2, "p2", MemberStatus.EXITED, message="exited before its turn")
    outcome, why = rules.group_verdict(
        (ok, exited), frozenset({0}), None, None, None, "cgroup v1", USER
    )
    assert outcome is MigrationOutcome.ALL_MOVED and any("exited" in w for w in why)
    assert any("not available (cgroup v1)" in w for w in why)
    assert any("without CAP_SYS_NICE" in w for w in why)
    refused = GroupMember(3, "p3", MemberStatus.REFUSED, message="no", code="other_user")
    outcome, _ = rules.group_verdict((ok, refused), frozenset({0}), None, None, None, "", USER)
    assert outcome is MigrationOutcome.PARTLY_MOVED
    outcome, _ = rules.group_verdict((refused,), frozenset({0}), None, None, None, "", USER)
    assert outcome is MigrationOutcome.FAILED
    removed = MigrationError("ENOENT", "the cgroup was removed during the move")
    outcome, why = rules.group_verdict((ok,), frozenset({0}), removed, None, None, "", ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED and removed.message in why
    outcome, why = rules.group_verdict((), frozenset({0}), None, None, None, "", ROOT)
    assert outcome is MigrationOutcome.NOTHING_TO_MOVE and why[0] == "the group has no processes"


def test_one_audit_line_per_group_move(tmp_path: Path) -> None:
    members = (
        _moved(1, MigrationOutcome.ALL_MOVED, MIB),
        GroupMember(2, "p2", MemberStatus.EXITED, message="exited before its turn"),
    )
    result = GroupMigrationResult(
        "/a.service",
        describe("/a.service"),
        frozenset({0}),
        frozenset({1}),
        MigrationOutcome.ALL_MOVED,
        members,
        1.0,
    )
    log = tmp_path / "audit.jsonl"
    assert audit.append(audit.group_entry_for(result), log) is None
    (entry,) = audit.read(log)
    assert entry.cgroup == "/a.service" and entry.pid == 0 and entry.bytes_moved == MIB
    assert entry.members is not None
    assert [m["status"] for m in entry.members] == ["moved", "exited"]
    assert entry.members[1]["error"] == "exited before its turn"


# ---------------------------------------------------------------- the CLI on a hand-made tree

HOSTILE = "evil\x1b]52;c;aGk=\x07\u202e.service"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, int]:
    """The recorded two-node tree with its busiest workload in a hostile-named service."""
    sys_root = tmp_path / "sys"
    proc_root = tmp_path / "proc"
    shutil.copytree(FIXTURES / "two_nodes" / "sys", sys_root, symlinks=True)
    shutil.copytree(FIXTURES / "two_nodes" / "proc", proc_root, symlinks=True)
    pid = int((FIXTURES / "two_nodes" / "reference" / "workloads.txt").read_text().split()[0])
    cgroup_root = sys_root / "fs" / "cgroup"
    cgroup_root.mkdir(parents=True)
    (cgroup_root / "cgroup.controllers").write_text("cpu memory\n")
    make_group(cgroup_root, f"/system.slice/{HOSTILE}", f"{pid}\n", "anon N0=4096 N1=8192\n")
    make_group(cgroup_root, "/init.scope", "1\n", "anon N0=4096 N1=8192\n")
    for entry in proc_root.iterdir():
        if entry.name.isdigit():
            where = f"/system.slice/{HOSTILE}" if int(entry.name) == pid else "/init.scope"
            (entry / "cgroup").write_text(f"0::{where}\n")
    return sys_root, proc_root, pid


def test_groups_cli_json_and_text(
    tree: tuple[Path, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    sys_root, proc_root, pid = tree
    argv = ["--sys-root", str(sys_root), "--proc-root", str(proc_root)]
    assert main([*argv, "groups", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    groups = {g["path"]: g for g in data["groups"]}
    hostile = groups[f"/system.slice/{HOSTILE}"]
    assert hostile["label"] == HOSTILE and hostile["kind"] == "service"
    assert hostile["pids"] == [pid] and hostile["numa_bytes"] > 0
    # A path with control characters is shown, never opened: its accounts are missing, said so.
    assert hostile["numa_stat"] is None and "control characters" in hostile["numa_stat_missing"]
    assert groups["/init.scope"]["numa_stat"]["anon"] == {"0": 4096, "1": 8192}
    assert data["cgroup_v2"] and data["memory_controller"]
    assert main([*argv, "groups"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b]52;c;aGk=\\x07\\u202e.service" in text
    assert main([*argv, "ps", "--json", "--cgroup", "/init.scope"]) == EXIT_OK
    assert [p["pid"] for p in json.loads(capsys.readouterr().out)["processes"]] == [1]
    assert main([*argv, "ps", "--cgroup", f"/system.slice/{HOSTILE}"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "control characters" in err and "\x1b" not in err


def test_ps_and_migrate_refuse_paths_outside_the_mount(
    tree: tuple[Path, Path, int], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sys_root, proc_root, _ = tree
    argv = ["--sys-root", str(sys_root), "--proc-root", str(proc_root)]
    assert main([*argv, "ps", "--cgroup", "../../etc"]) == EXIT_FAILED
    assert "inside the cgroup mount" in capsys.readouterr().err
    trail = tmp_path / "trail" / "audit.jsonl"
    trail.parent.mkdir(mode=0o700)
    migrate = ["migrate", "--cgroup", "../../etc", "0", "1", "--yes", "--json"]
    rc = main([*argv, "--audit-log", str(trail), *migrate])
    assert rc == EXIT_FAILED
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["code"] == "cgroup_unsafe_path"
    assert trail.exists()


def test_log_shows_a_group_move_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = GroupMigrationResult(
        f"/system.slice/{HOSTILE}",
        describe(f"/system.slice/{HOSTILE}"),
        frozenset({0}),
        frozenset({1}),
        MigrationOutcome.PARTLY_MOVED,
        (_moved(1, MigrationOutcome.ALL_MOVED, MIB), _moved(2, MigrationOutcome.FAILED, MIB)),
        1.0,
    )
    log = tmp_path / "audit.jsonl"
    audit.append(audit.group_entry_for(result), log)
    assert main(["log", "--file", str(log)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "cgroup /system.slice/evil\\x1b]52" in out and "2 process(es)" in out
    assert "partly moved" in out and "\x1b" not in out


def test_a_v1_machine_finds_members_in_its_memory_hierarchy(tmp_path: Path) -> None:
    from numatui.kernel.live import LiveSource

    cgroup_root = tmp_path / "sys" / "fs" / "cgroup"
    make_group(cgroup_root / "memory", "/docker/abc", "11\n12\n")
    with LiveSource(sys_root=tmp_path / "sys", proc_root=tmp_path / "proc") as source:
        assert source.group_members("/docker/abc") == (11, 12)
        with pytest.raises(CgroupError) as missing:
            source.group_members("/docker/none")
        assert missing.value.code == "cgroup_not_found"
        refused = source.migrate_group("/docker/abc", {0}, {1})
        assert refused.outcome is MigrationOutcome.FAILED and refused.error_code == "recorded"

"""cgroups: membership (/proc/PID/cgroup), `cgroup.procs`, `memory.numa_stat`, and names.

Everything here is untrusted input when read as root: a cgroup path is made by
whoever may create directories in the cgroup tree (a container runtime, a delegated
user), and a runtime's files name containers. A path given to numatui (or read from
/proc) is only looked up below the cgroup2 mount when it is a plain absolute path
without `.`/`..` components or control characters, one directory at a time with
O_NOFOLLOW (a symlink anywhere on the way is refused, not followed), and on the
mount's own filesystem.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from numatui.errors import NumatuiError
from numatui.model.groups import CgroupSupport, Group, GroupKind, GroupName, GroupScan
from numatui.model.memory import ProcessScan
from numatui.model.node_bytes import NodeBytes, frozen_map

CGROUP_ROOT = Path("/sys/fs/cgroup")
_NODE_FIELD = re.compile(r"N([0-9]{1,5})=([0-9]{1,25})", re.ASCII)
_KEY = re.compile(r"[a-z_]{1,64}", re.ASCII)
_MAX_BYTES = 1 << 20
NON_BYTE_PREFIX = "workingset_"  # event counts, not bytes: not memory by kind
# memory.numa_stat has no kernel total per node: these lines are the kernel's own memory.
KERNEL_KINDS = (
    "kernel_stack",
    "pagetables",
    "sec_pagetables",
    "slab_reclaimable",
    "slab_unreclaimable",
)
MAX_PATH = 4096


class CgroupError(NumatuiError):
    """A cgroup numatui cannot use: unknown, outside the mount, or removed.

    `code` is a stable name for scripts: `cgroup_unsafe_path`, `cgroup_not_found`,
    `cgroup_removed`, `cgroup_unreadable`, `cgroup_v2_missing`.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- reading files safely


def _read_fd(fd: int, limit: int) -> str:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _read_text(path: str, limit: int = _MAX_BYTES) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return _read_fd(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- /proc/PID/cgroup


@dataclass(frozen=True)
class ProcCgroup:
    """A parsed /proc/PID/cgroup: the v2 path (`0::/x`) and the v1 hierarchies' paths."""

    unified: str | None
    v1: Mapping[str, str]  # controller (or name=...) -> path

    def grouping_path(self, unified_mounted: bool = True) -> str | None:
        """The path to group by: v2's on a cgroup v2 machine; on a v1 (or hybrid) machine
        the v1 memory hierarchy's, else systemd's named one (v2's is "/" for all there)."""
        if unified_mounted and self.unified is not None:
            return self.unified
        for key in ("memory", "name=systemd"):
            if key in self.v1:
                return self.v1[key]
        return self.unified if self.unified is not None else next(iter(self.v1.values()), None)


def parse_proc_cgroup(text: str) -> ProcCgroup:
    """`hierarchy-id:controllers:path` lines (cgroups(7)); malformed lines are skipped."""
    unified: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        hid, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2 or not hid.isdigit() or not path.startswith("/"):
            continue
        if hid == "0" and controllers == "":
            unified = path
        else:
            for controller in controllers.split(","):
                if controller:
                    v1.setdefault(controller, path)
    return ProcCgroup(unified, v1)


def parse_cgroup_v2_path(text: str) -> str | None:
    """The unified-hierarchy path (`0::/system.slice/x.service`) of a /proc/PID/cgroup text."""
    return parse_proc_cgroup(text).unified


def read_proc_cgroup(pid: int, proc_root: Path = Path("/proc")) -> ProcCgroup | None:
    text = _read_text(f"{proc_root}/{pid}/cgroup", limit=64 * 1024)
    return None if text is None else parse_proc_cgroup(text)


def process_cgroup(pid: int, proc_root: Path = Path("/proc")) -> str | None:
    """Raw cgroup v2 path of `pid`, or None (gone, no cgroup v2, not readable)."""
    parsed = read_proc_cgroup(pid, proc_root)
    return None if parsed is None else parsed.unified


# ---------------------------------------------------------------- paths


def safe_relative(path: str) -> str | None:
    """`path` without its leading slash when it is safe to look up below the mount."""
    if not path.startswith("/") or len(path) > MAX_PATH:
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or not p.isprintable() for p in parts):
        return None
    return "/".join(parts)


def normalise_user_path(text: str, cgroup_root: Path = CGROUP_ROOT) -> str:
    """A path an operator typed (`system.slice/x.service`, `/system.slice/...`, or the full
    `/sys/fs/cgroup/...`) as the cgroup path `/system.slice/x.service`.

    Raises CgroupError (`cgroup_unsafe_path`) for `..`, `.`, control characters.
    """
    raw = text.strip()
    root = str(cgroup_root).rstrip("/")
    if raw == root or raw.startswith(root + "/"):
        raw = raw[len(root) :]
    if not raw.startswith("/"):
        raw = "/" + raw
    relative = safe_relative(raw)
    if relative is None:
        raise CgroupError(
            "the cgroup path must stay inside the cgroup mount: no '..' or '.' parts and "
            "no control characters",
            "cgroup_unsafe_path",
        )
    return "/" + relative


@contextmanager
def open_group_dir(path: str, cgroup_root: Path = CGROUP_ROOT) -> Iterator[int]:
    """A directory fd for the cgroup at `path`, walked one part at a time without
    following any symlink and without leaving the mount's filesystem."""
    relative = safe_relative(path)
    if relative is None:
        raise CgroupError(
            "the cgroup path must stay inside the cgroup mount: no '..' or '.' parts and "
            "no control characters",
            "cgroup_unsafe_path",
        )
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(cgroup_root, flags)
    except OSError as exc:
        raise CgroupError(
            f"no cgroup mount at {cgroup_root} ({exc.strerror})", "cgroup_v2_missing"
        ) from exc
    try:
        device = os.fstat(fd).st_dev
        for part in relative.split("/") if relative else ():
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise CgroupError(
                        "no such cgroup (or a symlink on the way, which numatui does not follow)",
                        "cgroup_not_found",
                    ) from exc
                raise CgroupError(
                    f"cannot open the cgroup ({exc.strerror})", "cgroup_unreadable"
                ) from exc
            os.close(fd)
            fd = child
            if os.fstat(fd).st_dev != device:
                raise CgroupError("the cgroup path leaves the cgroup mount", "cgroup_unsafe_path")
        yield fd
    finally:
        os.close(fd)


def _read_at(dir_fd: int, name: str, limit: int = _MAX_BYTES) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return _read_fd(fd, limit)
    finally:
        os.close(fd)


def parse_procs(text: str) -> tuple[int, ...]:
    """`cgroup.procs`: one pid a line (thread-group leaders: one per memory space's owner)."""
    pids: list[int] = []
    for word in text.split():
        if word.isdigit() and len(word) <= 8:
            pids.append(int(word))
    return tuple(dict.fromkeys(pids))


def group_procs(path: str, cgroup_root: Path = CGROUP_ROOT) -> tuple[int, ...]:
    """The processes in the cgroup now; CgroupError when it is unknown, unsafe or gone."""
    with open_group_dir(path, cgroup_root) as fd:
        try:
            return parse_procs(_read_at(fd, "cgroup.procs"))
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENODEV):
                # rmdir of a cgroup leaves an open directory whose files are gone.
                raise CgroupError("the cgroup was removed", "cgroup_removed") from exc
            raise CgroupError(
                f"cannot read the cgroup's cgroup.procs ({exc.strerror})", "cgroup_unreadable"
            ) from exc


# ---------------------------------------------------------------- memory.numa_stat


def parse_numa_stat(text: str) -> dict[str, dict[int, int]]:
    """`memory.numa_stat`: `kind N0=bytes N1=bytes ...` lines; event counters left out."""
    out: dict[str, dict[int, int]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if not _KEY.fullmatch(key) or key.startswith(NON_BYTE_PREFIX):
            continue
        values = {int(n): int(v) for n, v in _NODE_FIELD.findall(rest)}
        if values:
            out[key] = values
    return out


def stat_by_kind(raw: Mapping[str, Mapping[int, int]]) -> dict[str, NodeBytes]:
    """anon, file, shmem and kernel (its lines summed) per node, as numatui shows them."""
    out: dict[str, NodeBytes] = {}
    for kind in ("anon", "file", "shmem"):
        if kind in raw:
            out[kind] = frozen_map(raw[kind])
    kernel: dict[int, int] = {}
    for kind in KERNEL_KINDS:
        for node, value in raw.get(kind, {}).items():
            kernel[node] = kernel.get(node, 0) + value
    if any(kind in raw for kind in KERNEL_KINDS):
        out["kernel"] = frozen_map(kernel)
    return out


def cgroup_numa_stat(
    path: str, cgroup_root: Path = CGROUP_ROOT
) -> Mapping[str, dict[int, int]] | None:
    """Bytes per node by kind (raw lines) for one cgroup; None when unsafe, missing or
    unreadable. The root cgroup has no memory.numa_stat (the machine's nodes tell that)."""
    relative = safe_relative(path)
    if relative is None or relative == "":
        return None
    try:
        with open_group_dir(path, cgroup_root) as fd:
            return parse_numa_stat(_read_at(fd, "memory.numa_stat"))
    except (CgroupError, OSError):
        return None


def group_numa_stat(
    path: str, support: CgroupSupport, cgroup_root: Path = CGROUP_ROOT
) -> tuple[dict[str, NodeBytes] | None, str]:
    """(anon/file/shmem/kernel per node, "") or (None, why it is not there)."""
    if not support.unified:
        return None, support.missing or "cgroup v2 is not mounted"
    if safe_relative(path) in (None, ""):
        return None, (
            "the root cgroup has no memory.numa_stat (the nodes screen shows the machine's)"
            if safe_relative(path) == ""
            else "the path holds '.', '..' or control characters: numatui does not open it"
        )
    try:
        with open_group_dir(path, cgroup_root) as fd:
            try:
                return stat_by_kind(parse_numa_stat(_read_at(fd, "memory.numa_stat"))), ""
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    return None, f"memory.numa_stat not readable ({exc.strerror})"
            try:
                controllers = _read_at(fd, "cgroup.controllers", 4096).split()
            except OSError:
                controllers = []
    except CgroupError as exc:
        return None, str(exc)
    if "memory" not in controllers:
        return None, (
            "the memory controller is not enabled for this cgroup (its parent's "
            "cgroup.subtree_control lacks +memory): no per-node numbers from the kernel"
        )
    return None, "this kernel has no memory.numa_stat (Linux 4.20 or later has it)"


# ---------------------------------------------------------------- what the machine has


def read_support(cgroup_root: Path = CGROUP_ROOT, proc_root: Path = Path("/proc")) -> CgroupSupport:
    """Whether cgroup v2 is mounted at `cgroup_root` and has the memory controller."""
    controllers = _read_text(f"{cgroup_root}/cgroup.controllers", 4096)
    if controllers is None:
        own = read_proc_cgroup(os.getpid(), proc_root) if proc_root == Path("/proc") else None
        if own is not None and own.v1:
            why = (
                "this machine uses cgroup v1: groups are listed by their memory (or systemd) "
                "hierarchy, but cgroup v1 gives no memory.numa_stat in bytes numatui reads"
            )
        else:
            why = f"no cgroup v2 mounted at {cgroup_root}: groups have no memory.numa_stat"
        return CgroupSupport(unified=False, memory=False, missing=why)
    if "memory" not in controllers.split():
        return CgroupSupport(
            unified=True,
            memory=False,
            missing="the cgroup v2 memory controller is not available (cgroup.controllers "
            "lacks memory; it may be bound to cgroup v1): no memory.numa_stat per group",
        )
    return CgroupSupport(unified=True, memory=True)


# ---------------------------------------------------------------- names


_HEX64 = r"[0-9a-f]{64}"
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_SCOPED = re.compile(
    rf"(?P<prefix>docker|cri-containerd|crio|libpod|nerdctl|containerd)-(?:conmon-)?"
    rf"(?P<id>{_HEX64})\.scope",
    re.ASCII,
)
_CONMON = re.compile(r"(?:crio|libpod)-conmon-", re.ASCII)
_BARE_ID = re.compile(_HEX64, re.ASCII)
_POD = re.compile(rf"(?:kubepods(?:-[a-z]+)?-)?pod(?P<uid>{_UID})(?:\.slice)?", re.ASCII)
_QOS = re.compile(r"(?:kubepods-)?(besteffort|burstable)(?:\.slice)?", re.ASCII)
_RUNTIME = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "nerdctl": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}
_SYSTEMD_SUFFIX = {
    ".service": GroupKind.SERVICE,
    ".scope": GroupKind.SCOPE,
    ".slice": GroupKind.SLICE,
    ".socket": GroupKind.SERVICE,
    ".mount": GroupKind.SERVICE,
    ".swap": GroupKind.SERVICE,
}


def _kube_parts(parts: list[str]) -> tuple[str, str] | None:
    """(pod uid, QoS class) when the path runs through kubepods; None otherwise."""
    if not any(p.startswith("kubepods") for p in parts):
        return None
    uid = ""
    qos = "guaranteed"  # pods directly under kubepods are the Guaranteed class
    for part in parts:
        q = _QOS.fullmatch(part)
        if q:
            qos = q.group(1)
        m = _POD.fullmatch(part)
        if m:
            uid = m.group("uid").replace("_", "-")
    return (uid, qos) if uid else None


def describe(path: str, names: ContainerNames | None = None) -> GroupName:
    """What the cgroup at `path` is: a systemd unit, a container, a pod, or a plain path."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return GroupName(GroupKind.ROOT, "/ (root)")
    last = parts[-1]
    kube = _kube_parts(parts)
    runtime = ""
    container_id = ""
    for part in reversed(parts):
        scoped = _SCOPED.fullmatch(part)
        if scoped:
            runtime = _RUNTIME[scoped.group("prefix")]
            container_id = scoped.group("id")
            if _CONMON.match(part):
                runtime += " conmon"  # the runtime's monitor process, not the container
            break
        if _BARE_ID.fullmatch(part):
            # cgroupfs drivers: /docker/<id>, /kubepods/burstable/pod<uid>/<id>, /default/<id>
            parent = parts[parts.index(part) - 1] if parts.index(part) else ""
            runtime = {"docker": "docker", "libpod_parent": "podman", "default": "containerd"}.get(
                parent, "containerd" if kube else "container"
            )
            container_id = part
            break
    if container_id:
        short = container_id[:12]
        name = names.lookup(container_id) if names is not None else ""
        label = f"{runtime} {short}" + (f" {name}" if name else "")
        if kube:
            label += f" (pod {kube[0][:8]}, {kube[1]})"
        return GroupName(
            GroupKind.CONTAINER,
            label,
            unit=last if "." in last else "",
            runtime=runtime,
            container_id=short,
            container_name=name,
            pod_uid=kube[0] if kube else "",
            qos=kube[1] if kube else "",
        )
    if kube and _POD.fullmatch(last):
        return GroupName(
            GroupKind.POD, f"pod {kube[0]} ({kube[1]})", unit=last, pod_uid=kube[0], qos=kube[1]
        )
    for suffix, kind in _SYSTEMD_SUFFIX.items():
        if last.endswith(suffix) and len(last) > len(suffix):
            return GroupName(kind, last, unit=last)
    return GroupName(GroupKind.OTHER, path)


class ContainerNames:
    """Container names where the runtime leaves them on the machine.

    docker: `<docker>/containers/<id>/config.v2.json` ("Name": "/web"); podman and
    CRI-O: `<storage>/overlay-containers/containers.json` ([{"id", "names"}]).
    containerd keeps its names in a database numatui does not read: the id only.
    Files are read without following symlinks and at most 1 MiB (4 MiB for the list).
    """

    def __init__(
        self,
        docker_root: Path = Path("/var/lib/docker"),
        storage_roots: Iterable[Path] = (Path("/var/lib/containers/storage"),),
    ) -> None:
        self.docker_root = docker_root
        self.storage_roots = tuple(storage_roots)
        self._storage: dict[str, str] | None = None
        self._docker: dict[str, str] = {}

    def _load_storage(self) -> dict[str, str]:
        if self._storage is None:
            found: dict[str, str] = {}
            for root in self.storage_roots:
                text = _read_text(f"{root}/overlay-containers/containers.json", 4 * _MAX_BYTES)
                if not text:
                    continue
                try:
                    entries = json.loads(text)
                except ValueError:
                    continue
                for entry in entries if isinstance(entries, list) else ():
                    if not isinstance(entry, dict):
                        continue
                    cid, listed = entry.get("id"), entry.get("names")
                    if isinstance(cid, str) and isinstance(listed, list) and listed:
                        first = listed[0]
                        if isinstance(first, str):
                            found[cid] = first
            self._storage = found
        return self._storage

    def _docker_name(self, cid: str) -> str:
        if cid not in self._docker:
            name = ""
            text = _read_text(f"{self.docker_root}/containers/{cid}/config.v2.json")
            if text:
                try:
                    value = json.loads(text).get("Name", "")
                except (ValueError, AttributeError):
                    value = ""
                if isinstance(value, str):
                    name = value.lstrip("/")
            self._docker[cid] = name
        return self._docker[cid]

    def lookup(self, container_id: str) -> str:
        """The container's name, or "" (the id must be the runtime's full 64 hex digits)."""
        if not _BARE_ID.fullmatch(container_id):
            return ""
        return self._docker_name(container_id) or self._load_storage().get(container_id, "")


# ---------------------------------------------------------------- groups of a scan


def groups_of(
    scan: ProcessScan,
    memberships: Mapping[int, str],
    support: CgroupSupport,
    *,
    cgroup_root: Path = CGROUP_ROOT,
    names: ContainerNames | None = None,
    read_stat: bool = True,
) -> tuple[Group, ...]:
    """The scan's processes gathered by cgroup path (`memberships`: pid -> path), each
    group with its members' bytes per node summed and its own memory.numa_stat."""
    members: dict[str, list[int]] = {}
    for process in scan.processes:
        path = memberships.get(process.pid)
        if path is not None:
            members.setdefault(path, []).append(process.pid)
    by_pid = {p.pid: p for p in scan.processes}
    groups: list[Group] = []
    for path, pids in members.items():
        node_bytes: dict[int, int] = {}
        unreadable = 0
        for pid in pids:
            process = by_pid[pid]
            if not process.memory_readable:
                unreadable += 1
            for node, value in process.node_bytes.items():
                node_bytes[node] = node_bytes.get(node, 0) + value
        if read_stat:
            stat_, missing = group_numa_stat(path, support, cgroup_root)
        else:
            stat_, missing = None, "not read"
        groups.append(
            Group(
                path=path,
                name=describe(path, names),
                pids=tuple(sorted(pids)),
                node_bytes=frozen_map(node_bytes),
                numa_stat=None if stat_ is None else stat_,
                numa_stat_missing=missing,
                unreadable=unreadable,
            )
        )
    return tuple(sorted(groups, key=lambda g: g.path))


class GroupReader:
    """Reads every process's cgroup and builds the groups of a process scan."""

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        cgroup_root: Path = CGROUP_ROOT,
        names: ContainerNames | None = None,
    ) -> None:
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        self.names = names if names is not None else ContainerNames()

    def support(self) -> CgroupSupport:
        return read_support(self.cgroup_root, self.proc_root)

    def memberships(self, pids: Iterable[int], unified: bool = True) -> dict[int, str]:
        out: dict[int, str] = {}
        for pid in pids:
            parsed = read_proc_cgroup(pid, self.proc_root)
            path = None if parsed is None else parsed.grouping_path(unified)
            if path is not None:
                out[pid] = path  # an unsafe path is shown (safely) but never opened
        return out

    def read(self, scan: ProcessScan) -> GroupScan:
        support = self.support()
        memberships = self.memberships((p.pid for p in scan.processes), support.unified)
        groups = groups_of(
            scan, memberships, support, cgroup_root=self.cgroup_root, names=self.names
        )
        return GroupScan(groups, support, scan.taken_at)

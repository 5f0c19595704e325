"""Memory and CPU limits of a local server that the user cannot lift: cgroups.

When the hub runs as root and a cgroup filesystem is writable, each server goes into
a cgroup of its own (`kubelab/<account>`) with the profile's limits: cgroup v2
(`memory.max`, `cpu.max`) where its controllers are enabled, else the v1 `memory` and
`cpu` hierarchies (`memory.limit_in_bytes`, `cpu.cfs_quota_us`). The server joins it
before it drops root, and a user process cannot move itself out (the cgroup files
belong to root). systemd-run would do the same through systemd; containers and CI
machines seldom run systemd, so kubelab writes the cgroup files itself.

Without cgroups the spawner falls back to what a process can do to itself: a hard
RLIMIT_AS (the user cannot raise a hard limit) and CPU affinity, which the user *can*
widen, so the CPU limit is then advisory. `Enforcement` says which applied; the server
shows it in `/kubelab/api/status` and the sidebar.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


@dataclass
class Enforcement:
    """How each limit is enforced: "cgroup-v2", "cgroup-v1", "rlimit", "advisory"."""

    memory: str | None = None
    cpu: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"memory": self.memory, "cpu": self.cpu}


@dataclass
class Cgroup:
    """The cgroup folders one server joins (one for v2, one per controller for v1)."""

    folders: list[Path] = field(default_factory=list)
    version: str = ""

    def join(self) -> None:
        """Move the calling process in; call in the child before it drops root."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        """Delete the folders once the server's processes are gone (else they stay)."""
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _v2_ready(root: Path) -> bool:
    controllers = root / "cgroup.controllers"
    return controllers.exists() and {"memory", "cpu"} <= set(controllers.read_text().split())


def create_cgroup(
    name: str, memory_bytes: int | None, cpu_cores: float | None, root: Path = CGROUP_ROOT
) -> Cgroup | None:
    """A cgroup `kubelab/<name>` with the limits, or None when none can be made here."""
    if os.geteuid() != 0 or (memory_bytes is None and cpu_cores is None):
        return None
    try:
        if _v2_ready(root):
            parent = root / "kubelab"
            parent.mkdir(exist_ok=True)
            for folder in (root, parent):
                (folder / "cgroup.subtree_control").write_text("+memory +cpu")
            group = parent / name
            group.mkdir(exist_ok=True)
            if memory_bytes is not None:
                (group / "memory.max").write_text(str(memory_bytes))
            if cpu_cores is not None:
                quota = max(1000, int(cpu_cores * CPU_PERIOD_US))
                (group / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
            return Cgroup([group], "cgroup-v2")
        folders = []
        if memory_bytes is not None and (root / "memory").is_dir():
            group = root / "memory" / "kubelab" / name
            group.mkdir(parents=True, exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(memory_bytes))
            folders.append(group)
        if cpu_cores is not None and (root / "cpu").is_dir():
            group = root / "cpu" / "kubelab" / name
            group.mkdir(parents=True, exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpu_cores * CPU_PERIOD_US))))
            folders.append(group)
        return Cgroup(folders, "cgroup-v1") if folders else None
    except OSError:  # read-only cgroupfs (most containers without privileges)
        return None


def enforcement(
    cgroup: Cgroup | None, memory_bytes: int | None, cpu_cores: float | None
) -> Enforcement:
    def how(wanted: object, controller: str, fallback: str) -> str | None:
        if wanted is None:
            return None
        if cgroup is not None and (
            cgroup.version == "cgroup-v2" or any(controller in f.parts for f in cgroup.folders)
        ):
            return cgroup.version
        return fallback

    return Enforcement(
        memory=how(memory_bytes, "memory", "rlimit"), cpu=how(cpu_cores, "cpu", "advisory")
    )

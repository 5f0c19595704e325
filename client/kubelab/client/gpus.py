"""Machine-wide GPU accounting: which device ids are in use by any run or job here.

Pipeline steps (the local engine) and training nodes (the trainer's local runner)
may run in different processes: the jupyter server, a CLI, a notebook kernel. So
the record of who holds a GPU cannot live in one process's memory; it is one lock
file per device under `<kubelab home>/gpus/`, held with `flock` for as long as the
device is in use. The kernel drops a lock when its holder exits or crashes, so a
device is never leaked, and two holders never get the same device.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from kubelab.client.store import kubelab_home


def gpu_devices() -> list[str]:
    """Device ids this process may hand out: CUDA_VISIBLE_DEVICES, else /dev/nvidiaN."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    return sorted(p.name[len("nvidia") :] for p in Path("/dev").glob("nvidia[0-9]*"))


class GpuLease:
    """Take and give back device ids; every `GpuLease` on the machine sees the others."""

    def __init__(self, devices: list[str] | None = None, directory: Path | None = None) -> None:
        self.devices = list(gpu_devices() if devices is None else devices)
        self.directory = directory or kubelab_home() / "gpus"
        self._held: dict[str, int] = {}  # device id -> fd of its locked file
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.devices)

    def _try_one(self, device: str, holder: str) -> int | None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"gpu-{device}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # Who holds it, for people looking at the folder; the lock is what counts.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} pid={os.getpid()}\n".encode(), 0)
        return fd

    def try_acquire(self, count: int, holder: str = "") -> list[str] | None:
        """`count` free devices, or None (and nothing held) when fewer are free."""
        if count <= 0:
            return []
        taken: list[tuple[str, int]] = []
        with self._lock:
            for device in self.devices:
                if device in self._held:
                    continue
                fd = self._try_one(device, holder)
                if fd is not None:
                    taken.append((device, fd))
                    if len(taken) == count:
                        break
            if len(taken) < count:
                # All or nothing: holding some while waiting for more could deadlock two jobs.
                for _, fd in taken:
                    os.close(fd)
                return None
            self._held.update(taken)
        return [device for device, _ in taken]

    def acquire(
        self, count: int, cancelled: threading.Event, holder: str = "", poll: float = 0.2
    ) -> list[str] | None:
        """Wait until `count` devices are free and take them; None when cancelled first."""
        while True:
            ids = self.try_acquire(count, holder)
            if ids is not None:
                return ids
            if cancelled.wait(poll):
                return None

    def release(self, ids: list[str]) -> None:
        with self._lock:
            for device in ids:
                fd = self._held.pop(device, None)
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, 0)
                    os.close(fd)  # closing the only descriptor drops the flock

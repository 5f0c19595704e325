"""GPU detection and exclusive allocation for local spawns (CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading


def detect_gpus(nvidia_smi: str = "nvidia-smi") -> list[str]:
    """GPU indices from `nvidia-smi -L`; empty when there is no NVIDIA driver."""
    exe = shutil.which(nvidia_smi)
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r"^GPU (\d+):", out.stdout, flags=re.MULTILINE)


class GPUAllocator:
    """Hands out GPU ids so that two running servers never share one.

    One allocator per hub process (see `shared`); owners are spawner keys such as
    "alice/" and allocations are restored from spawner state after a hub restart.
    """

    _shared: dict[tuple[str, ...], GPUAllocator] = {}
    _shared_lock = threading.Lock()

    def __init__(self, gpu_ids: list[str]) -> None:
        self.gpu_ids = list(gpu_ids)
        self._owners: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, gpu_ids: list[str]) -> GPUAllocator:
        key = tuple(gpu_ids)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(gpu_ids)
            return cls._shared[key]

    def free(self) -> list[str]:
        taken = {g for ids in self._owners.values() for g in ids}
        return [g for g in self.gpu_ids if g not in taken]

    def allocate(self, owner: str, count: int) -> list[str]:
        with self._lock:
            self._owners.pop(owner, None)
            free = self.free()
            if count > len(free):
                raise RuntimeError(
                    f"{count} GPU(s) requested but only {len(free)} of {len(self.gpu_ids)} are free"
                )
            self._owners[owner] = free[:count]
            return list(self._owners[owner])

    def restore(self, owner: str, ids: list[str]) -> None:
        with self._lock:
            self._owners[owner] = [g for g in ids if g in self.gpu_ids]

    def release(self, owner: str) -> None:
        with self._lock:
            self._owners.pop(owner, None)

    def owned(self, owner: str) -> list[str]:
        return list(self._owners.get(owner, []))

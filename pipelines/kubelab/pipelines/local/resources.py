"""What a run may use at once: CPU slots (its parallelism) and GPU ids.

Tasks ask for the CPUs their limit names (at least one slot) and the GPUs their
accelerator limit names; they wait until both are free. GPUs are counted from
CUDA_VISIBLE_DEVICES or /dev/nvidia*, and a request above the total is an error
raised before waiting, never a hang.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


def gpu_devices() -> list[str]:
    """Device ids this process may hand out: CUDA_VISIBLE_DEVICES, else /dev/nvidiaN."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    return sorted(p.name[len("nvidia") :] for p in Path("/dev").glob("nvidia[0-9]*"))


class Resources:
    """CPU slots (the run's parallelism) and GPU ids; tasks wait for what they need."""

    def __init__(self, slots: int, gpu_ids: list[str]) -> None:
        self.slots = slots
        self.free_slots = slots
        self.free_gpus = list(gpu_ids)
        self.total_gpus = len(gpu_ids)
        self.cond = threading.Condition()

    def acquire(self, cpu: int, gpus: int, cancelled: threading.Event) -> list[str] | None:
        cpu = max(1, min(cpu, self.slots))
        with self.cond:
            while self.free_slots < cpu or len(self.free_gpus) < gpus:
                if cancelled.is_set():
                    return None
                self.cond.wait(0.2)
            self.free_slots -= cpu
            taken, self.free_gpus = self.free_gpus[:gpus], self.free_gpus[gpus:]
            return taken

    def release(self, cpu: int, gpu_ids: list[str]) -> None:
        cpu = max(1, min(cpu, self.slots))
        with self.cond:
            self.free_slots += cpu
            self.free_gpus.extend(gpu_ids)
            self.cond.notify_all()


def cpu_cores(text: Any) -> float:
    """A CPU quantity ("2", "500m", 1.5) as cores."""
    if text is None or text == "":
        return 0.0
    s = str(text)
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)

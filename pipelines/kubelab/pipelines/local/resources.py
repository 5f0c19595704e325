"""What a run may use at once: CPU slots (its parallelism) and GPU ids.

Tasks ask for the CPUs their limit names (at least one slot) and the GPUs their
accelerator limit names; they wait until both are free. GPUs are counted from
CUDA_VISIBLE_DEVICES or /dev/nvidia*, and a request above the total is an error
raised before waiting, never a hang. GPU ids are leased machine-wide
(`kubelab.client.gpus`), so a pipeline step and a training job never share one.
"""

from __future__ import annotations

import threading
from typing import Any

from kubelab.client.gpus import GpuLease, gpu_devices

__all__ = ["Resources", "cpu_cores", "gpu_devices"]


class Resources:
    """CPU slots (the run's parallelism) and GPU ids; tasks wait for what they need."""

    def __init__(self, slots: int, gpu_ids: list[str]) -> None:
        self.slots = slots
        self.free_slots = slots
        self.gpus = GpuLease(gpu_ids)
        self.total_gpus = self.gpus.total
        self.cond = threading.Condition()

    def acquire(self, cpu: int, gpus: int, cancelled: threading.Event) -> list[str] | None:
        cpu = max(1, min(cpu, self.slots))
        with self.cond:
            while self.free_slots < cpu:
                if cancelled.is_set():
                    return None
                self.cond.wait(0.2)
            self.free_slots -= cpu
        taken = self.gpus.acquire(gpus, cancelled, holder="pipeline step")
        if taken is None:
            self.release(cpu, [])
        return taken

    def release(self, cpu: int, gpu_ids: list[str]) -> None:
        cpu = max(1, min(cpu, self.slots))
        self.gpus.release(gpu_ids)
        with self.cond:
            self.free_slots += cpu
            self.cond.notify_all()


def cpu_cores(text: Any) -> float:
    """A CPU quantity ("2", "500m", 1.5) as cores."""
    if text is None or text == "":
        return 0.0
    s = str(text)
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)

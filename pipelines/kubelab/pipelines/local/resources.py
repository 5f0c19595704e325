"""What a run may use at once: CPU cores, GPU ids and (optionally) a number of tasks.

As on Kubernetes, a task that names a CPU limit (or request) reserves those cores and
waits until they are free; a task that names none reserves nothing, so independent
tasks run side by side however many CPUs there are (kfp.local runs them one by one).
`parallelism`, when given, caps how many tasks run at once; by default the cap only
guards the machine against a runaway fan-out. GPUs are counted from
CUDA_VISIBLE_DEVICES or /dev/nvidia*; a task waits until the GPUs it asks for are
free. GPU ids are leased machine-wide (`kubelab.client.gpus`), so a pipeline step and
a training job never share one.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kubelab.client.gpus import GpuLease, gpu_devices

__all__ = ["Resources", "cpu_cores", "default_task_cap", "gpu_devices"]


def default_task_cap() -> int:
    """Tasks at once without an explicit parallelism: plenty for a fan-out, bounded."""
    return max(32, 4 * (os.cpu_count() or 1))


class Resources:
    """CPU cores, GPU ids and task slots; tasks wait for what they need."""

    def __init__(self, cpus: float, gpu_ids: list[str], max_tasks: int | None = None) -> None:
        self.cpus = float(cpus)
        self.free_cpus = float(cpus)
        self.gpus = GpuLease(gpu_ids)
        self.total_gpus = self.gpus.total
        self.max_tasks = max_tasks or default_task_cap()
        self.running = 0
        self.cond = threading.Condition()

    def _cores(self, cpu: float) -> float:
        return min(max(cpu, 0.0), self.cpus)  # a limit above the machine takes all of it

    def acquire(self, cpu: float, gpus: int, cancelled: threading.Event) -> list[str] | None:
        """Wait until `cpu` cores (0: none reserved), a task slot and `gpus` GPUs are
        free; the GPU ids, or None when the run was cancelled while waiting."""
        cores = self._cores(cpu)
        with self.cond:
            while self.running >= self.max_tasks or self.free_cpus + 1e-9 < cores:
                if cancelled.is_set():
                    return None
                self.cond.wait(0.2)
            self.running += 1
            self.free_cpus -= cores
        taken = self.gpus.acquire(gpus, cancelled, holder="pipeline step")
        if taken is None:
            self.release(cpu, [])
        return taken

    def release(self, cpu: float, gpu_ids: list[str]) -> None:
        self.gpus.release(gpu_ids)
        with self.cond:
            self.running -= 1
            self.free_cpus += self._cores(cpu)
            self.cond.notify_all()


def cpu_cores(text: Any) -> float:
    """A CPU quantity ("2", "500m", 1.5) as cores."""
    if text is None or text == "":
        return 0.0
    s = str(text)
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)

"""Training jobs, shaped like the Kubeflow SDK's `kubeflow.trainer`.

    from kubelab.workloads.trainer import TrainerClient, CustomTrainer

    def train(lr: float = 0.1):
        import torch.distributed as dist
        dist.init_process_group("gloo")
        ...

    client = TrainerClient()                     # the embedded local backend
    name = client.train(trainer=CustomTrainer(func=train, func_args={"lr": 0.05}, num_nodes=2))
    client.wait_for_job_status(name)

Code written for `kubeflow.trainer` moves here by swapping the import.
"""

from __future__ import annotations

from typing import Any

from kubelab.workloads.trainer.types import (
    COMPLETE,
    CREATED,
    FAILED,
    RUNNING,
    CustomTrainer,
    Event,
    KubernetesBackendConfig,
    LocalBackendConfig,
    LocalProcessBackendConfig,
    Runtime,
    RuntimeTrainer,
    Step,
    TrainJob,
    TrainJobTemplate,
)

__all__ = [
    "COMPLETE",
    "CREATED",
    "FAILED",
    "RUNNING",
    "CustomTrainer",
    "Event",
    "KubernetesBackendConfig",
    "LocalBackendConfig",
    "LocalProcessBackendConfig",
    "Runtime",
    "RuntimeTrainer",
    "Step",
    "TrainJob",
    "TrainJobTemplate",
    "TrainerClient",
]


def __getattr__(name: str) -> Any:
    # The client pulls in the client layer; importing the types alone stays light.
    if name == "TrainerClient":
        from kubelab.workloads.trainer.client import TrainerClient

        return TrainerClient
    raise AttributeError(name)

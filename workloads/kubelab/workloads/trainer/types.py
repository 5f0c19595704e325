"""The data scientist's objects, named and shaped as in the Kubeflow SDK's `kubeflow.trainer`.

Code written for `kubeflow.trainer` moves here by swapping the import: `CustomTrainer`
takes the same arguments, `TrainerClient.get_job()` answers a `TrainJob` with `steps`
(`node-0`…) and a `status` among Created/Running/Complete/Failed. kubelab adds what
its local backend needs (`nproc_per_node`) and what its UI shows (per-node device,
duration, metrics, the error with the failing rank's traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# TrainJob statuses, as the Kubeflow SDK's constants.
CREATED = "Created"
RUNNING = "Running"
COMPLETE = "Complete"
FAILED = "Failed"
STATUSES = (CREATED, RUNNING, COMPLETE, FAILED)

# The store's states (kubelab.client.store.STATES) as TrainJob statuses.
STATUS_OF_STATE = {
    "pending": CREATED,
    "running": RUNNING,
    "succeeded": COMPLETE,
    "failed": FAILED,
    "cancelled": FAILED,
    "skipped": FAILED,
}

DEFAULT_RUNTIME = "torch-distributed"
UNKNOWN = "Unknown"


@dataclass
class CustomTrainer:
    """A self-contained training function run on `num_nodes` nodes (as `kubeflow.trainer`).

    `func` is called with `**func_args` in every process; it reads the usual
    torch.distributed environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).
    `resources_per_node` takes `{"gpu": 1, "cpu": 2, "memory": "4Gi"}`.
    `nproc_per_node` (kubelab): processes per node; default one per GPU, else 1.
    """

    func: Callable[..., Any]
    func_args: dict[str, Any] | None = None
    image: str | None = None
    packages_to_install: list[str] | None = None
    pip_index_urls: list[str] = field(default_factory=list)
    num_nodes: int | None = None
    resources_per_node: dict[str, Any] | None = None
    env: dict[str, str] | None = None
    nproc_per_node: int | None = None


@dataclass
class TrainJobTemplate:
    """A training job run once per trial by `OptimizerClient.optimize` (as in the Kubeflow
    SDK): each trial's parameters are passed to `trainer.func` as keyword arguments, on
    top of `trainer.func_args`."""

    trainer: CustomTrainer
    runtime: Runtime | str | None = None
    initializer: Any = None


@dataclass
class LocalBackendConfig:
    """Run jobs on this machine (the embedded default). `strict`: refuse a GPU request
    the machine cannot meet instead of running on CPU with a warning."""

    strict: bool = False


# The Kubeflow SDK's name for its local backend; both work here.
LocalProcessBackendConfig = LocalBackendConfig


@dataclass
class KubernetesBackendConfig:
    """Run jobs as TrainJob (or PyTorchJob) objects in `namespace` (default: the
    notebook's own namespace). `api`: "TrainJob", "PyTorchJob" or None to discover."""

    namespace: str | None = None
    config_file: str | None = None
    context: str | None = None
    api: str | None = None


@dataclass
class RuntimeTrainer:
    trainer_type: str
    framework: str
    image: str
    num_nodes: int = 1
    device: str = UNKNOWN
    device_count: str = UNKNOWN


@dataclass
class Runtime:
    name: str
    trainer: RuntimeTrainer
    kind: str = "ClusterTrainingRuntime"


@dataclass
class Step:
    """One training node (`node-0`…): its state and the device it ran on."""

    name: str
    status: str | None
    pod_name: str
    device: str = UNKNOWN
    device_count: str = UNKNOWN
    duration_s: float | None = None
    error: str | None = None


@dataclass
class TrainJob:
    name: str
    runtime: Runtime
    steps: list[Step]
    num_nodes: int
    creation_timestamp: datetime
    status: str = UNKNOWN
    # kubelab: where it runs, the latest metrics, the error (failing rank's traceback).
    backend: str = "local"
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Event:
    involved_object_kind: str
    involved_object_name: str
    message: str
    reason: str
    event_time: datetime | None

"""`TrainerClient`: the Kubeflow SDK's trainer client, over kubelab's one `Client`.

A thin facade: it turns a `CustomTrainer` into a training spec, hands it to
`kubelab.client.Client.create_job("training", ...)`, and translates the job JSON back
into the SDK's `TrainJob`/`Step` objects and Created/Running/Complete/Failed
statuses. The local and Kubernetes backends, logs, cancel and the store are the
client layer's; nothing here knows where a job runs.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from kubelab.workloads.trainer import spec as specs
from kubelab.workloads.trainer.manifests import TRAINJOB_API
from kubelab.workloads.trainer.types import (
    COMPLETE,
    DEFAULT_RUNTIME,
    FAILED,
    STATUS_OF_STATE,
    STATUSES,
    UNKNOWN,
    CustomTrainer,
    Event,
    KubernetesBackendConfig,
    LocalBackendConfig,
    Runtime,
    RuntimeTrainer,
    Step,
    TrainJob,
)

LOCAL_POLL = 0.05  # local jobs live in a SQLite file: reading them is cheap


def local_runtime() -> Runtime:
    """The runtime local jobs use: torchrun's contract in the current environment."""
    return Runtime(
        name=DEFAULT_RUNTIME,
        trainer=RuntimeTrainer(
            trainer_type="CustomTrainer", framework="torch", image="local", num_nodes=1
        ),
        kind="ClusterTrainingRuntime",
    )


def runtime_of(obj: dict[str, Any]) -> Runtime:
    """The SDK's `Runtime` of a ClusterTrainingRuntime object: its framework label, the
    image and node count of its `node` job."""
    spec = obj.get("spec") or {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    image = UNKNOWN
    for job in ((spec.get("template") or {}).get("spec") or {}).get("replicatedJobs") or []:
        pod = ((job.get("template") or {}).get("spec") or {}).get("template") or {}
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("name") == "node" and container.get("image"):
                image = container["image"]
    return Runtime(
        name=obj["metadata"]["name"],
        trainer=RuntimeTrainer(
            trainer_type="CustomTrainer",
            framework=labels.get("trainer.kubeflow.org/framework", UNKNOWN),
            image=image,
            num_nodes=int((spec.get("mlPolicy") or {}).get("numNodes") or 1),
        ),
        kind=str(obj.get("kind") or "ClusterTrainingRuntime"),
    )


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.now()
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_trainjob(job: dict[str, Any]) -> TrainJob:
    """The SDK's `TrainJob` for a job JSON of the client layer."""
    spec = job.get("spec") or {}
    steps = [
        Step(
            name=s["name"],
            status=STATUS_OF_STATE.get(s["state"], UNKNOWN),
            pod_name=s.get("pod") or s["name"],
            device=s.get("device") or UNKNOWN,
            device_count=str(s.get("device_count") or UNKNOWN),
            duration_s=s.get("duration_s"),
            error=s.get("error"),
        )
        for s in job.get("steps", [])
    ]
    runtime = local_runtime()
    runtime.name = spec.get("runtime") or DEFAULT_RUNTIME
    return TrainJob(
        name=job["id"],
        runtime=runtime,
        steps=steps,
        num_nodes=int(spec.get("num_nodes") or len(steps) or 1),
        creation_timestamp=_time(job.get("created_at")),
        status=STATUS_OF_STATE.get(job["state"], UNKNOWN),
        backend=job.get("backend", "local"),
        metrics=dict(job.get("metrics") or {}),
        error=job.get("error"),
    )


def custom_trainer_spec(
    trainer: CustomTrainer | None,
    runtime: Runtime | str | None = None,
    initializer: Any = None,
    *,
    api: str | None = None,
) -> dict[str, Any]:
    """The training job spec (REST form) of a `CustomTrainer` on a runtime."""
    if trainer is None or not isinstance(trainer, CustomTrainer):
        raise ValueError("kubelab runs a CustomTrainer: train(trainer=CustomTrainer(func=...))")
    if initializer is not None:
        raise ValueError("initializers (dataset/model download) are not supported yet")
    return {
        "function": specs.function_source(trainer.func),
        "func_args": trainer.func_args,
        "num_nodes": trainer.num_nodes or 1,
        "nproc_per_node": trainer.nproc_per_node,
        "resources_per_node": trainer.resources_per_node,
        "env": trainer.env,
        "packages_to_install": trainer.packages_to_install,
        "pip_index_urls": trainer.pip_index_urls,
        "image": trainer.image,
        "runtime": runtime.name if isinstance(runtime, Runtime) else runtime,
        "api": api,
    }


class TrainerClient:
    """Submit and watch training jobs (`kubeflow.trainer.TrainerClient`'s methods).

    `backend_config`: `LocalBackendConfig()` (this machine), `KubernetesBackendConfig()`
    (TrainJob/PyTorchJob in the cluster), or None for kubelab's default backend.
    `client`: an existing `kubelab.client.Client` to share (the jupyter server's).
    """

    def __init__(
        self,
        backend_config: LocalBackendConfig | KubernetesBackendConfig | None = None,
        *,
        client: Any = None,
    ) -> None:
        from kubelab.client import Client

        self.api: str | None = None
        if isinstance(backend_config, KubernetesBackendConfig):
            self.backend: str | None = "kubernetes"
            self.api = backend_config.api
            self.client = client or Client(
                "kubernetes",
                namespace=backend_config.namespace,
                kubeconfig=backend_config.config_file,
                kube_context=backend_config.context,
            )
        elif isinstance(backend_config, LocalBackendConfig):
            self.backend = "local"
            self.client = client or Client("local", strict_resources=backend_config.strict)
        elif backend_config is None:
            self.backend = None
            self.client = client or Client()
        else:
            raise ValueError(f"Invalid backend config '{backend_config}'")
        if self._backend_name() == "local":
            from kubelab.workloads.trainer import local

            local.warm_up()  # import torch once in the background, before the first job

    def _backend_name(self) -> str:
        return self.backend or getattr(self.client, "default_backend", "local")

    # -- runtimes ---------------------------------------------------------------------

    def list_runtimes(self) -> list[Runtime]:
        """Local: torchrun's contract here. Kubernetes: the ClusterTrainingRuntimes
        (none on a cluster that runs only the v1 training operator's PyTorchJob)."""
        if self._backend_name() == "local":
            return [local_runtime()]
        cluster = self._cluster()
        kind = (TRAINJOB_API, "ClusterTrainingRuntime")
        if kind not in cluster.served_kinds([kind]):
            return []
        return [runtime_of(obj) for obj in cluster.list_objects(*kind)]

    def _cluster(self) -> Any:
        return self.client.job_backend("kubernetes")

    def get_runtime(self, name: str) -> Runtime:
        for runtime in self.list_runtimes():
            if runtime.name == name:
                return runtime
        raise ValueError(f"Runtime '{name}' not found.")

    # -- jobs ---------------------------------------------------------------------------

    def train(
        self,
        runtime: Runtime | str | None = None,
        initializer: Any = None,
        trainer: CustomTrainer | None = None,
        options: list[Any] | None = None,
    ) -> str:
        """Start a training job; returns its name. In a notebook, shows it live."""
        spec = custom_trainer_spec(trainer, runtime, initializer, api=self.api)
        name = self.client.create_job("training", spec, backend=self.backend)
        job = self.client.get_job(name)
        for step in job.get("steps", []):
            if step.get("warning"):
                warnings.warn(f"{name}: {step['warning']}", RuntimeWarning, stacklevel=2)
                break
        if _in_notebook():
            from kubelab.workloads.trainer.display import show

            show(self, name)
        return name

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        jobs = [to_trainjob(j) for j in self.client.list_jobs("training")]
        if runtime is not None:
            jobs = [j for j in jobs if j.runtime.name == runtime.name]
        return jobs

    def get_job(self, name: str) -> TrainJob:
        return to_trainjob(self.client.get_job(name))

    def get_job_logs(
        self, name: str, step: str = "node-0", follow: bool | None = False
    ) -> Iterator[str]:
        """The log lines of one node; with `follow`, as they are written, until it ends."""
        partial = ""
        if follow:
            chunks: Iterator[str] = self.client.stream_job_logs(name, step)
        else:
            chunks = self._log_chunks(name, step)
        for chunk in chunks:
            lines = (partial + chunk).split("\n")
            partial = lines.pop()
            yield from lines
        if partial:
            yield partial

    def _log_chunks(self, name: str, step: str) -> Iterator[str]:
        offset = 0
        while True:
            chunk = self.client.job_logs(name, step, offset)
            if chunk["text"]:
                yield chunk["text"]
            if not chunk["text"] or chunk["offset"] == offset:
                return
            offset = chunk["offset"]

    def get_job_events(self, name: str) -> list[Event]:
        """Kubernetes events of the job and its pods; local jobs have none."""
        job = self.client.get_job(name)
        if job.get("backend") != "kubernetes":
            return []
        cluster = self._cluster()
        names = {job["id"]} | {s.get("pod") for s in job.get("steps", []) if s.get("pod")}
        return [
            Event(
                involved_object_kind=e["involvedObject"].get("kind") or "",
                involved_object_name=e["involvedObject"].get("name") or "",
                message=e.get("message") or "",
                reason=e.get("reason") or "",
                event_time=_time(e.get("firstTimestamp") or e.get("eventTime")),
            )
            for e in cluster.list_objects("v1", "Event", job.get("namespace") or cluster.namespace)
            if (e.get("involvedObject") or {}).get("name") in names
        ]

    def wait_for_job_status(
        self,
        name: str,
        status: set[str] | None = None,
        timeout: int = 600,
        polling_interval: float = 2,
    ) -> TrainJob:
        """Wait until the job reaches one of `status`; `RuntimeError` if it fails first."""
        wanted = set(status or {COMPLETE})
        if not wanted <= set(STATUSES):
            raise ValueError(f"Expected status {wanted} must be a subset of {set(STATUSES)}")
        if polling_interval <= 0 or polling_interval >= timeout:
            raise ValueError("polling_interval must be positive and less than timeout")
        job_backend = self.client.get_job(name).get("backend", "local")
        poll = min(polling_interval, LOCAL_POLL) if job_backend == "local" else polling_interval
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(name)
            if job.status in wanted:
                return job
            if job.status == FAILED:
                raise RuntimeError(f"TrainJob {name} is Failed: {job.error or 'no message'}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Timeout waiting for TrainJob {name} to reach status: {wanted}")
            time.sleep(poll)

    def cancel_job(self, name: str) -> TrainJob:
        """Stop a job and keep its record (kubelab; the SDK only deletes)."""
        return to_trainjob(self.client.cancel_job(name))

    def delete_job(self, name: str) -> None:
        self.client.delete_job(name)

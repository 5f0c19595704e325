"""`TrainingWorkload`: training jobs for the client layer (kind "training").

Glue only: the spec (`spec.py`), the local runner (`local.py`), the manifests
(`manifests.py`) and the cluster state (`cluster.py`) each live in their module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from kubelab.workloads.base import ClusterContext, LocalContext, Workload
from kubelab.workloads.trainer import cluster as cluster_status
from kubelab.workloads.trainer import local, manifests
from kubelab.workloads.trainer import spec as specs


class TrainingWorkload(Workload):
    kind: ClassVar[str] = "training"
    cluster_kinds: ClassVar[tuple[tuple[str, str], ...]] = (
        (manifests.TRAINJOB_API, "TrainJob"),
        (manifests.PYTORCHJOB_API, "PyTorchJob"),
    )

    def validate(self, spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
        return specs.normalise(spec, root)

    def start_local(self, job_id: str, spec: dict[str, Any], ctx: LocalContext) -> None:
        specs.check_gpus_allowed(spec, ctx.profile)
        local.start(job_id, spec, ctx)

    def cancel_local(self, job_id: str, ctx: LocalContext) -> None:
        # Another process's job sees the store's cancel flag (set by the backend) itself.
        local.cancel(job_id)

    def manifests(
        self, spec: dict[str, Any], *, name: str, cluster: ClusterContext
    ) -> list[dict[str, Any]]:
        return manifests.build(spec, name=name, cluster=cluster)

    def cluster_state(
        self,
        objects: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return cluster_status.state(objects, pods, events)

    def pod_selector(self, name: str) -> str:
        return f"{manifests.JOB_LABEL}={name}"

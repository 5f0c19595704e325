"""The two interfaces a backend implements: pipeline runs and jobs.

A backend is one class per engine. `LocalBackend` implements both (the embedded
engine and the workloads' local runners); `KubeflowPipelinesBackend` runs pipelines
on a Kubeflow Pipelines server; `KubernetesBackend` runs jobs as the Kubeflow CRDs.
`Client` picks one by name ("local" or "kubernetes") and by what is asked (a run or
a job). Every method may raise `KubelabError` (shown as a 4xx or a CLI message).

Runs and jobs answer in the same JSON (`RunStore.get_run`'s shape: id, name, kind,
backend, state, timings, parameters, metrics, error, steps; jobs add `spec`), use the
store's state vocabulary (`STATES`), and follow logs by byte offset (`client.logs`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kubelab.client.store import FINAL_STATES

if TYPE_CHECKING:
    from kubelab.workloads.base import Workload


class RunBackend(ABC):
    """Where pipeline runs execute."""

    name: str

    @abstractmethod
    def start_run(
        self,
        ir: dict[str, Any],
        parameters: dict[str, Any],
        *,
        source: str | None = None,
        task_metadata: dict[str, dict[str, Any]] | None = None,
        run_name: str | None = None,
        enable_caching: bool = True,
        preload: Sequence[str] = (),
        platform_spec: dict[str, Any] | None = None,
        **engine_options: Any,
    ) -> str:
        """Start a run of the compiled pipeline `ir`; returns its id at once.

        `preload` names modules worth importing once before the steps run (the local
        engine's fork server); `platform_spec` is the pipeline's Kubernetes settings
        (kfp-kubernetes' PlatformSpec, which the local engine ignores);
        `engine_options` are the local engine's own knobs (`on_event`, `parallelism`,
        `task_timeout`, `pipeline_root`).
        """

    @abstractmethod
    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run JSON: id, name, state, timings, parameters, metrics, steps."""

    @abstractmethod
    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Runs, newest first, in the same JSON as `get_run`."""

    @abstractmethod
    def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask a run to stop; returns the run JSON. `ConflictError` when it has ended."""

    @abstractmethod
    def logs(self, run_id: str, step: str, offset: int = 0) -> dict[str, Any]:
        """`{text, offset, complete, state}`: the step log from byte `offset`."""

    @abstractmethod
    def run_from(
        self,
        run_id: str,
        step: str,
        ir: dict[str, Any],
        *,
        task_metadata: dict[str, dict[str, Any]],
        source: str | None = None,
    ) -> str:
        """A new run with the parameters of `run_id` that re-executes `step` and
        everything downstream of it, reusing cached outputs of the steps upstream."""

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The run JSON once it has ended; `TimeoutError` after `timeout` seconds."""
        return poll_until_final(lambda: self.get_run(run_id), timeout, what=f"run {run_id}")


class JobBackend(ABC):
    """Where jobs (training, tuning, serving) execute. Jobs are recorded in the run
    store by every backend, so listing them needs no backend at all."""

    name: str

    @abstractmethod
    def create_job(self, workload: Workload, job_id: str, spec: dict[str, Any]) -> None:
        """Record the job (kind, backend, spec) under `job_id` and start it.

        `spec` has passed `workload.validate`; `job_id` is also the job's name (on a
        cluster, the name of its objects).
        """

    @abstractmethod
    def get_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        """The job JSON, brought up to date with its engine."""

    @abstractmethod
    def cancel_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        """Stop the job, keep its record; returns the job JSON."""

    @abstractmethod
    def delete_job(self, workload: Workload, job_id: str) -> None:
        """Stop the job if needed, then forget it and what it created."""

    @abstractmethod
    def job_logs(
        self, workload: Workload, job_id: str, step: str, offset: int = 0
    ) -> dict[str, Any]:
        """`{text, offset, complete, state}`: a step's log from byte `offset`."""


def poll_until_final(
    read: Any, timeout: float | None, *, what: str, poll: float = 0.3
) -> dict[str, Any]:
    """Call `read()` until its `state` is final; `TimeoutError` after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = read()
        if record["state"] in FINAL_STATES:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{what} is still {record['state']} after {timeout} s")
        time.sleep(poll)

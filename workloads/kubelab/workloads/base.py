"""What every kind of job (training, tuning, serving) gives the client layer.

A `Workload` knows one kind of job end to end: how to check a spec, how to run it on
this machine (the embedded default), and which Kubernetes objects stand for it on a
cluster and how to read their state back. The client's backends own the plumbing
(the run store, the Kubernetes connection, REST, CLI) and call these methods, so the
same spec runs locally and on a cluster without two copies of the logic.

Jobs are records in the run store (`kubelab.client.store`): a row of `runs` with
`kind` set to the workload's kind, its steps in `tasks` (training: `node-0`…,
tuning: `trial-0001`…, serving: `server`), per-step log files, metric series in
`metrics`. States are the store's (`STATES`); SDK-shaped clients translate them
(e.g. the trainer's Created/Running/Complete/Failed).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kubelab.client.store import RunStore


class CancelWatch:
    """A local runner's loop asks this each tick: `kubelab jobs cancel`, the sidebar or
    another process may have asked the store to cancel the job. The store is read at
    most every `every` seconds; `cancelled` is set once it says so."""

    def __init__(
        self, store: RunStore, job_id: str, cancelled: threading.Event, every: float = 0.5
    ) -> None:
        self.store, self.job_id, self.cancelled, self.every = store, job_id, cancelled, every
        self._last_check = 0.0

    def requested(self) -> bool:
        now = time.monotonic()
        if not self.cancelled.is_set() and now - self._last_check > self.every:
            self._last_check = now
            if self.store.cancel_requested(self.job_id):
                self.cancelled.set()
        return self.cancelled.is_set()


@dataclass
class LocalContext:
    """What a local runner may use: the store, its folder for logs and files, the
    user's root (paths in specs are confined to it), the refusal policy, and the
    profile the spawner started this server with (its limits hold for local jobs too)."""

    store: RunStore
    home: Path
    root: Path
    strict_resources: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None

    def job_dir(self, job_id: str) -> Path:
        path = self.home / "jobs" / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class ClusterContext:
    """Where and as whom a job goes on Kubernetes: the user's namespace, the image of
    the notebook (the default for job containers), the user's PVC, the profile's
    limits, and which of the workload's `cluster_kinds` the cluster serves (None when
    nobody asked, e.g. a dry run). Built by the Kubernetes backend."""

    namespace: str
    image: str | None = None
    pvc: str | None = None
    profile: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    served: frozenset[tuple[str, str]] | None = None


class Workload(ABC):
    """One kind of job. Subclasses live in `kubelab.workloads.<kind>`."""

    kind: ClassVar[str]
    # (apiVersion, kind) the job may be made of on a cluster, when the choice depends on
    # what the cluster serves (training: TrainJob, else PyTorchJob); the Kubernetes
    # backend discovers which are served and passes them in `ClusterContext.served`.
    cluster_kinds: ClassVar[tuple[tuple[str, str], ...]] = ()

    @abstractmethod
    def validate(self, spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
        """The normalised spec, or a `KubelabError` that names the bad field.

        Called before anything starts, for both backends; `root` confines file paths.
        """

    # -- on this machine ------------------------------------------------------------

    @abstractmethod
    def start_local(self, job_id: str, spec: dict[str, Any], ctx: LocalContext) -> None:
        """Start the job in the background and return at once.

        The job's row already exists in `ctx.store` (state "pending"); the runner adds
        its steps, moves states along, writes per-step logs (each step's `log_path`)
        and metrics, and records the end state and error, also when it fails to start.
        Record what `cancel_local` needs in the store (e.g. pids in a step's metadata):
        the CLI or a restarted server may cancel from another process.
        """

    @abstractmethod
    def cancel_local(self, job_id: str, ctx: LocalContext) -> None:
        """Stop every process of the job (its whole process group), then record it."""

    # -- on Kubernetes -----------------------------------------------------------------

    @abstractmethod
    def manifests(
        self, spec: dict[str, Any], *, name: str, cluster: ClusterContext
    ) -> list[dict[str, Any]]:
        """The objects to create, as plain dicts a real API server accepts (pure: no I/O)."""

    @abstractmethod
    def cluster_state(
        self,
        objects: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """`{state, message, steps: {name: {state, pod?, container?, message?, outputs?,
        started_at?, finished_at?}}, metrics, url?}` from what the backend read back: the
        job's objects (with `related_objects`), its pods (by `pod_selector`) and their
        events. A step's `pod` (and `container`) is where the backend reads that step's
        log; its `outputs` are stored as the step's outputs, its times are ISO 8601."""

    def related_objects(self, name: str) -> list[tuple[str, str, str]]:
        """Objects the cluster's operator makes for the job, read back with the job's own:
        (apiVersion, kind, label selector) in the job's namespace (e.g. Katib's Trials)."""
        return []

    def describe(self, job: dict[str, Any], store: RunStore) -> dict[str, Any]:
        """The job JSON with what this kind's views add (tuning: trials, best trial,
        chart); `Client.get_job` answers it, so REST and the CLI show the same."""
        return job

    def pod_selector(self, name: str) -> str:
        """Label selector of the job's pods, for logs and events. The Kubernetes backend
        passes this label in `ClusterContext.labels`; put those labels on the pods."""
        return f"kubelab.io/job={name}"

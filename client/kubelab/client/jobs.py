"""Jobs (training, tuning, serving) as `Client` methods, named as the Kubeflow SDK's
clients name them: `create_job`, `get_job`, `list_jobs`, `job_logs`, `wait_for_job`,
`cancel_job`, `delete_job`. A mixin, so that the client stays one object while
pipeline runs (client.py), jobs and tracking (tracking.py) live apart. Each job kind's
rules are its `Workload` (`kubelab.workloads.registry`); where it runs is a
`JobBackend` (local or kubernetes).
"""

from __future__ import annotations

import contextlib
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.backends.base import JobBackend, poll_until_final
from kubelab.client.experiments import check_experiment_name
from kubelab.client.logs import stream
from kubelab.client.store import JOB_KINDS, new_run_id
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore


def _job_name_ok(name: str) -> bool:
    return len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) is not None


class JobsMixin:
    """Mixed into `Client`: uses its `store`, `home`, `root` and `job_backend`."""

    store: RunStore
    home: Path
    root: Path

    if TYPE_CHECKING:

        def job_backend(self, name: str | None = None) -> JobBackend: ...

    def _job(self, job_id: str) -> tuple[Any, JobBackend, str]:
        """(workload, backend, id) of a recorded job."""
        from kubelab.workloads import registry

        try:
            info = self.store.run_info(job_id)
        except NotFoundError:
            raise NotFoundError(f"no job {job_id!r}", job=job_id) from None
        if info["kind"] == "pipeline":
            raise NotFoundError(f"no job {job_id!r} ({info['id']} is a pipeline run)", job=job_id)
        return registry.workload(info["kind"]), self.job_backend(info["backend"]), info["id"]

    def create_job(
        self,
        kind: str,
        spec: dict[str, Any],
        backend: str | None = None,
        *,
        name: str | None = None,
        experiment_name: str | None = None,
    ) -> str:
        """Validate `spec` for `kind` and start the job; returns its id, which is also its
        name (on a cluster, the name of its objects). It joins `experiment_name`
        (default: one experiment per program file)."""
        from kubelab.workloads import registry

        workload = registry.workload(kind)
        if not isinstance(spec, dict):
            raise KubelabError("'spec' must be an object", kind=kind)
        chosen = self.job_backend(backend)
        if name is not None and (not isinstance(name, str) or not _job_name_ok(name)):
            raise KubelabError(
                f"job name {name!r} must be a DNS-1123 label: lower-case letters, digits "
                "and '-', starting with a letter, at most 63 characters",
                field="name",
            )
        job_id = name or f"{kind}-{new_run_id()}"
        if self.store.exists(job_id):
            raise ConflictError(f"a job named {job_id!r} already exists", job=job_id)
        if experiment_name is not None:
            experiment_name = check_experiment_name(experiment_name)
            self.store.experiments.refuse_archived(experiment_name)
        normalised = workload.validate(spec, self.root)
        chosen.create_job(workload, job_id, normalised)
        try:
            self._record_job(job_id, kind, chosen, normalised, experiment_name)
        except Exception:  # the job runs; only its lineage is missing
            traceback.print_exc()
        return job_id

    def _record_job(
        self,
        job_id: str,
        kind: str,
        backend: JobBackend,
        spec: dict[str, Any],
        experiment: str | None,
    ) -> None:
        """A job's lineage: its program (the file, or a function's code), parameters,
        user, environment, and on Kubernetes the image its pods run."""
        from kubelab.client import provenance

        source = spec.get("source") if isinstance(spec.get("source"), dict) else {}
        path = self.root / source["path"] if source.get("path") else None
        content = None
        if path is None and isinstance(source.get("code"), str):
            content = source["code"].encode()
        properties, facts = provenance.capture(
            self.home, source=path, content=content, suffix=None if path else ".py"
        )
        image = spec.get("image") or getattr(backend, "image", None)
        properties.update(
            name=spec.get("name") or job_id,
            parameters={**(spec.get("func_args") or {}), **(spec.get("parameters") or {})},
            backend=backend.name,
        )
        if backend.name != "local" and image:
            properties["image"] = image
        self.store.lineage.record_run(
            job_id,
            kind=kind,
            experiment=experiment or provenance.default_experiment(path),
            properties=properties,
            facts=facts,
        )

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job JSON (steps, states, metrics, spec), up to date with its backend, with
        what its kind adds (`Workload.describe`)."""
        workload, owner, job_id = self._job(job_id)
        return workload.describe(owner.get_job(workload, job_id), self.store)

    def list_jobs(self, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Jobs of every backend, newest first, each as `get_job` shows it (a tuning
        job's trial counts and best trial are in the list, for the sidebar's rows);
        active cluster jobs are refreshed."""
        from kubelab.workloads import registry

        if kind is not None and kind not in JOB_KINDS:
            raise KubelabError(
                f"unknown job kind {kind!r}; kinds: {', '.join(JOB_KINDS)}", kind=kind
            )
        kinds = (kind,) if kind else JOB_KINDS
        jobs = self.store.list_runs(max(1, min(int(limit), 1000)), kinds=kinds)
        for index, job in enumerate(jobs):
            if job["backend"] != "local" and job["state"] in ("pending", "running"):
                # An unreachable cluster leaves the last known state.
                with contextlib.suppress(KubelabError):
                    jobs[index] = self.get_job(job["id"])
                    continue
            jobs[index] = registry.workload(job["kind"]).describe(job, self.store)
        return jobs

    def job_logs(self, job_id: str, step: str | None = None, offset: int = 0) -> dict[str, Any]:
        """`{text, offset, complete, state}`: a step's log (default: the first step)."""
        workload, owner, job_id = self._job(job_id)
        return owner.job_logs(workload, job_id, step or self._first_step(job_id), offset)

    def stream_job_logs(
        self,
        job_id: str,
        step: str | None = None,
        *,
        follow_until_done: bool = True,
        poll: float = 0.3,
    ) -> Iterator[str]:
        """A job step's log text as it is written."""
        workload, owner, job_id = self._job(job_id)
        step = step or self._first_step(job_id)
        return stream(
            lambda o: owner.job_logs(workload, job_id, step, o),
            until_done=follow_until_done,
            poll=poll,
        )

    def _first_step(self, job_id: str) -> str:
        steps = self.get_job(job_id)["steps"]
        if not steps:
            raise NotFoundError(f"job {job_id} has no steps yet", job=job_id)
        return str(steps[0]["name"])

    def wait_for_job(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job JSON once it has ended; `TimeoutError` after `timeout` seconds."""
        return poll_until_final(lambda: self.get_job(job_id), timeout, what=f"job {job_id}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Stop a job and keep its record; `ConflictError` when it has ended."""
        workload, owner, job_id = self._job(job_id)
        return owner.cancel_job(workload, job_id)

    def delete_job(self, job_id: str) -> None:
        """Stop a job if it runs, then forget it and what it created."""
        workload, owner, job_id = self._job(job_id)
        owner.delete_job(workload, job_id)

    def job_metrics(self, job_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """`{step: {metric: [{step, value, ts}, ...]}}`: the series a job reported."""
        _, _, job_id = self._job(job_id)
        return self.store.metric_series(job_id)

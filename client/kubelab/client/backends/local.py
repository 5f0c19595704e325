"""The embedded default: pipelines on the local engine, jobs on the workloads' local
runners, everything recorded in one SQLite store (`<home>/kubelab.db`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.backends.base import JobBackend, RunBackend, poll_until_final
from kubelab.client.logs import read_log_file
from kubelab.client.store import FINAL_STATES, RunStore
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.workloads.base import LocalContext, Workload


def refuse_if_finished(record: dict[str, Any], what: str = "run") -> None:
    if record["state"] in FINAL_STATES:
        raise ConflictError(
            f"{what} {record['id']} has already finished ({record['state']})",
            **{what: record["id"]},
            state=record["state"],
        )


class LocalBackend(RunBackend, JobBackend):
    """Runs and jobs on this machine.

    `pipeline_root` is where run artifacts go (None: `./local_outputs`, as kfp.local);
    `root` is the user's root, to which paths in job specs are confined; `profile` is
    the spawner's profile of this server, whose limits (GPUs) local jobs keep too.
    """

    name = "local"

    def __init__(
        self,
        store: RunStore,
        *,
        home: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        pipeline_root: str | os.PathLike[str] | None = None,
        strict_resources: bool = False,
        profile: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.home = Path(home)
        self.root = Path(root or os.getcwd()).resolve()
        self.pipeline_root = str(pipeline_root) if pipeline_root is not None else None
        self.strict_resources = strict_resources
        self.profile = profile

    # -- runs -------------------------------------------------------------------------

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
        platform_spec: dict[str, Any] | None = None,  # Kubernetes settings: not used here
        force_rerun: set[str] | None = None,
        **engine_options: Any,
    ) -> str:
        from kubelab.pipelines.local import engine

        engine_options.setdefault("pipeline_root", self.pipeline_root)
        engine_options.setdefault("strict_resources", self.strict_resources)
        return engine.start_run(
            ir,
            parameters,
            store=self.store,
            source=source,
            task_metadata=task_metadata,
            run_name=run_name,
            enable_caching=enable_caching,
            preload=tuple(preload),
            force_rerun=force_rerun or set(),
            **engine_options,
        )

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.store.get_run(run_id)

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.list_runs(limit, backend=self.name)

    def cancel(self, run_id: str) -> dict[str, Any]:
        from kubelab.pipelines.local import engine

        run = self.store.get_run(run_id)
        refuse_if_finished(run)
        engine.cancel_run(run["id"], self.store)
        return self.store.get_run(run["id"])

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        from kubelab.pipelines.local import engine

        run_id = self.store.resolve_run_id(run_id)
        start = time.monotonic()
        engine.wait_run(run_id, timeout)  # blocks only when this process runs it
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        return poll_until_final(lambda: self.get_run(run_id), left, what=f"run {run_id}")

    def _task(self, run_id: str, step: str) -> dict[str, Any]:
        """The store row of a step, by task name, display name or notebook step name."""
        try:
            return self.store.task_info(run_id, step)
        except NotFoundError:
            for candidate in self.store.get_run(run_id)["steps"]:
                info = self.store.task_info(run_id, candidate["name"])
                if info.get("metadata", {}).get("step") == step:
                    return info
            raise

    def logs(self, run_id: str, step: str, offset: int = 0) -> dict[str, Any]:
        info = self._task(run_id, step)
        return read_log_file(info.get("log_path"), offset, info["state"])

    def run_from(
        self,
        run_id: str,
        step: str,
        ir: dict[str, Any],
        *,
        task_metadata: dict[str, dict[str, Any]],
        source: str | None = None,
    ) -> str:
        from kubelab.pipelines.local import engine

        original = self.store.get_run(run_id)
        task = self._task_in_ir(ir, step, task_metadata)
        return self.start_run(
            ir,
            original["parameters"],
            source=source or original.get("source"),
            task_metadata=task_metadata,
            run_name=original.get("name"),
            force_rerun=engine.downstream_tasks(ir, task),
            experiment=original.get("experiment"),
        )

    @staticmethod
    def _task_in_ir(ir: dict[str, Any], step: str, task_metadata: dict[str, dict[str, Any]]) -> str:
        tasks = ir.get("root", {}).get("dag", {}).get("tasks", {})
        if step in tasks or "/" in step:  # a path inside a condition or loop
            return step
        for task, meta in task_metadata.items():
            if meta.get("step") == step and task in tasks:
                return task
        raise NotFoundError(
            f"no step {step!r} in the pipeline; steps: {', '.join(sorted(tasks))}", step=step
        )

    # -- jobs -------------------------------------------------------------------------

    def context(self) -> LocalContext:
        from kubelab.workloads.base import LocalContext

        return LocalContext(
            store=self.store,
            home=self.home,
            root=self.root,
            strict_resources=self.strict_resources,
            profile=self.profile,
        )

    def create_job(self, workload: Workload, job_id: str, spec: dict[str, Any]) -> None:
        self.store.create_run(
            job_id, {}, run_id=job_id, kind=workload.kind, backend=self.name, spec=spec
        )
        try:
            workload.start_local(job_id, spec, self.context())
        except KubelabError:
            # Refused before anything ran (more GPUs than the profile or the machine
            # has): a 4xx for the caller, and no record of a job that never was.
            self.store.delete_run(job_id)
            shutil.rmtree(self.home / "jobs" / job_id, ignore_errors=True)
            raise
        except BaseException as error:
            self.store.update_run(
                job_id, state="failed", error=f"did not start: {error!r}", finished_at=time.time()
            )
            raise

    def get_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        return self.store.get_run(job_id)

    def cancel_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        job = self.store.get_run(job_id)
        refuse_if_finished(job, "job")
        self.store.request_cancel(job_id)  # seen by a runner in another process too
        workload.cancel_local(job_id, self.context())
        return self.store.get_run(job_id)

    def delete_job(self, workload: Workload, job_id: str) -> None:
        if self.store.get_run(job_id)["state"] not in FINAL_STATES:
            self.store.request_cancel(job_id)
            workload.cancel_local(job_id, self.context())
            # Let the runner record the end before the record goes.
            with contextlib.suppress(TimeoutError):
                poll_until_final(lambda: self.store.get_run(job_id), 10, what=f"job {job_id}")
        self.store.delete_run(job_id)
        shutil.rmtree(self.home / "jobs" / job_id, ignore_errors=True)

    def job_logs(
        self, workload: Workload, job_id: str, step: str, offset: int = 0
    ) -> dict[str, Any]:
        info = self.store.task_info(job_id, step)
        return read_log_file(info.get("log_path"), offset, info["state"])

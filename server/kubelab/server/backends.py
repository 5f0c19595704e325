"""Execution backends behind the REST API: one interface, a local and a Kubeflow one.

`Backend` is what the run handlers talk to. `LocalBackend` runs pipelines on this
machine with the embedded engine (`kubelab.pipelines.local.engine`) and records them
in the SQLite `RunStore`; `KubeflowBackend` submits the same IR to a Kubeflow
Pipelines server (REST API v2beta1) when an endpoint is configured.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError

# Largest log chunk one `logs()` call returns; the client asks again from `offset`.
LOG_CHUNK_BYTES = 256 * 1024
FINAL_STATES = ("succeeded", "failed", "skipped", "cancelled")


class ConflictError(KubelabError):
    """The request is valid but the run is not in a state that allows it."""

    status_code = 409


def kubernetes_reason_unavailable() -> str | None:
    """Why the Kubernetes backend cannot be used here, or None when it can."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    if any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p):
        return None
    return "no in-cluster service account and no kubeconfig found"


def available_backends() -> list[dict[str, Any]]:
    reason = kubernetes_reason_unavailable()
    return [
        {"name": "local", "available": True},
        {"name": "kubernetes", "available": reason is None, "reason": reason},
    ]


class Backend(ABC):
    """Where pipeline runs execute. Every method may raise `KubelabError` (a 4xx)."""

    name: str

    @abstractmethod
    def start_run(
        self,
        ir: dict[str, Any],
        parameters: dict[str, Any],
        *,
        source: str | None,
        task_metadata: dict[str, dict[str, Any]],
        run_name: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> str:
        """Start a run of the compiled pipeline `ir`; returns its id at once.

        `origin` says how the run came about, for its label: `{"arguments": {...}}`
        (parameters set by hand), `{"rerun_of": id, ...}` or `{"from_step": name, ...}`.
        """

    @abstractmethod
    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run JSON: id, name, state, timings, parameters, metrics, steps."""

    @abstractmethod
    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Runs, newest first, in the same JSON as `get_run`."""

    @abstractmethod
    def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask a run to stop; returns the run JSON."""

    @abstractmethod
    def logs(self, run_id: str, step: str, offset: int = 0) -> dict[str, Any]:
        """`{text, offset, complete}`: the step log from byte `offset`.

        `offset` in the answer is where the next call should start; `complete` is
        true once the step has finished and everything has been returned.
        """

    @abstractmethod
    def run_from(
        self,
        run_id: str,
        step: str,
        ir: dict[str, Any],
        *,
        task_metadata: dict[str, dict[str, Any]],
    ) -> str:
        """A new run with the parameters of `run_id` that re-executes `step` and
        everything downstream of it, reusing cached outputs of the steps upstream."""


def _decodable_prefix(data: bytes) -> bytes:
    """`data` without a UTF-8 sequence cut at its end (the rest comes next call)."""
    for cut in range(1, min(4, len(data)) + 1):
        byte = data[-cut]
        if byte & 0b1100_0000 != 0b1000_0000:  # not a continuation byte: a lead or ASCII
            expected = 1
            if byte >= 0b1111_0000:
                expected = 4
            elif byte >= 0b1110_0000:
                expected = 3
            elif byte >= 0b1100_0000:
                expected = 2
            return data if cut >= expected else data[:-cut]
    return data


class LocalBackend(Backend):
    """The embedded engine: runs on this machine, recorded in `<home>/kubelab.db`."""

    name = "local"

    def __init__(self, home: str | os.PathLike[str]) -> None:
        from kubelab.client.store import RunStore

        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.home / "kubelab.db")
        self.pipeline_root = self.home / "runs"

    def mark_interrupted_runs(self) -> list[str]:
        return self.store.mark_interrupted_runs()

    def start_run(
        self,
        ir: dict[str, Any],
        parameters: dict[str, Any],
        *,
        source: str | None,
        task_metadata: dict[str, dict[str, Any]],
        run_name: str | None = None,
        origin: dict[str, Any] | None = None,
        force_rerun: set[str] | None = None,
    ) -> str:
        from kubelab.pipelines.local import engine

        run_id = engine.start_run(
            ir,
            parameters,
            store=self.store,
            pipeline_root=str(self.pipeline_root),
            source=source,
            task_metadata=task_metadata,
            run_name=run_name,
            force_rerun=force_rerun or set(),
        )
        if origin:
            self.store.update_run(run_id, origin=origin)
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.store.get_run(run_id)

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.list_runs(limit)

    def cancel(self, run_id: str) -> dict[str, Any]:
        from kubelab.pipelines.local import engine

        run = self.store.get_run(run_id)
        if run["state"] in FINAL_STATES:
            raise ConflictError(
                f"run {run['id']} has already finished ({run['state']})",
                run=run["id"],
                state=run["state"],
            )
        engine.cancel_run(run["id"], self.store)
        return self.store.get_run(run["id"])

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
        if offset < 0:
            raise KubelabError(f"offset must be 0 or more, got {offset}", offset=offset)
        info = self._task(run_id, step)
        finished = info["state"] in FINAL_STATES
        path = info.get("log_path")
        if not path or not Path(path).is_file():
            return {"text": "", "offset": offset, "complete": finished, "state": info["state"]}
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read(LOG_CHUNK_BYTES + 1)
            more = len(data) > LOG_CHUNK_BYTES
            data = _decodable_prefix(data[:LOG_CHUNK_BYTES])
        return {
            "text": data.decode("utf-8", errors="replace"),
            "offset": offset + len(data),
            "complete": finished and not more,
            "state": info["state"],
        }

    def run_from(
        self,
        run_id: str,
        step: str,
        ir: dict[str, Any],
        *,
        task_metadata: dict[str, dict[str, Any]],
    ) -> str:
        from kubelab.pipelines.local import engine

        original = self.store.get_run(run_id)
        task = self._task_in_ir(ir, step, task_metadata)
        return self.start_run(
            ir,
            original["parameters"],
            source=original.get("source"),
            task_metadata=task_metadata,
            run_name=original.get("name"),
            origin={
                "from_run": original["id"],
                "from_run_number": original.get("number"),
                "from_step": task_metadata.get(task, {}).get("step", task),
            },
            force_rerun=engine.downstream_tasks(ir, task),
        )

    @staticmethod
    def _task_in_ir(ir: dict[str, Any], step: str, task_metadata: dict[str, dict[str, Any]]) -> str:
        tasks = ir.get("root", {}).get("dag", {}).get("tasks", {})
        if step in tasks:
            return step
        for task, meta in task_metadata.items():
            if meta.get("step") == step and task in tasks:
                return task
        raise NotFoundError(
            f"no step {step!r} in the pipeline; steps: {', '.join(sorted(tasks))}", step=step
        )


class KubeflowBackend(Backend):
    """Kubeflow Pipelines (REST API v2beta1) at `endpoint`, with the IR inline.

    Only submission and reading runs are supported; logs live in the cluster
    (`kubectl logs`) and "run from a step" needs the local cache.
    """

    name = "kubernetes"

    def __init__(self, endpoint: str, token: str | None = None, timeout: float = 30) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}/apis/v2beta1/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            if error.code == 404:
                raise NotFoundError(f"Kubeflow Pipelines: {detail}", path=path) from None
            raise KubelabError(
                f"Kubeflow Pipelines answered {error.code}: {detail}", status=error.code
            ) from None
        except OSError as error:
            raise KubelabError(
                f"cannot reach Kubeflow Pipelines at {self.endpoint}: {error}",
                endpoint=self.endpoint,
            ) from None
        return json.loads(text) if text else {}

    _STATES = {
        "PENDING": "pending",
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "SKIPPED": "skipped",
        "FAILED": "failed",
        "CANCELING": "running",
        "CANCELED": "cancelled",
        "PAUSED": "running",
    }

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        details = run.get("run_details", {}) or {}
        steps = []
        for task in details.get("task_details", []) or []:
            steps.append(
                {
                    "name": task.get("display_name") or task.get("task_id"),
                    "display_name": task.get("display_name"),
                    "state": self._STATES.get(task.get("state", ""), "pending"),
                    "started_at": task.get("start_time"),
                    "finished_at": task.get("end_time"),
                    "duration_s": None,
                    "cached": task.get("state") == "CACHED",
                    "attempts": 1,
                    "error": (task.get("error") or {}).get("message"),
                    "cells": [],
                    "outputs": {},
                }
            )
        return {
            "id": run.get("run_id"),
            "name": run.get("display_name"),
            "state": self._STATES.get(run.get("state", ""), "pending"),
            "created_at": run.get("created_at"),
            "finished_at": run.get("finished_at"),
            "parameters": (run.get("runtime_config") or {}).get("parameters", {}),
            "metrics": {},
            "error": (run.get("error") or {}).get("message"),
            "source": None,
            "backend": self.name,
            "steps": steps,
        }

    def start_run(
        self,
        ir: dict[str, Any],
        parameters: dict[str, Any],
        *,
        source: str | None,
        task_metadata: dict[str, dict[str, Any]],
        run_name: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> str:
        name = run_name or ir.get("pipelineInfo", {}).get("name", "pipeline")
        body = {
            "display_name": name,
            "description": f"from {source}" if source else "",
            "pipeline_spec": ir,
            "runtime_config": {"parameters": parameters},
        }
        return str(self._call("POST", "runs", body)["run_id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._run_json(self._call("GET", f"runs/{run_id}"))

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        answer = self._call("GET", f"runs?page_size={limit}&sort_by=created_at%20desc")
        return [self._run_json(r) for r in answer.get("runs", []) or []]

    def cancel(self, run_id: str) -> dict[str, Any]:
        self._call("POST", f"runs/{run_id}:cancel", {})
        return self.get_run(run_id)

    def logs(self, run_id: str, step: str, offset: int = 0) -> dict[str, Any]:
        raise KubelabError(
            "step logs of Kubeflow runs are in the cluster: use the Kubeflow UI or kubectl logs",
            backend=self.name,
        )

    def run_from(
        self,
        run_id: str,
        step: str,
        ir: dict[str, Any],
        *,
        task_metadata: dict[str, dict[str, Any]],
    ) -> str:
        raise KubelabError(
            "'run from this step' is only available on the local backend", backend=self.name
        )

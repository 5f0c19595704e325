"""Kubeflow Pipelines (REST API v2beta1): the same IR the local engine runs, on a cluster.

Moved here unchanged from the server; a later issue rewrites it (multi-user mode,
experiments, logs).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from kubelab.client.backends.base import RunBackend
from kubelab.pipelines.errors import KubelabError, NotFoundError


class KubeflowPipelinesBackend(RunBackend):
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
        source: str | None = None,
        task_metadata: dict[str, dict[str, Any]] | None = None,
        run_name: str | None = None,
        enable_caching: bool = True,
        preload: Sequence[str] = (),
        **engine_options: Any,
    ) -> str:
        experiment = engine_options.pop("experiment", None)
        given = sorted(k for k, v in engine_options.items() if v is not None)
        if given:
            raise KubelabError(
                f"{', '.join(given)}: options of the local engine, not of Kubeflow Pipelines",
                backend=self.name,
            )
        name = run_name or ir.get("pipelineInfo", {}).get("name", "pipeline")
        body = {
            "display_name": name,
            "description": f"from {source}" if source else "",
            "pipeline_spec": ir,
            "runtime_config": {"parameters": parameters},
        }
        if experiment:
            body["experiment_id"] = self.experiment_id(experiment)
        return str(self._call("POST", "runs", body)["run_id"])

    def experiment_id(self, name: str) -> str:
        """The id of KFP's experiment named `name`, created when there is none."""
        import urllib.parse

        predicate = {"key": "display_name", "operation": "EQUALS", "string_value": name}
        query = urllib.parse.quote(json.dumps({"predicates": [predicate]}))
        found = self._call("GET", f"experiments?page_size=1&filter={query}").get("experiments")
        if found:
            return str(found[0]["experiment_id"])
        return str(self._call("POST", "experiments", {"display_name": name})["experiment_id"])

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
        source: str | None = None,
    ) -> str:
        raise KubelabError(
            "'run from this step' is only available on the local backend", backend=self.name
        )

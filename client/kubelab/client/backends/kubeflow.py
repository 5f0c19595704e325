"""Kubeflow Pipelines (REST API v2beta1): the same IR the local engine runs, on a cluster.

It behaves as `kfp.Client` does in both of KFP's modes, learnt once from `GET healthz`:
in multi-user mode (the standard Kubeflow install) every run belongs to an experiment
in the user's namespace (the Kubeflow profile's: the pod's ServiceAccount namespace or
a setting) and every call carries the projected ServiceAccount token (`kfp_http`).
Experiments: one per pipeline, named as the pipeline (a notebook's name), found by name
or created, so the KFP UI groups a notebook's runs; a setting names one experiment for
all runs instead (e.g. "Default", kfp.Client's).

Runs started here are also rows of the run store (backend "kubernetes") with their
source and notebook cells: the sidebar finds a notebook's runs by source, and a run's
last known state survives an unreachable server. Runs started elsewhere are listed
from KFP (namespace-scoped) without a source.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from typing import Any

from kubelab.client.backends import kfp_runs
from kubelab.client.backends.base import RunBackend
from kubelab.client.backends.kfp_http import KfpHttp, KfpUnavailableError, segment
from kubelab.client.backends.kubernetes import SERVICE_ACCOUNT_DIR
from kubelab.client.logs import slice_log_text
from kubelab.client.store import FINAL_STATES, RunStore
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

NAMESPACE_FILE = SERVICE_ACCOUNT_DIR / "namespace"
# The KFP UI as kfp.Client links to it from a pod (relative to the browser's origin,
# which is Kubeflow's central dashboard when the notebook is served there).
DEFAULT_UI_URL = "/pipeline"
PAGE_SIZE_MAX = 200  # KFP's maxPageSize


class KubeflowPipelinesBackend(RunBackend):
    """Pipeline runs on the Kubeflow Pipelines API server at `endpoint`.

    `namespace` is the Kubeflow profile's namespace (multi-user mode; default: the
    pod's); `experiment` one experiment for every run (default: one per pipeline);
    `ui_url` the KFP UI that run links point at; `store` records runs started here.
    """

    name = "kubernetes"

    def __init__(
        self,
        endpoint: str,
        *,
        store: RunStore | None = None,
        token_file: str | None = None,
        namespace: str | None = None,
        experiment: str | None = None,
        ui_url: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.http = KfpHttp(endpoint, token_file, timeout)
        self.endpoint = self.http.endpoint
        self.store = store
        self._namespace = namespace or None
        self.experiment = experiment or None
        self.ui_url = (ui_url or DEFAULT_UI_URL).rstrip("/")
        self._multi_user: bool | None = None
        self._experiments: dict[tuple[str | None, str], str] = {}
        self._final_workflows: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    # -- mode, namespace, experiment -----------------------------------------------------

    def multi_user(self) -> bool:
        """Whether the server runs in multi-user mode (asked once, as kfp.Client does)."""
        if self._multi_user is None:
            health = self.http.request("GET", "v2beta1/healthz")
            self._multi_user = health.get("multi_user") is True
        return self._multi_user

    def namespace(self) -> str | None:
        """The namespace runs and experiments belong to; None in single-user mode."""
        if not self.multi_user():
            return None
        if self._namespace is None:
            with contextlib.suppress(OSError):
                self._namespace = NAMESPACE_FILE.read_text().strip() or None
        if not self._namespace:
            raise KubelabError(
                f"Kubeflow Pipelines at {self.endpoint} is multi-user: runs need your Kubeflow "
                "profile's namespace, and this process is not in a pod with a ServiceAccount; "
                "set c.KubelabApp.kfp_namespace or $KUBELAB_KFP_NAMESPACE",
                field="kfp_namespace",
            )
        return self._namespace

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name` in our namespace, created when missing."""
        namespace = self.namespace()
        key = (namespace, name)
        with self._lock:
            if key in self._experiments:
                return self._experiments[key]
        found = self._find_experiment(name, namespace)
        if found is None:
            body = {"display_name": name, "description": "runs started from kubelab"}
            if namespace:
                body["namespace"] = namespace
            try:
                found = str(
                    self.http.request("POST", "v2beta1/experiments", body=body)["experiment_id"]
                )
            except ConflictError:  # created meanwhile by another process
                found = self._find_experiment(name, namespace)
            except KeyError:
                raise KfpUnavailableError(
                    f"Kubeflow Pipelines at {self.endpoint} created experiment {name!r} "
                    "without answering its id"
                ) from None
            if found is None:
                raise KubelabError(f"cannot find or create the experiment {name!r}")
        with self._lock:
            self._experiments[key] = found
        return found

    def _find_experiment(self, name: str, namespace: str | None) -> str | None:
        predicate = {"operation": "EQUALS", "key": "display_name", "string_value": name}
        answer = self.http.request(
            "GET",
            "v2beta1/experiments",
            query={
                "filter": json.dumps({"predicates": [predicate]}),
                "namespace": namespace,
                "page_size": 1,
            },
        )
        experiments = answer.get("experiments") or []
        return str(experiments[0]["experiment_id"]) if experiments else None

    # -- runs ----------------------------------------------------------------------------

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
        experiment = engine_options.pop("experiment", None)
        given = sorted(k for k, v in engine_options.items() if v is not None)
        if given:
            raise KubelabError(
                f"{', '.join(given)}: options of the local engine, not of Kubeflow Pipelines",
                backend=self.name,
            )
        pipeline = (ir.get("pipelineInfo") or {}).get("name") or "pipeline"
        name = run_name or pipeline
        spec = ir if enable_caching else kfp_runs.disable_caching(ir)
        body = {
            "display_name": name,
            "description": f"started from kubelab ({source.rsplit('/', 1)[-1]})" if source else "",
            # With Kubernetes settings, the form kfp.Client posts: {pipeline_spec, platform_spec}.
            "pipeline_spec": {"pipeline_spec": spec, "platform_spec": platform_spec}
            if platform_spec
            else spec,
            "runtime_config": {"parameters": parameters},
            "experiment_id": self.experiment_id(experiment or self.experiment or pipeline),
        }
        run = self.http.request("POST", "v2beta1/runs", body=body)
        run_id = run.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise KfpUnavailableError(
                f"Kubeflow Pipelines at {self.endpoint} accepted the run without answering its id"
            )
        if self.store is not None:  # the run, its notebook and cells, for this machine
            where = {"endpoint": self.endpoint, "experiment_id": body["experiment_id"]}
            self.store.create_run(
                name, parameters, run_id=run_id, source=source, backend=self.name, spec=where
            )
            for task, display in kfp_runs.user_tasks(ir).items():
                metadata = (task_metadata or {}).get(task, {})
                self.store.add_task(run_id, task, display_name=display, metadata=metadata)
        return run_id

    def _read(self, run_id: str) -> dict[str, Any]:
        return self.http.request("GET", f"v2beta1/runs/{segment(run_id)}")

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._to_json(self._read(run_id))

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The namespace's runs, newest first, read page by page (`next_page_token`)."""
        namespace = self.namespace()
        runs: list[dict[str, Any]] = []
        token = None
        while len(runs) < limit:
            page = self.http.request(
                "GET",
                "v2beta1/runs",
                query={
                    "namespace": namespace,
                    "page_size": min(limit - len(runs), PAGE_SIZE_MAX),
                    "sort_by": "created_at desc",
                    "page_token": token,
                },
            )
            got = page.get("runs") or []
            runs += [r for r in got if r.get("storage_state") != "ARCHIVED"]
            token = page.get("next_page_token")
            if not token or not got:
                break
        return [self._to_json(r) for r in runs[:limit]]

    def _to_json(self, run: dict[str, Any], *, workflow: bool = False) -> dict[str, Any]:
        run_id = str(run.get("run_id"))
        local = self._local(run_id)
        manifest = self._workflow(run) if workflow or kfp_runs.needs_workflow(run) else None
        result = kfp_runs.run_json(
            run,
            workflow=manifest,
            task_metadata=local["metadata"] if local else None,
            cancel_requested=bool(local and local["cancel_requested"]),
        )
        result["url"] = f"{self.ui_url}/#/runs/details/{run_id}"
        if local:
            result["source"] = local["source"]
            self._remember(result, local)
        return result

    def _workflow(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """The run's Argo workflow (v1beta1 is its only REST source); kept once final."""
        run_id = str(run.get("run_id"))
        with self._lock:
            if run_id in self._final_workflows:
                return self._final_workflows[run_id]
        try:
            answer = self.http.request("GET", f"v1beta1/runs/{segment(run_id)}")
            manifest = (answer.get("pipeline_runtime") or {}).get("workflow_manifest")
            workflow = json.loads(manifest) if manifest else None
        except (KubelabError, ValueError):
            return None  # only cached marks and failure details are lost
        if not isinstance(workflow, dict):
            return None
        if kfp_runs.STATES.get(str(run.get("state"))) in FINAL_STATES:
            with self._lock:
                self._final_workflows[run_id] = workflow
        return workflow

    def _local(self, run_id: str) -> dict[str, Any] | None:
        """What the store knows of a run started here: source, cells, cancel asked."""
        if self.store is None or not self.store.exists(run_id):
            return None
        info = self.store.run_info(run_id)
        if info["backend"] != self.name:
            return None
        info["metadata"] = self.store.task_metadata(run_id)
        return info

    def _remember(self, run: dict[str, Any], local: dict[str, Any]) -> None:
        """Keep the store's copy in step with KFP (a last known state when unreachable)."""
        if self.store is None or (
            local["state"] in FINAL_STATES and local["state"] == run["state"]
        ):
            return
        self.store.update_run(
            run["id"],
            state=run["state"],
            error=run["error"],
            finished_at=kfp_runs.epoch(run["finished_at"]),
        )
        for step in run["steps"]:
            self.store.add_task(run["id"], step["name"], display_name=step["display_name"])
            self.store.update_task(
                run["id"],
                step["name"],
                state=step["state"],
                started_at=kfp_runs.epoch(step["started_at"]),
                finished_at=kfp_runs.epoch(step["finished_at"]),
                cached=int(step["cached"]),
                attempts=step["attempts"],
                error=step["error"],
            )

    def cancel(self, run_id: str) -> dict[str, Any]:
        from kubelab.client.backends.local import refuse_if_finished

        run = self.get_run(run_id)
        refuse_if_finished(run)
        self.http.request("POST", f"v2beta1/runs/{segment(run['id'])}:terminate")
        if self.store is not None and self._local(run["id"]):
            self.store.request_cancel(run["id"])
        return self.get_run(run["id"])

    # -- logs ----------------------------------------------------------------------------

    def logs(self, run_id: str, step: str, offset: int = 0) -> dict[str, Any]:
        """A step's log through KFP's log endpoint (the pod's, while it exists); where
        KFP cannot give it, an error that links to the run in the KFP UI."""
        run = self._to_json(self._read(run_id), workflow=True)
        local = self._local(run["id"])
        notebook_steps = {t: m.get("step") for t, m in (local["metadata"] if local else {}).items()}
        found = next(
            (
                s
                for s in run["steps"]
                if step in (s["name"], s["display_name"], notebook_steps.get(s["name"]))
            ),
            None,
        )
        if found is None:
            names = ", ".join(s["name"] for s in run["steps"]) or "none"
            raise NotFoundError(
                f"run {run['id']} has no step {step!r}; steps: {names}", run=run["id"], step=step
            )
        pods = found.get("pods") or []
        if found["cached"] or not pods:
            return slice_log_text("", offset, found["state"])
        parts = []
        for pod in pods:
            text = self._pod_log(run, found["name"], pod)
            parts.append(f"--- pod {pod} ---\n{text}" if len(pods) > 1 else text)
        return slice_log_text("\n".join(parts), offset, found["state"])

    def _pod_log(self, run: dict[str, Any], step: str, pod: str) -> str:
        path = f"v1alpha1/runs/{segment(run['id'])}/nodes/{segment(pod, 'pod name')}/log"
        try:
            text = self.http.request("GET", path, text=True)
            reason = _log_error(text)
        except KubelabError as error:
            reason = error.message
        if reason is None:
            return text
        raise KfpUnavailableError(
            f"Kubeflow Pipelines cannot give the log of step {step} ({reason}); "
            f"read it in the Kubeflow Pipelines UI: {run['url']}",
            run=run["id"],
            step=step,
            url=run["url"],
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


def _log_error(text: str) -> str | None:
    """KFP's log handler answers 200 before reading the pod, then writes its error as
    JSON `{error_message, error_details}` into the same body."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error_message"), str):
        return body["error_message"]
    return None

"""Jobs on Kubernetes: the workload's objects (TrainJob, Katib Experiment, KServe
InferenceService...) created with the `kubernetes` client, as the notebook's own
ServiceAccount (in a pod) or the user's kubeconfig.

The workload builds the objects (pure) and reads their state back (pure); this
module owns the I/O: create, read objects, their pods and events, pod logs, delete.
Each job is also a row of the run store (backend "kubernetes"), so it is listed with
the local ones; its state there is refreshed from the cluster whenever it is read,
and a restart of the server never marks it interrupted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.backends.base import JobBackend
from kubelab.client.logs import slice_log_text
from kubelab.client.store import FINAL_STATES, RunStore
from kubelab.pipelines.errors import ConflictError, ForbiddenError, KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.workloads.base import ClusterContext, Workload

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
JOB_LABEL = "kubelab.io/job"
KIND_LABEL = "kubelab.io/kind"
# What a pod's phase means for the step it runs.
POD_PHASES = {
    "Pending": "pending",
    "Running": "running",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Unknown": "running",
}


def reason_unavailable() -> str | None:
    """Why this process cannot reach Kubernetes, or None when it has credentials."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    if any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p):
        return None
    return "no in-cluster service account and no kubeconfig found"


def api_error(error: Exception, what: str) -> KubelabError:
    """A Kubernetes API error as the `KubelabError` a user can act on."""
    status = getattr(error, "status", None)
    summary = getattr(error, "summary", None)
    detail = summary() if callable(summary) else str(getattr(error, "reason", "") or error)
    message = f"{what}: {detail}"
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status in (401, 403):
        return ForbiddenError(message)
    return KubelabError(message, status=status)


def _ref(obj: dict[str, Any], namespace: str) -> dict[str, str]:
    meta = obj.get("metadata", {})
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace") or namespace,
    }


class KubernetesBackend(JobBackend):
    """Jobs as Kubernetes objects in one namespace.

    `namespace` defaults to the pod's own (in a cluster) or the kubeconfig context's;
    `image` (the default for job containers) to the notebook's image; `api_client`
    is a configured `kubernetes.client.ApiClient` (default: from the environment).
    """

    name = "kubernetes"

    def __init__(
        self,
        store: RunStore,
        *,
        namespace: str | None = None,
        image: str | None = None,
        pvc: str | None = None,
        profile: dict[str, Any] | None = None,
        api_client: Any = None,
    ) -> None:
        self.store = store
        self._namespace = namespace
        self.image = (
            image or os.environ.get("JUPYTER_IMAGE_SPEC") or os.environ.get("JUPYTER_IMAGE")
        )
        self.pvc = pvc
        self.profile = profile
        self._api_client = api_client
        self._dynamic: Any = None

    # -- connection ---------------------------------------------------------------------

    def api_client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            reason = reason_unavailable()
            if reason:
                raise KubelabError(f"the kubernetes backend is not available: {reason}")
            try:
                if os.environ.get("KUBERNETES_SERVICE_HOST"):
                    config.load_incluster_config()
                else:  # the kubeconfig $KUBECONFIG names now, not at import time
                    config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
            except Exception as error:
                raise KubelabError(f"cannot load Kubernetes credentials: {error}") from None
            self._api_client = client.ApiClient()
        return self._api_client

    @property
    def namespace(self) -> str:
        if self._namespace is None:
            self._namespace = self._default_namespace()
        return self._namespace

    def _default_namespace(self) -> str:
        path = SERVICE_ACCOUNT_DIR / "namespace"
        if os.environ.get("KUBERNETES_SERVICE_HOST") and path.is_file():
            return path.read_text().strip()
        try:
            from kubernetes import config

            _, active = config.list_kube_config_contexts()
            return str((active or {}).get("context", {}).get("namespace") or "default")
        except Exception:
            return "default"

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes import dynamic
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        if self._dynamic is None:
            try:
                self._dynamic = dynamic.DynamicClient(self.api_client())
            except Exception as error:
                raise api_error(error, "cannot reach the Kubernetes API") from None
        try:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise KubelabError(
                f"the cluster does not serve {kind} ({api_version}): is its operator installed?",
                kind=kind,
            ) from None

    def _serialize(self, obj: Any) -> dict[str, Any]:
        return self.api_client().sanitize_for_serialization(obj)

    # -- jobs -----------------------------------------------------------------------------

    def cluster_context(self, workload: Workload, job_id: str) -> ClusterContext:
        from kubelab.workloads.base import ClusterContext

        return ClusterContext(
            namespace=self.namespace,
            image=self.image,
            pvc=self.pvc,
            profile=self.profile,
            labels={
                JOB_LABEL: job_id,
                KIND_LABEL: workload.kind,
                "app.kubernetes.io/managed-by": "kubelab",
            },
        )

    def create_job(self, workload: Workload, job_id: str, spec: dict[str, Any]) -> None:
        cluster = self.cluster_context(workload, job_id)
        objects = workload.manifests(spec, name=job_id, cluster=cluster)
        refs = [_ref(obj, cluster.namespace) for obj in objects]
        self.store.create_run(
            job_id, {}, run_id=job_id, kind=workload.kind, backend=self.name, spec=spec
        )
        self.store.update_run(job_id, outputs={"namespace": cluster.namespace, "objects": refs})
        created: list[dict[str, str]] = []
        try:
            for obj, ref in zip(objects, refs, strict=True):
                resource = self._resource(ref["apiVersion"], ref["kind"])
                try:
                    resource.create(body=obj, namespace=ref["namespace"])
                except Exception as error:
                    raise api_error(error, f"cannot create {ref['kind']} {ref['name']}") from None
                created.append(ref)
        except BaseException:
            # Nothing half-made stays behind: neither objects nor the record.
            self._delete_objects(created)
            self.store.delete_run(job_id)
            raise

    def _read(self, job_id: str) -> tuple[dict[str, Any], list[dict[str, str]], str]:
        info = self.store.run_info(job_id)
        outputs = info.get("outputs") or {}
        return info, list(outputs.get("objects", [])), outputs.get("namespace", self.namespace)

    def get_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        info, refs, namespace = self._read(job_id)
        if info["state"] in FINAL_STATES or not refs:  # nothing on the cluster to ask about
            return self.store.get_run(job_id)
        objects = []
        for ref in refs:
            try:
                obj = self._resource(ref["apiVersion"], ref["kind"]).get(
                    name=ref["name"], namespace=ref["namespace"]
                )
            except Exception as error:
                if getattr(error, "status", None) == 404:
                    continue
                raise api_error(error, f"cannot read {ref['kind']} {ref['name']}") from None
            objects.append(obj.to_dict())
        if not objects:
            self.store.update_run(
                job_id,
                state="failed",
                error="its objects were deleted from the cluster",
                finished_at=time.time(),
            )
            return self.store.get_run(job_id)
        core = self._core()
        try:
            pods = self._serialize(
                core.list_namespaced_pod(
                    namespace, label_selector=workload.pod_selector(job_id)
                ).items
            )
            names = {o["metadata"]["name"] for o in objects} | {p["metadata"]["name"] for p in pods}
            events = [
                e
                for e in self._serialize(core.list_namespaced_event(namespace).items)
                if e.get("involvedObject", {}).get("name") in names
            ]
        except Exception as error:
            raise api_error(error, f"cannot read the pods of job {job_id}") from None
        self._record(job_id, workload.cluster_state(objects, pods, events))
        job = self.store.get_run(job_id)
        job["namespace"] = namespace
        return job

    def _record(self, job_id: str, state: dict[str, Any]) -> None:
        """Keep the store's copy of a cluster job in step with what the cluster says."""
        now = time.time()
        fields: dict[str, Any] = {"state": state["state"]}
        if state.get("metrics"):
            fields["metrics"] = state["metrics"]
        if state["state"] in FINAL_STATES:
            fields["finished_at"] = now
            if state["state"] == "failed":
                fields["error"] = state.get("message") or "failed"
        self.store.update_run(job_id, **fields)
        for name, step in (state.get("steps") or {}).items():
            metadata = {k: v for k, v in step.items() if k in ("pod", "container", "node")}
            self.store.add_task(job_id, name, state=step["state"], metadata=metadata)
            self.store.update_task(
                job_id, name, state=step["state"], error=step.get("message"), metadata=metadata
            )

    def cancel_job(self, workload: Workload, job_id: str) -> dict[str, Any]:
        from kubelab.client.backends.local import refuse_if_finished

        job = self.get_job(workload, job_id)
        refuse_if_finished(job, "job")
        _, refs, _ = self._read(job_id)
        self._delete_objects(refs)
        self.store.update_run(job_id, state="cancelled", error="cancelled", finished_at=time.time())
        return self.store.get_run(job_id)

    def delete_job(self, workload: Workload, job_id: str) -> None:
        _, refs, _ = self._read(job_id)
        self._delete_objects(refs)
        self.store.delete_run(job_id)

    def _delete_objects(self, refs: list[dict[str, str]]) -> None:
        for ref in reversed(refs):
            try:
                self._resource(ref["apiVersion"], ref["kind"]).delete(
                    name=ref["name"], namespace=ref["namespace"], propagation_policy="Background"
                )
            except KubelabError:
                raise
            except Exception as error:
                if getattr(error, "status", None) != 404:
                    raise api_error(error, f"cannot delete {ref['kind']} {ref['name']}") from None

    def job_logs(
        self, workload: Workload, job_id: str, step: str, offset: int = 0
    ) -> dict[str, Any]:
        task = self._step(workload, job_id, step)
        pod = task["metadata"].get("pod")
        if not pod:
            return slice_log_text("", offset, task["state"])
        _, _, namespace = self._read(job_id)
        core = self._core()
        try:
            phase = core.read_namespaced_pod(pod, namespace).status.phase
            state = POD_PHASES.get(phase or "", "pending")
            text = core.read_namespaced_pod_log(
                pod, namespace, container=task["metadata"].get("container")
            )
        except Exception as error:
            status = getattr(error, "status", None)
            if status == 400:  # the container has not started yet
                return slice_log_text("", offset, "pending")
            if status == 404:
                return slice_log_text("", offset, task["state"])
            raise api_error(error, f"cannot read the log of pod {pod}") from None
        return slice_log_text(text, offset, state)

    def _step(self, workload: Workload, job_id: str, step: str) -> dict[str, Any]:
        try:
            task = self.store.task_info(job_id, step)
        except NotFoundError:
            self.get_job(workload, job_id)  # the cluster may know steps the store does not
            task = self.store.task_info(job_id, step)
        if not task["metadata"].get("pod") and task["state"] not in FINAL_STATES:
            self.get_job(workload, job_id)
            task = self.store.task_info(job_id, step)
        return task

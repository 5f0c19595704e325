"""Jobs on Kubernetes: the workload's objects (TrainJob, Katib Experiment, KServe
InferenceService...) created with the `kubernetes` client, as the notebook's own
ServiceAccount (in a pod) or the user's kubeconfig.

The workload builds the objects (pure) and reads their state back (pure); this
module owns the I/O: API discovery (which of the workload's kinds the cluster
serves), create, read objects, their pods and events, pod logs, delete. Each job is
also a row of the run store (backend "kubernetes"), so it is listed with the local
ones; its state there is refreshed from the cluster whenever it is read, and a
restart of the server never marks it interrupted.

What the notebook's ServiceAccount needs is the ClusterRole `kubelab-notebook` of
deploy/kubernetes/rbac.yaml, bound in the user's namespace.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.backends.base import JobBackend
from kubelab.client.logs import slice_log_text
from kubelab.client.store import FINAL_STATES, RunStore
from kubelab.pipelines.errors import ConflictError, ForbiddenError, KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.workloads.base import ClusterContext, Workload

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PVC_ENV = "KUBELAB_PVC"  # the user's home volume claim, when the pod cannot be read
JOB_LABEL = "kubelab.io/job"
KIND_LABEL = "kubelab.io/kind"
# What a workload's `cluster_state` may tell about a step, kept with it (shown by UIs).
STEP_METADATA = ("pod", "container", "node", "device", "device_count")
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


def api_detail(error: Exception) -> str:
    """What the API server said: its Status message when it sent one."""
    summary = getattr(error, "summary", None)  # the dynamic client's errors
    if callable(summary):
        return str(summary())
    try:
        message = json.loads(getattr(error, "body", None) or "{}").get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return str(message or getattr(error, "reason", "") or error)


def api_error(error: Exception, what: str) -> KubelabError:
    """A Kubernetes API error as the `KubelabError` a user can act on."""
    status = getattr(error, "status", None)
    message = f"{what}: {api_detail(error)}"
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status in (401, 403):
        return ForbiddenError(message)
    return KubelabError(message, status=status)


def not_served(api_version: str, kind: str) -> KubelabError:
    return KubelabError(
        f"the cluster does not serve {kind} ({api_version}): is its operator installed?",
        kind=kind,
        api_version=api_version,
    )


def log_unavailable(error: Exception, step: str, pod: str, node: str | None) -> KubelabError:
    """The API server reads a pod's log from the kubelet of its node; when it cannot
    (the node is gone or unreachable, or there is no kubelet at all, as on a test API
    server) it answers with an error about the node, which is said here in words."""
    where = f"the kubelet of node {node}" if node else "its node"
    return KubelabError(
        f"the log of {step} (pod {pod}) cannot be read now: the Kubernetes API server could "
        f"not get it from {where} ({api_detail(error)}); the job's state is still up to date",
        step=step,
        pod=pod,
        node=node,
        status=getattr(error, "status", None),
    )


def _epoch(iso: str) -> float:
    """An RFC 3339 time from the API server as seconds since the epoch (the store's unit)."""
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def _ref(obj: dict[str, Any], namespace: str) -> dict[str, str]:
    meta = obj.get("metadata", {})
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace") or namespace,
    }


def _epoch(iso: str) -> float:
    """An RFC 3339 time from the API server as seconds since the epoch (the store's unit)."""
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


class KubernetesBackend(JobBackend):
    """Jobs as Kubernetes objects in one namespace.

    `namespace` defaults to the pod's own (in a cluster) or the kubeconfig context's;
    `image` (the default for job containers) to the notebook's image; `api_client`
    is a configured `kubernetes.client.ApiClient` (default: the in-cluster
    ServiceAccount, else `config_file` / `$KUBECONFIG` with its `context`).
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
        config_file: str | os.PathLike[str] | None = None,
        context: str | None = None,
    ) -> None:
        self.store = store
        self._namespace = namespace
        self.config_file = str(config_file) if config_file is not None else None
        self.context = context
        self.image = (
            image or os.environ.get("JUPYTER_IMAGE_SPEC") or os.environ.get("JUPYTER_IMAGE")
        )
        self._pvc = pvc or os.environ.get(PVC_ENV) or None
        self.profile = profile
        self._api_client = api_client
        self._dynamic: Any = None

    # -- connection ---------------------------------------------------------------------

    def api_client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            in_cluster = self.config_file is None and self.context is None
            reason = reason_unavailable() if in_cluster else None
            if reason:
                raise KubelabError(f"the kubernetes backend is not available: {reason}")
            try:
                if in_cluster and os.environ.get("KUBERNETES_SERVICE_HOST"):
                    configuration = client.Configuration()
                    config.load_incluster_config(client_configuration=configuration)
                    self._api_client = client.ApiClient(configuration)
                else:  # a client of its own: the process-wide default stays untouched
                    self._api_client = config.new_client_from_config(
                        # $KUBECONFIG as it is now (the library reads it once, at import)
                        config_file=self.config_file or os.environ.get("KUBECONFIG"),
                        context=self.context,
                    )
            except Exception as error:
                raise KubelabError(f"cannot load Kubernetes credentials: {error}") from None
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

            contexts, active = config.list_kube_config_contexts(
                self.config_file or os.environ.get("KUBECONFIG")
            )
            if self.context:
                active = next((c for c in contexts if c.get("name") == self.context), active)
            return str((active or {}).get("context", {}).get("namespace") or "default")
        except Exception:
            return "default"

    @property
    def pvc(self) -> str | None:
        """The user's home volume: as given, `$KUBELAB_PVC`, or the claim mounted at the
        home folder of this notebook's own pod (read once)."""
        if self._pvc is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            self._pvc = self._home_claim() or ""
        return self._pvc or None

    def _home_claim(self) -> str | None:
        try:
            pod = self._core().read_namespaced_pod(socket.gethostname(), self.namespace)
        except Exception:
            return None
        home = Path.home().resolve()
        claims = {
            v.name: v.persistent_volume_claim.claim_name
            for v in pod.spec.volumes or []
            if v.persistent_volume_claim is not None
        }
        for container in pod.spec.containers:
            for mount in container.volume_mounts or []:
                if mount.name in claims and home.is_relative_to(mount.mount_path):
                    return str(claims[mount.name])
        return None

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def _dynamic_client(self) -> Any:
        from kubernetes import dynamic

        if self._dynamic is None:
            api_client = self.api_client()
            try:
                self._dynamic = dynamic.DynamicClient(api_client)
            except Exception as error:
                raise api_error(error, "cannot reach the Kubernetes API") from None
        return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._dynamic_client().resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise not_served(api_version, kind) from None

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, **selectors: str
    ) -> list[dict[str, Any]]:
        """Objects of a kind (in `namespace`, or cluster-wide), as plain dicts."""
        try:
            listed = self._resource(api_version, kind).get(namespace=namespace, **selectors)
        except KubelabError:
            raise
        except Exception as error:
            raise api_error(error, f"cannot list {kind} objects") from None
        return [item.to_dict() for item in listed.items]

    def served_kinds(self, kinds: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Which of `kinds` ((apiVersion, kind) pairs) the API server serves now.

        Read from the discovery API on every call, one request per group version, never
        from the `kubernetes` client's discovery cache: an operator installed or removed
        while the notebook runs is seen at once. Discovery is open to every
        authenticated identity, so this needs no RBAC rule.
        """
        from kubernetes.dynamic.exceptions import NotFoundError as ApiNotFound

        wanted = set(kinds)
        served: set[tuple[str, str]] = set()
        for api_version in sorted({a for a, _ in wanted}):
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            try:
                answer = self._dynamic_client().request("get", path, serialize=False)
            except ApiNotFound:
                continue  # the group version is not served at all
            except Exception as error:
                raise api_error(error, f"cannot discover {api_version}") from None
            found = {r.get("kind") for r in json.loads(answer.data).get("resources", [])}
            served |= {(a, k) for a, k in wanted if a == api_version and k in found}
        return frozenset(served)

    def _serialize(self, obj: Any) -> dict[str, Any]:
        return self.api_client().sanitize_for_serialization(obj)

    # -- jobs -----------------------------------------------------------------------------

    def cluster_context(
        self,
        workload: Workload,
        job_id: str,
        served: frozenset[tuple[str, str]] | None = None,
    ) -> ClusterContext:
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
            served=served,
        )

    def create_job(self, workload: Workload, job_id: str, spec: dict[str, Any]) -> None:
        choices = set(workload.cluster_kinds)
        served = self.served_kinds(choices) if choices else None
        cluster = self.cluster_context(workload, job_id, served)
        objects = workload.manifests(spec, name=job_id, cluster=cluster)
        refs = [_ref(obj, cluster.namespace) for obj in objects]
        # Refuse what the cluster cannot take before anything is recorded or created.
        kinds = {(r["apiVersion"], r["kind"]) for r in refs}
        known = served or frozenset()
        known |= self.served_kinds(kinds - choices) if kinds - choices else frozenset()
        missing = sorted(kinds - known)
        if missing:
            raise not_served(*missing[0])
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
        if objects:
            objects += self._related(workload, job_id, namespace)
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

    def _related(self, workload: Workload, job_id: str, namespace: str) -> list[dict[str, Any]]:
        """What the job's operator made for it (`Workload.related_objects`)."""
        found: list[dict[str, Any]] = []
        for api_version, kind, selector in workload.related_objects(job_id):
            try:
                listed = self._resource(api_version, kind).get(
                    namespace=namespace, label_selector=selector
                )
            except Exception as error:
                raise api_error(error, f"cannot list the {kind}s of job {job_id}") from None
            found += [item.to_dict() for item in listed.items]
        return found

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
        if state.get("message"):  # the operator's last word, also when all went well
            outputs = self.store.run_info(job_id).get("outputs") or {}
            fields["outputs"] = {**outputs, "message": state["message"]}
        self.store.update_run(job_id, **fields)
        for name, step in (state.get("steps") or {}).items():
            metadata = {k: v for k, v in step.items() if k in STEP_METADATA and v is not None}
            self.store.add_task(job_id, name, state=step["state"], metadata=metadata)
            fields = {"state": step["state"], "error": step.get("message"), "metadata": metadata}
            if "outputs" in step:
                fields["outputs"] = step["outputs"]
            for key in ("started_at", "finished_at"):
                if step.get(key):
                    fields[key] = _epoch(step[key])
            self.store.update_task(job_id, name, **fields)

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
            found = core.read_namespaced_pod(pod, namespace)
        except Exception as error:
            if getattr(error, "status", None) == 404:  # the pod is gone: nothing to read
                return slice_log_text("", offset, task["state"])
            raise api_error(error, f"cannot read pod {pod}") from None
        state = POD_PHASES.get(found.status.phase or "", "pending")
        try:
            # None while the pod has no node: the API server has no kubelet to ask yet
            text = core.read_namespaced_pod_log(
                pod, namespace, container=task["metadata"].get("container")
            )
        except Exception as error:
            if getattr(error, "status", None) == 400:  # the container has not started yet
                return slice_log_text("", offset, "pending")
            raise log_unavailable(error, step, pod, found.spec.node_name) from None
        return slice_log_text(text or "", offset, state)

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

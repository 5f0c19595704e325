"""KServe `InferenceService` (serving.kserve.io/v1beta1) of a model server: the object,
and its state read back. Pure: no I/O, so every object is checked in tests against the
CRD schema and a real API server.

The model stays where the notebook left it, under the user's home volume: `storageUri`
is `pvc://<the user's PVC>/<path under home>`, and KServe mounts it in the predictor.
sklearn, XGBoost and LightGBM files that KServe's own runtimes read become
`predictor.model` with `modelFormat`; TorchScript, pickled torch modules, custom
classes and files KServe's runtimes would not pick up run kubelab's own server in the
notebook's image, as a custom predictor container (`STORAGE_URI` makes KServe mount the
model at `/mnt/models` there too). Both speak the Open Inference Protocol v2.
"""

from __future__ import annotations

import posixpath
from typing import Any

from kubelab.workloads.base import ClusterContext
from kubelab.workloads.resources import container_resources, scheduling

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # KServe puts it on the predictor pods
MODEL_MOUNT = "/mnt/models"
CONTAINER_PORT = 8080
# Extensions KServe's runtimes look for in the model directory (sklearnserver,
# xgbserver, lgbserver); other files go to kubelab's server.
KSERVE_RUNTIME_FILES = {
    "sklearn": (".joblib", ".pkl", ".pickle"),
    "xgboost": (".bst", ".json", ".ubj"),
    "lightgbm": (".bst",),
}


def uses_kserve_runtime(spec: dict[str, Any]) -> bool:
    exts = KSERVE_RUNTIME_FILES.get(spec["format"], ())
    return spec.get("runtime") != "kubelab" and spec["model_file"].lower().endswith(exts)


def storage_uri(pvc: str, path: str) -> str:
    return f"pvc://{pvc}/{path}"


def inference_service(
    spec: dict[str, Any], *, name: str, cluster: ClusterContext
) -> dict[str, Any]:
    """The InferenceService serving `spec` (as `ServingWorkload.validate` returns it)."""
    if not cluster.pvc:
        from kubelab.pipelines.errors import KubelabError

        raise KubelabError(
            "serving on Kubernetes needs your home volume (PVC), and none is known; "
            "start the notebook from the kubelab spawner",
            field="pvc",
        )
    uri = storage_uri(cluster.pvc, spec["home_path"])
    resources = container_resources(cluster.profile, spec.get("resources"))
    labels = dict(cluster.labels)
    predictor: dict[str, Any] = {"labels": labels} if labels else {}
    if spec.get("min_replicas") is not None:
        predictor["minReplicas"] = spec["min_replicas"]
    predictor.update(scheduling(cluster.profile))
    if uses_kserve_runtime(spec):
        model: dict[str, Any] = {
            "modelFormat": {"name": spec["format"]},
            "protocolVersion": "v2",
            "storageUri": uri,
        }
        if resources:
            model["resources"] = resources
        if spec.get("predict_proba"):
            model["env"] = [{"name": "PREDICT_PROBA", "value": "true"}]
        predictor["model"] = model
    else:
        predictor["containers"] = [_kubelab_container(spec, name, cluster, uri, resources)]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": cluster.namespace,
            "labels": labels,
            "annotations": {"kubelab.io/model": spec["home_path"]},
        },
        "spec": {"predictor": predictor},
    }


def _kubelab_container(
    spec: dict[str, Any], name: str, cluster: ClusterContext, uri: str, resources: dict[str, Any]
) -> dict[str, Any]:
    image = cluster.image or (cluster.profile or {}).get("image")
    if not image:
        from kubelab.pipelines.errors import KubelabError

        raise KubelabError(
            f"a {spec['format']} model runs kubelab's server in the notebook's image, "
            "and the image is not known",
            field="image",
        )
    args = [
        "--name",
        name,
        "--model",
        posixpath.join(MODEL_MOUNT, posixpath.basename(spec["model_file"])),
        "--format",
        spec["format"],
        "--host",
        "0.0.0.0",
        "--port",
        str(CONTAINER_PORT),
    ]
    if spec.get("predict_proba"):
        args.append("--predict-proba")
    if spec.get("class_name"):
        args += ["--class-name", spec["class_name"]]
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": image,
        "command": ["python", "-m", "kubelab.workloads.serving.server"],
        "args": args,
        "env": [{"name": "STORAGE_URI", "value": uri}],
        "ports": [{"containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": CONTAINER_PORT},
            "periodSeconds": 5,
        },
    }
    if resources:
        container["resources"] = resources
    return container


# -- reading it back -------------------------------------------------------------------------


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def _pod_state(pod: dict[str, Any]) -> tuple[str, str | None]:
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff"):
            return "pending", f"{waiting['reason']}: {waiting.get('message') or ''}".strip(": ")
    phase = status.get("phase")
    if phase == "Running":
        ready = _condition(status, "Ready")
        return ("running" if ready and ready.get("status") == "True" else "pending"), None
    if phase == "Failed":
        return "failed", status.get("message") or status.get("reason")
    return "pending", None


def state_of(
    objects: list[dict[str, Any]], pods: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """`{state, message, steps, metrics, url}` of an InferenceService, its pods and events.

    Ready → running (with its URL); a model KServe failed to load → failed; anything
    else is pending, with the latest warning (scheduling, image pull, crash) as message.
    """
    isvc = next((o for o in objects if o.get("kind") == KIND), None)
    if isvc is None:
        return {"state": "failed", "message": "the InferenceService is gone", "steps": {}}
    status = isvc.get("status") or {}
    internal = (status.get("address") or {}).get("url")  # the cluster-local address
    url = status.get("url") or internal
    ready = _condition(status, "Ready")
    model_status = status.get("modelStatus") or {}
    failure = model_status.get("lastFailureInfo") or {}
    warnings = sorted(
        (e for e in events if e.get("type") == "Warning"),
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
    )
    message = ready.get("message") if ready else None
    if ready and ready.get("status") == "True":
        state, message = "running", None
    elif model_status.get("transitionStatus") == "BlockedByFailedLoad" or (
        (model_status.get("states") or {}).get("targetModelState") == "FailedToLoad"
    ):
        state = "failed"
        message = failure.get("message") or failure.get("reason") or "the model failed to load"
    else:
        state = "pending"
        if warnings:
            message = f"{warnings[-1].get('reason')}: {warnings[-1].get('message')}"
        message = message or "waiting for KServe to start the predictor"
    server: dict[str, Any] = {"state": state, "pod": None, "message": None}
    for pod in pods:
        pod_state, pod_message = _pod_state(pod)
        if pod_message and state == "pending":
            message = pod_message
        server = {
            "state": "running" if state == "running" else pod_state,
            "pod": pod.get("metadata", {}).get("name"),
            "message": pod_message,
        }
    server["outputs"] = {"url": url, "internal_url": internal, "ready": state == "running"}
    result: dict[str, Any] = {
        "state": state,
        "message": message,
        "steps": {"server": server},
        "metrics": {},
    }
    if url:
        result["url"] = url
    return result

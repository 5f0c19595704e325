"""The InferenceService on a real kube-apiserver (tests/k8s), created by the Kubernetes
backend acting as the user's ServiceAccount: accepted by the API server's own schema
validation, a simulated Ready status and URL read back, deleted on cancel."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest

from kubelab.client.backends.kubernetes import KubernetesBackend
from kubelab.client.store import RunStore
from kubelab.pipelines.errors import NotFoundError
from kubelab.workloads.serving.workload import ServingWorkload

PROFILE = {
    "slug": "small",
    "display_name": "Small",
    "cpu": {"guarantee": 0.5, "limit": 1},
    "memory": {"guarantee": "1Gi", "limit": "2Gi"},
    "gpu": None,
}
RULES = [
    {
        "apiGroups": ["serving.kserve.io"],
        "resources": ["inferenceservices"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]},
]


def test_inferenceservice_accepted_ready_and_deleted(
    k8s, k8s_namespace: str, tmp_path: Path, iris_file: Path
) -> None:
    identity = k8s.service_account(k8s_namespace, "jupyter-alice", rules=RULES)
    api = kubernetes.config.new_client_from_config(config_file=str(identity.kubeconfig))
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copy(iris_file, home / "models" / "iris.joblib")
    store = RunStore(tmp_path / "kubelab.db")
    backend = KubernetesBackend(
        store, namespace=k8s_namespace, pvc="claim-alice", profile=PROFILE, api_client=api
    )
    workload = ServingWorkload()
    spec = workload.validate({"name": "iris", "model": "models/iris.joblib"}, home)

    backend.create_job(workload, "iris", spec)  # the API server validates it against the CRD
    isvc = k8s.get("serving.kserve.io/v1beta1", "InferenceService", "iris", k8s_namespace)
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "pvc://claim-alice/models/iris.joblib"
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    job = backend.get_job(workload, "iris")
    assert job["state"] == "pending"

    k8s.simulate_status(isvc, url=f"http://iris.{k8s_namespace}.example.com")
    k8s.simulate_condition(isvc, "Ready", "True")
    job = backend.get_job(workload, "iris")
    assert job["state"] == "running"
    server = next(s for s in job["steps"] if s["name"] == "server")
    assert server["outputs"]["url"] == f"http://iris.{k8s_namespace}.example.com"

    job = backend.cancel_job(workload, "iris")
    assert job["state"] == "cancelled"
    with pytest.raises(kubernetes.client.ApiException) as gone:
        kubernetes.client.CustomObjectsApi(k8s.api).get_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", k8s_namespace, "inferenceservices", "iris"
        )
    assert gone.value.status == 404
    with pytest.raises(NotFoundError):
        backend.get_job(workload, "missing")

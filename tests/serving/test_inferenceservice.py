"""The KServe InferenceService of a model server: checked against the real CRD schema
(objects with declared properties made strict, so a misspelt field fails), and its
state read back from status, pods and events."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.base import ClusterContext
from kubelab.workloads.serving.inferenceservice import state_of
from kubelab.workloads.serving.workload import ServingWorkload

CRDS = Path(__file__).resolve().parents[1] / "k8s" / "crds"  # the ones the test API server has

PROFILE = {
    "slug": "gpu-1",
    "display_name": "1 NVIDIA GPU",
    "cpu": {"guarantee": 2, "limit": 4},
    "memory": {"guarantee": "16Gi", "limit": "24Gi"},
    "gpu": {"count": 1, "resource": "nvidia.com/gpu"},
    "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}
CLUSTER = ClusterContext(
    namespace="alice",
    image="registry.example/kubelab/notebook:1.0",
    pvc="claim-alice",
    profile=PROFILE,
    labels={"kubelab.io/job": "iris", "app.kubernetes.io/managed-by": "kubelab"},
)


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def validator() -> jsonschema.Draft7Validator:
    text = (CRDS / "serving.kserve.io_inferenceservices.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def assert_valid(isvc: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(isvc), key=str)
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]


@pytest.fixture
def home(tmp_path: Path, iris_file: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "iris.joblib").write_bytes(iris_file.read_bytes())
    return tmp_path


def manifests(home: Path, model: str, **spec: Any) -> dict[str, Any]:
    workload = ServingWorkload()
    normalised = workload.validate({"name": "iris", "model": model, **spec}, home)
    [isvc] = workload.manifests(normalised, name="iris", cluster=CLUSTER)
    assert_valid(isvc)
    return isvc


def test_sklearn_uses_kserves_runtime_with_the_users_pvc_and_profile(home: Path) -> None:
    isvc = manifests(home, "models/iris.joblib", predict_proba=True)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["namespace"] == "alice"
    assert isvc["metadata"]["labels"]["kubelab.io/job"] == "iris"
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == "pvc://claim-alice/models/iris.joblib"
    assert model["env"] == [{"name": "PREDICT_PROBA", "value": "true"}]
    assert model["resources"] == {
        "requests": {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"},
    }
    assert predictor["nodeSelector"] == PROFILE["node_selector"]
    assert predictor["tolerations"] == PROFILE["tolerations"]
    assert predictor["labels"]["kubelab.io/job"] == "iris"


def test_resources_can_be_narrowed_not_widened(home: Path) -> None:
    model = manifests(home, "models/iris.joblib", resources={"gpu": 0, "cpu": "500m"})["spec"][
        "predictor"
    ]["model"]
    assert model["resources"] == {
        "requests": {"cpu": "500m", "memory": "16Gi"},
        "limits": {"cpu": "500m", "memory": "24Gi"},
    }
    with pytest.raises(KubelabError, match=r"2 GPU\(s\) asked, but 1 NVIDIA GPU allows 1"):
        manifests(home, "models/iris.joblib", resources={"gpu": 2})


def test_torchscript_runs_kubelabs_server_in_the_notebook_image(home: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.jit.script(torch.nn.Linear(4, 3))
    net.save(str(home / "models" / "net.pt"))
    predictor = manifests(home, "models/net.pt")["spec"]["predictor"]
    assert "model" not in predictor
    [container] = predictor["containers"]
    assert container["image"] == CLUSTER.image
    assert container["command"] == ["python", "-m", "kubelab.workloads.serving.server"]
    assert container["args"][:6] == [
        "--name",
        "iris",
        "--model",
        "/mnt/models/net.pt",
        "--format",
        "pytorch",
    ]
    assert {"name": "STORAGE_URI", "value": "pvc://claim-alice/models/net.pt"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_a_model_outside_home_or_without_a_pvc_is_refused(home: Path, iris_file: Path) -> None:
    workload = ServingWorkload()
    outside = workload.validate({"name": "iris", "model": str(iris_file)})
    if outside["home_path"] is None:
        with pytest.raises(KubelabError, match="not under your home folder"):
            workload.manifests(outside, name="iris", cluster=CLUSTER)
    inside = workload.validate({"name": "iris", "model": "models/iris.joblib"}, home)
    no_pvc = ClusterContext(namespace="alice")
    with pytest.raises(KubelabError, match="needs your home volume"):
        workload.manifests(inside, name="iris", cluster=no_pvc)


def isvc_with(status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "status": status}


def test_state_read_back() -> None:
    ready = isvc_with(
        {
            "url": "http://iris.alice.example.com",
            "address": {"url": "http://iris-predictor.alice.svc.cluster.local"},
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    )
    pod = {
        "metadata": {"name": "iris-predictor-abc"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    state = state_of([ready], [pod], [])
    assert state["state"] == "running" and state["url"] == "http://iris.alice.example.com"
    assert state["steps"]["server"] == {
        "state": "running",
        "pod": "iris-predictor-abc",
        "message": None,
        "outputs": {
            "url": "http://iris.alice.example.com",
            "internal_url": "http://iris-predictor.alice.svc.cluster.local",
            "ready": True,
        },
    }

    failed = isvc_with(
        {
            "conditions": [{"type": "Ready", "status": "False", "reason": "ModelLoadFailed"}],
            "modelStatus": {
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no model file"},
            },
        }
    )
    assert state_of([failed], [], [])["state"] == "failed"
    assert state_of([failed], [], [])["message"] == "no model file"

    pending = isvc_with({"conditions": [{"type": "Ready", "status": "False"}]})
    event = {
        "type": "Warning",
        "reason": "FailedScheduling",
        "message": "0/3 nodes have enough nvidia.com/gpu",
        "lastTimestamp": "2026-11-29T10:00:00Z",
    }
    state = state_of([pending], [], [event])
    assert state["state"] == "pending"
    assert state["message"] == "FailedScheduling: 0/3 nodes have enough nvidia.com/gpu"
    crashing = {
        "metadata": {"name": "p"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}
            ],
        },
    }
    state = state_of([pending], [crashing], [])
    assert state["message"] == "CrashLoopBackOff: back-off"
    assert state["steps"]["server"]["outputs"] == {
        "url": None,
        "internal_url": None,
        "ready": False,
    }
    assert state_of([], [], [])["state"] == "failed"

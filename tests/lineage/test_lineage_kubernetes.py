"""A job on Kubernetes records the image its pods run (a real kube-apiserver, tests/k8s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab.client import Client
from kubelab.workloads.trainer.spec import function_source

RULES = [
    {
        "apiGroups": ["trainer.kubeflow.org"],
        "resources": ["trainjobs"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]},
]
IMAGE = "registry.example.com/kubelab/notebook:2026.11"


def train(lr: float) -> None:
    print(lr)


def test_a_trainjob_records_its_image_source_and_parameters(
    k8s, k8s_namespace: str, kubelab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = k8s.service_account(k8s_namespace, "jupyter-alice", rules=RULES)
    # As in a notebook pod: the user's ServiceAccount and the image KubeSpawner set.
    monkeypatch.setenv("KUBECONFIG", str(identity.kubeconfig))
    monkeypatch.setenv("JUPYTER_IMAGE_SPEC", IMAGE)
    client = Client("kubernetes", home=kubelab_home, root=tmp_path, namespace=k8s_namespace)
    job = client.create_job(
        "training",
        {"function": function_source(train), "func_args": {"lr": 0.5}},
        name="train-lr",
        experiment_name="cluster",
    )
    assert k8s.get("trainer.kubeflow.org/v1alpha1", "TrainJob", job, k8s_namespace)
    facts = client.run_lineage(job)
    assert facts["kind"] == "training"
    assert facts["backend"] == "kubernetes"
    assert facts["image"] == IMAGE
    assert facts["parameters"] == {"lr": 0.5}
    assert facts["experiment"] == "cluster"
    assert "def train(lr" in Path(facts["source"]["snapshot"]).read_text()
    assert client.get_job(job)["experiment"] == "cluster"

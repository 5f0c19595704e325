"""Tuning on a real Kubernetes API server (envtest), as the user's own ServiceAccount.

Nothing runs Katib here: the tests play its controller (Trials, their status, the
Experiment's conditions and currentOptimalTrial) with the cluster's `simulate_*`
helpers, and check what kubelab submits and reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optimizer_helpers import TRAIN_SCRIPT, job_experiment

from k8s.cluster import Cluster
from kubelab.workloads.optimizer import OptimizerClient, Search, TrialConfig
from kubelab.workloads.optimizer import experiment as katib

KATIB = "kubeflow.org/v1beta1"
RULES = [
    {
        "apiGroups": ["kubeflow.org"],
        "resources": ["experiments", "trials"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
]


@pytest.fixture
def user(k8s: Cluster, k8s_namespace: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The notebook user's ServiceAccount, as kubelab's clients find it (KUBECONFIG)."""
    identity = k8s.service_account(k8s_namespace, "jovyan", rules=RULES)
    monkeypatch.setenv("KUBECONFIG", str(identity.kubeconfig))
    # kubernetes.config reads $KUBECONFIG when it is imported (already, by the fixture).
    monkeypatch.setattr(
        "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(identity.kubeconfig)
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return identity


def simulate_trial(
    k8s: Cluster, namespace: str, experiment: str, name: str, assignments: dict, loss: list[float]
) -> dict[str, Any]:
    """What Katib's controller makes of a suggestion: a Trial, then its observation."""
    trial = k8s.create(
        {
            "apiVersion": KATIB,
            "kind": "Trial",
            "metadata": {"name": name, "labels": {katib.EXPERIMENT_LABEL: experiment}},
            "spec": {
                "parameterAssignments": [{"name": k, "value": v} for k, v in assignments.items()],
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            },
        },
        namespace=namespace,
    )
    k8s.simulate_status(
        trial,
        observation={
            "metrics": [
                {
                    "name": "loss",
                    "min": str(min(loss)),
                    "max": str(max(loss)),
                    "latest": str(loss[-1]),
                }
            ]
        },
        startTime="2026-11-29T10:00:00Z",
        completionTime="2026-11-29T10:00:30Z",
    )
    return k8s.simulate_condition(
        trial, "Succeeded", reason="TrialSucceeded", message="Trial has succeeded"
    )


def test_a_katib_experiment_is_accepted_and_its_optimal_trial_read_back(
    k8s: Cluster, k8s_namespace: str, user: Any, tmp_path: Path
) -> None:
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    experiment = job_experiment("lr-search")
    client = OptimizerClient("kubernetes", namespace=k8s_namespace, root=tmp_path)
    name = client.create_experiment(experiment)
    assert name == "lr-search"
    stored = k8s.get(KATIB, "Experiment", name, k8s_namespace)
    assert (
        stored["spec"]["trialTemplate"]["trialSpec"]
        == experiment["spec"]["trialTemplate"]["trialSpec"]
    )
    assert stored["spec"]["objective"]["metricStrategies"] == [{"name": "loss", "value": "min"}]
    assert stored["metadata"]["labels"]["kubelab.io/job"] == name

    simulate_trial(
        k8s, k8s_namespace, name, "lr-search-aaa", {"lr": "0.03", "optimizer": "adam"}, [0.4, 0.2]
    )
    simulate_trial(
        k8s,
        k8s_namespace,
        name,
        "lr-search-bbb",
        {"lr": "0.02", "optimizer": "sgd"},
        [0.3, 0.1, 0.15],
    )
    k8s.simulate_status(
        stored,
        currentOptimalTrial={
            "bestTrialName": "lr-search-bbb",
            "parameterAssignments": [
                {"name": "lr", "value": "0.02"},
                {"name": "optimizer", "value": "sgd"},
            ],
            "observation": {
                "metrics": [{"name": "loss", "min": "0.1", "max": "0.3", "latest": "0.15"}]
            },
        },
    )
    k8s.simulate_condition(
        stored, "Created", reason="ExperimentCreated", message="Experiment is created"
    )
    k8s.simulate_condition(
        stored, "Running", reason="ExperimentRunning", message="Experiment is running"
    )

    job = client.get_job(name)
    assert job.status == "Running" and job.backend == "kubernetes"
    assert {t.name: t.status for t in job.trials} == {
        "lr-search-aaa": "Succeeded",
        "lr-search-bbb": "Succeeded",
    }
    best = client.get_best_results(name)
    assert best.trial == "lr-search-bbb"
    assert best.parameters == {"lr": "0.02", "optimizer": "sgd"}
    assert (best.metrics[0].min, best.metrics[0].latest) == (0.1, 0.15)
    view = client.describe_job(name)["tuning"]
    assert view["best"]["objective"] == 0.1 and view["counts"]["succeeded"] == 2
    assert view["trials"][0]["duration_s"] == 30.0

    k8s.simulate_condition(
        stored,
        "Succeeded",
        reason="ExperimentMaxTrialsReached",
        message="Experiment has succeeded because max trial count has reached",
    )
    done = client.wait_for_job_status(name, timeout=30, polling_interval=0.2)
    assert done.status == "Complete"
    assert "max trial count" in done.message
    client.delete_job(name)
    assert k8s.get(KATIB, "Experiment", name, k8s_namespace) is None


def objective(parameters):
    return (parameters["x"] - 2) ** 2


def test_a_tuned_function_becomes_jobs_the_api_server_accepts(
    k8s: Cluster, k8s_namespace: str, user: Any, tmp_path: Path
) -> None:
    client = OptimizerClient("kubernetes", namespace=k8s_namespace, root=tmp_path)
    name = client.create(
        {
            "name": "fn-search",
            "image": "kubelab/notebook:1",
            "template": client._template(objective),
            "search_space": {"x": Search.uniform(0, 4), "layers": Search.choice([1, 2])},
            "trial_config": TrialConfig(num_trials=4, parallel_trials=2),
        }
    )
    stored = k8s.get(KATIB, "Experiment", name, k8s_namespace)
    # What Katib does with a suggestion: substitute, then create the Job as the user.
    run = katib.substitute(stored, {"x": "1.5", "layers": "2"}, trial_name="fn-search-1")
    run["metadata"] = {"name": "fn-search-1", "namespace": k8s_namespace}
    with user.api_client() as api:
        from kubernetes.dynamic import DynamicClient

        jobs = DynamicClient(api).resources.get(api_version="batch/v1", kind="Job")
        created = jobs.create(body=run, namespace=k8s_namespace).to_dict()
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "kubelab/notebook:1"
    assert container["args"][1:] == ["x=1.5", "layers=2"]
    assert created["spec"]["backoffLimit"] == 0

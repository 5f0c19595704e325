"""Tuning a training function (`TrainJobTemplate`): a training job per trial."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from optimizer_helpers import assert_valid_experiment

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.base import ClusterContext
from kubelab.workloads.optimizer import (
    TPE,
    CustomTrainer,
    OptimizerClient,
    Search,
    TrainJobTemplate,
    TrialConfig,
)
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer.workload import TuningWorkload

CRDS = Path(__file__).resolve().parents[1] / "k8s" / "crds"  # the real CRDs


def train(lr, layers, epochs=3):
    import os

    from kubelab.workloads import report

    assert os.environ["WORLD_SIZE"] == "1" and os.environ["RANK"] == "0"
    for epoch in range(1, epochs + 1):
        report(step=epoch, loss=(lr - 0.02) ** 2 * 1000 / epoch + layers / 100)


def one_arg(parameters):
    return 0.0


def template(**trainer) -> TrainJobTemplate:
    return TrainJobTemplate(trainer=CustomTrainer(func=train, func_args={"epochs": 3}, **trainer))


def test_each_trial_is_a_local_training_job(tmp_path: Path) -> None:
    client = OptimizerClient(root=tmp_path)
    name = client.optimize(
        template(),
        search_space={"lr": Search.uniform(0.01, 0.03), "layers": Search.choice([1, 2])},
        algorithm=TPE(random_state=3),
        trial_config=TrialConfig(num_trials=4, parallel_trials=2),
    )
    job = client.wait_for_job_status(name, timeout=240, polling_interval=0.2)
    assert job.status == "Complete", job.message
    assert [t.status for t in job.trials] == ["Succeeded"] * 4
    store = client.store
    for trial in job.trials:
        lr, layers = trial.parameters["lr"], trial.parameters["layers"]
        assert trial.objective == pytest.approx((lr - 0.02) ** 2 * 1000 / 3 + layers / 100)
        assert [p["step"] for p in trial.series["loss"]] == [1, 2, 3]
        training = store.get_run(store.task_info(name, trial.name)["outputs"]["job_id"])
        assert training["kind"] == "training" and training["state"] == "succeeded"
    log = "\n".join(client.get_job_logs(name, trial_name="trial-0001"))
    assert "training job" in log and "step=3 loss=" in log


def test_a_training_function_must_take_the_tuned_names(tmp_path: Path) -> None:
    client = OptimizerClient(root=tmp_path)
    bad = TrainJobTemplate(trainer=CustomTrainer(func=one_arg))
    with pytest.raises(KubelabError, match=r"must take the tuned names as arguments \(lr\)"):
        client.optimize(bad, search_space={"lr": Search.uniform(0.01, 0.03)})


def test_on_a_cluster_trials_are_trainjobs_with_numeric_arguments(tmp_path: Path) -> None:
    workload = TuningWorkload()
    client = OptimizerClient(root=tmp_path)
    spec = workload.validate(
        {
            "template": client._template(template(num_nodes=2)),
            "search_space": {
                "lr": Search.uniform(0.01, 0.03),
                "layers": Search.choice([1, 2]),
            },
        },
        tmp_path,
    )
    [experiment] = workload.manifests(
        spec, name="tune-train", cluster=ClusterContext("alice", image="nb:1")
    )
    assert_valid_experiment(experiment)
    trial_template = experiment["spec"]["trialTemplate"]
    assert trial_template["primaryContainerName"] == "node"
    assert trial_template["successCondition"] == katib.JOB_SUCCESS
    trainjob = trial_template["trialSpec"]
    assert "name" not in trainjob["metadata"] and "namespace" not in trainjob["metadata"]
    crd = yaml.safe_load((CRDS / "trainer.kubeflow.org_trainjobs.yaml").read_text())
    jsonschema.validate(
        {**trainjob, "metadata": {"name": "x"}},
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
    )
    run = katib.substitute(
        katib.apply_defaults(experiment), {"lr": "0.015", "layers": "2"}, trial_name="t1"
    )
    trainer = run["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["image"] == "nb:1"
    arguments = next(e["value"] for e in trainer["env"] if e["name"] == "KUBELAB_FUNC_ARGS")
    assert json.loads(arguments) == {"epochs": 3, "lr": 0.015, "layers": 2}

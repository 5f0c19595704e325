"""A tuning spec is checked before any trial starts, and builds the Experiment Katib reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from optimizer_helpers import (
    assert_converts_to_v1job,
    assert_valid_experiment,
    job_experiment,
)

from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.workloads.base import ClusterContext
from kubelab.workloads.optimizer import (
    CMAES,
    TPE,
    GridSearch,
    MedianStop,
    Objective,
    Search,
    TrialConfig,
    validation,
)
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer.spec import normalize
from kubelab.workloads.optimizer.templates import function_source
from kubelab.workloads.optimizer.workload import TuningWorkload


def quadratic(parameters):
    return (parameters["x"] - 2) ** 2 + (parameters["y"] + 1) ** 2


def uses_a_global(parameters):
    return Path(parameters["x"])


def function_spec(**overrides):
    source, name = function_source(quadratic)
    spec = {
        "name": "quad",
        "template": {"kind": "function", "source": source, "name": name},
        "search_space": {"x": Search.uniform(-5, 5), "y": Search.uniform(-5, 5)},
        "objectives": [Objective("loss")],
        "algorithm": TPE(random_state=1),
        "trial_config": TrialConfig(num_trials=8, parallel_trials=2, max_failed_trials=2),
        "early_stopping": MedianStop(min_trials_required=2, start_step=3),
    }
    spec.update(overrides)
    return spec


def error_of(spec, root=None) -> KubelabError:
    with pytest.raises(KubelabError) as caught:
        normalize(spec, root)
    return caught.value


def test_function_spec_builds_a_katib_experiment_with_defaults(tmp_path: Path) -> None:
    spec = normalize(function_spec(), tmp_path)
    experiment = spec["experiment"]
    assert_valid_experiment(experiment)
    s = experiment["spec"]
    assert s["algorithm"] == {
        "algorithmName": "tpe",
        "algorithmSettings": [{"name": "random_state", "value": "1"}],
    }
    assert s["earlyStopping"]["algorithmName"] == "medianstop"
    assert (s["maxTrialCount"], s["parallelTrialCount"], s["maxFailedTrialCount"]) == (8, 2, 2)
    assert s["objective"]["metricStrategies"] == [
        {"name": "loss", "value": "min"}
    ]  # Katib's default
    assert s["parameters"][0] == {
        "name": "x",
        "parameterType": "double",
        "feasibleSpace": {"min": "-5", "max": "5", "distribution": "uniform"},
    }
    template = s["trialTemplate"]
    assert template["successCondition"] == katib.JOB_SUCCESS
    job = template["trialSpec"]
    assert_converts_to_v1job(job)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["python", "-c"]
    assert "def quadratic(parameters):" in container["command"][2]
    assert container["args"][1:] == ["x=${trialParameters.x}", "y=${trialParameters.y}"]
    assert spec["value_kinds"] == {"x": "double", "y": "double"}


def test_katib_experiment_yaml_keeps_its_trial_template(tmp_path: Path) -> None:
    experiment = job_experiment()
    spec = normalize({"experiment": experiment}, tmp_path)
    assert spec["template"] == {"kind": "experiment", "workdir": "."}
    assert (
        spec["experiment"]["spec"]["trialTemplate"]["trialSpec"]
        == experiment["spec"]["trialTemplate"]["trialSpec"]
    )
    assert spec["value_kinds"] == {"lr": "double", "optimizer": "str"}
    assert_valid_experiment(spec["experiment"])


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"algorithm": {"name": "hillclimb"}}, "algorithm", "unknown algorithm 'hillclimb'"),
        ({"search_space": {}}, "search_space", "search space is empty"),
        (
            {"search_space": {"x": Search.uniform(5, -5)}},
            "spec.parameters[0] (x).feasibleSpace",
            "min 5 is greater than max -5",
        ),
        (
            {"search_space": {"x": Search.loguniform(0, 1)}},
            "spec.parameters[0] (x).feasibleSpace.min",
            "greater than 0",
        ),
        (
            {"algorithm": CMAES(), "search_space": {"x": Search.uniform(0, 1)}},
            "spec.algorithm.algorithmName",
            "two or more",
        ),
        (
            {"algorithm": GridSearch(), "trial_config": TrialConfig(num_trials=50)},
            "spec.parameters[0].feasibleSpace.step",
            "needs a step",
        ),
        (
            {
                "algorithm": GridSearch(),
                "search_space": {"x": Search.choice([1, 2]), "y": Search.randint(1, 3)},
                "trial_config": TrialConfig(num_trials=7),
            },
            "spec.maxTrialCount",
            "7 is more than the 6 grid combinations",
        ),
        (
            {"trial_config": TrialConfig(num_trials=2, parallel_trials=4)},
            "spec.parallelTrialCount",
            "less than or equal",
        ),
        (
            {"algorithm": {"name": "tpe", "settings": {"gamma": 2}}},
            "algorithm.settings",
            "unknown setting(s) gamma",
        ),
        ({"name": "Bad_Name"}, "metadata.name", "lower case"),
    ],
)
def test_bad_specs_name_the_field(tmp_path: Path, change: dict, field: str, words: str) -> None:
    error = error_of(function_spec(**change), tmp_path)
    assert error.details["field"] == field, error.message
    assert words in error.message


def test_parameter_referenced_but_not_declared_is_refused(tmp_path: Path) -> None:
    experiment = job_experiment(
        command=[
            "python3",
            "train.py",
            "--lr=${trialParameters.learningRate}",
            "--momentum=${trialParameters.momentum}",
        ]
    )
    experiment["spec"]["trialTemplate"]["trialParameters"].pop()  # optimizer: declared, now unused
    error = error_of({"experiment": experiment}, tmp_path)
    assert "${trialParameters.momentum}" in error.message
    assert "does not declare it" in error.message
    assert error.details["field"] == "spec.trialTemplate.trialSpec"


def test_trial_parameter_referencing_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    experiment = job_experiment()
    experiment["spec"]["trialTemplate"]["trialParameters"][1]["reference"] = "opt"
    error = error_of({"experiment": experiment}, tmp_path)
    assert error.details["field"] == "spec.trialTemplate.trialParameters[1].reference"
    assert "'opt' is not a parameter in spec.parameters (lr, optimizer)" in error.message


def test_every_bad_field_is_listed_at_once(tmp_path: Path) -> None:
    experiment = job_experiment(command=["python3", "train.py"], maxTrialCount=0)
    experiment["spec"]["objective"]["type"] = "best"
    error = error_of({"experiment": experiment}, tmp_path)
    fields = [e["field"] for e in error.details["errors"]]
    assert "spec.maxTrialCount" in fields and "spec.objective.type" in fields
    # ${trialParameters.learningRate} is declared but the command no longer uses it.
    assert "spec.trialTemplate.trialParameters[0].name" in fields


def test_algorithms_only_katib_serves_are_refused_locally_not_on_the_cluster(
    tmp_path: Path,
) -> None:
    experiment = job_experiment()
    experiment["spec"]["algorithm"] = {"algorithmName": "bayesianoptimization"}
    validation.validate(experiment, local=False)
    with pytest.raises(KubelabError, match="runs only on Katib"):
        validation.validate(experiment, local=True)


def test_a_function_must_travel_alone() -> None:
    with pytest.raises(KubelabError, match="uses Path from outside the function"):
        function_source(uses_a_global)
    with pytest.raises(KubelabError, match="defined with def"):
        function_source(lambda parameters: 1)


def test_paths_stay_inside_the_root(tmp_path: Path) -> None:
    spec = function_spec(template={"kind": "script", "path": "../etc/passwd"})
    assert "outside your root" in error_of(spec, tmp_path).message
    with pytest.raises(NotFoundError):
        normalize(function_spec(template={"kind": "script", "path": "missing.py"}), tmp_path)


def test_manifests_run_trials_in_the_notebook_image_with_the_users_volume(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('loss=1')\n")
    workload = TuningWorkload()
    spec = workload.validate(
        function_spec(template={"kind": "script", "path": "train.py"}), tmp_path
    )
    cluster = ClusterContext(
        namespace="alice", image="kubelab/notebook:1", pvc="claim-alice", labels={"app": "kubelab"}
    )
    [experiment] = workload.manifests(spec, name="quad", cluster=cluster)
    assert_valid_experiment(experiment)
    assert experiment["metadata"] == {
        "name": "quad",
        "namespace": "alice",
        "labels": {"app": "kubelab", "kubelab.io/job": "quad"},
    }
    job = experiment["spec"]["trialTemplate"]["trialSpec"]
    assert_converts_to_v1job(job)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "kubelab/notebook:1"
    assert container["command"] == ["python", "/home/jovyan/train.py"]
    assert container["args"] == ["--x=${trialParameters.x}", "--y=${trialParameters.y}"]
    assert container["workingDir"] == "/home/jovyan"
    assert container["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan"}]
    assert pod["volumes"] == [
        {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}
    ]
    with pytest.raises(KubelabError, match="no image"):
        workload.manifests(spec, name="quad", cluster=ClusterContext(namespace="alice"))


def test_resources_per_trial_become_limits_with_gpu_requests_equal(tmp_path: Path) -> None:
    spec = normalize(
        function_spec(resources_per_trial={"cpu": 2, "memory": "1Gi", "gpu": 1}), tmp_path
    )
    container = spec["experiment"]["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
    }


def test_substitution_is_katibs_and_json_safe() -> None:
    experiment = katib.apply_defaults(job_experiment())
    experiment["spec"]["trialTemplate"]["trialParameters"].append(
        {"name": "trial", "reference": "${trialSpec.Name}"}
    )
    experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0][
        "env"
    ] = [{"name": "TRIAL", "value": "${trialParameters.trial}"}]
    run = katib.substitute(experiment, {"lr": "0.01", "optimizer": 'a"b'}, trial_name="exp-abc")
    container = katib.primary_container(run, "training-container")
    assert container["command"] == ["python3", "train.py", "--lr=0.01", '--optimizer=a"b']
    assert container["env"] == [{"name": "TRIAL", "value": "exp-abc"}]


def two_names(x, y=0.0):
    return x + y


def needs_more(x, y, epochs):
    return x


def test_a_function_takes_the_dict_or_the_tuned_names(tmp_path: Path) -> None:
    from kubelab.workloads.optimizer.templates import call_style

    assert call_style(*function_source(quadratic), ["x", "y"]) == "dict"
    assert call_style(*function_source(two_names), ["x", "y"]) == "kwargs"
    assert call_style(*function_source(two_names), ["x"]) == "kwargs"  # y has a default
    source, name = function_source(needs_more)
    spec = function_spec(template={"kind": "function", "source": source, "name": name})
    error = error_of(spec, tmp_path)
    assert "it also requires epochs" in error.message and error.details["field"] == "trial_template"
    error = error_of(
        function_spec(template={"kind": "function", "source": "def f(:", "name": "f"}), tmp_path
    )
    assert "does not parse" in error.message


def test_cluster_state_reads_the_experiment_its_trials_and_their_pods(tmp_path: Path) -> None:
    workload = TuningWorkload()
    spec = workload.validate({"experiment": job_experiment()}, tmp_path)
    [experiment] = workload.manifests(spec, name="job-exp", cluster=ClusterContext("alice"))
    experiment["status"] = {
        "conditions": [
            {"type": "Created", "status": "True", "message": "Experiment is created"},
            {"type": "Running", "status": "True", "message": "Experiment is running"},
        ],
        "currentOptimalTrial": {
            "bestTrialName": "job-exp-abc",
            "parameterAssignments": [
                {"name": "lr", "value": "0.02"},
                {"name": "optimizer", "value": "adam"},
            ],
            "observation": {
                "metrics": [{"name": "loss", "min": "0.1", "max": "0.4", "latest": "0.2"}]
            },
        },
    }

    def trial(name: str, condition: str, metrics: list[dict]) -> dict:
        return {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Trial",
            "metadata": {"name": name, "labels": {katib.EXPERIMENT_LABEL: "job-exp"}},
            "spec": {"parameterAssignments": [{"name": "lr", "value": "0.02"}]},
            "status": {
                "conditions": [
                    {"type": condition, "status": "True", "message": f"Trial is {condition}"}
                ],
                "observation": {"metrics": metrics},
            },
        }

    objects = [
        experiment,
        trial("job-exp-abc", "Succeeded", [{"name": "loss", "min": "0.1", "max": "0.4", "latest": "0.2"}]),
        trial("job-exp-def", "MetricsUnavailable", [{"name": "loss", "min": "unavailable", "max": "unavailable", "latest": "unavailable"}]),
    ]  # fmt: skip
    pods = [{"metadata": {"name": "job-exp-abc-x1", "labels": {katib.TRIAL_LABEL: "job-exp-abc"}}}]
    state = workload.cluster_state(objects, pods, [])
    assert state["state"] == "running" and state["message"] == "Experiment is running"
    assert state["metrics"] == {"loss": 0.1}  # the objective's strategy: min
    assert state["best"] == {
        "trial": "job-exp-abc",
        "parameters": {"lr": "0.02", "optimizer": "adam"},
        "metrics": {"loss": 0.1},
    }
    ok, unavailable = state["steps"]["job-exp-abc"], state["steps"]["job-exp-def"]
    assert (ok["state"], ok["pod"], ok["container"]) == (
        "succeeded",
        "job-exp-abc-x1",
        "training-container",
    )
    assert ok["outputs"]["objective"] == 0.1 and ok["outputs"]["condition"] == "Succeeded"
    assert unavailable["state"] == "failed" and unavailable["outputs"]["objective"] is None
    assert unavailable["message"] == "Trial is MetricsUnavailable"
    assert workload.pod_selector("job-exp") == katib.TRIAL_LABEL

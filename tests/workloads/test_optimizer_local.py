"""Local tuning end to end: trials are real processes, metrics go through Katib's format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from optimizer_helpers import TRAIN_COMMAND, TRAIN_SCRIPT, job_experiment

from kubelab.client.store import INTERRUPTED_ERROR, RunStore
from kubelab.workloads.optimizer import (
    TPE,
    MedianStop,
    Objective,
    OptimizerClient,
    RandomSearch,
    Search,
    TrialConfig,
)
from kubelab.workloads.optimizer.widget import render


def quadratic(parameters):
    return (parameters["x"] - 2) ** 2 + (parameters["y"] + 1) ** 2


def epochs(parameters):
    import time

    from kubelab.workloads import report

    for epoch in range(1, 7):
        report(step=epoch, loss=parameters["x"] * 10 + 1 / epoch)
        time.sleep(0.02 if epoch < 2 else 0.25)  # time for the rule at step 2 to stop it


def flaky(parameters):
    if parameters["x"] > -10:
        raise ValueError(f"diverged at x={parameters['x']:.2f}")


def silent(parameters):
    print("trained, but forgot to report the loss")


def slow_quadratic(parameters):
    import time

    time.sleep(0.4)
    return (parameters["x"] - 2) ** 2


@pytest.fixture
def client(tmp_path: Path) -> OptimizerClient:
    return OptimizerClient(root=tmp_path)


def best_of(client: OptimizerClient, name: str) -> float:
    job = client.wait_for_job_status(name, timeout=240, polling_interval=0.2)
    assert job.status == "Complete", job.message
    assert len(job.trials) == 30 and all(t.status == "Succeeded" for t in job.trials)
    return job.best_trial.objective


def test_seeded_tpe_finds_the_optimum_and_beats_random_search(client: OptimizerClient) -> None:
    """(x-2)^2 + (y+1)^2 on [-5, 5]^2 (optimum 0 at (2, -1)), 30 trials one at a time so
    that the seeds make every run reproducible; three seeds each."""
    space = {"x": Search.uniform(-5, 5), "y": Search.uniform(-5, 5)}
    config = TrialConfig(num_trials=30, parallel_trials=1)
    tpe, random = [], []
    for seed in (1, 2, 3):
        tpe.append(
            best_of(
                client,
                client.optimize(
                    quadratic,
                    search_space=space,
                    algorithm=TPE(random_state=seed),
                    trial_config=config,
                ),
            )
        )
        random.append(
            best_of(
                client,
                client.optimize(
                    quadratic,
                    search_space=space,
                    algorithm=RandomSearch(random_state=seed),
                    trial_config=config,
                ),
            )
        )
    assert all(t < r for t, r in zip(tpe, random, strict=True)), (tpe, random)
    assert sum(tpe) / 3 < 0.5  # the stated tolerance: within 0.5 of the optimum on average
    assert max(tpe) < 1.0


def test_results_read_like_the_kubeflow_sdk(client: OptimizerClient) -> None:
    name = client.optimize(
        quadratic,
        search_space={"x": Search.uniform(-5, 5), "y": Search.choice([-1, 0, 1])},
        objectives=[Objective(metric="loss", direction="minimize")],
        algorithm=TPE(random_state=4),
        trial_config=TrialConfig(num_trials=6, parallel_trials=3),
    )
    job = client.wait_for_job_status(name, timeout=120, polling_interval=0.2)
    assert job.status == "Complete"
    assert {type(t.parameters["y"]) for t in job.trials} == {int}  # choices keep their type
    best = client.get_best_results(name)
    assert best.metrics[0].name == "loss"
    assert best.metrics[0].min == min(t.objective for t in job.trials)
    assert best.parameters == job.best_trial.parameters
    logs = list(client.get_job_logs(name))
    assert any(line.startswith("loss=") for line in logs)
    assert name in [j.name for j in client.list_jobs()]
    view = client.describe_job(name)["tuning"]
    assert view["counts"]["succeeded"] == 6 and view["best"]["trial"] == job.best_trial.name
    assert [c["index"] for c in view["chart"]] == [1, 2, 3, 4, 5, 6]
    assert view["chart"][-1]["best_so_far"] == best.metrics[0].min
    html = render(client.describe_job(name))
    assert html.count("<tr") == 7 and "<polyline class='best'" in html
    client.delete_job(name)
    assert name not in [j.name for j in client.list_jobs()]


def test_medianstop_prunes_a_clearly_bad_trial(client: OptimizerClient) -> None:
    name = client.optimize(
        epochs,
        search_space={"x": Search.uniform(0, 1)},
        algorithm=RandomSearch(random_state=11),
        early_stopping=MedianStop(min_trials_required=2, start_step=2),
        trial_config=TrialConfig(num_trials=8, parallel_trials=1),
    )
    job = client.wait_for_job_status(name, timeout=120, polling_interval=0.2)
    assert job.status == "Complete"
    pruned = [t for t in job.trials if t.status == "EarlyStopped"]
    assert pruned, [(t.name, t.parameters, t.status) for t in job.trials]
    store = client.store
    for trial in pruned:
        [rule] = store.task_info(name, trial.name)["metadata"]["rules"]
        assert rule["comparison"] == "greater" and rule["startStep"] == 2
        losses = trial.series["loss"]
        assert len(losses) < 6  # it did not run its six epochs
        assert min(p["value"] for p in losses[:2]) > float(rule["value"])
        assert "early stopped by medianstop" in trial.error
    # The first two trials had no rule (fewer than min_trials_required succeeded).
    assert not store.task_info(name, "trial-0001")["metadata"]["rules"]
    assert all(len(t.series["loss"]) == 6 for t in job.trials if t.status == "Succeeded")


def test_max_failed_trials_ends_the_experiment_with_the_trials_errors(
    client: OptimizerClient,
) -> None:
    name = client.optimize(
        flaky,
        search_space={"x": Search.uniform(0, 1)},
        trial_config=TrialConfig(num_trials=10, parallel_trials=1, max_failed_trials=2),
    )
    job = client.wait_for_job_status(name, status={"Failed"}, timeout=120, polling_interval=0.2)
    assert len(job.trials) == 2
    assert "max failed count has reached" in job.message
    assert job.message.count("ValueError: diverged at x=") == 2
    assert all(t.status == "Failed" and "ValueError: diverged" in t.error for t in job.trials)
    with pytest.raises(RuntimeError, match="is Failed"):
        client.wait_for_job_status(name, timeout=5)


def test_a_trial_that_reports_no_objective_is_metrics_unavailable(client: OptimizerClient) -> None:
    name = client.optimize(
        silent,
        search_space={"x": Search.uniform(0, 1)},
        trial_config=TrialConfig(num_trials=3, max_failed_trials=1),
    )
    job = client.wait_for_job_status(name, status={"Failed"}, timeout=60, polling_interval=0.2)
    [trial] = job.trials
    assert trial.status == "MetricsUnavailable"
    assert "'loss' was not reported" in trial.error


def test_goal_ends_the_experiment_early(client: OptimizerClient) -> None:
    name = client.optimize(
        quadratic,
        search_space={"x": Search.uniform(1.9, 2.1), "y": Search.uniform(-1.1, -0.9)},
        objectives=[Objective("loss", goal=0.5)],
        trial_config=TrialConfig(num_trials=20, parallel_trials=1),
    )
    job = client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    assert len(job.trials) == 1 and "Objective goal has reached" in job.message


def test_cancel_kills_running_trials(client: OptimizerClient) -> None:
    name = client.optimize(
        slow_quadratic,
        search_space={"x": Search.uniform(0, 4)},
        trial_config=TrialConfig(num_trials=20, parallel_trials=2),
    )
    client.wait_for_job_status(name, status={"Running"}, timeout=30, polling_interval=0.1)
    time.sleep(0.2)
    client.cancel_job(name)
    job = client.describe_job(name)
    assert job["state"] == "cancelled"
    assert job["tuning"]["counts"]["killed"] >= 1
    assert job["tuning"]["counts"]["trials"] < 20


RESUMABLE = """\
import sys
from kubelab.workloads.optimizer import OptimizerClient, Search, TrialConfig, TPE


def slow(parameters):
    import time

    time.sleep(0.5)
    return (parameters["x"] - 2) ** 2


client = OptimizerClient(root=sys.argv[1])
name = client.optimize(
    slow,
    name="resumable",
    search_space={"x": Search.uniform(0, 4)},
    algorithm=TPE(random_state=5),
    trial_config=TrialConfig(num_trials=6, parallel_trials=2),
)
client.wait_for_job_status(name, timeout=60, polling_interval=0.1)
"""


def test_an_experiment_interrupted_by_a_restart_resumes(
    client: OptimizerClient, tmp_path: Path
) -> None:
    script = tmp_path / "tune.py"
    script.write_text(RESUMABLE)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], start_new_session=True)
    store = client.store
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it with two trials done, two running
        try:
            steps = store.get_run("resumable")["steps"]
        except Exception:
            steps = []
        if sum(s["state"] == "succeeded" for s in steps) >= 2 and sum(
            s["state"] == "running" for s in steps
        ):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    restarted = RunStore()  # what a restarted server does first
    job = restarted.get_run("resumable")
    assert job["state"] == "failed" and job["error"] == INTERRUPTED_ERROR
    interrupted = [s for s in job["steps"] if s["error"] == INTERRUPTED_ERROR]
    assert interrupted
    lost = [s["outputs"]["parameters"] for s in interrupted]

    client.resume_job("resumable")
    done = client.wait_for_job_status("resumable", timeout=90, polling_interval=0.2)
    assert done.status == "Complete"
    conditions = [t.status for t in done.trials]
    assert conditions.count("Succeeded") == 6
    assert conditions.count("Killed") == len(interrupted)
    rerun = [t.parameters for t in done.trials if t.status == "Succeeded"]
    assert all(p in rerun for p in lost)  # the interrupted assignments ran again


def test_katib_experiment_yaml_with_a_job_trial_runs_locally(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    experiment = job_experiment(
        "lr-search",
        command=TRAIN_COMMAND,
        maxTrialCount=6,
        parallelTrialCount=3,
    )
    experiment["spec"]["objective"]["additionalMetricNames"] = ["accuracy"]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubelab.client.cli.main",
            "tune",
            "experiment.yaml",
            "--output",
            "json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["name"] == "lr-search" and summary["state"] == "succeeded"
    assert len(summary["trials"]) == 6
    best = summary["best"]
    losses = [t["objective"] for t in summary["trials"]]
    assert best["metrics"]["loss"] == min(losses)
    expected = (best["parameters"]["lr"] - 0.02) ** 2 * 100 / 3 + (
        0.1 if best["parameters"]["optimizer"] == "sgd" else 0
    )
    assert best["metrics"]["loss"] == pytest.approx(expected, abs=1e-6)  # min over the three epochs
    assert set(best["metrics"]) == {"loss", "accuracy"}
    client = OptimizerClient(root=tmp_path)
    log = "\n".join(client.get_job_logs("lr-search"))
    assert "is not pulled: the command runs in this environment" in log


def test_file_collector_reads_the_metrics_file_the_trial_writes(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """\
            import json, sys
            lr = float(sys.argv[1])
            with open(sys.argv[2], "w") as f:
                for epoch in (1, 2):
                    f.write(json.dumps({"loss": str(lr * epoch), "epoch": str(epoch)}) + "\\n")
            print("loss=999")  # stdout is not the collector's source here
            """
        )
    )
    experiment = job_experiment(
        "file-metrics",
        command=[
            "python",
            "train.py",
            "${trialParameters.learningRate}",
            "/var/log/katib/metrics.log",
        ],
        metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {
                "fileSystemPath": {
                    "path": "/var/log/katib/metrics.log",
                    "kind": "File",
                    "format": "JSON",
                }
            },
        },
    )
    experiment["spec"]["trialTemplate"]["trialParameters"].pop()
    experiment["spec"]["parameters"].pop()
    client = OptimizerClient(root=tmp_path)
    name = client.create_experiment(experiment)
    job = client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    for trial in job.trials:
        loss = next(m for m in trial.metrics if m.name == "loss")
        assert loss.min == pytest.approx(trial.parameters["lr"]) and loss.latest == pytest.approx(
            2 * trial.parameters["lr"]
        )


def test_bad_local_specs_fail_before_any_trial(client: OptimizerClient, tmp_path: Path) -> None:
    experiment = job_experiment()
    experiment["spec"]["algorithm"] = {"algorithmName": "hyperband"}
    from kubelab.pipelines.errors import KubelabError

    with pytest.raises(KubelabError, match="runs only on Katib"):
        client.create_experiment(experiment)
    assert not client.store.exists("job-exp")  # refused before anything ran: no record


@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_kubeflow_training_job_trials_run_their_primary_container(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    command = TRAIN_COMMAND
    experiment = job_experiment(
        f"{kind.lower()}-trials", command=command, maxTrialCount=2, parallelTrialCount=2
    )
    template = experiment["spec"]["trialTemplate"]
    if kind == "PyTorchJob":
        container = {"name": "pytorch", "image": "kubeflow/pytorch-mnist:v1", "command": command}
        template["primaryContainerName"] = "pytorch"
        template["trialSpec"] = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "spec": {
                "pytorchReplicaSpecs": {
                    "Master": {
                        "replicas": 1,
                        "restartPolicy": "OnFailure",
                        "template": {"spec": {"containers": [container]}},
                    }
                }
            },
        }
    else:
        template["primaryContainerName"] = "node"
        template["trialSpec"] = {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob",
            "spec": {
                "runtimeRef": {"name": "torch-distributed"},
                "trainer": {"numNodes": 1, "command": command[:2], "args": command[2:]},
            },
        }
    client = OptimizerClient(root=tmp_path)
    name = client.create_experiment(experiment)
    job = client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    assert job.status == "Complete", job.message
    assert [t.status for t in job.trials] == ["Succeeded", "Succeeded"]
    spec = client.describe_job(name)["spec"]["experiment"]["spec"]["trialTemplate"]
    assert spec["successCondition"] == (
        'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
        if kind == "PyTorchJob"
        else 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    )


def test_optimize_in_a_kernel_shows_the_live_widget(tmp_path: Path) -> None:
    """In a real Jupyter kernel, a function defined in a cell is tuned (its source comes
    from the cell) and the widget ends with every trial, the best row and the chart."""
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            textwrap.dedent(
                """
                from kubelab.workloads.optimizer import OptimizerClient, Search, TrialConfig, TPE

                def objective(parameters):
                    return (parameters["x"] - 2) ** 2

                client = OptimizerClient()
                name = client.optimize(objective, search_space={"x": Search.uniform(0, 4)},
                                       algorithm=TPE(random_state=1),
                                       trial_config=TrialConfig(num_trials=5, parallel_trials=2))
                print(client.wait_for_job_status(name, timeout=60, polling_interval=0.2).status)
                """
            )
        )
    ]
    kernel = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    kernel.execute()
    outputs = nb.cells[0].outputs
    assert "Complete" in "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    html = next(m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel")
    assert "succeeded · 5/5 trials · 5 succeeded" in html
    assert (
        html.count("<tr") == 6 and "font-weight:bold" in html and "<polyline class='best'" in html
    )


def test_a_trial_asking_for_more_gpus_than_the_machine_has_never_starts(
    client: OptimizerClient,
) -> None:
    from kubelab.pipelines.errors import KubelabError
    from kubelab.pipelines.local.resources import gpu_devices

    wanted = len(gpu_devices()) + 1
    with pytest.raises(KubelabError, match=f"asks for {wanted} GPU"):
        client.optimize(
            quadratic,
            name="too-many-gpus",
            search_space={"x": Search.uniform(0, 1), "y": Search.uniform(0, 1)},
            resources_per_trial={"gpu": wanted},
        )
    assert not client.store.exists("too-many-gpus")  # refused before any trial: no record


def keyword_quadratic(x, y):
    return (x - 2) ** 2 + (y + 1) ** 2


def test_a_function_of_the_tuned_names_gets_them_as_arguments(client: OptimizerClient) -> None:
    name = client.optimize(
        keyword_quadratic,
        search_space={"x": Search.uniform(-5, 5), "y": Search.choice([-1, 0])},
        trial_config=TrialConfig(num_trials=3, parallel_trials=3),
    )
    job = client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    for trial in job.trials:
        x, y = trial.parameters["x"], trial.parameters["y"]
        assert trial.objective == pytest.approx((x - 2) ** 2 + (y + 1) ** 2)

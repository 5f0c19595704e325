"""Tuning a notebook: each trial is a pipeline run, and the step cache is shared."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.optimizer import TPE, Objective, OptimizerClient, Search, TrialConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebook"))
from nbfactory import build_notebook


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kubelab-cache"))
    monkeypatch.setenv("KUBELAB_PRELOAD", "")


def write_notebook(path: Path) -> Path:
    nb = build_notebook(
        ("import time", "imports"),
        ("alpha = 1.0\nbeta = 2", "pipeline-parameters"),
        (
            "time.sleep(2)\ndata = [x / 100 for x in range(100)]\nprint('loaded the data')",
            "step:load_data",
        ),
        ("loss = sum((x - alpha) ** 2 for x in data) / len(data) + beta * 0.01", "step:train"),
        ("loss", "pipeline-metrics"),
    )
    nbformat.write(nb, path)
    return path


def test_twelve_trials_run_the_two_second_data_step_once(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "tune_me.ipynb")
    client = OptimizerClient(root=tmp_path)
    name = client.optimize(
        notebook,
        search_space={"alpha": Search.uniform(0, 1), "beta": Search.randint(0, 3)},
        objectives=[Objective("loss")],
        algorithm=TPE(random_state=1),
        trial_config=TrialConfig(num_trials=12, parallel_trials=4),
    )
    job = client.wait_for_job_status(name, timeout=240, polling_interval=0.2)
    assert job.status == "Complete", job.message
    assert len(job.trials) == 12 and all(t.status == "Succeeded" for t in job.trials)
    store = client.store
    runs = [store.task_info(name, t.name)["outputs"]["run_id"] for t in job.trials]
    loads = [
        s for run in runs for s in store.get_run(run)["steps"] if s["name"].startswith("load-data")
    ]
    assert len(loads) == 12
    assert sum(not s["cached"] for s in loads) == 1  # computed once, served from the cache 11 times
    # Each trial's objective is the notebook's own metric for its parameters.
    for trial in job.trials:
        alpha, beta = trial.parameters["alpha"], trial.parameters["beta"]
        expected = sum((x / 100 - alpha) ** 2 for x in range(100)) / 100 + beta * 0.01
        assert trial.objective == pytest.approx(expected)
        assert isinstance(beta, int)
    log = "\n".join(client.get_job_logs(name, trial_name="trial-0001"))
    assert "pipeline run" in log and "loss=" in log


def test_tuned_names_must_be_the_notebooks_parameters(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "tune_me.ipynb")
    client = OptimizerClient(root=tmp_path)
    with pytest.raises(KubelabError, match="'gamma' is not a pipeline parameter"):
        client.optimize(notebook, search_space={"gamma": Search.uniform(0, 1)})
    with pytest.raises(KubelabError, match="'beta' is an int"):
        client.optimize(notebook, search_space={"beta": Search.uniform(0, 1)})
    with pytest.raises(KubelabError, match="not among the notebook's pipeline-metrics"):
        client.optimize(
            notebook,
            search_space={"alpha": Search.uniform(0, 1)},
            objectives=[Objective("accuracy")],
        )


def test_the_cluster_trial_command_runs_the_notebook_and_prints_its_metrics(tmp_path: Path) -> None:
    """A notebook trial on Katib runs `python -m kubelab.workloads.optimizer.trial notebook
    PATH name=value...`; here the same command, in a plain process."""
    import os
    import subprocess

    from kubelab.workloads.base import ClusterContext
    from kubelab.workloads.optimizer import experiment as katib
    from kubelab.workloads.optimizer.workload import TuningWorkload

    write_notebook(tmp_path / "tune_me.ipynb")
    workload = TuningWorkload()
    spec = workload.validate(
        {
            "template": {"kind": "notebook", "path": "tune_me.ipynb"},
            "search_space": {"alpha": {"type": "uniform", "min": 0, "max": 1}},
        },
        tmp_path,
    )
    [experiment] = workload.manifests(
        spec, name="nb-exp", cluster=ClusterContext("alice", image="img")
    )
    run = katib.substitute(experiment, {"alpha": "0.25"}, trial_name="nb-exp-1")
    container = katib.primary_container(run, "training-container")
    assert container["command"][-1] == "/home/jovyan/tune_me.ipynb"
    assert container["workingDir"] == "/home/jovyan"
    command = [
        sys.executable,
        *container["command"][1:-1],
        str(tmp_path / "tune_me.ipynb"),
        *container["args"],
    ]
    trial = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert trial.returncode == 0, trial.stderr
    expected = sum((x / 100 - 0.25) ** 2 for x in range(100)) / 100 + 2 * 0.01
    last = trial.stdout.strip().splitlines()[-1]
    assert last.startswith("loss=") and float(last[5:]) == pytest.approx(expected)

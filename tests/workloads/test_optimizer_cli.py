"""`kubelab tune` from a terminal, and the trial command a cluster would run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from optimizer_helpers import assert_converts_to_v1job, assert_valid_experiment

from kubelab.workloads.optimizer import experiment as katib

FUNCTIONS = """\
def objective(parameters):
    return (parameters["x"] - 2) ** 2 + parameters["layers"] / 10


def broken(parameters):
    raise RuntimeError("out of memory")
"""


def kubelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dry_run_prints_the_experiment_a_cluster_runs(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    result = kubelab(
        "tune", "fns.py:objective", "-s", "x=uniform(-5,5)", "-s", "layers=choice(1,2,3)",
        "--algorithm", "tpe", "--seed", "2", "--trials", "6", "--parallel", "2", "--name", "fn-exp",
        "--backend", "kubernetes", "--namespace", "alice", "--image", "kubelab/notebook:1",
        "--pvc", "claim-alice", "--dry-run", "-o", "yaml",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    experiment = yaml.safe_load(result.stdout)
    assert_valid_experiment(experiment)
    assert experiment["metadata"]["namespace"] == "alice"
    job = experiment["spec"]["trialTemplate"]["trialSpec"]
    assert_converts_to_v1job(job)
    code = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "- -c\n" in result.stdout and "  - |\n" in result.stdout  # the source reads as a block
    assert code.startswith("def objective(parameters):")


def test_the_trial_command_runs_in_a_plain_interpreter_without_kubelab(tmp_path: Path) -> None:
    """What a Katib trial runs: the Job's command with the assignments substituted, in an
    image that need not have kubelab; the launcher casts and prints the metrics."""
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    result = kubelab(
        "tune", "fns.py:objective", "-s", "x=uniform(-5,5)", "-s", "layers=choice(1,2,3)",
        "--name", "fn-exp", "--dry-run", "-o", "json", cwd=tmp_path,
    )  # fmt: skip
    experiment = katib.apply_defaults(json.loads(result.stdout))
    run = katib.substitute(experiment, {"x": "2.5", "layers": "3"}, trial_name="fn-exp-1")
    container = katib.primary_container(run, "training-container")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    trial = subprocess.run(
        [sys.executable, "-I", *container["command"][1:], *container["args"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert trial.returncode == 0, trial.stderr
    assert trial.stdout == f"loss={(2.5 - 2) ** 2 + 3 / 10!r}\n"


def test_output_json_and_the_exit_code_follow_the_experiment(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    ok = kubelab(
        "tune",
        "fns.py:objective",
        "-s",
        "x=uniform(1,3)",
        "-s",
        "layers=choice(1)",
        "--trials",
        "3",
        "--output",
        "json",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["state"] == "succeeded" and len(summary["trials"]) == 3
    assert summary["best"]["metrics"]["loss"] == min(t["objective"] for t in summary["trials"])
    failed = kubelab(
        "tune", "fns.py:broken", "-s", "x=uniform(1,3)", "--trials", "4", "--max-failed", "1", "--output", "json", cwd=tmp_path
    )  # fmt: skip
    assert failed.returncode == 1
    summary = json.loads(failed.stdout)
    assert summary["state"] == "failed" and "RuntimeError: out of memory" in summary["message"]


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    result = kubelab("tune", "fns.py:objective", "-s", "x=normal(0,1)", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("kubelab: error: --search wants NAME=uniform(MIN,MAX)")
    result = kubelab("tune", "fns.py:objective", "-s", "x=uniform(3,1)", cwd=tmp_path)
    assert result.returncode == 2 and "min 3 is greater than max 1" in result.stderr
    assert "Traceback" not in result.stderr

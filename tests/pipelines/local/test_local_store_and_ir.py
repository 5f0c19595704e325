"""The run store (crash recovery, JSON shape) and the pure IR helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab.client.store import INTERRUPTED_ERROR, RunStore, default_db_path
from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local.conditions import evaluate_condition
from kubelab.pipelines.local.placeholders import resolve_command
from kubelab.pipelines.requirements import PipInstall


def test_default_path_follows_kubelab_home(kubelab_home: Path) -> None:
    assert default_db_path() == kubelab_home / "kubelab.db"
    store = RunStore()
    assert store.path.exists()
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_left_running_by_dead_process_is_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    # A real process creates a run, starts a task, and dies without finishing it.
    script = (
        "import os, sys\n"
        "from kubelab.client.store import RunStore\n"
        f"s = RunStore({str(db)!r})\n"
        "rid = s.create_run('p', {'a': 1}, run_id='crashed')\n"
        "s.update_run(rid, state='running')\n"
        "s.add_task(rid, 'train'); s.update_task(rid, 'train', state='running')\n"
        "s.add_task(rid, 'eval')\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    run = RunStore(db).get_run("crashed")
    assert run["state"] == "failed"
    assert run["error"] == INTERRUPTED_ERROR
    assert {s["name"]: s["state"] for s in run["steps"]} == {"train": "failed", "eval": "cancelled"}


def test_live_owner_is_not_interrupted(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    rid = store.create_run("p", {})
    store.update_run(rid, state="running")
    assert RunStore(tmp_path / "runs.db").get_run(rid)["state"] == "running"


def test_run_json_shape_and_lookup(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    rid = store.create_run("p", {"x": 1}, source="nb.ipynb")
    store.add_task(rid, "train", display_name="Train", metadata={"cells": [3, 4]})
    store.update_task(
        rid,
        "train",
        state="succeeded",
        started_at=10.0,
        finished_at=12.5,
        outputs={"acc": 0.5},
        attempts=1,
    )
    run = store.get_run(rid[:12])  # a unique prefix is enough
    assert set(run) == {
        "id",
        "name",
        "number",
        "label",
        "origin",
        "kind",
        "backend",
        "state",
        "created_at",
        "finished_at",
        "parameters",
        "outputs",
        "metrics",
        "error",
        "source",
        "warnings",
        "experiment",
        "experiment_id",
        "steps",
    }
    assert (run["number"], run["label"], run["origin"]) == (1, "#1", {})
    step = run["steps"][0]
    assert step["duration_s"] == 2.5
    assert step["cached_from"] is None and step["failed_at"] is None
    assert run["warnings"] == [] and step["warnings"] == [] and step["marshal"] == {}
    assert step["cells"] == [3, 4]
    assert step["display_name"] == "Train"
    assert step["started_at"].endswith("Z")
    assert store.list_runs()[0] == run
    with pytest.raises(NotFoundError):
        store.get_run("nope")
    with pytest.raises(NotFoundError, match="steps: train"):
        store.task_info(rid, "missing")
    assert store.task_info(rid, "Train")["name"] == "train"


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("int(inputs.parameter_values['a']) > 5", {"a": 7}, True),
        ("!(int(inputs.parameter_values['a']) > 5)", {"a": 7}, False),
        ("inputs.parameter_values['c'] == 'heads'", {"c": "heads"}, True),
        (
            "inputs.parameter_values['c'] == 'heads' && int(inputs.parameter_values['a']) < 3",
            {"c": "heads", "a": 5},
            False,
        ),
        (
            "inputs.parameter_values['c'] == 'x' || double(inputs.parameter_values['f']) >= 0.5",
            {"c": "y", "f": 0.5},
            True,
        ),
        ("string(inputs.parameter_values['b']) == 'true'", {"b": True}, True),
    ],
)
def test_conditions(condition: str, values: dict, expected: bool) -> None:
    assert evaluate_condition(condition, values, task="t") is expected


def test_bad_condition_names_task() -> None:
    with pytest.raises(KubelabError, match=r"task 'cond-1'.*unknown input 'zz'"):
        evaluate_condition("inputs.parameter_values['zz'] > 1", {}, task="cond-1")


def test_placeholders_resolve_like_kfp() -> None:
    executor_input = {
        "inputs": {
            "parameterValues": {"n": 3, "s": "hi", "opt": None},
            "artifacts": {"d": {"artifacts": [{"uri": "/data/d", "metadata": {}}]}},
        },
        "outputs": {
            "parameters": {"p": {"outputFile": "/out/p"}},
            "artifacts": {"m": {"artifacts": [{"uri": "/out/m", "metadata": {}}]}},
            "outputFile": "/out/executor_output.json",
        },
    }
    names = {
        "job_name": "run-1",
        "job_id": "run-1",
        "task_name": "t",
        "task_id": "run-1/t",
        "pipeline_root": "/root",
    }
    command = [
        "prog",
        "{{$.inputs.parameters['n']}}",
        "--s={{$.inputs.parameters['s']}}",
        "{{$.inputs.artifacts['d'].path}}",
        "{{$.outputs.artifacts['m'].uri}}",
        "{{$.outputs.parameters['p'].output_file}}",
        "{{$.outputs.output_file}}",
        "{{$.pipeline_job_name}}/{{$.pipeline_task_name}}",
        json.dumps({"IfPresent": {"InputName": "s", "Then": ["--has-s"], "Else": ["--no-s"]}}),
        json.dumps({"IfPresent": {"InputName": "opt", "Then": ["--opt"]}}),
        json.dumps({"Concat": ["x-", "{{$.inputs.parameters['n']}}"]}),
    ]
    assert resolve_command(command, executor_input, names) == [
        "prog",
        "3",
        "--s=hi",
        "/data/d",
        "/out/m",
        "/out/p",
        "/out/executor_output.json",
        "run-1/t",
        "--has-s",
        "x-3",
    ]
    whole = resolve_command(["{{$}}"], executor_input, names)
    assert json.loads(whole[0]) == executor_input


def test_python_executor_shape_and_packages() -> None:
    container = {
        "command": [
            "sh",
            "-c",
            '\nif ! [ -x "$(command -v pip)" ]; then\n    python3 -m ensurepip\nfi\n\n'
            "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet "
            "--no-warn-script-location 'kubelab==0.1.0' 'pandas>=2' 'numpy' && \"$0\" \"$@\"\n",
            "sh",
            "-ec",
            "program_path=$(mktemp -d)\n_KFP_RUNTIME=true python3 -m "
            "kubelab.pipelines.executor_main --component_module_path ...\n",
            "def f(): pass\n",
        ],
        "args": ["--executor_input", "{{$}}", "--function_to_execute", "f"],
    }
    executor = irutil.python_executor(container)
    assert executor is not None
    assert executor.function_name == "f"
    assert executor.source == "def f(): pass\n"
    assert executor.packages == ("pandas>=2", "numpy")
    assert irutil.python_executor({"command": ["echo", "hi"]}) is None


def test_cli_values_and_expression_selector() -> None:
    assert irutil.parse_cli_value("3", "NUMBER_INTEGER", name="n") == 3
    assert irutil.parse_cli_value("0.5", "NUMBER_DOUBLE", name="f") == 0.5
    assert irutil.parse_cli_value("false", "BOOLEAN", name="b") is False
    assert irutil.parse_cli_value("[1, 2]", "LIST", name="l") == [1, 2]
    with pytest.raises(KubelabError, match="parameter 'n': expected int"):
        irutil.parse_cli_value("2.5", "NUMBER_INTEGER", name="n")
    value = irutil.apply_expression_selector(
        '{"a": {"b": [5, 6]}}', 'parseJson(string_value)["a"]["b"][1]', task="t"
    )
    assert value == 6


def test_load_ir_file_takes_the_first_yaml_document(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "# PIPELINE DEFINITION\n# Name: p\n"
        "pipelineInfo: {name: p}\nroot: {dag: {tasks: {}}}\nschemaVersion: 2.1.0\n"
        "---\nplatforms: {kubernetes: {deploymentSpec: {executors: {}}}}\n"
    )
    assert irutil.load_ir_file(path)["pipelineInfo"] == {"name": "p"}
    path.write_text("platforms: {}\n")
    with pytest.raises(KubelabError, match="not a compiled pipeline"):
        irutil.load_ir_file(path)
    with pytest.raises(KubelabError, match="cannot read"):
        irutil.load_ir_file(tmp_path / "missing.yaml")


def test_preload_takes_fork_safe_and_kubelab_imports_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab.pipelines.local.preload import preload_candidates

    source = (
        "from kubelab.pipelines import dsl\n"
        "def f():\n    import numpy as np\n    import json\n    from sklearn.linear_model import X\n"
        "    import not_installed_anywhere_xyz\n"
    )
    executor = irutil.PythonExecutor(source=source, function_name="f", pip=PipInstall())
    monkeypatch.setenv("KUBELAB_PRELOAD", "csv")
    found = preload_candidates([executor])
    assert {"numpy", "sklearn", "sklearn.linear_model", "kubelab.pipelines", "csv"} <= found
    assert "json" not in found  # not on the fork-safe list
    assert "not_installed_anywhere_xyz" not in found


def test_jobs_share_the_store_and_old_files_are_migrated(tmp_path: Path) -> None:
    import sqlite3

    # A store file written before jobs existed: no kind/backend/spec columns.
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.executescript(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,"
        " created_at REAL NOT NULL, finished_at REAL, parameters TEXT NOT NULL DEFAULT '{}',"
        " metrics TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}', error TEXT,"
        " source TEXT, pipeline_root TEXT, owner_pid INTEGER, owner_host TEXT,"
        " cancel_requested INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO runs (id, name, state, created_at) VALUES ('r1', 'p', 'succeeded', 1.0);"
        "INSERT INTO runs (id, name, state, created_at) VALUES ('r2', 'p', 'succeeded', 2.0);"
    )
    conn.commit()
    conn.close()
    store = RunStore(old)
    assert store.get_run("r1")["kind"] == "pipeline"
    # Runs that existed before numbering get their numbers in the order they were made.
    assert [store.get_run(r)["label"] for r in ("r1", "r2")] == ["#1", "#2"]
    job = store.create_run("fit", {}, kind="training", spec={"num_nodes": 2})
    assert store.run_info(job)["spec"] == {"num_nodes": 2}
    assert [r["id"] for r in store.list_runs()] == ["r2", "r1"]
    assert {r["id"] for r in store.list_runs(kinds=("pipeline", "training"))} == {"r1", "r2", job}
    with pytest.raises(ValueError, match="unknown kind"):
        store.create_run("x", {}, kind="nonsense")


def test_runs_are_numbered_per_notebook_and_labelled_by_origin(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    first = store.create_run("demo", {"n": 50}, source="/w/demo.ipynb")
    other = store.create_run("other", {}, source="/w/other.ipynb")
    store.update_run(first, origin={"arguments": {"n_estimators": 50, "kind": "rf"}})
    again = store.create_run("demo", {}, source="/w/demo.ipynb")
    store.update_run(again, origin={"rerun_of": first, "rerun_of_number": 1})
    partial = store.create_run("demo", {}, source="/w/demo.ipynb")
    store.update_run(partial, origin={"from_run": again, "from_step": "train_forest"})
    job = store.create_run("fit", {}, source="/w/demo.ipynb", kind="training")
    labels = {r["id"]: r["label"] for r in store.list_runs(kinds=("pipeline", "training"))}
    assert labels == {
        first: "#1 · n_estimators=50, kind=rf",
        other: "#1",
        again: "#2 · re-run of #1",
        partial: "#3 · from train_forest",
        job: "#1",  # jobs count apart from pipeline runs
    }

    # A cached step names the run that computed its result.
    store.add_task(again, "train")
    store.update_task(again, "train", state="succeeded", started_at=10.0, finished_at=10.256)
    store.cache_put("key-1", {"parameters": {}}, again, "train")
    store.add_task(partial, "train")
    store.update_task(partial, "train", cached=1, cached_from=store.cache_origin("key-1"))
    assert store.get_run(partial)["steps"][0]["cached_from"] == {
        "run": again,
        "task": "train",
        "number": 2,
        "duration_s": 0.256,  # what the cache saved
    }
    assert store.cache_origin("no-such-key") is None


def test_metric_series_and_delete(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    job = store.create_run("fit", {}, kind="training")
    store.add_task(job, "node-0")
    for epoch, loss in enumerate([0.9, 0.5, 0.25]):
        store.add_metrics(job, {"loss": loss}, task="node-0", step=epoch)
    series = store.metric_series(job)
    assert [p["value"] for p in series["node-0"]["loss"]] == [0.9, 0.5, 0.25]
    assert [p["step"] for p in series["node-0"]["loss"]] == [0, 1, 2]
    store.delete_run(job)
    with pytest.raises(NotFoundError):
        store.get_run(job)
    assert store.metric_series(job) == {}

"""`kubelab runs compare`: what changed between runs — parameters, metrics, code, data."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from lineage_notebooks import THREE_STEPS, run, three_step_notebook, write_notebook

from kubelab.client import Client
from kubelab.client.cli.main import main
from kubelab.pipelines.errors import KubelabError, NotFoundError

WITH_METRICS = [*THREE_STEPS, ("score", "pipeline-metrics")]


def test_a_changed_cell_and_parameter_show_with_a_diff_and_the_cached_steps(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    (client.root / "data.csv").write_text("1,2\n3,4\n")
    notebook = write_notebook(client.root / "model.ipynb", WITH_METRICS)
    first = run(client, notebook)
    notebook.write_text(
        notebook.read_text().replace("data.mean(axis=0) * scale", "data.max(axis=0) * scale")
    )
    second = run(client, notebook, arguments={"scale": 0.5})

    comparison = client.compare_runs([first["id"], second["id"][:-2]])
    assert [r["id"] for r in comparison["runs"]] == [first["id"], second["id"]]
    assert comparison["source_changed"] is True
    params = {p["name"]: p for p in comparison["parameters"]}
    assert params["scale"]["values"] == [2.0, 0.5] and params["scale"]["changed"]
    assert params["seed"]["values"] == [0, 0] and not params["seed"]["changed"]
    metrics = {m["name"]: m for m in comparison["metrics"]}
    assert metrics["score"]["values"] == [10.0, 3.5] and metrics["score"]["changed"]

    steps = {s["step"]: s for s in comparison["steps"]}
    assert steps["load"]["cached"] == [False, True]
    assert not steps["load"]["code_changed"] and steps["load"]["diffs"] == [None, None]
    train = steps["train"]
    assert train["code_changed"] and train["cached"] == [False, False]
    assert train["cells"] == [[3], [3]]
    diff = train["diffs"][1]
    assert "# cell 3" in diff
    assert "-model = data.mean(axis=0) * scale" in diff
    assert "+model = data.max(axis=0) * scale" in diff
    assert diff.startswith(f"--- {first['id']}/train\n+++ {second['id']}/train\n")
    assert train["parameters_changed"]
    evaluate = steps["evaluate"]
    assert not evaluate["code_changed"] and evaluate["inputs_changed"]
    inputs = {(i["step"], i["name"]): i for i in comparison["inputs"]}
    assert (
        inputs[("evaluate", "model")]["changed"] and not inputs[("evaluate", "model")]["external"]
    )
    assert not inputs[("train", "data")]["changed"]  # load was cached: the same data
    outputs = {(o["step"], o["name"]): o for o in comparison["outputs"]}
    assert outputs[("train", "model")]["changed"]
    assert not outputs[("load", "data")]["changed"]
    assert comparison["environment"]["changed"] is False

    assert main(["runs", "compare", first["id"], second["id"]]) == 0
    text = capsys.readouterr().out
    assert "* scale" in text and "  seed" not in text  # unchanged rows are left out
    assert "code changed" in text and "+model = data.max(axis=0) * scale" in text
    assert "cached" in text
    assert main(["runs", "compare", first["id"], second["id"], "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == comparison["steps"]


def test_a_changed_cell_and_a_changed_data_file_both_show(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook)
    (client.root / "data.csv").write_text("1,2\n3,5\n")
    notebook.write_text(notebook.read_text().replace("model.sum()", "model.sum() + 1"))
    second = run(client, notebook)
    comparison = client.compare_runs([first["id"], second["id"]])
    # The data file load read (the engine's read audit) is input data that changed...
    data = [i for i in comparison["inputs"] if i["external"]]
    assert [(i["step"], i["name"], i["changed"]) for i in data] == [("load", "read:data.csv", True)]
    assert data[0]["uris"] == [str(client.root / "data.csv")] * 2
    steps = {s["step"]: s for s in comparison["steps"]}
    assert steps["load"]["inputs_changed"] and not steps["load"]["code_changed"]
    assert steps["load"]["cached"] == [False, False]  # the changed file invalidated the cache
    # ...and the edited cell is a code change of its step, with its diff.
    assert [s for s, row in steps.items() if row["code_changed"]] == ["evaluate"]
    assert "+score = float(model.sum() + 1)" in steps["evaluate"]["diffs"][1]
    main(["runs", "compare", first["id"], second["id"]])
    text = capsys.readouterr().out
    assert "load read:data.csv" in text and "inputs changed" in text
    assert "code changed" in text


PIPELINE = """
from kubelab.pipelines import dsl

@dsl.component
def count(data: dsl.Input[dsl.Dataset]) -> int:
    return len(open(data.path).read().split())

@dsl.pipeline(name="words")
def words(path: str) -> int:
    imported = dsl.importer(artifact_uri=path, artifact_class=dsl.Dataset, reimport=True)
    return count(data=imported.output).output
"""


def test_imported_data_and_component_code_changes(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    source = client.root / "words.py"
    source.write_text(textwrap.dedent(PIPELINE))
    data = client.root / "words.txt"
    data.write_text("a b\n")
    first = run(client, source, arguments={"path": str(data)})
    data.write_text("a b c\n")
    source.write_text(source.read_text().replace(".split())", ".split()) * 10"))
    second = run(client, source, arguments={"path": str(data)})

    comparison = client.compare_runs([first["id"], second["id"]])
    imported = [i for i in comparison["inputs"] if i["external"]]
    assert len(imported) == 1 and imported[0]["changed"] and imported[0]["type"] == "system.Dataset"
    assert imported[0]["uris"] == [str(data), str(data)]
    count = next(s for s in comparison["steps"] if s["name"] == "count")
    assert count["code_changed"] and "* 10" in count["diffs"][1]
    assert count["inputs_changed"]
    outputs = {(o["step"], o["name"]): o["values"] for o in comparison["output_parameters"]}
    assert outputs[("count", "Output")] == [2, 30]
    main(["runs", "compare", first["id"], second["id"]])
    text = capsys.readouterr().out
    assert "INPUT DATA" in text and "inputs changed" in text


def report_loss(lr: float, epochs: int = 3) -> None:
    from kubelab.workloads import report

    for epoch in range(epochs):
        report(step=epoch, loss=1.0 / (1 + lr * (epoch + 1)))


def wait_job(client: Client, job_id: str) -> dict:
    job = client.wait_for_job(job_id, timeout=180)
    assert job["state"] == "succeeded", job
    return job


def test_training_jobs_compare_with_their_metric_series(client: Client) -> None:
    from kubelab.workloads.trainer.spec import function_source

    spec = {"function": function_source(report_loss)}
    slow = client.create_job("training", {**spec, "func_args": {"lr": 0.1}})
    fast = client.create_job("training", {**spec, "func_args": {"lr": 1.0}}, experiment_name="lr")
    wait_job(client, slow)
    wait_job(client, fast)

    comparison = client.compare_runs([slow, fast])
    assert [r["kind"] for r in comparison["runs"]] == ["training", "training"]
    assert [r["experiment"] for r in comparison["runs"]] == ["Default", "lr"]
    assert comparison["runs"][0]["source"]["digest"]  # the function's code, snapshotted
    params = {p["name"]: p for p in comparison["parameters"]}
    assert params["lr"]["values"] == [0.1, 1.0] and params["lr"]["changed"]
    metrics = {m["name"]: m for m in comparison["metrics"]}
    assert metrics["loss"]["values"] == [pytest.approx(1 / 1.3), pytest.approx(1 / 4)]
    series = next(s for s in comparison["series"] if s["metric"] == "loss")
    assert series["task"] == "node-0"
    assert [[p["step"] for p in points] for points in series["runs"]] == [[0, 1, 2]] * 2
    assert [p["value"] for p in series["runs"][1]] == pytest.approx([1 / 2, 1 / 3, 1 / 4])

    # One node of each job, as one compares two trials of a tuning experiment.
    nodes = client.compare_runs([f"{slow}/node-0", f"{fast}/node-0"])
    assert [r["step"] for r in nodes["runs"]] == ["node-0", "node-0"]
    assert {m["name"]: m["values"] for m in nodes["metrics"]}["loss"] == [
        pytest.approx(1 / 1.3),
        pytest.approx(1 / 4),
    ]
    assert nodes["steps"] == []


def test_refusals_name_the_problem(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook)
    with pytest.raises(KubelabError, match="at least two"):
        client.compare_runs([first["id"]])
    with pytest.raises(NotFoundError, match="nope"):
        client.compare_runs([first["id"], "nope"])
    with pytest.raises(KubelabError, match="at most 10"):
        client.compare_runs([first["id"]] * 11)
    assert main(["runs", "compare", first["id"], "nope"]) == 2


def test_a_run_compared_with_itself_changes_nothing(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook)
    time.sleep(0.01)
    comparison = client.compare_runs([first["id"], first["id"]])
    rows = (
        comparison["parameters"]
        + comparison["metrics"]
        + comparison["inputs"]
        + comparison["outputs"]
    )
    assert rows and not any(r["changed"] for r in rows)
    assert not any(s["code_changed"] for s in comparison["steps"])


def loss_curve(parameters):
    from kubelab.workloads import report

    for epoch in range(1, 5):
        report(step=epoch, loss=1.0 / (1 + parameters["lr"] * epoch))


def test_two_tuning_trials_compare_their_parameters_and_objective_curves(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Katib's UI compares of two trials: the parameters, the objective and its
    curve per step, one line per trial in the same chart."""
    from kubelab.workloads.optimizer import (
        GridSearch,
        Objective,
        OptimizerClient,
        Search,
        TrialConfig,
    )

    tuner = OptimizerClient(root=client.root)
    name = tuner.optimize(
        loss_curve,
        search_space={"lr": Search.choice([0.1, 1.0])},
        objectives=[Objective(metric="loss", direction="minimize")],
        algorithm=GridSearch(),
        trial_config=TrialConfig(num_trials=2, parallel_trials=2),
    )
    job = tuner.wait_for_job_status(name, timeout=180, polling_interval=0.2)
    assert job.status == "Complete", job.message
    trials = {t.parameters["lr"]: t.name for t in job.trials}
    refs = [f"{name}/{trials[0.1]}", f"{name}/{trials[1.0]}"]

    comparison = client.compare_runs(refs)
    assert [(r["kind"], r["step"]) for r in comparison["runs"]] == [
        ("tuning", trials[0.1]),
        ("tuning", trials[1.0]),
    ]
    [lr] = comparison["parameters"]
    assert (lr["name"], lr["values"], lr["changed"]) == ("lr", [0.1, 1.0], True)
    [loss] = comparison["metrics"]
    assert loss["name"] == "loss" and loss["changed"]
    assert loss["values"] == [pytest.approx(1 / 1.4), pytest.approx(1 / 5)]
    assert loss["values"][1] == pytest.approx(job.best_trial.objective)
    # One row for the objective's curve, a line per trial, aligned by step.
    [curve] = comparison["series"]
    assert (curve["task"], curve["metric"]) == ("", "loss")
    assert [[p["step"] for p in line] for line in curve["runs"]] == [[1, 2, 3, 4]] * 2
    for lr_value, line in zip((0.1, 1.0), curve["runs"], strict=True):
        expected = [1 / (1 + lr_value * epoch) for epoch in range(1, 5)]
        assert [p["value"] for p in line] == pytest.approx(expected)
    assert comparison["steps"] == [] and comparison["outputs"] == []

    # The same from the CLI, as JSON.
    assert main(["runs", "compare", *refs, "--output", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["series"] == comparison["series"]

"""`kubelab runs export --mlflow`: read back with MLflow's own client from a file store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from lineage_notebooks import THREE_STEPS, run, write_notebook

from kubelab.client import Client
from kubelab.client.cli.main import main


def report_loss(lr: float) -> None:
    from kubelab.workloads import report

    for epoch in range(3):
        report(step=epoch, loss=1.0 / (1 + lr * (epoch + 1)))


def test_runs_and_jobs_read_back_with_mlflows_client(
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubelab.workloads.trainer.spec import function_source

    (client.root / "data.csv").write_text("1,2\n3,4\n")
    notebook = write_notebook(
        client.root / "model.ipynb", [*THREE_STEPS, ("score", "pipeline-metrics")]
    )
    pipeline_run = run(client, notebook, arguments={"scale": 3.0}, experiment_name="wine")
    job = client.create_job(
        "training", {"function": function_source(report_loss), "func_args": {"lr": 1.0}}
    )
    assert client.wait_for_job(job, timeout=120)["state"] == "succeeded"

    store = tmp_path / "mlruns"
    assert (
        main(["runs", "export", "--mlflow", str(store), pipeline_run["id"], job, "-o", "json"]) == 0
    )
    exported = {e["run"]: e for e in json.loads(capsys.readouterr().out)}
    assert {e["status"] for e in exported.values()} == {"exported"}

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in to file stores
    reader = mlflow.MlflowClient(store.as_uri())
    experiment = reader.get_experiment_by_name("wine")
    found = reader.get_run(exported[pipeline_run["id"]]["mlflow_run_id"])
    assert found.info.experiment_id == experiment.experiment_id
    assert found.info.status == "FINISHED"
    assert found.info.run_name == pipeline_run["name"]
    assert found.data.params == {"scale": "3.0", "seed": "0"}
    assert found.data.metrics == {"score": 15.0}
    tags = found.data.tags
    facts = client.run_lineage(pipeline_run["id"])
    assert tags["kubelab.run_id"] == pipeline_run["id"]
    assert tags["mlflow.source.name"] == str(notebook.resolve())
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["kubelab.source.digest"] == facts["source"]["digest"]
    assert tags["kubelab.environment.digest"] == facts["environment"]["digest"]
    model = next(a for s in facts["steps"] if s["name"] == "train" for a in s["outputs"])
    assert tags["kubelab.output.train.model"] == f"{model['digest']} {model['uri']}"
    assert tags["kubelab.input.train.data"].startswith(model["digest"].split(":")[0])
    assert tags["kubelab.step.train.cached"] == "false"
    listed = {a.path for a in reader.list_artifacts(found.info.run_id)}
    assert {"source", "code", "train", "load", "environment.txt"} <= listed
    model_files = {a.path for a in reader.list_artifacts(found.info.run_id, "train/model")}
    assert "train/model/kubelab-marshal.json" in model_files
    downloaded = Path(
        reader.download_artifacts(found.info.run_id, "source/model.ipynb", str(tmp_path))
    )
    assert downloaded.read_bytes() == Path(facts["source"]["snapshot"]).read_bytes()

    trained = reader.get_run(exported[job]["mlflow_run_id"])
    assert trained.data.params == {"lr": "1.0"}
    assert trained.data.tags["mlflow.source.type"] == "JOB"
    history = reader.get_metric_history(trained.info.run_id, "loss")
    assert [(m.step, round(m.value, 4)) for m in history] == [(0, 0.5), (1, 0.3333), (2, 0.25)]

    # Exporting again finds what is there instead of writing it twice.
    again = client.export_to_mlflow(str(store), [pipeline_run["id"]])
    assert again[0]["status"] == "exists"
    assert again[0]["mlflow_run_id"] == found.info.run_id

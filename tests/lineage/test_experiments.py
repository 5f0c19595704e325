"""Experiments: one per notebook by default, named with --experiment, listed, renamed, archived."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lineage_notebooks import run, three_step_notebook

from kubelab.client import Client
from kubelab.client.cli.main import main
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_experiments_end_to_end_from_the_cli(
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # experiments are named under the home folder
    notebook = three_step_notebook(client.root)
    by_notebook = run(client, notebook)
    assert by_notebook["experiment"] == "work/model.ipynb"
    assert main(["run", str(notebook), "--experiment", "tuning lr", "-p", "scale=1.5"]) == 0
    capsys.readouterr()

    experiments = cli_json(capsys, "experiments", "list")
    assert [(e["name"], e["runs"], e["states"]) for e in experiments] == [
        ("tuning lr", 1, {"succeeded": 1}),
        ("work/model.ipynb", 1, {"succeeded": 1}),
    ]
    named = experiments[0]
    runs = cli_json(capsys, "runs", "list", "--experiment", "tuning lr")
    assert [r["parameters"]["scale"] for r in runs] == [1.5]

    renamed = cli_json(capsys, "experiments", "rename", str(named["id"]), "learning rate")
    assert renamed["id"] == named["id"] and renamed["name"] == "learning rate"
    assert client.get_run(runs[0]["id"])["experiment"] == "learning rate"
    assert main(["experiments", "rename", "learning rate", "work/model.ipynb"]) == 2
    assert "already exists" in capsys.readouterr().err

    archived = cli_json(capsys, "experiments", "archive", "learning rate")
    assert archived["archived"] is True
    assert [e["name"] for e in cli_json(capsys, "experiments", "list")] == ["work/model.ipynb"]
    assert [r["id"] for r in cli_json(capsys, "runs", "list")] == [by_notebook["id"]]
    assert len(cli_json(capsys, "runs", "list", "--archived")) == 2
    assert len(cli_json(capsys, "runs", "list", "--experiment", "learning rate")) == 1
    assert len(cli_json(capsys, "experiments", "list", "--archived")) == 2
    # As in KFP, an archived experiment takes no new runs.
    assert main(["run", str(notebook), "--experiment", "learning rate"]) == 2
    assert "is archived" in capsys.readouterr().err
    cli_json(capsys, "experiments", "unarchive", str(named["id"]))
    assert len(cli_json(capsys, "runs", "list")) == 2

    assert main(["experiments", "show", "learning rate"]) == 0
    shown = capsys.readouterr().out
    assert "learning rate" in shown and runs[0]["id"] in shown
    assert main(["experiments", "list"]) == 0
    assert "learning rate" in capsys.readouterr().out


def test_reruns_stay_in_their_experiment_and_the_python_api(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    created = client.create_experiment("baseline", "the first model")
    assert created["description"] == "the first model" and created["runs"] == 0
    assert client.create_experiment("baseline")["id"] == created["id"]
    first = run(client, notebook, experiment_name="baseline")
    rerun = client.wait_for_run_completion(client.rerun(first["id"]), 120)
    assert rerun["experiment"] == "baseline"
    again = client.wait_for_run_completion(client.run_from(first["id"], "train"), 120)
    assert again["experiment"] == "baseline"
    import kubelab

    result = kubelab.run_notebook(
        notebook, store=client.store, on_event=lambda event: None, experiment="baseline"
    )
    assert result.run()["experiment"] == "baseline"
    assert client.get_experiment(experiment_name="baseline")["runs"] == 4
    assert {r["id"] for r in client.list_runs(experiment=created["id"])} == {
        first["id"],
        rerun["id"],
        again["id"],
        result.run_id,
    }


def test_bad_names_and_unknown_experiments(client: Client) -> None:
    with pytest.raises(KubelabError, match="non-empty"):
        client.create_experiment("  ")
    with pytest.raises(KubelabError, match="printable"):
        client.create_experiment("a\nb")
    with pytest.raises(NotFoundError, match="no experiment"):
        client.rename_experiment("nope", "x")
    with pytest.raises(NotFoundError, match="no experiment"):
        client.list_runs(experiment="nope")
    client.create_experiment("a")
    client.create_experiment("b")
    with pytest.raises(ConflictError):
        client.rename_experiment("a", "b")

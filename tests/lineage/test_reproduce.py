"""`kubelab runs reproduce`: the stored snapshot again, no cache, digest by digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lineage_notebooks import run, three_step_notebook, write_notebook

from kubelab.client import Client
from kubelab.client.cli.main import main
from kubelab.pipelines.errors import KubelabError

RANDOM_STEP = [
    ("import numpy as np", "imports"),
    ("size = 3", "pipeline-parameters"),
    ("base = np.arange(size, dtype=float)", "step:prepare"),
    ("noise = np.random.rand(size)", "step:sample"),  # unseeded
    ("total = base + noise", "step:combine"),
]


def test_a_deterministic_notebook_reproduces_digest_for_digest(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = three_step_notebook(client.root)
    original = run(client, notebook, arguments={"scale": 4.0})
    # Edits made since do not matter: the snapshot that ran is what runs again.
    notebook.write_text(notebook.read_text().replace("* scale", "* scale * 2"))
    report = client.reproduce_run(original["id"], timeout=120)
    assert report["equal"] is True and report["state"] == "succeeded"
    assert report["warnings"] == []
    assert report["environment"]["equal"]
    names = {(a["step"], a["name"]) for a in report["artifacts"]}
    assert names == {("load", "data"), ("train", "model")}
    assert all(a["equal"] and a["original"] for a in report["artifacts"])

    again = client.get_run(report["reproduction"])
    assert again["parameters"] == original["parameters"]
    assert again["experiment"] == original["experiment"]
    assert not any(s["cached"] for s in again["steps"])  # no cache
    facts = client.run_lineage(again["id"])
    assert facts["reproduces"] == original["id"]
    assert facts["source"]["digest"] == client.run_lineage(original["id"])["source"]["digest"]

    assert main(["runs", "reproduce", original["id"]]) == 0
    assert "all outputs are identical" in capsys.readouterr().out


def test_an_unseeded_random_step_is_named(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write_notebook(client.root / "random.ipynb", RANDOM_STEP)
    original = run(client, notebook)
    report = client.reproduce_run(original["id"], timeout=120)
    assert report["equal"] is False
    by_name = {(a["step"], a["name"]): a for a in report["artifacts"]}
    assert by_name[("prepare", "base")]["equal"] is True
    assert by_name[("sample", "noise")]["equal"] is False
    assert by_name[("sample", "noise")]["original"] != by_name[("sample", "noise")]["reproduced"]

    assert main(["runs", "reproduce", original["id"], "--output", "json"]) == 1
    cli_report = json.loads(capsys.readouterr().out)
    different = [(a["step"], a["name"]) for a in cli_report["artifacts"] if not a["equal"]]
    assert different == [("sample", "noise")]
    assert main(["runs", "reproduce", original["id"]]) == 1
    assert "DIFFERENT sample noise" in capsys.readouterr().out


def test_changed_input_data_is_named(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    original = run(client, notebook)
    (client.root / "data.csv").write_text("5,6\n7,8\n")
    report = client.reproduce_run(original["id"], timeout=120)
    assert report["equal"] is False
    assert report["warnings"] == [
        "input data differs from what the original run read: load read:data.csv"
    ]


def test_a_different_environment_is_a_warning(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = three_step_notebook(client.root)
    original = run(client, notebook)
    # A distribution appears on sys.path, as after a pip install.
    site = tmp_path / "site"
    (site / "extra_tool-1.2.3.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    report = client.reproduce_run(original["id"], timeout=120)
    assert report["equal"] is True  # same outputs, but say the environment moved
    assert not report["environment"]["equal"]
    assert report["environment"]["differences"]["added"] == ["extra-tool==1.2.3"]
    assert len(report["warnings"]) == 1 and "environment differs" in report["warnings"][0]


def test_only_local_pipeline_runs_with_a_snapshot(client: Client) -> None:
    from kubelab.workloads.trainer.spec import function_source

    def noop() -> None:
        pass

    job = client.create_job("training", {"function": function_source(noop)})
    client.wait_for_job(job, timeout=120)
    with pytest.raises(KubelabError, match="reproduce re-runs local pipeline runs"):
        client.reproduce_run(job)
    # A run recorded before kubelab kept snapshots.
    old = client.store.create_run("p", {}, source=None)
    client.store.update_run(old, state="succeeded")
    with pytest.raises(KubelabError, match="no stored pipeline snapshot"):
        client.reproduce_run(old)

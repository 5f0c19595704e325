"""What a run records (ML Metadata's model) and the lineage walk back from a model."""

from __future__ import annotations

import json
import platform
import sqlite3
import subprocess
from pathlib import Path

import pytest
from lineage_notebooks import run, three_step_notebook, write_notebook

from kubelab.client import Client
from kubelab.client.cli.main import main
from kubelab.client.lineage import ENVIRONMENT
from kubelab.client.provenance import sha256_digest
from kubelab.client.store import RunStore
from kubelab.pipelines.errors import NotFoundError


def test_a_model_traces_back_to_the_notebook_snapshot_and_parameters(
    client: Client, tmp_path: Path
) -> None:
    notebook = three_step_notebook(client.root)
    written = notebook.read_bytes()
    first = run(client, notebook, arguments={"scale": 3.0})

    graph = client.artifact_lineage(f"{first['id']}/train/model")
    model = graph["artifact"]
    assert model["name"] == "model"
    assert model["type"] == "system.Artifact"
    assert model["properties"]["value_type"] == "numpy.ndarray"
    assert model["digest"].startswith("sha256:") or ":" in model["digest"]
    executions = {e["id"]: e for e in graph["executions"]}
    train = executions[model["producer"]]
    assert train["run"] == first["id"]
    assert train["properties"]["step"] == "train"
    assert train["properties"]["cells"] == [3]
    assert train["properties"]["inputs"] == {"scale": 3.0}
    # train read `data`, which load wrote: the walk goes on to load.
    data_edge = next(
        e for e in graph["edges"] if e["execution"] == train["id"] and e["type"] == "INPUT"
    )
    data = next(a for a in graph["artifacts"] if a["id"] == data_edge["artifact"])
    assert data_edge["name"] == "data"
    assert executions[data["producer"]]["properties"]["step"] == "load"
    # evaluate consumed the model.
    assert [c["step"] for c in graph["consumers"]] == ["evaluate"]

    facts = graph["runs"][first["id"]]
    assert facts["parameters"] == {"scale": 3.0, "seed": 0}
    assert facts["experiment"] == first["experiment"] == str(notebook.resolve())
    assert facts["source"]["path"] == str(notebook.resolve())
    assert facts["source"]["digest"] == sha256_digest(written)
    assert facts["environment"]["python"] == platform.python_version()
    assert facts["user"]

    # The snapshot keeps what ran, whatever happens to the notebook afterwards.
    notebook.write_text(notebook.read_text().replace("* scale", "* scale * 10"))
    assert Path(facts["source"]["snapshot"]).read_bytes() == written
    second = run(client, notebook)
    second_facts = client.run_lineage(second["id"])
    assert second_facts["source"]["digest"] != facts["source"]["digest"]
    # One environment, its distribution list stored once.
    store = client.store
    environments = store.query(
        "SELECT COUNT(*) FROM artifacts WHERE type_id=?",
        (store.lineage.type_id(ENVIRONMENT, "artifact"),),
    )[0][0]
    assert environments == 1
    assert second_facts["environment"]["digest"] == facts["environment"]["digest"]
    assert any(
        d.startswith("numpy==")
        for d in store.lineage.environment_distributions(facts["environment"]["digest"])
    )
    # The model file found by its path, and by a copy's content.
    copy = tmp_path / "copy-of-model"
    copy.mkdir()
    for item in Path(model["uri"]).iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    by_path = client.find_artifacts(path=model["uri"])
    by_copy = client.find_artifacts(path=copy)
    assert by_path[0]["id"] == model["id"] and by_copy[0]["id"] == model["id"]
    assert client.artifact_lineage(str(copy))["artifact"]["id"] == model["id"]


def test_the_cli_tells_where_a_model_and_a_run_came_from(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook, arguments={"scale": 3.0})
    assert main(["runs", "lineage", f"{first['id']}/train/model"]) == 0
    text = capsys.readouterr().out
    assert f"<- step train cells [3] of run {first['id']}" in text
    assert 'parameters {"scale": 3.0}' in text
    assert "data: system.Artifact" in text and "<- step load cells [2]" in text
    assert "read:data.csv" in text  # the file load read, and its digest
    assert "-> read by step evaluate" in text
    assert f"source      {notebook.resolve()}" in text
    assert main(["runs", "lineage", first["id"], "-o", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in record["steps"]] == ["load", "train", "evaluate"]
    assert main(["runs", "lineage", "sha256:0000"]) == 2
    assert "no recorded artifact" in capsys.readouterr().err


def test_cached_steps_reuse_the_artifacts_they_computed(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook)
    second = run(client, notebook)
    assert all(s["cached"] for s in second["steps"])
    one = client.run_lineage(first["id"])
    two = client.run_lineage(second["id"])
    outputs = {s["name"]: [a["id"] for a in s["outputs"]] for s in one["steps"]}
    assert {s["name"]: [a["id"] for a in s["outputs"]] for s in two["steps"]} == outputs
    assert {s["execution"]["state"] for s in two["steps"]} == {"CACHED"}
    # The producer is the run that computed the model, the cached run reused it.
    graph = client.artifact_lineage(f"{second['id']}/train/model")
    producer = next(e for e in graph["executions"] if e["id"] == graph["artifact"]["producer"])
    assert producer["run"] == first["id"]
    assert graph["artifact"]["reused_by"]


def test_git_commit_dirty_flag_and_the_spawners_user(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = tmp_path / "identity.json"
    identity.write_text(json.dumps({"user": "alice", "groups": ["data-science"]}))
    monkeypatch.setenv("KUBELAB_IDENTITY_FILE", str(identity))
    notebook = three_step_notebook(client.root)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(client.root), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first")
    commit = git("rev-parse", "HEAD")
    clean = client.run_lineage(run(client, notebook)["id"])
    assert clean["source"]["git"]["commit"] == commit
    assert clean["source"]["git"]["dirty"] is False
    assert clean["user"] == "alice"
    notebook.write_text(notebook.read_text().replace("* scale", "* scale + 1"))
    dirty = client.run_lineage(run(client, notebook)["id"])
    assert dirty["source"]["git"] == {**clean["source"]["git"], "dirty": True}


def test_deleting_a_run_forgets_its_lineage_but_not_what_others_share(client: Client) -> None:
    notebook = three_step_notebook(client.root)
    first = run(client, notebook, enable_caching=False)
    second = run(client, notebook, enable_caching=False)
    before = client.run_lineage(second["id"])
    client.store.delete_run(first["id"])
    with pytest.raises(NotFoundError):
        client.artifact_lineage(f"{first['id']}/train/model")
    assert client.run_lineage(second["id"]) == before
    left = client.store.query("SELECT COUNT(*) FROM executions")[0][0]
    assert left == 1 + 3  # the second run and its three steps


def test_an_older_store_gets_experiments_for_its_runs(tmp_path: Path) -> None:
    """A store file from before lineage: the migration puts its runs in experiments."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
          created_at REAL NOT NULL, finished_at REAL, parameters TEXT NOT NULL DEFAULT '{}',
          metrics TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}', error TEXT,
          source TEXT, pipeline_root TEXT, owner_pid INTEGER, owner_host TEXT,
          cancel_requested INTEGER NOT NULL DEFAULT 0);
        INSERT INTO runs (id, name, state, created_at, source)
          VALUES ('old-1', 'p', 'succeeded', 1.0, '/somewhere/demo.ipynb'),
                 ('old-2', 'p', 'failed', 2.0, NULL);
        PRAGMA user_version=0;
        """
    )
    conn.close()
    store = RunStore(db)
    names = {e["name"]: e for e in store.experiments.list_all()}
    assert names["/somewhere/demo.ipynb"]["states"] == {"succeeded": 1}
    assert names["Default"]["states"] == {"failed": 1}
    assert store.get_run("old-1")["experiment"] == "/somewhere/demo.ipynb"
    assert store.query("PRAGMA user_version")[0][0] >= 2


SAVES_A_FILE = [
    ("import numpy as np", "imports"),
    ("scale = 2.0", "pipeline-parameters"),
    ('data = np.loadtxt("data.csv", delimiter=",")', "step:load"),
    (
        'import os\nos.makedirs("models", exist_ok=True)\n'
        'np.save("models/model.npy", data.mean(axis=0) * scale)',
        "step:train",
    ),
]


def test_a_model_saved_to_a_file_traces_back_to_its_step(client: Client) -> None:
    """What a model server needs to show where its model file came from."""
    (client.root / "data.csv").write_text("1,2\n3,4\n")
    notebook = write_notebook(client.root / "save.ipynb", SAVES_A_FILE)
    first = run(client, notebook)
    saved = client.root / "models" / "model.npy"
    graph = client.artifact_lineage(str(saved))
    assert graph["artifact"]["type"] == "kubelab.File"
    assert graph["artifact"]["uri"] == str(saved)
    producer = next(e for e in graph["executions"] if e["id"] == graph["artifact"]["producer"])
    assert producer["run"] == first["id"] and producer["properties"]["step"] == "train"
    facts = graph["runs"][first["id"]]
    assert facts["parameters"] == {"scale": 2.0}
    assert facts["source"]["path"] == str(notebook.resolve())
    outputs = next(s for s in client.run_lineage(first["id"])["steps"] if s["name"] == "train")
    assert [a["event"] for a in outputs["outputs"]] == ["wrote:models/model.npy"]

    # A cached step does not write its files again: it is cached only while they exist.
    again = run(client, notebook)
    assert all(s["cached"] for s in again["steps"])
    saved.unlink()
    third = run(client, notebook)
    assert {s["name"]: s["cached"] for s in third["steps"]} == {"load": True, "train": False}
    assert saved.is_file()
    report = client.reproduce_run(first["id"], timeout=120)
    assert ("train", "wrote:models/model.npy") in {
        (a["step"], a["name"]) for a in report["artifacts"]
    }
    assert report["equal"] is True

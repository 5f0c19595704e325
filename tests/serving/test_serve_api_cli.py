"""`serve()` from Python and `kubelab serve` from a terminal, end to end: a real server
process, called over HTTP, stopped, its record in the run store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from kubelab.client import Client
from kubelab.pipelines.errors import ConflictError, KubelabError
from kubelab.workloads.serving import ModelServer, serve

from .conftest import IRIS_ROWS, train_iris
from .test_inferenceservice import assert_valid

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path: Path, kubelab_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.chdir(tmp_path)
    client = Client(home=kubelab_home, root=tmp_path)
    yield client
    for job in client.list_jobs("serving"):  # whatever a failed assertion left running
        if job["state"] in ("pending", "running"):
            client.cancel_job(job["id"])


def test_serve_an_estimator_from_python(client: Client) -> None:
    clf = train_iris()
    server = serve(clf, name="iris", client=client)
    try:
        assert server.state == "running" and server.url.startswith("http://127.0.0.1:")
        assert server.predict(np.array(IRIS_ROWS)).tolist() == [0, 1]
        out = server.infer(np.array(IRIS_ROWS, dtype=np.float32))
        assert out["output-0"].tolist() == clf.predict(np.array(IRIS_ROWS)).tolist()
        assert server.metadata()["inputs"][0]["shape"] == [-1, 4]
        assert "ready in" in server.logs()
        assert "iris" in repr(server)
        with pytest.raises(ConflictError, match="already running"):
            serve(clf, name="iris", client=client)
        with pytest.raises(KubelabError, match=r"400 from the model server: .*X has 3 features"):
            server.predict([[1.0, 2.0, 3.0]])
    finally:
        job = server.stop()
    assert job["state"] == "cancelled"
    again = serve(clf, name="iris", client=client, predict_proba=True)  # replaces the stopped one
    try:
        assert again.predict(IRIS_ROWS).shape == (2, 3)
        assert ModelServer("iris", client).state == "running"
    finally:
        again.stop()


def test_serve_reports_a_model_that_fails_to_load(client: Client, tmp_path: Path) -> None:
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"\x80\x04 not a pickle")
    with pytest.raises(KubelabError) as error:
        serve(broken, name="broken", client=client)
    assert "model server broken failed: model failed to load" in error.value.message
    assert "last lines of its log" in error.value.message
    assert client.get_job("broken")["state"] == "failed"


def kubelab(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_serve_call_and_stop(tmp_path: Path, iris_file: Path) -> None:
    model = tmp_path / "iris.joblib"
    model.write_bytes(iris_file.read_bytes())
    started = kubelab("serve", "iris.joblib", "-o", "json", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["name"] == "iris" and info["state"] == "running" and info["format"] == "sklearn"
    try:
        request = urllib.request.Request(
            f"{info['url']}/v1/models/iris:predict",
            data=json.dumps({"instances": IRIS_ROWS}).encode(),
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read()) == {"predictions": [0, 1]}
        listed = kubelab("jobs", "list", "--kind", "serving", cwd=tmp_path)
        assert "iris" in listed.stdout and "running" in listed.stdout
    finally:
        stopped = kubelab("jobs", "cancel", "iris", cwd=tmp_path)
    assert stopped.returncode == 0 and "cancelled" in stopped.stdout

    (tmp_path / "broken.pkl").write_bytes(b"\x80\x04 nope")
    failed = kubelab("serve", "broken.pkl", cwd=tmp_path)
    assert failed.returncode == 1
    assert "model failed to load: sklearn model broken.pkl: KeyError" in failed.stderr
    assert "last lines of its log" in failed.stderr
    missing = kubelab("serve", "nothing.joblib", cwd=tmp_path)
    assert (
        missing.returncode == 2
        and "model: " in missing.stderr
        and "does not exist" in missing.stderr
    )


def test_cli_dry_run_prints_the_inferenceservice(tmp_path: Path, iris_file: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "iris.joblib").write_bytes(iris_file.read_bytes())
    env = {"KUBELAB_PVC": "claim-alice", "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    result = kubelab(
        "serve",
        "models/iris.joblib",
        "--name",
        "iris",
        "--backend",
        "kubernetes",
        "--namespace",
        "alice",
        "--cpu",
        "1",
        "--dry-run",
        "-o",
        "yaml",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    [isvc] = list(yaml.safe_load_all(result.stdout))
    assert_valid(isvc)
    assert isvc["metadata"] == {
        "name": "iris",
        "namespace": "alice",
        "labels": {
            "kubelab.io/job": "iris",
            "kubelab.io/kind": "serving",
            "app.kubernetes.io/managed-by": "kubelab",
        },
        "annotations": {"kubelab.io/model": "models/iris.joblib"},
    }
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "pvc://claim-alice/models/iris.joblib"
    assert model["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    no_pvc = kubelab(
        "serve",
        "models/iris.joblib",
        "--backend",
        "kubernetes",
        "--dry-run",
        cwd=tmp_path,
        env={"KUBELAB_PVC": "", "KUBECONFIG": str(tmp_path / "none")},
    )
    assert no_pvc.returncode == 2 and "needs your home volume" in no_pvc.stderr


def test_in_memory_models_are_saved_in_a_format_the_server_reads(tmp_path: Path) -> None:
    import torch

    from kubelab.workloads.serving.api import save_model
    from kubelab.workloads.serving.modelfiles import resolve_model

    net = torch.nn.Linear(4, 3)
    cases = {
        "est": (train_iris(), "sklearn"),
        "scripted": (torch.jit.script(net), "pytorch"),
        "exported": (torch.export.export(net, (torch.zeros(2, 4),)), "pytorch"),
        "module": (net, "pytorch"),
    }
    for name, (model, fmt) in cases.items():
        path = save_model(model, name, tmp_path)
        assert path.is_relative_to(tmp_path / "models" / name)
        assert resolve_model(path)[1] == fmt, name
    with pytest.raises(KubelabError, match="cannot be served"):
        save_model(42, "number", tmp_path)

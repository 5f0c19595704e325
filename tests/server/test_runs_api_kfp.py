"""The runs REST API (what the sidebar reads) with Kubeflow Pipelines set up through the
server's settings: a real jupyter server, KFP 2.17's contract stub in multi-user mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from kfp_contract.kfp_env import NAMESPACE, USER, training_notebook
from kfp_contract.kfp_stub import KfpStub
from kubelab_api import call, refused

UI = "https://kubeflow.example.com/pipeline"


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[KfpStub]:
    stub = KfpStub(multi_user=True).start()
    stub.add_token("projected-token", USER)
    stub.grant(USER, NAMESPACE)
    (tmp_path / "token").write_text("projected-token")
    try:
        yield stub
    finally:
        stub.stop()
    assert stub.problems == []


@pytest.fixture
def jp_server_config(stub: KfpStub, tmp_path: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"kubelab.server": True}},
        "KubelabApp": {
            "kfp_endpoint": stub.url,
            "kfp_token_file": str(tmp_path / "token"),
            "kfp_namespace": NAMESPACE,
            "kfp_ui_url": UI,
        },
    }


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    nbformat.write(training_notebook(), jp_root_dir / "train.ipynb")
    return "train.ipynb"


async def test_kfp_runs_reach_the_sidebar(jp_fetch, stub: KfpStub, notebook: str) -> None:
    status, started = await call(
        jp_fetch, "POST", "runs", body={"path": notebook, "backend": "kubernetes"}
    )
    assert status == 201 and started["backend"] == "kubernetes"
    run_id = started["id"]
    assert stub.runs[run_id].namespace == NAMESPACE

    # The sidebar's list: the run, marked by backend, found by its notebook's path.
    _, listed = await call(jp_fetch, "GET", "runs")
    assert listed["unavailable"] == {}
    (run,) = listed["runs"]
    assert (run["id"], run["backend"], run["path"]) == (run_id, "kubernetes", notebook)
    assert run["url"] == f"{UI}/#/runs/details/{run_id}"

    tasks = [s["name"] for s in run["steps"]]
    stub.simulate_argo(run_id, dict.fromkeys(tasks, "Succeeded"))
    _, run = await call(jp_fetch, "GET", "runs", run_id)
    assert run["state"] == "succeeded" and run["path"] == notebook
    assert all(s["state"] == "succeeded" and s["cells"] for s in run["steps"])

    status, error = await refused(jp_fetch, "POST", "runs", run_id, "cancel", body={})
    assert status == 409 and "already finished" in error["message"]

    # KFP cannot give a log whose pod is gone: a 502 that links to KFP's UI.
    status, error = await refused(jp_fetch, "GET", "runs", run_id, "steps", "load", "logs")
    assert status == 502 and error["url"] == run["url"] and "not found" in error["message"]

    status, error = await refused(jp_fetch, "GET", "runs", "a b")
    assert status == 400 and "not a Kubeflow Pipelines run id" in error["message"]

    # KFP unreachable: the list still answers, with the last known state and why.
    stub.stop()
    _, listed = await call(jp_fetch, "GET", "runs")
    assert [(r["id"], r["state"]) for r in listed["runs"]] == [(run_id, "succeeded")]
    assert "cannot reach Kubeflow Pipelines" in listed["unavailable"]["kubernetes"]

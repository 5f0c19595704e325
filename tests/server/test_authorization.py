"""Jupyter's authorization layer in front of every kubelab endpoint, through a real
jupyter server started with a restricted `Authorizer` (what a JupyterHub read-only
share, or a role without `execute` on kernels, installs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from kubelab_api import KUBELAB_ONLY, NO_EXECUTE, READ_ONLY, GrantAuthorizer, call, refused

from kubelab.client.store import RunStore

# (method, path, body): every kubelab endpoint, with a valid request each.
READS = [
    ("GET", "status", None),
    ("GET", "runs", None),
    ("GET", "runs/done", None),
    ("GET", "runs/done/steps/work/logs", None),
    ("GET", "jobs", None),
    ("GET", "jobs/fit", None),
    ("GET", "jobs/fit/metrics", None),
    ("GET", "jobs/fit/steps/node-0/logs", None),
    ("POST", "pipelines/compile", {"path": "nb.ipynb"}),
]
RUNS_CODE = [
    ("POST", "runs", {"path": "nb.ipynb"}),
    ("POST", "pipelines/validate", {"path": "nb.ipynb"}),
    ("POST", "runs/done/rerun", {}),
    ("POST", "runs/done/steps/work/run-from", {}),
    ("POST", "jobs", {"kind": "training", "spec": {"seconds": 0.1}}),
]
STOPS = [
    ("POST", "runs/live/cancel", {}),
    ("POST", "jobs/fit/cancel", {}),
    ("DELETE", "jobs/fit", None),
]


@pytest.fixture
def records(kubelab_home: Path, jp_root_dir: Path) -> None:
    """Before the server starts: a notebook, a finished run with a log, a live run, a job."""
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["step:work"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), jp_root_dir / "nb.ipynb")
    store = RunStore(kubelab_home / "kubelab.db")
    log = kubelab_home / "work.log"
    log.write_text("hello\n")
    store.create_run("nb", {}, run_id="done", source=str(jp_root_dir / "nb.ipynb"))
    store.add_task("done", "work", metadata={"step": "work"})
    store.update_task("done", "work", state="succeeded", log_path=str(log))
    store.update_run("done", state="succeeded", finished_at=1.0)
    store.create_run("nb", {}, run_id="live", source=str(jp_root_dir / "nb.ipynb"))
    store.update_run("live", state="running")  # owned by this (live) test process
    store.create_run("fit", {}, run_id="fit", kind="training")
    store.add_task("fit", "node-0")
    store.update_task("fit", "node-0", state="succeeded", log_path=str(log))
    store.update_run("fit", state="succeeded", finished_at=1.0)


@pytest.fixture
def grants(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


@pytest.fixture
def jp_server_config(grants: list[str], records: None) -> dict:
    return {
        "ServerApp": {
            "jpserver_extensions": {"kubelab.server": True},
            "authorizer_class": GrantAuthorizer,
        },
        "GrantAuthorizer": {"grants": grants},
    }


async def answer(jp_fetch, method: str, path: str, body: Any) -> tuple[int, dict]:
    try:
        return await call(jp_fetch, method, *path.split("/"), body=body)
    except Exception:
        return await refused(jp_fetch, method, *path.split("/"), body=body)


@pytest.mark.parametrize("grants", [READ_ONLY], indirect=True)
async def test_read_only_share_reads_everything_and_changes_nothing(jp_fetch) -> None:
    for method, path, body in READS:
        status, _ = await answer(jp_fetch, method, path, body)
        assert status == 200, (method, path)
    for method, path, body in RUNS_CODE + STOPS:
        status, error = await refused(jp_fetch, method, *path.split("/"), body=body)
        assert status == 403, (method, path)
        assert error["message"] == "User is not authorized to write on resource: kubelab."
    # Nothing was started, stopped or forgotten.
    _, runs = await call(jp_fetch, "GET", "runs")
    assert sorted((r["id"], r["state"]) for r in runs["runs"]) == [
        ("done", "succeeded"),
        ("live", "running"),
    ]
    _, jobs = await call(jp_fetch, "GET", "jobs")
    assert [j["id"] for j in jobs["jobs"]] == ["fit"]
    assert not RunStore().cancel_requested("live")


@pytest.mark.parametrize("grants", [NO_EXECUTE], indirect=True)
async def test_without_execute_on_kernels_no_code_runs_but_runs_can_be_stopped(jp_fetch) -> None:
    for method, path, body in RUNS_CODE:
        status, error = await refused(jp_fetch, method, *path.split("/"), body=body)
        assert status == 403, (method, path)
        assert error["message"] == "User is not authorized to execute on resource: kernels."
    _, runs = await call(jp_fetch, "GET", "runs")
    assert len(runs["runs"]) == 2
    status, run = await call(jp_fetch, "POST", "runs", "live", "cancel", body={})
    assert status == 200 and run["id"] == "live"
    assert RunStore().cancel_requested("live")
    status, _ = await refused(jp_fetch, "POST", "jobs", "fit", "cancel", body={})
    assert status == 409  # allowed; the job has already finished
    status, body = await call(jp_fetch, "DELETE", "jobs", "fit")
    assert (status, body) == (200, {"id": "fit", "deleted": True})


@pytest.mark.parametrize("grants", [KUBELAB_ONLY], indirect=True)
async def test_compile_needs_read_on_the_users_files(jp_fetch) -> None:
    status, _ = await call(jp_fetch, "GET", "runs")
    assert status == 200
    status, error = await refused(
        jp_fetch, "POST", "pipelines", "compile", body={"path": "nb.ipynb"}
    )
    assert status == 403
    assert error["message"] == "User is not authorized to read on resource: contents."


@pytest.mark.parametrize("grants", [["read:*", "write:*", "execute:*"]], indirect=True)
async def test_full_grants_pass_every_gate(jp_fetch, tiny_kind) -> None:
    """The same requests with every grant: each one does its work."""
    for method, path, body in READS + RUNS_CODE:
        status, _ = await answer(jp_fetch, method, path, body)
        assert status in (200, 201), (method, path, status)

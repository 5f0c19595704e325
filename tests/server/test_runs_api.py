"""Notebook pipelines through the REST API of a real jupyter server (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from kubelab_api import call, refused
from notebook_cells import code

from kubelab.client.store import INTERRUPTED_ERROR, RunStore
from kubelab.pipelines.notebook import compile_notebook

DEMO = Path(__file__).parents[2] / "examples" / "demo.ipynb"
DEMO_STEPS = {"load_data", "train_forest", "train_logreg", "evaluate"}


def small_notebook() -> nbformat.NotebookNode:
    """Two parallel steps and a join, a parameter and a metric; runs in a second."""
    return nbformat.v4.new_notebook(
        cells=[
            code("import math", "imports"),
            code("n = 3\nscale = 2.0", "pipeline-parameters"),
            code("base = list(range(n))\nprint('base', base)", "step:base"),
            code("doubled = [x * scale for x in base]", "step:double"),
            code("squares = [x * x for x in base]", "step:square"),
            code("total = sum(doubled) + sum(squares)\nprint('total', total)", "step:join"),
            code("total", "pipeline-metrics"),
        ]
    )


def slow_notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            code("import time", "imports"),
            code("seconds = 60", "pipeline-parameters"),
            code("print('sleeping', flush=True)\ntime.sleep(seconds)\nx = 1", "step:sleep"),
            code("y = x + 1", "step:after"),
        ]
    )


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    shutil.copy(DEMO, jp_root_dir / "demo.ipynb")
    nbformat.write(small_notebook(), jp_root_dir / "small.ipynb")
    (jp_root_dir / "sub").mkdir()
    nbformat.write(slow_notebook(), jp_root_dir / "sub" / "slow.ipynb")
    return jp_root_dir


async def wait_state(jp_fetch, run_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, run = await call(jp_fetch, "GET", "runs", run_id)
        if run["state"] in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run stayed {run['state']}: {json.dumps(run, indent=1)}")
        await asyncio.sleep(0.3)


async def test_compile_demo_gives_steps_cells_edges_and_ir(jp_fetch, root) -> None:
    code_, body = await call(jp_fetch, "POST", "pipelines", "compile", body={"path": "demo.ipynb"})
    assert code_ == 200
    steps = {s["name"]: s for s in body["steps"]}
    assert set(steps) >= DEMO_STEPS
    assert steps["load_data"]["cells"] == [5, 6]
    assert steps["train_forest"]["depends_on"] == ["load_data"]
    assert steps["train_forest"]["limits"] == {"cpu": "1"}
    assert steps["train_forest"]["task"] == "train-forest"
    edges = {(e["from"], e["to"]): e["variables"] for e in body["edges"]}
    assert set(edges[("load_data", "train_logreg")]) == {"X_train", "y_train"}
    assert body["parameters"] == compile_notebook(DEMO).parameters
    assert body["parameters"]["n_estimators"]["type"] == "int"
    assert body["metrics"] == ["forest_accuracy", "logreg_accuracy"]
    assert body["ir"]["schemaVersion"] == "2.1.0"
    assert "train-forest" in body["ir"]["root"]["dag"]["tasks"]
    # Every code cell's role, for the labels on the notebook's cells (markdown left out).
    roles = {c["index"]: (c["role"], c["step"]) for c in body["cells"]}
    assert roles == {
        1: ("imports", None),
        2: ("pipeline-parameters", None),
        3: ("functions", None),
        5: ("step", "load_data"),
        6: ("step", "load_data"),
        8: ("step", "train_forest"),
        9: ("step", "train_logreg"),
        11: ("step", "evaluate"),
        12: ("pipeline-metrics", "pipeline-metrics"),
    }


async def test_compile_without_ir_for_the_sidebar(jp_fetch, root) -> None:
    _, body = await call(
        jp_fetch, "POST", "pipelines", "compile", body={"path": "small.ipynb", "ir": False}
    )
    assert "ir" not in body
    assert [s["name"] for s in body["steps"]] == [
        "base",
        "double",
        "square",
        "join",
        "pipeline-metrics",
    ]


async def test_compile_the_unsaved_notebook_content(jp_fetch, root) -> None:
    """The sidebar sends the editor's notebook: its tags win over the file on disk."""
    edited = small_notebook()
    edited.cells[4].metadata["tags"] = ["step:square", "prev:double", "limit:cpu:2"]
    _, body = await call(
        jp_fetch,
        "POST",
        "pipelines",
        "compile",
        body={"path": "small.ipynb", "ir": False, "content": edited},
    )
    square = next(s for s in body["steps"] if s["name"] == "square")
    # After prev:double, `base` comes from double, the nearest step that read it (Kale).
    assert square["depends_on"] == ["double"]
    assert {(e["from"], e["to"]): e["variables"] for e in body["edges"]}[("double", "square")] == [
        "base"
    ]
    assert square["limits"] == {"cpu": "2"}
    status, error = await refused(
        jp_fetch, "POST", "pipelines", "compile", body={"path": "small.ipynb", "content": [1]}
    )
    assert status == 400 and "content" in error["message"]


async def test_validate_reports_each_variable(jp_fetch, root) -> None:
    _, report = await call(jp_fetch, "POST", "pipelines", "validate", body={"path": "small.ipynb"})
    assert report["ok"] is True, report
    assert report["notebook"] == "small.ipynb"
    variables = {v["name"]: v for v in report["variables"]}
    assert variables["base"]["producer"] == "base"
    assert all(v["ok"] for v in variables.values())
    notebook = small_notebook()
    notebook.cells[5] = code("total = sum(doubled) / 0", "step:join")
    nbformat.write(notebook, root / "fails.ipynb")
    _, report = await call(jp_fetch, "POST", "pipelines", "validate", body={"path": "fails.ipynb"})
    assert report["ok"] is False
    assert any(e.get("cell") == 5 for e in report["errors"]), report["errors"]


async def test_broken_notebook_is_a_400_naming_the_cell(jp_fetch, root) -> None:
    notebook = small_notebook()
    notebook.cells[3] = code("doubled = [x * scale for x in base", "step:double")
    nbformat.write(notebook, root / "broken.ipynb")
    status, body = await refused(
        jp_fetch, "POST", "pipelines", "compile", body={"path": "broken.ipynb"}
    )
    assert status == 400
    assert body["cell"] == 3  # the index of the cell...
    assert body["step"] == "double"
    assert "cell 4" in body["message"]  # ...which people count as cell 4

    # An unknown `prev:` is also pinned to its cell, and a run is refused the same way.
    notebook = small_notebook()
    notebook.cells[4] = code("squares = [x * x for x in base]", "step:square", "prev:nowhere")
    nbformat.write(notebook, root / "badprev.ipynb")
    status, body = await refused(jp_fetch, "POST", "runs", body={"path": "badprev.ipynb"})
    assert status == 400
    assert body["cell"] == 4
    assert "nowhere" in body["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("../outside.ipynb", 403),
        ("sub/../../outside.ipynb", 403),
        ("/etc/passwd", 400),
        ("escape.ipynb", 403),  # a symlink pointing out of the root
        ("missing.ipynb", 404),
        ("", 400),
    ],
)
async def test_paths_outside_the_root_are_refused(jp_fetch, root, tmp_path, path, status) -> None:
    outside = tmp_path / "outside.ipynb"
    nbformat.write(small_notebook(), outside)
    (root / "escape.ipynb").symlink_to(outside)
    for endpoint in (("pipelines", "compile"), ("runs",)):
        code_, body = await refused(jp_fetch, "POST", *endpoint, body={"path": path})
        assert code_ == status, body
        if status == 404:
            assert "missing.ipynb" in body["message"]


async def test_unknown_parameter_and_backend(jp_fetch, root) -> None:
    status, body = await refused(
        jp_fetch, "POST", "runs", body={"path": "small.ipynb", "parameters": {"nope": 1}}
    )
    assert status == 400
    assert body["parameter"] == "nope"
    assert "nope" in body["message"]
    status, body = await refused(
        jp_fetch, "POST", "runs", body={"path": "small.ipynb", "backend": "kubernetes"}
    )
    assert status == 400
    assert "the kubernetes backend is not configured" in body["message"]


async def test_unknown_run_is_a_404(jp_fetch, root) -> None:
    for parts, method in (
        (("runs", "no-such-run"), "GET"),
        (("runs", "no-such-run", "cancel"), "POST"),
        (("runs", "no-such-run", "rerun"), "POST"),
        (("runs", "no-such-run", "steps", "x", "logs"), "GET"),
    ):
        status, body = await refused(
            jp_fetch, method, *parts, body={} if method == "POST" else None
        )
        assert status == 404, parts
        assert "no-such-run" in body["message"]


async def test_run_small_notebook_to_success_with_metrics_logs_and_rerun(jp_fetch, root) -> None:
    status, created = await call(
        jp_fetch, "POST", "runs", body={"path": "small.ipynb", "parameters": {"n": 4}}
    )
    assert status == 201
    run = await wait_state(jp_fetch, created["id"], ("succeeded", "failed"))
    assert run["state"] == "succeeded", run
    assert run["path"] == "small.ipynb"
    assert run["parameters"]["n"] == 4
    # 2 * (0+1+2+3) + (0+1+4+9)
    assert run["metrics"]["total"] == 26
    states = {s["name"]: s["state"] for s in run["steps"]}
    assert set(states.values()) == {"succeeded"}
    base = next(s for s in run["steps"] if s["cells"] == [2])
    assert base["duration_s"] is not None

    _, logs = await call(jp_fetch, "GET", "runs", run["id"], "steps", base["name"], "logs")
    assert "base [0, 1, 2, 3]" in logs["text"]
    assert logs["complete"] is True
    # Following from the returned offset gives nothing new, and the notebook step name works too.
    _, more = await call(
        jp_fetch, "GET", "runs", run["id"], "steps", "base", "logs", offset=logs["offset"]
    )
    assert more == {"text": "", "offset": logs["offset"], "complete": True, "state": "succeeded"}

    _, listed = await call(jp_fetch, "GET", "runs")
    assert listed["runs"][0]["id"] == run["id"]
    # Runs are numbered per notebook and labelled by what is particular about them.
    assert (run["number"], run["label"]) == (1, "#1 · n=4")

    # Re-run: the same notebook and parameters, every step cached this time.
    status, again = await call(jp_fetch, "POST", "runs", run["id"], "rerun", body={})
    assert status == 201 and again["id"] != run["id"]
    rerun = await wait_state(jp_fetch, again["id"], ("succeeded", "failed"))
    assert rerun["state"] == "succeeded"
    assert rerun["parameters"]["n"] == 4
    # Every step comes from the cache, and the metrics are reported all the same.
    assert [s["cached"] for s in rerun["steps"]] == [True] * 5
    assert rerun["metrics"]["total"] == 26
    assert rerun["label"] == "#2 · re-run of #1"
    # Each cached step names the run and task whose result it reused.
    assert {s["cached_from"]["run"] for s in rerun["steps"]} == {run["id"]}
    assert {s["cached_from"]["number"] for s in rerun["steps"]} == {1}
    # ...and how long that took there: the time the cache saved.
    assert all(s["cached_from"]["duration_s"] >= 0 for s in rerun["steps"])
    assert [s["cached_from"]["task"] for s in rerun["steps"]] == [s["name"] for s in rerun["steps"]]
    _, listed = await call(jp_fetch, "GET", "runs")
    assert [r["id"] for r in listed["runs"][:2]] == [rerun["id"], run["id"]]

    # Unknown steps are 404s that name the step.
    for parts in (("steps", "nope", "logs"), ("steps", "nope", "run-from")):
        method = "GET" if parts[-1] == "logs" else "POST"
        status, body = await refused(
            jp_fetch, method, "runs", run["id"], *parts, body={} if method == "POST" else None
        )
        assert status == 404 and "nope" in body["message"], body

    # Run from `square`: it and `join` execute again, `base` and `double` come from the cache.
    status, started = await call(
        jp_fetch, "POST", "runs", run["id"], "steps", "square", "run-from", body={}
    )
    assert status == 201
    partial = await wait_state(jp_fetch, started["id"], ("succeeded", "failed"))
    assert partial["state"] == "succeeded", partial
    cached = {s["cells"][0]: s["cached"] for s in partial["steps"] if s["cells"]}
    assert cached[2] is True and cached[3] is True
    assert cached[4] is False and cached[5] is False
    assert partial["label"] == "#3 · from square"
    assert partial["origin"]["from_run"] == run["id"]


async def test_a_failed_step_names_its_cell_and_line(jp_fetch, root) -> None:
    notebook = small_notebook()
    notebook.cells.insert(2, code("def ratio(a, b):\n    return a / b", "functions"))
    notebook.cells[6] = code("print('joining')\ntotal = ratio(sum(doubled), 0)", "step:join")
    nbformat.write(notebook, root / "fails.ipynb")
    _, created = await call(jp_fetch, "POST", "runs", body={"path": "fails.ipynb"})
    run = await wait_state(jp_fetch, created["id"], ("succeeded", "failed"))
    assert run["state"] == "failed"
    join = next(s for s in run["steps"] if s["cells"] == [6])
    assert join["state"] == "failed"
    assert "ZeroDivisionError" in join["error"]
    # The cell of the step that raised and its line (the call), not the helper's.
    assert join["failed_at"] == {"cell": 6, "line": 2}
    assert all(s["failed_at"] is None for s in run["steps"] if s is not join)


async def test_run_demo_notebook_to_success(jp_fetch, root) -> None:
    _, created = await call(jp_fetch, "POST", "runs", body={"path": "demo.ipynb"})
    run = await wait_state(jp_fetch, created["id"], ("succeeded", "failed"), timeout=180)
    assert run["state"] == "succeeded", run
    assert 0.5 < run["metrics"]["forest_accuracy"] <= 1.0
    assert 0.5 < run["metrics"]["logreg_accuracy"] <= 1.0

    # A step's outputs say which are models a server can load (the Serve button's).
    _, answer = await call(
        jp_fetch, "GET", "runs", created["id"], "steps", "train_forest", "outputs"
    )
    (forest,) = answer["outputs"]
    assert forest["name"] == "forest" and Path(forest["uri"]).is_dir()
    assert forest["servable"] == {
        "format": "sklearn",
        "type": "sklearn.ensemble._forest.RandomForestClassifier",
    }
    _, answer = await call(jp_fetch, "GET", "runs", created["id"], "steps", "evaluate", "outputs")
    assert {o["name"]: o["servable"] for o in answer["outputs"]} == {
        "forest_accuracy": None,  # a float is not a model
        "logreg_accuracy": None,
    }
    code_, error = await refused(jp_fetch, "GET", "runs", created["id"], "steps", "nope", "outputs")
    assert code_ == 404 and "no step 'nope'" in error["message"]


async def test_cancel_a_running_step_and_follow_its_log(jp_fetch, root) -> None:
    _, created = await call(jp_fetch, "POST", "runs", body={"path": "sub/slow.ipynb"})
    run_id = created["id"]
    deadline = time.monotonic() + 60
    text, offset = "", 0
    while "sleeping" not in text:
        assert time.monotonic() < deadline, "the step never logged"
        _, chunk = await call(
            jp_fetch, "GET", "runs", run_id, "steps", "sleep", "logs", offset=offset
        )
        assert chunk["complete"] is False
        text += chunk["text"]
        offset = chunk["offset"]
        await asyncio.sleep(0.2)

    status, run = await call(jp_fetch, "POST", "runs", run_id, "cancel", body={})
    assert status == 200
    run = await wait_state(jp_fetch, run_id, ("cancelled", "failed", "succeeded"), timeout=30)
    assert run["state"] == "cancelled"
    states = {s["cells"][0]: s["state"] for s in run["steps"]}
    assert states[2] in ("cancelled", "failed")
    assert states[3] in ("cancelled", "skipped")
    # A finished run cannot be cancelled again.
    status, _ = await refused(jp_fetch, "POST", "runs", run_id, "cancel", body={})
    assert status == 409


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def seeded_store(kubelab_home: Path) -> dict[str, str]:
    """Before the server starts: one finished run, one left running by a dead server."""
    store = RunStore(kubelab_home / "kubelab.db")
    done = store.create_run("old", {"n": 1}, source="/somewhere/old.ipynb")
    store.update_run(done, state="succeeded", finished_at=time.time(), metrics={"total": 1})
    crashed = store.create_run("crashed", {"n": 2}, source="/somewhere/crashed.ipynb")
    store.add_task(crashed, "base", state="running")
    store.add_task(crashed, "join", state="pending")
    store.update_run(crashed, state="running", owner_pid=dead_pid())
    store.close()
    return {"done": done, "crashed": crashed}


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict:
    # The seeded store must exist before the server starts, like on a real restart.
    if "seeded_store" in request.fixturenames:
        request.getfixturevalue("seeded_store")
    return {"ServerApp": {"jpserver_extensions": {"kubelab.server": True}}}


async def test_restart_lists_past_runs_and_marks_interrupted_ones(
    seeded_store, jp_fetch, kubelab_home
) -> None:
    assert os.path.exists(kubelab_home / "kubelab.db")
    _, listed = await call(jp_fetch, "GET", "runs")
    runs = {r["id"]: r for r in listed["runs"]}
    assert runs[seeded_store["done"]]["state"] == "succeeded"
    assert runs[seeded_store["done"]]["metrics"] == {"total": 1}
    crashed = runs[seeded_store["crashed"]]
    assert crashed["state"] == "failed"
    assert crashed["error"] == INTERRUPTED_ERROR
    assert {s["name"]: s["state"] for s in crashed["steps"]} == {
        "base": "failed",
        "join": "cancelled",
    }
    assert crashed["path"] is None  # its notebook is not under this root
    status, body = await refused(
        jp_fetch, "POST", "runs", seeded_store["crashed"], "rerun", body={}
    )
    assert "not started from a notebook under this Jupyter root" in body["message"]
    assert status == 400


async def test_cancel_reaches_a_run_of_another_process(jp_fetch, root) -> None:
    """A run the CLI started (or a previous server still running) is cancelled here."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "kubelab.client.cli", "run", "sub/slow.ipynb", "--no-cache"],
        cwd=root,
        stdout=(root / "cli.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120  # a busy machine starts Python slowly
        while True:
            _, listed = await call(jp_fetch, "GET", "runs")
            running = [
                r for r in listed["runs"] if any(s["state"] == "running" for s in r["steps"])
            ]
            if running:
                break
            assert time.monotonic() < deadline and cli.poll() is None, (
                json.dumps(listed),
                (root / "cli.log").read_text(),
            )
            await asyncio.sleep(0.2)
        (run,) = running
        assert run["path"] == "sub/slow.ipynb"
        status, _ = await call(jp_fetch, "POST", "runs", run["id"], "cancel", body={})
        assert status == 200
        run = await wait_state(jp_fetch, run["id"], ("cancelled", "failed", "succeeded"), 30)
        assert run["state"] == "cancelled"
        assert cli.wait(timeout=30) != 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

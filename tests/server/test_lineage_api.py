"""Lineage, compare, reproduce and experiments through the REST API of a real jupyter server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nbformat
import pytest
from kubelab_api import call, refused


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def notebook(factor: int) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            code("n = 3", "pipeline-parameters"),
            code("base = list(range(n))", "step:base"),
            code(f"doubled = [x * {factor} for x in base]", "step:double"),
            code("total = sum(doubled)", "step:join"),
            code("total", "pipeline-metrics"),
        ]
    )


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    nbformat.write(notebook(2), jp_root_dir / "small.ipynb")
    return jp_root_dir


async def finished(jp_fetch, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, run = await call(jp_fetch, "GET", "runs", run_id)
        if run["state"] not in ("pending", "running"):
            assert run["state"] == "succeeded", run
            return run
        assert time.monotonic() < deadline, f"run still {run['state']}"
        await asyncio.sleep(0.2)


async def start(jp_fetch, **body) -> dict:
    status, started = await call(jp_fetch, "POST", "runs", body={"path": "small.ipynb", **body})
    assert status == 201
    return await finished(jp_fetch, started["id"])


async def test_compare_two_runs_and_a_models_lineage(jp_fetch, root) -> None:
    first = await start(jp_fetch, experiment="api")
    assert first["experiment"] == "api"
    nbformat.write(notebook(3), root / "small.ipynb")
    second = await start(jp_fetch, experiment="api", parameters={"n": 4})

    status, comparison = await call(
        jp_fetch, "GET", "runs", "compare", runs=f"{first['id']},{second['id']}"
    )
    assert status == 200
    assert [r["source"]["relative_path"] for r in comparison["runs"]] == ["small.ipynb"] * 2
    steps = {s["step"]: s for s in comparison["steps"]}
    assert steps["double"]["code_changed"] and "+doubled = [x * 3" in steps["double"]["diffs"][1]
    assert not steps["base"]["code_changed"]
    assert {p["name"]: p["values"] for p in comparison["parameters"]}["n"] == [3, 4]
    assert {m["name"]: m["values"] for m in comparison["metrics"]}["total"] == [6.0, 18.0]
    status, error = await refused(jp_fetch, "GET", "runs", "compare", runs=first["id"])
    assert status == 400 and "at least two" in error["message"]

    status, lineage = await call(jp_fetch, "GET", "runs", second["id"], "lineage")
    assert status == 200 and lineage["source"]["relative_path"] == "small.ipynb"
    assert lineage["experiment"] == "api" and lineage["parameters"] == {"n": 4}
    double = next(s for s in lineage["steps"] if s["name"] == "double")
    doubled = next(a for a in double["outputs"] if a["event"] == "doubled")

    _, graph = await call(jp_fetch, "GET", "lineage", ref=f"{second['id']}/double/doubled")
    assert graph["artifact"]["id"] == doubled["id"]
    producers = {e["id"]: e for e in graph["executions"]}
    assert producers[graph["artifact"]["producer"]]["properties"]["step"] == "double"
    assert graph["runs"][second["id"]]["source"]["relative_path"] == "small.ipynb"
    _, by_id = await call(jp_fetch, "GET", "lineage", artifact=str(doubled["id"]))
    assert by_id["artifact"] == graph["artifact"]
    _, by_digest = await call(jp_fetch, "GET", "lineage", digest=doubled["digest"])
    assert by_digest["artifact"]["id"] == doubled["id"]
    _, found = await call(jp_fetch, "GET", "artifacts", uri=doubled["uri"])
    assert [a["id"] for a in found["artifacts"]] == [doubled["id"]]
    # A file under the root is found by its content (here: the notebook's snapshot).
    _, found = await call(jp_fetch, "GET", "artifacts", path="small.ipynb")
    assert [a["type"] for a in found["artifacts"]] == ["kubelab.Source"]

    assert (await refused(jp_fetch, "GET", "lineage", artifact="x"))[0] == 400
    assert (await refused(jp_fetch, "GET", "lineage", artifact="99999"))[0] == 404
    assert (await refused(jp_fetch, "GET", "lineage"))[0] == 400
    assert (await refused(jp_fetch, "GET", "artifacts", path="../etc/passwd"))[0] == 403
    assert (await refused(jp_fetch, "GET", "artifacts", uri="a", digest="b"))[0] == 400


async def test_experiments_list_rename_archive(jp_fetch, root) -> None:
    run = await start(jp_fetch)
    _, listed = await call(jp_fetch, "GET", "experiments")
    [experiment] = listed["experiments"]
    assert experiment["name"] == run["experiment"] and experiment["runs"] == 1
    status, created = await call(
        jp_fetch, "POST", "experiments", body={"name": "baseline", "description": "first"}
    )
    assert status == 201 and created["description"] == "first"
    status, error = await refused(jp_fetch, "POST", "experiments", body={"name": ""})
    assert status == 400 and error["field"] == "name"

    eid = str(experiment["id"])
    _, renamed = await call(jp_fetch, "PATCH", "experiments", eid, body={"name": "small"})
    assert renamed["name"] == "small" and renamed["runs"] == 1
    _, shown = await call(jp_fetch, "GET", "experiments", eid)
    assert [r["id"] for r in shown["recent_runs"]] == [run["id"]]
    assert shown["recent_runs"][0]["path"] == "small.ipynb"
    status, error = await refused(jp_fetch, "PATCH", "experiments", eid, body={"name": "baseline"})
    assert status == 409
    status, error = await refused(jp_fetch, "PATCH", "experiments", eid, body={"colour": "red"})
    assert status == 400 and error["field"] == "colour"
    status, error = await refused(jp_fetch, "PATCH", "experiments", eid, body={"archived": "yes"})
    assert status == 400

    _, archived = await call(jp_fetch, "PATCH", "experiments", eid, body={"archived": True})
    assert archived["archived"] is True
    _, runs = await call(jp_fetch, "GET", "runs")
    assert runs["runs"] == []
    _, runs = await call(jp_fetch, "GET", "runs", archived="true")
    assert [r["id"] for r in runs["runs"]] == [run["id"]]
    _, runs = await call(jp_fetch, "GET", "runs", experiment="small")
    assert [r["experiment"] for r in runs["runs"]] == ["small"]
    _, listed = await call(jp_fetch, "GET", "experiments")
    assert [e["name"] for e in listed["experiments"]] == ["baseline"]
    _, listed = await call(jp_fetch, "GET", "experiments", archived="true")
    assert {e["name"] for e in listed["experiments"]} == {"baseline", "small"}
    await call(jp_fetch, "PATCH", "experiments", eid, body={"archived": False})
    _, runs = await call(jp_fetch, "GET", "runs")
    assert len(runs["runs"]) == 1
    assert (await refused(jp_fetch, "GET", "experiments", "9999"))[0] == 404


async def test_reproduce_and_its_report(jp_fetch, root) -> None:
    original = await start(jp_fetch)
    status, error = await refused(jp_fetch, "GET", "runs", original["id"], "reproduction")
    assert status == 400 and "not a reproduction" in error["message"]
    status, started = await call(jp_fetch, "POST", "runs", original["id"], "reproduce", body={})
    assert status == 201 and started["reproduces"] == original["id"]
    again = await finished(jp_fetch, started["id"])
    assert not any(s["cached"] for s in again["steps"])
    _, report = await call(jp_fetch, "GET", "runs", started["id"], "reproduction")
    assert report["equal"] is True and report["run"] == original["id"]
    assert {(a["step"], a["name"]) for a in report["artifacts"]} >= {
        ("base", "base"),
        ("double", "doubled"),
    }

"""The lineage endpoints behind Jupyter's authorization layer, on a real jupyter server
started with the restricted Authorizers of the security tests: a read-only share may
compare runs and follow lineage but not reproduce a run (it runs the notebook again)
or change experiments; looking an artifact up by a file of the user's needs `read` on
contents and stays inside the Jupyter root."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from kubelab_api import KUBELAB_ONLY, NO_EXECUTE, READ_ONLY, GrantAuthorizer, call, refused

from kubelab.client import Client

FULL = ["read:*", "write:*", "execute:*"]


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


@pytest.fixture
def runs(kubelab_home: Path, jp_root_dir: Path) -> list[str]:
    """Before the server starts: two finished runs of a small notebook, n=3 then n=4."""
    notebook = nbformat.v4.new_notebook(
        cells=[
            code("n = 3", "pipeline-parameters"),
            code("base = list(range(n))", "step:base"),
            code("doubled = [x * 2 for x in base]", "step:double"),
            code("total = sum(doubled)", "step:join"),
        ]
    )
    nbformat.write(notebook, jp_root_dir / "nb.ipynb")
    client = Client(home=kubelab_home, root=jp_root_dir)
    ids = []
    for arguments in ({}, {"n": 4}):
        started = client.create_run_from_pipeline_package(
            jp_root_dir / "nb.ipynb", arguments=arguments
        )
        finished = started.wait_for_run_completion(timeout=120)
        assert finished["state"] == "succeeded", finished
        ids.append(finished["id"])
    return ids


@pytest.fixture
def grants(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


@pytest.fixture
def jp_server_config(grants: list[str], runs: list[str]) -> dict:
    return {
        "ServerApp": {
            "jpserver_extensions": {"kubelab.server": True},
            "authorizer_class": GrantAuthorizer,
        },
        "GrantAuthorizer": {"grants": grants},
    }


async def run_ids(jp_fetch) -> list[str]:
    _, listed = await call(jp_fetch, "GET", "runs")
    return sorted(r["id"] for r in listed["runs"])


async def experiment_id(jp_fetch) -> str:
    _, listed = await call(jp_fetch, "GET", "experiments")
    return str(listed["experiments"][0]["id"])


@pytest.mark.parametrize("grants", [READ_ONLY], indirect=True)
async def test_read_only_share_compares_and_follows_lineage_but_changes_nothing(
    jp_fetch, runs: list[str]
) -> None:
    first, second = runs
    status, comparison = await call(jp_fetch, "GET", "runs", "compare", runs=f"{first},{second}")
    assert status == 200
    assert {p["name"]: p["changed"] for p in comparison["parameters"]} == {"n": True}
    status, facts = await call(jp_fetch, "GET", "runs", second, "lineage")
    assert status == 200 and facts["parameters"] == {"n": 4}
    status, graph = await call(jp_fetch, "GET", "lineage", ref=f"{second}/double/doubled")
    assert status == 200 and graph["artifact"]["name"] == "doubled"
    status, found = await call(jp_fetch, "GET", "artifacts", path="nb.ipynb")
    assert status == 200 and {a["type"] for a in found["artifacts"]} == {"kubelab.Source"}
    status, _ = await call(jp_fetch, "GET", "experiments")
    assert status == 200

    _, before = await call(jp_fetch, "GET", "experiments")
    eid = await experiment_id(jp_fetch)
    for method, parts, body in [
        ("POST", ("runs", first, "reproduce"), {}),
        ("POST", ("experiments",), {"name": "other"}),
        ("PATCH", ("experiments", eid), {"name": "renamed"}),
        ("PATCH", ("experiments", eid), {"archived": True}),
    ]:
        status, error = await refused(jp_fetch, method, *parts, body=body)
        assert status == 403, (method, parts)
        assert error["message"] == "User is not authorized to write on resource: kubelab."
    assert await run_ids(jp_fetch) == sorted(runs)  # nothing was reproduced
    _, after = await call(jp_fetch, "GET", "experiments")
    assert after == before and not after["experiments"][0]["archived"]


@pytest.mark.parametrize("grants", [NO_EXECUTE], indirect=True)
async def test_reproduce_runs_code_so_it_needs_execute(jp_fetch, runs: list[str]) -> None:
    status, error = await refused(jp_fetch, "POST", "runs", runs[0], "reproduce", body={})
    assert status == 403
    assert error["message"] == "User is not authorized to execute on resource: kernels."
    assert await run_ids(jp_fetch) == sorted(runs)
    # Experiments are records, not code: `write` is enough to rename one.
    eid = await experiment_id(jp_fetch)
    status, renamed = await call(jp_fetch, "PATCH", "experiments", eid, body={"name": "renamed"})
    assert status == 200 and renamed["name"] == "renamed"


@pytest.mark.parametrize("grants", [KUBELAB_ONLY], indirect=True)
async def test_a_lookup_by_file_needs_read_on_contents(jp_fetch, runs: list[str]) -> None:
    for endpoint in ("artifacts", "lineage"):
        status, error = await refused(jp_fetch, "GET", endpoint, path="nb.ipynb")
        assert status == 403, endpoint
        assert error["message"] == "User is not authorized to read on resource: contents."
    # Lookups that read no file of the user's stay open to kubelab readers.
    _, graph = await call(jp_fetch, "GET", "lineage", ref=f"{runs[1]}/double/doubled")
    status, found = await call(jp_fetch, "GET", "artifacts", digest=graph["artifact"]["digest"])
    assert status == 200 and [a["id"] for a in found["artifacts"]] == [graph["artifact"]["id"]]


@pytest.mark.parametrize("grants", [FULL], indirect=True)
async def test_paths_stay_inside_the_root_and_reproduce_passes_with_every_grant(
    jp_fetch, runs: list[str], jp_root_dir: Path, kubelab_home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    copy = shutil.copy(jp_root_dir / "nb.ipynb", outside / "nb.ipynb")
    (jp_root_dir / "link.ipynb").symlink_to(copy)
    for endpoint in ("artifacts", "lineage"):
        assert (await refused(jp_fetch, "GET", endpoint, path="../outside/nb.ipynb"))[0] == 403
        assert (await refused(jp_fetch, "GET", endpoint, path="link.ipynb"))[0] == 403
        assert (await refused(jp_fetch, "GET", endpoint, path=str(copy)))[0] == 400
    # A file path outside the root given as `ref` is not read: the copy of the notebook
    # (found by its content from Python) is unknown to the REST API.
    assert Client(home=kubelab_home, root=jp_root_dir).artifact_lineage(str(copy))["artifact"]
    status, error = await refused(jp_fetch, "GET", "lineage", ref=str(copy))
    assert status == 404 and "a file path" not in error["message"]

    status, started = await call(jp_fetch, "POST", "runs", runs[0], "reproduce", body={})
    assert status == 201 and started["reproduces"] == runs[0]
    deadline = time.monotonic() + 120
    while True:
        _, run = await call(jp_fetch, "GET", "runs", started["id"])
        if run["state"] not in ("pending", "running"):
            break
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.2)
    _, report = await call(jp_fetch, "GET", "runs", started["id"], "reproduction")
    assert report["equal"] is True, report

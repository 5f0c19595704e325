"""Training jobs through the REST API of a real jupyter server: what the sidebar's Train
form sends, what the job view reads (per-node state, device, duration; metric series;
the failing rank's traceback), and a 4xx with a message for every bad input."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import kubelab_api as api
import pytest

CPU_PROFILE = {"slug": "cpu-small", "display_name": "CPU small", "image": "x", "gpu": None}

SCRIPT = """
import argparse
import torch, torch.distributed as dist
from kubelab.workloads import report

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--fail-rank", type=int, default=-1)
args = parser.parse_args()
dist.init_process_group("gloo")
rank = dist.get_rank()
if rank == args.fail_rank:
    raise ValueError(f"rank {rank}: bad batch")
for epoch in range(args.epochs):
    loss = torch.tensor([1.0 / (epoch + 1 + rank)])
    dist.all_reduce(loss)
    report(step=epoch, loss=loss.item())
    print(f"rank {rank} epoch {epoch}", flush=True)
dist.barrier()
"""


@pytest.fixture
def cpu_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spawner started this server with a CPU-only profile (its identity file)."""
    identity = tmp_path / "identity.json"
    identity.write_text(json.dumps({"user": "bob", "groups": [], "profile": CPU_PROFILE}))
    monkeypatch.setenv("KUBELAB_IDENTITY_FILE", str(identity))


@pytest.fixture
def jp_server_config(cpu_profile: None) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"kubelab.server": True}}}


@pytest.fixture
def script(jp_root_dir: Path) -> str:
    (jp_root_dir / "jobs").mkdir()
    (jp_root_dir / "jobs" / "train.py").write_text(textwrap.dedent(SCRIPT))
    return "jobs/train.py"


async def call(jp_fetch, method: str, *parts: str, body: Any = None, **params: Any) -> Any:
    return await api.call(jp_fetch, method, "jobs", *parts, body=body, **params)


async def finished(jp_fetch, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        _, job = await call(jp_fetch, "GET", job_id)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)


async def test_a_training_job_from_the_train_form(jp_fetch, script: str) -> None:
    spec = {"path": script, "num_nodes": 2, "nproc_per_node": 1, "parameters": {"epochs": "3"}}
    status, created = await call(
        jp_fetch, "POST", body={"kind": "training", "spec": spec, "backend": "local"}
    )
    assert status == 201 and created["backend"] == "local"
    job = await finished(jp_fetch, created["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["kind"] == "training" and job["spec"]["num_nodes"] == 2
    for step in job["steps"]:
        assert step["state"] == "succeeded" and step["device"] == "cpu"
        assert step["duration_s"] is not None and step["started_at"] and step["finished_at"]
    _, metrics = await call(jp_fetch, "GET", created["id"], "metrics")
    losses = metrics["series"]["node-0"]["loss"]
    assert [p["step"] for p in losses] == [0, 1, 2]
    assert losses[0]["value"] == pytest.approx(1 + 1 / 2)  # all_reduce of both ranks
    assert job["metrics"]["loss"] == losses[-1]["value"]
    _, log = await call(jp_fetch, "GET", created["id"], "steps", "node-1", "logs")
    assert "rank 1 epoch 2" in log["text"] and log["complete"]


async def test_the_failing_rank_and_its_traceback_reach_the_job(jp_fetch, script: str) -> None:
    spec = {"path": script, "num_nodes": 2, "parameters": {"fail-rank": 1}}
    _, created = await call(jp_fetch, "POST", body={"kind": "training", "spec": spec})
    job = await finished(jp_fetch, created["id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("node-1 (rank 1) exited with code 1:\nTraceback")
    assert "ValueError: rank 1: bad batch" in job["error"]
    steps = {s["name"]: s for s in job["steps"]}
    assert steps["node-1"]["state"] == "failed" and "bad batch" in steps["node-1"]["error"]
    assert steps["node-0"]["state"] == "cancelled"


@pytest.mark.parametrize(
    ("spec", "backend", "status", "message", "field"),
    [
        ({"path": "nope.py"}, None, 404, "no such file: nope.py", None),
        ({"path": "../elsewhere.py"}, None, 400, "outside your root folder", "path"),
        ({"num_nodes": 0}, None, 400, "num_nodes must be between 1 and 64, got 0", "num_nodes"),
        ({"nproc_per_node": -2}, None, 400, "nproc_per_node must be between 1", "nproc_per_node"),
        (
            {"gpus_per_node": 1},
            None,
            400,
            "1 GPU(s) per node asked, but your profile CPU small allows 0",
            "resources_per_node.gpu",
        ),
        ({}, "cloud", 400, "unknown backend 'cloud'; backends: local, kubernetes", None),
    ],
)
async def test_bad_training_requests_are_4xx_naming_the_problem(
    jp_fetch, script: str, spec: dict, backend: str | None, status: int, message: str, field: str
) -> None:
    body: dict[str, Any] = {"kind": "training", "spec": {"path": script, **spec}}
    if backend:
        body["backend"] = backend
    code, answer = await api.refused(jp_fetch, "POST", "jobs", body=body)
    assert code == status and message in answer["message"]
    if field:
        assert answer["field"] == field
    _, listed = await call(jp_fetch, "GET")
    assert listed["jobs"] == []  # nothing was started or recorded

"""The REST jobs API on a real jupyter server (pytest-jupyter), with a tiny real job kind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubelab_api as api
import pytest
from jupyter_server.auth.authorizer import Authorizer

from kubelab.client.store import RunStore


class ReadOnlyAuthorizer(Authorizer):
    """What a JupyterHub read-only share grants: reading, nothing else."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


@pytest.fixture
def read_only() -> None:
    """Marks a test whose server only authorizes reads."""


@pytest.fixture
def cluster_job(kubelab_home: Path) -> str:
    """Before the server starts: a job on a cluster, recorded by a server that has exited."""
    store = RunStore(kubelab_home / "kubelab.db")
    job = store.create_run(
        "on-cluster", {}, run_id="on-cluster", kind="training", backend="kubernetes"
    )
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    objects = [{"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                "name": "on-cluster", "namespace": "nowhere"}]  # fmt: skip
    store.update_run(job, state="running", owner_pid=process.pid, outputs={"objects": objects})
    store.close()
    return job


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict:
    if "cluster_job" in request.fixturenames:
        request.getfixturevalue("cluster_job")
    config: dict[str, Any] = {"ServerApp": {"jpserver_extensions": {"kubelab.server": True}}}
    if "read_only" in request.fixturenames:
        config["ServerApp"]["authorizer_class"] = ReadOnlyAuthorizer
    return config


async def call(jp_fetch, method: str, *parts: str, body: Any = None, **params: Any) -> Any:
    return await api.call(jp_fetch, method, "jobs", *parts, body=body, **params)


async def refused(jp_fetch, method: str, *parts: str, body: Any = None, **params: Any) -> Any:
    return await api.refused(jp_fetch, method, "jobs", *parts, body=body, **params)


async def wait_state(jp_fetch, job_id: str, states: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + 60
    while True:
        _, job = await call(jp_fetch, "GET", job_id)
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


async def test_create_follow_logs_metrics_and_list(jp_fetch, tiny_kind) -> None:
    status, created = await call(
        jp_fetch, "POST", body={"kind": tiny_kind, "spec": {"nodes": 2, "epochs": 4}}
    )
    assert status == 201
    assert created["kind"] == "training" and created["backend"] == "local"
    job_id = created["id"]
    # Follow node-0's log by offset, as the sidebar does, until it is complete.
    text, offset = "", 0
    deadline = time.monotonic() + 60
    while True:
        _, chunk = await call(jp_fetch, "GET", job_id, "steps", "node-0", "logs", offset=offset)
        text += chunk["text"]
        offset = chunk["offset"]
        if chunk["complete"]:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert chunk["state"] == "succeeded"
    assert text.startswith("node 0 starting: héllo ✓") and text.endswith("node 0 done\n")
    assert offset == len(text.encode())
    job = await wait_state(jp_fetch, job_id, ("succeeded",))
    assert [s["name"] for s in job["steps"]] == ["node-0", "node-1"]
    assert job["spec"]["nodes"] == 2
    _, metrics = await call(jp_fetch, "GET", job_id, "metrics")
    assert [p["step"] for p in metrics["series"]["node-1"]["loss"]] == [0, 1, 2, 3]
    _, listed = await call(jp_fetch, "GET", kind="training")
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    _, listed = await call(jp_fetch, "GET", kind="serving")
    assert listed["jobs"] == []


async def test_cancel_then_delete(jp_fetch, tiny_kind) -> None:
    _, created = await call(
        jp_fetch, "POST", body={"kind": tiny_kind, "spec": {"seconds": 60}, "name": "long"}
    )
    assert created["id"] == "long"
    await wait_state(jp_fetch, "long", ("running",))
    status, job = await call(jp_fetch, "POST", "long", "cancel", body={})
    assert status == 200
    job = await wait_state(jp_fetch, "long", ("cancelled",))
    assert job["steps"][0]["state"] == "cancelled"
    status, body = await refused(jp_fetch, "POST", "long", "cancel", body={})
    assert status == 409 and "already finished (cancelled)" in body["message"]
    status, body = await refused(jp_fetch, "POST", body={"kind": tiny_kind, "name": "long"})
    assert status == 409 and "a job named 'long' already exists" in body["message"]
    status, body = await call(jp_fetch, "DELETE", "long")
    assert (status, body) == (200, {"id": "long", "deleted": True})
    for method, parts in (
        ("GET", ("long",)),
        ("DELETE", ("long",)),
        ("GET", ("long", "steps", "node-0", "logs")),
    ):
        status, body = await refused(jp_fetch, method, *parts)
        assert status == 404 and body["message"] == "no job 'long'", parts


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        ({"kind": "painting"}, "unknown job kind 'painting'; kinds: ", None),
        ({"spec": {}}, "'kind' must name a kind of job", "kind"),
        (
            {"kind": "training", "spec": {"nodes": 9}},
            "'nodes' must be an integer from 1 to 4",
            "nodes",
        ),
        ({"kind": "training", "spec": {"colour": 1}}, "unknown field 'colour'", "colour"),
        ({"kind": "training", "spec": [1]}, "'spec' must be an object", None),
        ({"kind": "training", "backend": "cloud"}, "unknown backend 'cloud'", None),
        ({"kind": "training", "name": "No Spaces"}, "must be a DNS-1123 label", "name"),
    ],
)
async def test_bad_requests_are_400_with_a_message(
    jp_fetch, tiny_kind, body, message, field
) -> None:
    status, answer = await refused(jp_fetch, "POST", body=body)
    assert status == 400
    assert message in answer["message"]
    if field:
        assert answer["field"] == field
    _, listed = await call(jp_fetch, "GET")
    assert listed["jobs"] == []  # nothing was recorded


async def test_bad_query_and_unknown_step(jp_fetch, tiny_kind) -> None:
    status, body = await refused(jp_fetch, "GET", "x", "steps", "s", "logs", offset="abc")
    assert status == 400 and "'offset' must be an integer" in body["message"]
    _, created = await call(jp_fetch, "POST", body={"kind": tiny_kind})
    await wait_state(jp_fetch, created["id"], ("succeeded",))
    status, body = await refused(jp_fetch, "GET", created["id"], "steps", "node-5", "logs")
    assert status == 404 and "has no step 'node-5'; steps: node-0" in body["message"]


async def test_a_restart_does_not_mark_cluster_jobs_interrupted(cluster_job, jp_fetch) -> None:
    _, listed = await call(jp_fetch, "GET")
    assert [(j["id"], j["state"], j["backend"]) for j in listed["jobs"]] == [
        ("on-cluster", "running", "kubernetes")
    ]


async def test_a_read_only_user_can_read_but_not_start_or_stop(
    read_only, jp_fetch, tiny_kind
) -> None:
    status, body = await call(jp_fetch, "GET")
    assert status == 200 and body == {"jobs": []}
    for method, parts in (("POST", ()), ("POST", ("x", "cancel")), ("DELETE", ("x",))):
        status, body = await refused(
            jp_fetch, method, *parts, body={"kind": tiny_kind} if method == "POST" else None
        )
        assert status == 403, (method, parts)
        assert "not authorized to write on resource: kubelab" in body["message"]
    status, body = await refused(jp_fetch, "GET", "x")
    assert status == 404  # reading is allowed: the job just does not exist

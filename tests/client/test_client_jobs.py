"""`Client` jobs on the local backend, with a tiny real job kind (processes, logs, metrics)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kubelab.client import Client
from kubelab.client.store import RunStore
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError


def wait_running(client: Client, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        job = client.get_job(job_id)
        if job["state"] == "running":
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_a_job_runs_to_the_end_with_steps_logs_and_metrics(client: Client, tiny_kind: str):
    job_id = client.create_job(tiny_kind, {"nodes": 2, "epochs": 3})
    assert job_id.startswith("training-")
    job = client.wait_for_job(job_id, timeout=60)
    assert job["state"] == "succeeded", job
    assert job["kind"] == "training" and job["backend"] == "local"
    assert job["spec"] == {"nodes": 2, "epochs": 3, "seconds": 0.0, "fail": False}
    assert [(s["name"], s["state"]) for s in job["steps"]] == [
        ("node-0", "succeeded"),
        ("node-1", "succeeded"),
    ]
    # The first step by default; the whole log, UTF-8 intact, then complete.
    text = "".join(client.stream_job_logs(job_id))
    assert text.startswith("node 0 starting: héllo ✓\n") and "node 0 done" in text
    assert "node 1 done" in "".join(client.stream_job_logs(job_id, "node-1"))
    chunk = client.job_logs(job_id, "node-1", 0)
    assert chunk["complete"] and chunk["offset"] == len(chunk["text"].encode())
    series = client.job_metrics(job_id)
    assert [p["value"] for p in series["node-1"]["loss"]] == [0.5, 1 / 3, 0.25]
    assert [p["step"] for p in series["node-0"]["loss"]] == [0, 1, 2]
    assert [j["id"] for j in client.list_jobs()] == [job_id]
    assert client.list_jobs("tuning") == []
    assert client.list_runs() == []  # jobs are not pipeline runs
    with pytest.raises(NotFoundError, match="is a training job"):
        client.get_run(job_id)
    with pytest.raises(ConflictError, match="already finished"):
        client.cancel_job(job_id)


def test_a_failing_job_says_so(client: Client, tiny_kind: str):
    job = client.wait_for_job(client.create_job(tiny_kind, {"fail": True}), timeout=60)
    assert job["state"] == "failed" and job["error"] == "a node failed"
    assert "node failed on purpose" in client.job_logs(job["id"], "node-0")["text"]


def test_cancel_from_another_client_stops_the_processes(
    client: Client, tiny_kind: str, kubelab_home: Path
):
    job_id = client.create_job(tiny_kind, {"nodes": 2, "seconds": 60}, name="long-one")
    assert job_id == "long-one"
    wait_running(client, job_id)
    pids = [RunStore().task_info(job_id, f"node-{i}")["metadata"]["pid"] for i in range(2)]
    # A second client (as the CLI or the server would be) cancels by the store's record.
    other = Client(home=kubelab_home)
    other.cancel_job("long")
    job = client.wait_for_job(job_id, timeout=30)
    assert job["state"] == "cancelled"
    assert {s["state"] for s in job["steps"]} == {"cancelled"}
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped
    with pytest.raises(ConflictError, match="a job named 'long-one' already exists"):
        client.create_job(tiny_kind, {}, name="long-one")


def test_delete_forgets_the_job_and_its_files(client: Client, tiny_kind: str, kubelab_home: Path):
    job_id = client.create_job(tiny_kind, {"seconds": 60})
    wait_running(client, job_id)
    assert (kubelab_home / "jobs" / job_id / "node-0.log").is_file()
    client.delete_job(job_id)
    assert not (kubelab_home / "jobs" / job_id).exists()
    with pytest.raises(NotFoundError, match=f"no job '{job_id}'"):
        client.get_job(job_id)
    assert client.list_jobs() == []


def test_bad_jobs_are_refused_before_anything_starts(client: Client, tiny_kind: str):
    with pytest.raises(KubelabError, match="'nodes' must be an integer from 1 to 4") as e:
        client.create_job(tiny_kind, {"nodes": 0})
    assert e.value.details == {"field": "nodes"}
    with pytest.raises(KubelabError, match=r"unknown job kind 'painting'; kinds: .*training"):
        client.create_job("painting", {})
    with pytest.raises(KubelabError, match="unknown backend 'cloud'"):
        client.create_job(tiny_kind, {}, backend="cloud")
    with pytest.raises(KubelabError, match="must be a DNS-1123 label"):
        client.create_job(tiny_kind, {}, name="Bad_Name")
    with pytest.raises(KubelabError, match="'spec' must be an object"):
        client.create_job(tiny_kind, ["nodes", 1])  # type: ignore[arg-type]
    with pytest.raises(KubelabError, match="unknown job kind 'painting'"):
        client.list_jobs("painting")
    assert client.list_jobs() == []


def test_the_kubernetes_backend_without_credentials_leaves_nothing_behind(
    client: Client, tiny_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    with pytest.raises(KubelabError, match="kubernetes backend is not available: no in-cluster"):
        client.create_job(tiny_kind, {"nodes": 2}, backend="kubernetes")
    assert client.list_jobs() == []

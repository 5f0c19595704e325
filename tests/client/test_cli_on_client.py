"""`kubelab runs ...` and `kubelab jobs ...` go through `Client` (in-process `main`, so the
tiny job kind registered by the test is known)."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from kubelab.client import Client
from kubelab.client.cli.main import main

FOLLOWED = textwrap.dedent(
    """
    from kubelab.pipelines import dsl

    @dsl.component
    def talk(n: int):
        import time
        for i in range(n):
            print("line", i, flush=True)
            time.sleep(0.1)

    @dsl.pipeline(name="talker")
    def talker(n: int = 8):
        talk(n=n)
    """
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_logs_follow_prints_every_line_once(client: Client, tmp_path: Path, capsys):
    (tmp_path / "talk.py").write_text(FOLLOWED)
    run_id = client.create_run_from_pipeline_package(tmp_path / "talk.py").run_id
    deadline = time.monotonic() + 30
    while client.get_run(run_id)["steps"][0]["state"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, out, _ = cli(capsys, "runs", "logs", "-f", run_id, "talk")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("line")] == [
        f"line {i}" for i in range(8)
    ]
    assert client.get_run(run_id)["state"] == "succeeded"
    code, out, _ = cli(capsys, "runs", "list", "--output", "json")
    assert [r["id"] for r in json.loads(out)] == [run_id]
    code, out, _ = cli(capsys, "runs", "show", run_id[:17])
    assert code == 0 and "talker" in out and "succeeded" in out and "(local)" in out


def test_runs_commands_reach_the_kubernetes_backend(client: Client, capsys, monkeypatch):
    code, _, err = cli(capsys, "runs", "list", "--backend", "kubernetes")
    assert code == 2 and "the kubernetes backend is not configured" in err
    monkeypatch.setenv("KUBELAB_KFP_ENDPOINT", "http://127.0.0.1:9")
    code, _, err = cli(capsys, "runs", "show", "some-run", "--backend", "kubernetes")
    assert code == 2 and "cannot reach Kubeflow Pipelines at http://127.0.0.1:9" in err
    code, _, err = cli(capsys, "runs", "list", "--backend", "local")
    assert code == 0


def test_jobs_list_show_logs_cancel_delete(client: Client, tiny_kind: str, capsys):
    done = client.create_job(tiny_kind, {"nodes": 2}, name="short")
    client.wait_for_job(done, timeout=60)
    running = client.create_job(tiny_kind, {"seconds": 60}, name="long")
    code, out, _ = cli(capsys, "jobs", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "KIND", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == ["long", "short"]
    code, out, _ = cli(capsys, "jobs", "list", "--kind", "tuning", "--output", "json")
    assert json.loads(out) == []
    code, out, _ = cli(capsys, "jobs", "show", "short")
    assert "training short  short  succeeded  (local)" in out and "node-1" in out
    code, out, _ = cli(capsys, "jobs", "logs", "short", "--step", "node-1")
    assert out.startswith("node 1 starting") and out.endswith("node 1 done\n")
    code, out, err = cli(capsys, "jobs", "logs", "short", "--step", "node-7")
    assert code == 2 and "job short has no step 'node-7'; steps: node-0, node-1" in err
    code, out, _ = cli(capsys, "jobs", "cancel", "long")
    assert code == 0 and out.strip() in ("job long running", "job long cancelled")
    assert client.wait_for_job(running, timeout=30)["state"] == "cancelled"
    code, _, err = cli(capsys, "jobs", "cancel", "long")
    assert code == 2 and "job long has already finished (cancelled)" in err
    code, _, err = cli(capsys, "jobs", "delete", "short")
    assert code == 0 and "job short deleted" in err
    assert [j["id"] for j in client.list_jobs()] == ["long"]
    code, _, err = cli(capsys, "jobs", "show", "short")
    assert code == 2 and "no job 'short'" in err

"""`TrainerClient` over the one `Client` on the local backend, and `kubelab train` end to
end: real torch.distributed (gloo) processes, logs, metrics, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubelab.client import Client
from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.trainer import CustomTrainer, LocalBackendConfig, TrainerClient


@pytest.fixture
def trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainerClient:
    monkeypatch.chdir(tmp_path)
    return TrainerClient(LocalBackendConfig())


def ticker(lines: int = 6, pause: float = 0.25) -> None:
    import os
    import time

    import torch.distributed as dist

    from kubelab.workloads import report

    dist.init_process_group("gloo")
    for i in range(lines):
        print(f"node {os.environ['NODE_RANK']} line {i}", flush=True)
        report(step=i, loss=1.0 / (i + 1))
        time.sleep(pause)
    dist.barrier()


def test_train_wait_and_read_back_the_job(trainer: TrainerClient) -> None:
    name = trainer.train(trainer=CustomTrainer(func=ticker, func_args={"pause": 0}, num_nodes=3))
    job = trainer.wait_for_job_status(name, {"Complete"}, timeout=120)
    assert job.status == "Complete" and job.backend == "local" and job.num_nodes == 3
    assert [(s.name, s.status, s.device) for s in job.steps] == [
        ("node-0", "Complete", "cpu"),
        ("node-1", "Complete", "cpu"),
        ("node-2", "Complete", "cpu"),
    ]
    assert all(s.duration_s is not None and s.duration_s >= 0 for s in job.steps)
    assert job.metrics == {"loss": pytest.approx(1 / 6)}
    assert job.error is None and job.runtime.name == "torch-distributed"
    assert [j.name for j in trainer.list_jobs()] == [name]
    lines = list(trainer.get_job_logs(name, step="node-2"))
    assert [x for x in lines if x.startswith("node 2 line")] == [
        f"node 2 line {i}" for i in range(6)
    ]
    [runtime] = trainer.list_runtimes()
    assert runtime.name == "torch-distributed" and runtime.trainer.framework == "torch"
    trainer.delete_job(name)
    assert trainer.list_jobs() == []
    with pytest.raises(KubelabError, match=f"no job '{name}'"):
        trainer.get_job(name)


def test_the_live_view_shows_nodes_logs_metrics(trainer: TrainerClient) -> None:
    """What train() displays in a notebook: the widget's HTML, refreshed until the end."""
    from kubelab.workloads.trainer.display import show

    name = trainer.train(trainer=CustomTrainer(func=ticker, func_args={"pause": 0}, num_nodes=2))
    view = show(trainer, name)
    deadline = time.monotonic() + 120
    while "succeeded</span>" not in view.value:
        assert time.monotonic() < deadline, view.value
        time.sleep(0.1)
    # the refresh that saw the end read every log and series first
    assert "<td>node-1</td>" in view.value and "node 1 line 5" in view.value
    assert "loss <b>0.1667</b>" in view.value and "<polyline" in view.value


def test_logs_are_streamed_while_the_job_runs_and_never_twice(trainer: TrainerClient) -> None:
    name = trainer.train(trainer=CustomTrainer(func=ticker, func_args={"pause": 0.4}, num_nodes=2))
    seen: list[tuple[str, float]] = []
    for line in trainer.get_job_logs(name, step="node-1", follow=True):
        seen.append((line, time.time()))
    job = trainer.client.get_job(name)
    assert job["state"] == "succeeded"
    ours = [line for line, _ in seen if line.startswith("node 1 line")]
    assert ours == [f"node 1 line {i}" for i in range(6)]  # each once, in order
    assert len({line for line, _ in seen}) == len(seen)
    # the first line came while the job still ran (about 2 s before its end)
    first = next(at for line, at in seen if line == "node 1 line 0")
    finished = trainer.client.store.run_info(name)["finished_at"]
    assert finished - first > 1.0


def broken(at_rank: int = 1) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    if dist.get_rank() == at_rank:
        {}["missing"]  # the failure under test
    dist.barrier()


def test_a_failed_job_says_which_rank_and_why(trainer: TrainerClient) -> None:
    name = trainer.train(trainer=CustomTrainer(func=broken, num_nodes=2))
    with pytest.raises(RuntimeError, match=r"is Failed: node-1 \(rank 1\) exited with code 1"):
        trainer.wait_for_job_status(name, timeout=120)
    job = trainer.get_job(name)
    assert job.status == "Failed"
    assert "Traceback (most recent call last)" in job.error and "KeyError: 'missing'" in job.error
    steps = {s.name: s for s in job.steps}
    assert steps["node-1"].status == "Failed" and "KeyError" in steps["node-1"].error
    assert steps["node-0"].status == "Failed"  # stopped because of node-1
    assert trainer.wait_for_job_status(name, {"Failed"}, timeout=5).status == "Failed"


def test_the_profile_gpu_limit_holds_for_local_jobs(kubelab_home: Path, tmp_path: Path) -> None:
    cpu_only = {"slug": "cpu-small", "display_name": "CPU small", "gpu": None}
    client = Client("local", home=kubelab_home, root=tmp_path, profile=cpu_only)
    trainer = TrainerClient(LocalBackendConfig(), client=client)
    gpu_job = CustomTrainer(func=ticker, resources_per_node={"gpu": 1})
    with pytest.raises(
        KubelabError, match=r"1 GPU\(s\) per node asked, but your profile CPU small allows 0"
    ):
        trainer.train(trainer=gpu_job)
    assert trainer.list_jobs() == []  # refused before anything ran: no record
    assert not (kubelab_home / "jobs").exists() or not any((kubelab_home / "jobs").iterdir())


SCRIPT = """
import argparse, os
import torch, torch.distributed as dist
from kubelab.workloads import report

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--fail", default="no")
args = parser.parse_args()
dist.init_process_group("gloo")
rank = dist.get_rank()
total = torch.tensor([rank + 1.0])
dist.all_reduce(total)
print(f"rank {rank} sum {total.item():g}", flush=True)
if args.fail == "yes" and rank == 1:
    raise SystemExit(f"rank {rank} gives up")
for epoch in range(3):
    report(step=epoch, loss=args.lr / (epoch + 1))
dist.barrier()
"""


def kubelab_train(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", "train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "KUBELAB_HOME": str(cwd / "home")},
    )


def test_kubelab_train_output_json_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    done = kubelab_train(tmp_path, "train.py", "--nodes", "2", "-p", "lr=0.5", "--output", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "Complete" and result["error"] is None
    assert result["backend"] == "local" and result["metrics"] == {"loss": 0.5 / 3}
    assert set(result["steps"]) == {"node-0", "node-1"}
    for step in result["steps"].values():
        assert step["state"] == "Complete" and step["device"] == "cpu"
        assert step["duration_s"] >= 0

    failed = kubelab_train(tmp_path, "train.py", "--nodes", "2", "-p", "fail=yes", "-o", "json")
    assert failed.returncode == 1, failed.stderr
    summary = json.loads(failed.stdout)
    assert summary["state"] == "Failed" and summary["steps"]["node-1"]["state"] == "Failed"
    assert summary["error"].startswith("node-1 (rank 1) exited with code 1")
    assert "rank 1 gives up" in summary["error"]

    refused = kubelab_train(tmp_path, "missing.py", "-o", "json")
    assert refused.returncode == 2 and "no such file: missing.py" in refused.stderr
    assert refused.stdout == ""

    # Both jobs are in the store the other commands read.
    listed = subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", "jobs", "list", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBELAB_HOME": str(tmp_path / "home")},
    )
    states = {j["id"]: j["state"] for j in json.loads(listed.stdout)}
    assert states == {result["name"]: "succeeded", summary["name"]: "failed"}

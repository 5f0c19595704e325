"""The local training backend with real torch.distributed (gloo) processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from trainer_helpers import alive, function_spec, make_ctx, node_log, start, wait, wait_for

from kubelab.client.gpus import GpuLease
from kubelab.client.store import INTERRUPTED_ERROR, RunStore
from kubelab.pipelines.errors import KubelabError


@pytest.fixture
def ctx(kubelab_home: Path, tmp_path: Path):
    root = tmp_path / "work"
    root.mkdir()
    context = make_ctx(kubelab_home, root)
    yield context
    context.store.close()


def all_reduce_ranks(steps: int = 2) -> None:
    import os

    import torch
    import torch.distributed as dist

    from kubelab.workloads import report

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    total = torch.tensor([rank + 1.0])
    dist.all_reduce(total)
    print(
        f"rank {rank} local {os.environ['LOCAL_RANK']} node {os.environ['NODE_RANK']} "
        f"world {dist.get_world_size()} sum {total.item():g}"
    )
    for step in range(steps):
        report(step=step, loss=1.0 / (step + 1))
    dist.destroy_process_group()


def test_two_nodes_of_two_processes_all_reduce(ctx) -> None:
    job_id = start(ctx, function_spec(all_reduce_ranks, num_nodes=2, nproc_per_node=2))
    job = wait(ctx, job_id)
    assert job["state"] == "succeeded", job["error"]
    assert [s["name"] for s in job["steps"]] == ["node-0", "node-1"]
    assert all(s["state"] == "succeeded" and s["device"] == "cpu" for s in job["steps"])
    assert all(s["duration_s"] is not None for s in job["steps"])
    for node in (0, 1):
        log = node_log(ctx, job_id, node)
        for rank in (2 * node, 2 * node + 1):
            # Every rank saw 1+2+3+4, and its lines are in its own node's log.
            assert f"[rank{rank}]:rank {rank} local {rank % 2} node {node} world 4 sum 10" in log
        other = 1 - node
        assert f"[rank{2 * other}]" not in log
    # report() lines became metric series (local rank 0 of each node), and job metrics.
    series = ctx.store.metric_series(job_id)
    assert [p["value"] for p in series["node-0"]["loss"]] == [1.0, 0.5]
    assert [p["step"] for p in series["node-1"]["loss"]] == [0, 1]
    assert job["metrics"] == {"loss": 0.5}


def fail_on_rank_three() -> None:
    import os
    import time

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    if dist.get_rank() == 3:
        print(f"failing at {time.time()}", flush=True)
        raise ValueError("rank three cannot go on")
    print(f"pid {os.getpid()} waits for everyone", flush=True)
    dist.all_reduce(torch.ones(1))  # never completes: rank 3 is gone
    time.sleep(120)


def test_a_failing_rank_fails_the_job_and_stops_the_others(ctx) -> None:
    job_id = start(ctx, function_spec(fail_on_rank_three, num_nodes=2, nproc_per_node=2))
    job = wait(ctx, job_id, timeout=90)
    assert job["state"] == "failed"
    assert job["error"].startswith("node-1 (rank 3) exited with code 1:\nTraceback")
    assert "ValueError: rank three cannot go on" in job["error"]
    steps = {s["name"]: s for s in job["steps"]}
    assert steps["node-1"]["state"] == "failed" and "ValueError" in steps["node-1"]["error"]
    assert steps["node-0"]["state"] == "cancelled"
    assert "stopped because node-1 (rank 3)" in steps["node-0"]["error"]
    failed_at = float(node_log(ctx, job_id, 1).split("failing at ")[1].split()[0])
    finished = ctx.store.run_info(job_id)["finished_at"]
    assert finished - failed_at < 5, "the other ranks must be stopped within 5 s"
    pids = [
        p for n in ("node-0", "node-1") for p in ctx.store.task_info(job_id, n)["metadata"]["pids"]
    ]
    assert len(pids) == 4 and not any(alive(p) for p in pids)


def sleep_long() -> None:
    import time

    import torch.distributed as dist

    dist.init_process_group("gloo")
    print("started", flush=True)
    time.sleep(300)


@pytest.mark.parametrize("how", ["here", "from another process"])
def test_cancel_stops_every_process(ctx, how: str) -> None:
    from kubelab.workloads.trainer.workload import TrainingWorkload

    job_id = start(ctx, function_spec(sleep_long, num_nodes=2, nproc_per_node=1))
    wait_for(
        lambda: "started" in node_log(ctx, job_id, 0) and "started" in node_log(ctx, job_id, 1)
    )
    pids = [
        p for n in ("node-0", "node-1") for p in ctx.store.task_info(job_id, n)["metadata"]["pids"]
    ]
    t0 = time.monotonic()
    if how == "here":
        ctx.store.request_cancel(job_id)
        TrainingWorkload().cancel_local(job_id, ctx)
    else:
        RunStore(ctx.store.path).request_cancel(job_id)  # what a CLI or the server does
    job = wait(ctx, job_id, timeout=20)
    assert job["state"] == "cancelled" and time.monotonic() - t0 < 5
    assert all(s["state"] == "cancelled" for s in job["steps"])
    assert not any(alive(p) for p in pids)


def test_records_survive_a_restart_and_running_jobs_are_interrupted(
    kubelab_home: Path, tmp_path: Path
) -> None:
    """A process that runs a job dies; a new store (a restarted server) tells what ran."""
    program = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from trainer_helpers import function_spec, make_ctx, start, node_log
        from test_trainer_local import sleep_long
        ctx = make_ctx(Path({str(kubelab_home)!r}), Path({str(tmp_path)!r}))
        start(ctx, function_spec(sleep_long, num_nodes=1, nproc_per_node=2), "doomed")
        while "started" not in node_log(ctx, "doomed", 0):
            time.sleep(0.05)
        print("ready", flush=True)
        time.sleep(300)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        store = RunStore(kubelab_home / "kubelab.db")
        pids = store.task_info("doomed", "node-0")["metadata"]["pids"]
        assert store.get_run("doomed")["state"] == "running"
    finally:
        owner.kill()
        owner.wait()
    restarted = RunStore(kubelab_home / "kubelab.db")
    job = restarted.get_run("doomed")
    assert job["state"] == "failed" and job["error"] == INTERRUPTED_ERROR
    assert job["kind"] == "training" and job["steps"][0]["state"] == "failed"
    assert (
        "[rank1]:started" in Path(restarted.task_info("doomed", "node-0")["log_path"]).read_text()
    )
    # The ranks die with their owner (the fork server stops its children).
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10)


def show_devices() -> None:
    import os
    import time

    print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
    time.sleep(1)


def test_gpus_are_leased_machine_wide(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each node sees its own GPU; while the job holds both, nobody else gets one."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    job_id = start(ctx, function_spec(show_devices, num_nodes=2, resources_per_node={"gpu": 1}))
    wait_for(lambda: ctx.store.get_run(job_id)["state"] == "running")
    assert GpuLease().try_acquire(1) is None  # what a pipeline step would ask
    job = wait(ctx, job_id)
    assert job["state"] == "succeeded", job["error"]
    seen = {node_log(ctx, job_id, n).split("devices ")[1].split()[0] for n in (0, 1)}
    assert seen == {"4", "7"}
    assert all(s["device"] == "gpu" for s in job["steps"])
    lease = GpuLease()
    assert sorted(lease.try_acquire(2) or []) == ["4", "7"]  # given back at the end


def test_no_gpu_runs_on_cpu_with_a_warning_unless_strict(
    ctx, kubelab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    job_id = start(ctx, function_spec(show_devices, resources_per_node={"gpu": 1}))
    job = wait(ctx, job_id)
    assert job["state"] == "succeeded"
    assert "running on CPU (gloo) instead" in job["steps"][0]["warning"]
    assert "warning: 1 GPU(s) per node x 1 node(s) asked" in node_log(ctx, job_id, 0)
    strict = make_ctx(kubelab_home, tmp_path, strict=True)
    with pytest.raises(KubelabError, match="this machine has 0"):
        start(strict, function_spec(show_devices, resources_per_node={"gpu": 1}), "strict")


def test_a_script_gets_its_parameters_as_arguments(ctx) -> None:
    (ctx.root / "helper.py").write_text("GREETING = 'hello from a sibling module'\n")
    (ctx.root / "train.py").write_text(
        textwrap.dedent(
            """
            import argparse, os
            from helper import GREETING
            parser = argparse.ArgumentParser()
            parser.add_argument("--lr", type=float)
            parser.add_argument("--layers", type=int)
            args = parser.parse_args()
            print(GREETING, args.lr * 2, args.layers, os.environ["WORLD_SIZE"], os.getcwd())
            """
        )
    )
    job_id = start(ctx, {"path": "train.py", "parameters": {"lr": "0.25", "layers": 3}})
    job = wait(ctx, job_id)
    assert job["state"] == "succeeded", job["error"]
    assert f"hello from a sibling module 0.5 3 1 {ctx.root}" in node_log(ctx, job_id, 0)


def test_func_args_reach_the_function_as_keyword_arguments(ctx) -> None:
    def greet(name: str, times: int = 1) -> None:
        import json

        print(json.dumps({"name": name, "times": times}))

    job = wait(ctx, start(ctx, function_spec(greet, func_args={"name": "ada", "times": 2})))
    assert job["state"] == "succeeded", job["error"]
    assert '{"name": "ada", "times": 2}' in node_log(ctx, "job", 0)


EXAMPLE = Path(__file__).parents[2] / "examples" / "train_ddp.ipynb"


def test_the_ddp_example_notebook_trains_on_two_nodes(ctx) -> None:
    """examples/train_ddp.ipynb as a training source: its non-skip cells on every rank,
    `epochs` overridden, a decreasing loss reported per epoch."""
    import shutil

    shutil.copy(EXAMPLE, ctx.root / "train_ddp.ipynb")
    job_id = start(ctx, {"path": "train_ddp.ipynb", "num_nodes": 2, "parameters": {"epochs": "3"}})
    job = wait(ctx, job_id)
    assert job["state"] == "succeeded", job["error"]
    script = (ctx.home / "jobs" / job_id / "train.py").read_text()
    assert "TrainerClient" not in script  # the skip cells are left out
    losses = [p["value"] for p in ctx.store.metric_series(job_id)["node-0"]["loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert "rank 1 of 2 done" in node_log(ctx, job_id, 1)


def test_bad_specs_are_refused_naming_the_field(ctx) -> None:
    from kubelab.workloads.trainer.workload import TrainingWorkload

    validate = TrainingWorkload().validate
    (ctx.root / "t.py").write_text("print(1)\n")
    shutil_example = ctx.root / "nb.ipynb"
    shutil_example.write_bytes(EXAMPLE.read_bytes())
    cases = [
        ({"path": "t.py", "num_nodes": 0}, "num_nodes must be between 1"),
        ({"path": "missing.py"}, "no such file: missing.py"),
        ({"path": "../outside.py"}, "outside your root"),
        ({"path": "nb.ipynb", "parameters": {"depth": 3}}, "unknown parameter 'depth'"),
        ({"path": "nb.ipynb", "parameters": {"epochs": "many"}}, "epochs"),
        ({"path": "t.py", "gpus_per_node": "two"}, "gpus_per_node must be a whole number"),
        ({"path": "t.py", "resources_per_node": {"memory": "lots"}}, "quantity"),
        ({"path": "t.py", "api": "MPIJob"}, "api must be one of"),
        ({"path": "t.py", "nodes_count": 2}, "unknown field"),
        ({}, "give either path"),
    ]
    for raw, message in cases:
        with pytest.raises(KubelabError, match=message):
            validate(raw, ctx.root)
    with pytest.raises(KubelabError, match="allows 0") as error:
        TrainingWorkload().start_local(
            "x",
            validate({"path": "t.py", "gpus_per_node": 1}, ctx.root),
            make_ctx(ctx.home, ctx.root, profile={"slug": "cpu", "gpu": None}),
        )
    assert error.value.details["field"] == "resources_per_node.gpu"

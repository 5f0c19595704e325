"""Shared pieces of the trainer tests: a local context on a private store, and waiting."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kubelab.client.store import RunStore
from kubelab.workloads.base import LocalContext
from kubelab.workloads.trainer.spec import function_source
from kubelab.workloads.trainer.workload import TrainingWorkload

FINAL = ("succeeded", "failed", "cancelled")


def make_ctx(home: Path, root: Path, **extra: Any) -> LocalContext:
    return LocalContext(
        store=RunStore(home / "kubelab.db"),
        home=home,
        root=root,
        strict_resources=extra.pop("strict", False),
        profile=extra.pop("profile", None),
        extra=extra,
    )


def start(ctx: LocalContext, raw: dict[str, Any], job_id: str = "job") -> str:
    workload = TrainingWorkload()
    spec = workload.validate(raw, ctx.root)
    ctx.store.create_run(job_id, {}, run_id=job_id, kind="training", spec=spec)
    workload.start_local(job_id, spec, ctx)
    return job_id


def function_spec(func: Any, **fields: Any) -> dict[str, Any]:
    return {"function": function_source(func), **fields}


def wait(ctx: LocalContext, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = ctx.store.get_run(job_id)
        if job["state"] in FINAL:
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s"
        time.sleep(0.05)


def wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def node_log(ctx: LocalContext, job_id: str, node: int) -> str:
    return (ctx.home / "jobs" / job_id / f"node-{node}.log").read_text()

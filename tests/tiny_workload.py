"""A real, minimal job kind for testing the client's jobs plumbing: N processes that
print Katib-style metric lines, sleep, and exit 0 (or 1 when `fail`).

It does what the training, tuning and serving runners do, in a few lines: one process
group per step, logs to files, metric lines into the store's series, states recorded
as they change, cancel by the pids in the store (so another process can cancel it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.workloads.base import ClusterContext, LocalContext, Workload
from kubelab.workloads.metrics import parse_line

SCRIPT = """
import sys, time
from kubelab.workloads import report
rank, epochs, seconds, fail = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
print(f"node {rank} starting: héllo ✓", flush=True)
for epoch in range(epochs):
    report(step=epoch, loss=1.0 / (epoch + 1 + rank))
    time.sleep(seconds / max(epochs, 1))
if fail:
    sys.exit("node failed on purpose")
print(f"node {rank} done", flush=True)
"""


class TinyWorkload(Workload):
    kind = "training"

    def validate(self, spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
        unknown = sorted(set(spec) - {"nodes", "epochs", "seconds", "fail"})
        if unknown:
            raise KubelabError(f"unknown field {unknown[0]!r}", field=unknown[0])
        nodes = spec.get("nodes", 1)
        if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= 4:
            raise KubelabError(
                f"'nodes' must be an integer from 1 to 4, got {nodes!r}", field="nodes"
            )
        seconds = spec.get("seconds", 0)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise KubelabError("'seconds' must be a number >= 0", field="seconds")
        return {
            "nodes": nodes,
            "epochs": int(spec.get("epochs", 3)),
            "seconds": float(seconds),
            "fail": bool(spec.get("fail", False)),
        }

    def start_local(self, job_id: str, spec: dict[str, Any], ctx: LocalContext) -> None:
        store = ctx.store
        procs = []
        for rank in range(spec["nodes"]):
            store.add_task(job_id, f"node-{rank}")
        for rank in range(spec["nodes"]):
            log = ctx.job_dir(job_id) / f"node-{rank}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-c", SCRIPT, str(rank), str(spec["epochs"]),
                     str(spec["seconds"]), "1" if spec["fail"] else "0"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            store.update_task(
                job_id,
                f"node-{rank}",
                state="running",
                started_at=time.time(),
                log_path=str(log),
                metadata={"pid": proc.pid},
            )
            procs.append(proc)
        store.update_run(job_id, state="running")
        threading.Thread(target=self._watch, args=(job_id, procs, ctx), daemon=True).start()

    def _watch(self, job_id: str, procs: list[subprocess.Popen[bytes]], ctx: LocalContext) -> None:
        with contextlib.suppress(NotFoundError):  # the job was deleted meanwhile
            self._record_end(job_id, procs, ctx)

    def _record_end(
        self, job_id: str, procs: list[subprocess.Popen[bytes]], ctx: LocalContext
    ) -> None:
        store = ctx.store
        states = []
        for rank, proc in enumerate(procs):
            code = proc.wait()
            name = f"node-{rank}"
            log_path = store.task_info(job_id, name)["log_path"]
            for line in Path(log_path).read_text().splitlines():
                step, values = parse_line(line, {"loss"})
                if values:
                    store.add_metrics(job_id, values, task=name, step=step)
            if store.cancel_requested(job_id):
                state = "cancelled"
            else:
                state = "succeeded" if code == 0 else "failed"
            error = None if state == "succeeded" else f"exit code {code}"
            store.update_task(job_id, name, state=state, finished_at=time.time(), error=error)
            states.append(state)
        final = next((s for s in ("cancelled", "failed") if s in states), "succeeded")
        error = None if final == "succeeded" else f"a node {final}"
        store.update_run(job_id, state=final, error=error, finished_at=time.time())

    def cancel_local(self, job_id: str, ctx: LocalContext) -> None:
        for step in ctx.store.get_run(job_id)["steps"]:
            pid = ctx.store.task_info(job_id, step["name"])["metadata"].get("pid")
            if pid and step["state"] == "running":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def manifests(
        self, spec: dict[str, Any], *, name: str, cluster: ClusterContext
    ) -> list[dict[str, Any]]:
        labels = dict(cluster.labels)
        return [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
                "spec": {
                    "completions": spec["nodes"],
                    "parallelism": spec["nodes"],
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "node",
                                    "image": cluster.image or "python:3.11",
                                    "command": ["python", "-c", SCRIPT, "0", "1", "0", "0"],
                                }
                            ],
                        },
                    },
                },
            }
        ]

    def cluster_state(
        self,
        objects: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:
        status = objects[0].get("status", {}) if objects else {}
        conditions = {
            c["type"]: c for c in status.get("conditions", []) if c.get("status") == "True"
        }
        state = "pending"
        if "Complete" in conditions:
            state = "succeeded"
        elif "Failed" in conditions:
            state = "failed"
        elif status.get("active"):
            state = "running"
        phases = {
            "Pending": "pending",
            "Running": "running",
            "Succeeded": "succeeded",
            "Failed": "failed",
        }
        steps = {
            f"node-{i}": {
                "state": phases.get(p.get("status", {}).get("phase", ""), "pending"),
                "pod": p["metadata"]["name"],
            }
            for i, p in enumerate(sorted(pods, key=lambda p: p["metadata"]["name"]))
        }
        message = (conditions.get("Failed") or {}).get("message")
        return {"state": state, "message": message, "steps": steps, "metrics": {}}

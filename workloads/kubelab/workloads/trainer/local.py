"""The local backend of training: `num_nodes x nproc_per_node` processes on this machine.

Each process gets torch.distributed's environment contract as torchrun gives it
(MASTER_ADDR, a free MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
NODE_RANK, GROUP_RANK, ...), in the current Python environment: processes are forked
from a warm server that has already imported torch, so a rank starts in milliseconds
instead of the seconds a fresh interpreter needs. With `packages_to_install` the
ranks run in a venv cached per requirement set (layered on this environment).

One monitor thread per job owns its life: it tails each rank's log into its node's
log (`node-0.log`…, lines prefixed `[rankN]:` when a node has several processes),
records `report()`/Katib `name=value` lines as metrics, stops every rank within a
few seconds when one fails (the error names the node and rank, with its
traceback), and honours cancel requests, also those made from another process
through the store. GPUs come from the machine-wide lease (`kubelab.client.gpus`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab.client.gpus import GpuLease
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import workers
from kubelab.workloads.base import CancelWatch
from kubelab.workloads.metrics import parse_line
from kubelab.workloads.trainer import spec as specs

TICK = 0.05  # seconds between looks at the ranks' logs and exits
GRACE = 2.0  # seconds a stopped rank gets after SIGTERM before SIGKILL
TRACEBACK_LINES = 60
PRELOAD = ("kubelab.workloads.trainer.worker", "torch", "torch.distributed")

_server: workers.ForkServer | None = None
_server_lock = threading.Lock()
_jobs: dict[str, LocalTrainingJob] = {}
_jobs_lock = threading.Lock()


def fork_server() -> workers.ForkServer:
    """The warm process that forks training ranks (one per process, started lazily)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = workers.ForkServer(PRELOAD)
        return _server


def warm_up() -> None:
    """Start the fork server (and its torch import) ahead of the first job."""
    threading.Thread(target=fork_server().start, daemon=True).start()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(eq=False)
class Rank:
    rank: int
    node: int
    local_rank: int
    log_path: Path
    process: Any = None
    exit_code: int | None = None
    offset: int = 0
    partial: bytes = b""
    tail: list[str] = field(default_factory=list)


class LocalTrainingJob:
    """The processes of one job and the thread that watches them."""

    def __init__(self, job_id: str, spec: dict[str, Any], ctx: Any) -> None:
        self.job_id = job_id
        self.spec = spec
        self.store = ctx.store
        self.dir = ctx.job_dir(job_id)
        self.root = Path(ctx.root)
        self.home = Path(ctx.home)
        self.strict = bool(ctx.strict_resources)
        self.nodes = spec["num_nodes"]
        self.nproc = spec["nproc_per_node"]
        self.gpus_per_node = int(spec["resources_per_node"].get("gpu", 0))
        self.ranks: list[Rank] = []
        self.gpu_ids: list[str] = []
        self.lease = GpuLease()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.latest: dict[str, float] = {}
        self.warning: str | None = None

    # -- start ----------------------------------------------------------------------

    def node_log(self, node: int) -> Path:
        return self.dir / f"node-{node}.log"

    def prepare(self) -> None:
        """Check what can be checked before anything runs (errors reach the caller)."""
        total = self.lease.total
        wanted = self.gpus_per_node * self.nodes
        if wanted and wanted > total:
            message = (
                f"{self.gpus_per_node} GPU(s) per node x {self.nodes} node(s) asked, but this "
                f"machine has {total}"
            )
            if self.strict:
                raise KubelabError(
                    f"{message}; lower gpus per node or use the kubernetes backend",
                    field="resources_per_node.gpu",
                )
            self.warning = f"{message}: running on CPU (gloo) instead"
            self.gpus_per_node = 0
        (self.dir / "ranks").mkdir(exist_ok=True)
        script = self.dir / "train.py"
        script.write_text(self.spec["source"]["code"])
        for node in range(self.nodes):
            device = "gpu" if self.gpus_per_node else "cpu"
            self.store.add_task(
                self.job_id,
                f"node-{node}",
                metadata={
                    "device": device,
                    "device_count": self.gpus_per_node or self.nproc,
                    "nproc": self.nproc,
                    "ranks": list(range(node * self.nproc, (node + 1) * self.nproc)),
                    **({"warning": self.warning} if self.warning else {}),
                },
            )
            header = f"kubelab: node-{node} of job {self.job_id}\n"
            if self.warning:
                header += f"kubelab: warning: {self.warning}\n"
            self.node_log(node).write_text(header)
            self.store.update_task(self.job_id, f"node-{node}", log_path=str(self.node_log(node)))

    def start(self) -> None:
        self.prepare()
        threading.Thread(target=self._main, name=f"train-{self.job_id}", daemon=True).start()

    def _python(self) -> str | None:
        """A venv's interpreter when the job needs packages this one lacks, else None."""
        packages = tuple(self.spec["packages_to_install"])
        if not packages or not workers.missing_requirements(packages):
            return None
        return workers.layered_venv(packages, home=self.home, log_path=str(self.node_log(0)))

    def _payload(self, rank: Rank, port: int, devices: list[str]) -> dict[str, Any]:
        world = self.nodes * self.nproc
        env = {
            **specs.program_env(self.spec),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(world),
            "RANK": str(rank.rank),
            "LOCAL_RANK": str(rank.local_rank),
            "LOCAL_WORLD_SIZE": str(self.nproc),
            "NODE_RANK": str(rank.node),
            "GROUP_RANK": str(rank.node),
            "GROUP_WORLD_SIZE": str(self.nodes),
            "ROLE_NAME": "default",
            "ROLE_RANK": str(rank.rank),
            "ROLE_WORLD_SIZE": str(world),
            "TORCHELASTIC_RUN_ID": self.job_id,
            "PET_NNODES": str(self.nodes),
            "PET_NPROC_PER_NODE": str(self.nproc),
            "PET_NODE_RANK": str(rank.node),
            "KUBELAB_JOB": self.job_id,
            "PYTHONUNBUFFERED": "1",
        }
        env.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: N processes share the cores
        if self.lease.total:
            # As on Kubernetes: a node sees the GPUs it asked for, and no others.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        source = self.spec["source"]
        import_dir = self.root / Path(source["path"]).parent if source.get("path") else self.root
        return {
            "entry": "kubelab.workloads.trainer.worker:run",
            "env": env,
            "cwd": str(import_dir),
            "import_dir": str(import_dir),
            "script": str(self.dir / "train.py"),
            "args": specs.program_argv(self.spec),
            "log_path": str(rank.log_path),
        }

    def _launch(self) -> bool:
        """Fork every rank; False when cancelled while waiting for GPUs."""
        if self.gpus_per_node:
            taken = self.lease.acquire(
                self.gpus_per_node * self.nodes, self.cancelled, holder=f"training {self.job_id}"
            )
            if taken is None:
                return False
            self.gpu_ids = taken
        python = self._python()
        port = free_port()
        server = fork_server()  # venv ranks exec their interpreter from it
        for node in range(self.nodes):
            devices = self.gpu_ids[node * self.gpus_per_node : (node + 1) * self.gpus_per_node]
            for local in range(self.nproc):
                rank = Rank(
                    node * self.nproc + local,
                    node,
                    local,
                    self.dir / "ranks" / f"rank-{node * self.nproc + local}.log",
                )
                rank.log_path.write_bytes(b"")
                payload = self._payload(rank, port, devices)
                if python:
                    payload_path = self.dir / "ranks" / f"rank-{rank.rank}.json"
                    payload_path.write_text(json.dumps(payload))
                    payload = {
                        "argv": [
                            python,
                            "-m",
                            "kubelab.workloads.trainer.worker",
                            str(payload_path),
                        ],
                        "log_path": payload["log_path"],
                        "cwd": payload["cwd"],
                    }
                rank.process = server.run(payload)
                self.ranks.append(rank)
            for started in self.ranks:
                started.process.started.wait(10)  # the fork server answers with the pid
            now = time.time()
            self.store.update_task(
                self.job_id,
                f"node-{node}",
                state="running",
                started_at=now,
                attempts=1,
                metadata={
                    **self.store.task_info(self.job_id, f"node-{node}")["metadata"],
                    "gpus": devices,
                    "master_port": port,
                    "pids": [r.process.pid for r in self.ranks if r.node == node],
                },
            )
        self.store.update_run(self.job_id, state="running")
        return True

    # -- watch ----------------------------------------------------------------------

    def _pump(self, rank: Rank) -> None:
        """Copy new lines of a rank's log into its node's log; record metrics."""
        try:
            with open(rank.log_path, "rb") as file:
                file.seek(rank.offset)
                data = file.read()
        except OSError:
            return
        if not data:
            return
        rank.offset += len(data)
        data = rank.partial + data
        lines = data.split(b"\n")
        rank.partial = lines.pop()
        self._write_lines(rank, lines)

    def _write_lines(self, rank: Rank, lines: list[bytes]) -> None:
        if not lines:
            return
        prefix = f"[rank{rank.rank}]:".encode() if self.nproc > 1 else b""
        with open(self.node_log(rank.node), "ab") as log:
            log.write(b"".join(prefix + line + b"\n" for line in lines))
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            rank.tail.append(text)
            if len(rank.tail) > TRACEBACK_LINES:
                del rank.tail[0]
            if rank.local_rank != 0 or "=" not in text:
                continue
            step, values = parse_line(text)
            if not values:
                continue
            self.store.add_metrics(self.job_id, values, task=f"node-{rank.node}", step=step)
            if rank.rank == 0:
                self.latest.update(values)
                self.store.update_run(self.job_id, metrics=dict(self.latest))

    def _flush(self, rank: Rank) -> None:
        self._pump(rank)
        if rank.partial:
            self._write_lines(rank, [rank.partial])
            rank.partial = b""

    def _main(self) -> None:
        try:
            if not self._launch():
                self._finish("cancelled", "cancelled before it started")
                return
            self._watch()
        except BaseException as error:
            self._kill_all()
            message = error.message if isinstance(error, KubelabError) else repr(error)
            self._finish("failed", f"did not start: {message}")
        finally:
            self.lease.release(self.gpu_ids)
            self.done.set()
            with _jobs_lock:
                _jobs.pop(self.job_id, None)

    def _watch(self) -> None:
        cancel = CancelWatch(self.store, self.job_id, self.cancelled)
        while True:
            for rank in self.ranks:
                self._pump(rank)
                if rank.exit_code is None and rank.process.wait(0) is not None:
                    rank.exit_code = rank.process.exit_code
                    self._flush(rank)
                    if rank.exit_code == 0:
                        self._node_done_if_all_exited(rank.node)
            failed = [r for r in self.ranks if r.exit_code not in (None, 0)]
            if failed and not self.cancelled.is_set():
                self._fail(failed)
                return
            if all(r.exit_code == 0 for r in self.ranks):
                self._finish("succeeded", None)
                return
            if cancel.requested():
                self._kill_all()
                for rank in self.ranks:
                    self._flush(rank)
                self._finish("cancelled", "cancelled")
                return
            self.cancelled.wait(TICK)

    def _node_done_if_all_exited(self, node: int) -> None:
        ranks = [r for r in self.ranks if r.node == node]
        if all(r.exit_code == 0 for r in ranks):
            self.store.update_task(
                self.job_id, f"node-{node}", state="succeeded", finished_at=time.time()
            )

    @staticmethod
    def _traceback(rank: Rank) -> str:
        lines = rank.tail
        for index in range(len(lines) - 1, -1, -1):
            if lines[index].startswith("Traceback (most recent call last)"):
                return "\n".join(lines[index:]).strip()
        return "\n".join(lines[-15:]).strip()

    def _fail(self, failed: list[Rank]) -> None:
        # Ranks that died of a lost peer (gloo/NCCL errors) are victims, not the cause.
        def collateral(rank: Rank) -> bool:
            text = "\n".join(rank.tail[-20:])
            return any(
                s in text
                for s in (
                    "Connection closed by peer",
                    "Connection reset by peer",
                    "ProcessGroupGloo",
                    "DistNetworkError",
                    "DistBackendError",
                )
            )

        self._kill_all()
        for rank in self.ranks:
            self._flush(rank)
        culprit = sorted(failed, key=lambda r: (collateral(r), r.rank))[0]
        trace = self._traceback(culprit)
        code = culprit.exit_code
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        message = f"node-{culprit.node} (rank {culprit.rank}) {how}"
        error = f"{message}:\n{trace}" if trace else message
        now = time.time()
        for node in range(self.nodes):
            ranks = [r for r in self.ranks if r.node == node]
            if node == culprit.node:
                self.store.update_task(
                    self.job_id, f"node-{node}", state="failed", error=error, finished_at=now
                )
            elif not all(r.exit_code == 0 for r in ranks):
                self.store.update_task(
                    self.job_id,
                    f"node-{node}",
                    state="cancelled",
                    error=f"stopped because {message}",
                    finished_at=now,
                )
        self.store.update_run(self.job_id, state="failed", error=error, finished_at=now)

    def _finish(self, state: str, error: str | None) -> None:
        # GPUs first: whoever sees the final state may take them at once
        self.lease.release(self.gpu_ids)
        now = time.time()
        for task in self.store.get_run(self.job_id)["steps"]:
            if task["state"] in ("pending", "running"):
                self.store.update_task(
                    self.job_id,
                    task["name"],
                    state=state,
                    error=error,
                    finished_at=now,
                )
        self.store.update_run(self.job_id, state=state, error=error, finished_at=now)

    def _kill_all(self) -> None:
        """SIGTERM every live rank's process group, SIGKILL what is left after GRACE."""
        live = [r for r in self.ranks if r.process is not None and r.process.wait(0) is None]
        for rank in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rank.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        for rank in live:
            if rank.process.wait(max(0.0, deadline - time.monotonic())) is None:
                rank.process.kill()
        for rank in live:
            rank.process.wait(5)
            if rank.exit_code is None:
                rank.exit_code = rank.process.exit_code

    def cancel(self) -> None:
        self.cancelled.set()


def start(job_id: str, spec: dict[str, Any], ctx: Any) -> LocalTrainingJob:
    job = LocalTrainingJob(job_id, spec, ctx)
    with _jobs_lock:
        _jobs[job_id] = job
    try:
        job.start()
    except BaseException:
        with _jobs_lock:
            _jobs.pop(job_id, None)
        raise
    return job


def cancel(job_id: str) -> bool:
    """Stop a job this process runs; False when another process owns it."""
    with _jobs_lock:
        job = _jobs.get(job_id)
    if job is None:
        return False
    job.cancel()
    job.done.wait(GRACE + 3)
    return True


def running_job(job_id: str) -> LocalTrainingJob | None:
    with _jobs_lock:
        return _jobs.get(job_id)

"""`ServingWorkload`: a model server as a job of kind "serving".

Locally the job is one process (`python -m kubelab.workloads.serving.server`) in its
own session, so it outlives the notebook kernel or CLI that started it; it records
itself in the run store: the job is "pending" while the model loads, "running" while it
serves (the step `server` carries `{url, port, pid, ready}` in its outputs), "failed"
with the error when the model cannot be loaded or the port is taken, and "cancelled"
once stopped (a server has no natural end, so a stop is never "succeeded"). On
Kubernetes the job is a KServe InferenceService (`inferenceservice.py`).

Spec (what `validate` accepts; `serve()`, `kubelab serve` and `POST jobs` build it):

| key | meaning |
|---|---|
| `name` | model name, in `/v2/models/{name}` and as the InferenceService name (DNS-1035 label, ≤ 45 chars) |
| `model` | model file or directory (a `.py` file may name its class: `model.py:MyModel`) |
| `format` | sklearn, xgboost, lightgbm, pytorch or custom; recognised when omitted |
| `predict_proba` | sklearn: answer `predict_proba` instead of `predict` (KServe's `PREDICT_PROBA`) |
| `port` | local port (default: a free one); the server listens on 127.0.0.1 only |
| `resources` | `{cpu, memory, gpu}` overriding the profile's, on Kubernetes |
| `runtime` | Kubernetes: `kserve` (its runtime for the format, the default where it reads the file) or `kubelab` (this server in the notebook's image) |
| `min_replicas` | Kubernetes: the predictor's `minReplicas` (0 lets Knative scale to zero) |
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import ConflictError, KubelabError
from kubelab.workloads.base import ClusterContext, LocalContext, Workload

from . import inferenceservice
from .modelfiles import FORMATS, ModelLoadError, resolve_model

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 45  # KServe derives longer names (`<name>-predictor-...`) that must fit in 63
STEP = "server"
SERVER_MODULE = "kubelab.workloads.serving.server"
STOP_TIMEOUT = 10.0
SPEC_KEYS = (
    "name",
    "model",
    "format",
    "predict_proba",
    "class_name",
    "port",
    "resources",
    "runtime",
    "min_replicas",
)


def _field_error(field: str, message: str) -> KubelabError:
    return KubelabError(f"{field}: {message}", field=field)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise _field_error("name", "give the model a name, e.g. 'iris'")
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise _field_error(
            "name",
            f"{name!r} must be lowercase letters, digits and '-', start with a letter, "
            f"end with a letter or digit, at most {MAX_NAME} characters",
        )
    return name


def _confined(path: Path, root: Path | None) -> Path:
    """`path` resolved, inside the user's root (or kubelab's own home, where `serve()`
    saves in-memory models) when a root is given."""
    full = path.resolve()
    if root is None:
        return full
    from kubelab.client.store import kubelab_home

    allowed = [root.resolve(), kubelab_home().resolve()]
    if not any(full.is_relative_to(base) for base in allowed):
        raise KubelabError(
            f"model: {str(path)!r} is outside your root folder", field="model", path=str(path)
        )
    return full


def home_path(file: Path, root: Path | None) -> str | None:
    """The model file's path on the user's home volume (the PVC, mounted at the home
    folder in the notebook pod), or inside the root when the file is not under home."""
    for base in (Path.home(), root or Path.cwd()):
        base = base.resolve()
        if file.is_relative_to(base):
            return file.relative_to(base).as_posix()
    return None


class ServingWorkload(Workload):
    kind = "serving"

    # -- spec -------------------------------------------------------------------------------

    def validate(self, spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise KubelabError("a serving spec must be an object with 'name' and 'model'")
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise _field_error(unknown[0], f"unknown field; fields: {', '.join(SPEC_KEYS)}")
        name = check_name(spec.get("name"))
        model = spec.get("model")
        if not isinstance(model, str) or not model.strip():
            raise _field_error("model", "give the path of a model file or directory")
        class_name = spec.get("class_name")
        path_text, _, suffix = model.rpartition(":")
        if path_text.endswith(".py") and suffix.isidentifier():
            model, class_name = path_text, class_name or suffix
        path = Path(model).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        path = _confined(path, root)
        fmt = spec.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise _field_error("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        try:
            file, fmt = resolve_model(path, fmt)
        except ModelLoadError as error:
            raise _field_error("model", str(error)) from None
        file = _confined(file, root)
        predict_proba = spec.get("predict_proba", False)
        if not isinstance(predict_proba, bool):
            raise _field_error("predict_proba", "must be true or false")
        if predict_proba and fmt != "sklearn":
            raise _field_error("predict_proba", f"applies to sklearn models, not {fmt}")
        if class_name is not None and (not isinstance(class_name, str) or fmt != "custom"):
            raise _field_error("class_name", "names the class of a custom model (.py file)")
        port = spec.get("port")
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535
        ):
            raise _field_error("port", f"{port!r} is not a port number")
        resources = spec.get("resources") or {}
        if not isinstance(resources, dict) or set(resources) - {"cpu", "memory", "gpu"}:
            raise _field_error("resources", "may set cpu, memory and gpu")
        runtime = spec.get("runtime")
        if runtime not in (None, "kserve", "kubelab"):
            raise _field_error("runtime", f"{runtime!r} is not 'kserve' or 'kubelab'")
        min_replicas = spec.get("min_replicas")
        if min_replicas is not None and (not isinstance(min_replicas, int) or min_replicas < 0):
            raise _field_error("min_replicas", "must be a whole number ≥ 0")
        return {
            "name": name,
            "model": str(path),
            "model_file": str(file),
            "format": fmt,
            "home_path": home_path(file, root),
            "predict_proba": predict_proba,
            "class_name": class_name,
            "port": port,
            "resources": resources,
            "runtime": runtime,
            "min_replicas": min_replicas,
        }

    # -- on this machine --------------------------------------------------------------------

    def start_local(self, job_id: str, spec: dict[str, Any], ctx: LocalContext) -> None:
        other = running_server(ctx.store, spec["name"], exclude=job_id)
        if other is not None:
            raise ConflictError(
                f"a model server named {spec['name']!r} is already running (job {other['id']}); "
                "stop it first",
                name=spec["name"],
                job=other["id"],
            )
        log_path = ctx.job_dir(job_id) / "server.log"
        ctx.store.add_task(job_id, STEP, display_name=spec["name"], state="pending")
        ctx.store.update_task(job_id, STEP, log_path=str(log_path))
        argv = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--name",
            spec["name"],
            "--model",
            spec["model_file"],
            "--format",
            spec["format"],
            "--port",
            str(spec.get("port") or 0),
            "--job",
            job_id,
            "--store",
            str(ctx.store.path),
        ]
        if spec.get("predict_proba"):
            argv.append("--predict-proba")
        if spec.get("class_name"):
            argv += ["--class-name", spec["class_name"]]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(Path(spec["model_file"]).parent),
                start_new_session=True,  # its own process group: a kernel's end leaves it be
            )
        # The server adopts its job (owner and heartbeat) once it listens; until then
        # this process owns it, so a server that never starts is not left "running".
        ctx.store.update_task(job_id, STEP, outputs={"pid": process.pid, "ready": False})
        threading.Thread(
            target=_reap, args=(process, job_id, ctx), name=f"reap-{job_id}", daemon=True
        ).start()

    def cancel_local(self, job_id: str, ctx: LocalContext) -> None:
        pid = server_pid(ctx.store, job_id)
        if pid is not None and _is_server(pid):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _is_server(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _is_server(pid):
                _signal_group(pid, signal.SIGKILL)
        _record_end(ctx, job_id, "cancelled", None)

    # -- on Kubernetes ----------------------------------------------------------------------

    def manifests(
        self, spec: dict[str, Any], *, name: str, cluster: ClusterContext
    ) -> list[dict[str, Any]]:
        if not spec.get("home_path"):
            raise _field_error(
                "model",
                f"{spec['model_file']} is not under your home folder, which is what the "
                "cluster can mount; save the model there",
            )
        return [inferenceservice.inference_service(spec, name=name, cluster=cluster)]

    def cluster_state(
        self,
        objects: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return inferenceservice.state_of(objects, pods, events)

    def pod_selector(self, name: str) -> str:
        return f"{inferenceservice.ISVC_LABEL}={name}"


# -- the local process ------------------------------------------------------------------------


def _record_end(ctx: LocalContext, job_id: str, state: str, error: str | None) -> None:
    """Record the end of a job unless the server already did."""
    if ctx.store.get_run(job_id)["state"] not in ("pending", "running"):
        return
    now = time.time()
    ctx.store.update_task(job_id, STEP, state=state, error=error, finished_at=now)
    ctx.store.update_run(job_id, state=state, error=error, finished_at=now)


def _reap(process: subprocess.Popen[bytes], job_id: str, ctx: LocalContext) -> None:
    """Wait for the server (no zombie left behind) and record an exit it could not record."""
    code = process.wait()
    with contextlib.suppress(Exception):
        if server_pid(ctx.store, job_id) != process.pid:
            return  # the job was deleted, and maybe a new server took its name
        if ctx.store.cancel_requested(job_id):
            _record_end(ctx, job_id, "cancelled", None)
        else:
            message = f"the model server exited with code {code}; see its log"
            _record_end(ctx, job_id, "failed", message)


def server_pid(store: Any, job_id: str) -> int | None:
    with contextlib.suppress(KubelabError):
        pid = store.task_info(job_id, STEP)["outputs"].get("pid")
        return int(pid) if pid else None
    return None


def _is_server(pid: int) -> bool:
    """True while `pid` is alive and is a kubelab model server (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False  # exited, waiting to be reaped
    return SERVER_MODULE.encode() in cmdline


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # the server leads its own session and process group
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def running_server(store: Any, name: str, exclude: str | None = None) -> dict[str, Any] | None:
    """The active (pending or running) local model server named `name`, newest first."""
    for job in store.list_runs(limit=1000, kinds=("serving",)):
        if job["id"] == exclude:
            continue
        if job["state"] not in ("pending", "running") or job.get("backend") != "local":
            continue
        if job["id"] == name or server_name(store, job["id"]) == name:
            return job
    return None


def server_name(store: Any, job_id: str) -> str | None:
    return (store.run_info(job_id).get("spec") or {}).get("name")

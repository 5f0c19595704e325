"""One executor task: the cache, resources, retries with backoff, the process and its outputs.

Owns: `run_executor` (cache lookup and write, one computation per cache key at a time
across the runs of this process, GPU/CPU accounting, the retry loop, the task's
recorded states and what the task reported: warnings, marshalling figures, files
read), `launch` (one attempt as a process of the warm worker: Python components, venv
tasks and container commands; timeout and cancel) and where a task's files go: one
log per task (`_logs/task.log`) that every attempt appends to, each attempt also
copied to `attempt-N.log` when it ends. The run's state (store, resources, cancel flag, its processes)
comes from the `Run` passed in.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.store import kubelab_home
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import cache as cache_keys
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local import recording, task_io, workers
from kubelab.pipelines.local.importer import run_importer
from kubelab.pipelines.local.outcomes import Outcome
from kubelab.pipelines.local.placeholders import resolve_command
from kubelab.pipelines.local.preload import fork_server
from kubelab.pipelines.local.resources import cpu_cores

if TYPE_CHECKING:
    from kubelab.pipelines.local.scheduling import Run

# Cache keys a run of this process is computing: another run that needs the same step
# waits for it and reads the cache instead of computing it again (the parallel trials
# of a tuned notebook share their data step this way).
_computing: dict[str, threading.Event] = {}
_computing_lock = threading.Lock()


def claim(run: Run, key: str) -> None:
    """Own the computation of `key`, first waiting while another run computes it."""
    while not run.cancelled.is_set():
        with _computing_lock:
            owner = _computing.get(key)
            if owner is None:
                _computing[key] = threading.Event()
                run.claims.add(key)
                return
        while not owner.wait(0.2) and not run.cancelled.is_set():
            pass


def release(run: Run, key: str) -> None:
    with _computing_lock:
        if key in run.claims:
            run.claims.discard(key)
            _computing.pop(key).set()


def run_executor(
    run: Run,
    qname: str,
    spec: dict[str, Any],
    component: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
) -> Outcome:
    """Run one executor task: from the cache when its key matches, else as a process,
    with its resources held, retried as its retry policy says, until cancelled."""
    label = component.get("executorLabel")
    executor = run.ir.get("deploymentSpec", {}).get("executors", {}).get(label)
    if executor is None:
        raise KubelabError(f"task {qname!r}: no executor {label!r} in the deploymentSpec")
    if "importer" in executor:
        return run_importer(run, qname, executor["importer"], component, params)
    container = executor.get("container")
    if container is None:
        raise KubelabError(f"task {qname!r}: executor {label!r} has no container or importer")
    task_dir = task_path(run.root, qname)
    task_dir.mkdir(parents=True, exist_ok=True)
    executor_input = task_io.executor_input(
        task_dir, component, params, artifacts, {"workspace": str(run.workspace)}
    )
    container = task_io.resolve_settings(container, executor_input)
    env = {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}
    resources = container.get("resources", {})
    cpu = cpu_cores(
        resources.get("resourceCpuLimit")
        or resources.get("cpuLimit")
        or resources.get("resourceCpuRequest")
        or resources.get("cpuRequest")
    )
    accel = resources.get("accelerator", {})
    gpus = int(cpu_cores(accel.get("resourceCount") or accel.get("count") or 0))
    step_warnings: list[str] = []
    if gpus > run.resources.total_gpus:
        kind = accel.get("resourceType") or accel.get("type") or "GPU"
        have = run.resources.total_gpus
        if run.strict_resources:
            raise KubelabError(
                f"task {qname!r} requests {gpus} {kind} but this machine has {have} GPU(s); "
                "lower the accelerator limit or run it on the kubernetes backend",
                task=qname,
            )
        # As kfp.local: run it anyway, on what this machine has, and say so.
        label = run.task_metadata.get(qname, {}).get("step") or qname
        where = "on the CPU" if not have else f"with the {have} GPU(s) this machine has"
        run.warn(
            qname,
            f"step {label!r} asks for {gpus} {kind} but this machine has {have}: it runs "
            f"{where} (strict resources would refuse it)",
            step_warnings,
        )
        gpus = have
    key = cache_keys.cache_key(
        container=container,
        env=env,
        parameters=params,
        artifacts=artifacts,
        output_definitions=component.get("outputDefinitions", {}),
    )
    # Protobuf JSON drops false values: `cachingOptions: {}` is how KFP writes
    # set_caching_options(False). No cachingOptions at all (hand-written IR) caches.
    task_caching = spec.get("cachingOptions", {"enableCache": True}).get("enableCache", False)
    use_cache = run.enable_caching and task_caching and not run.forced(qname)
    run.record(qname, inputs={"parameters": params, "artifacts": artifacts}, cache_key=key)
    python = irutil.python_executor(container)
    # What the lineage of the step records, whichever way it ends.
    record_step = functools.partial(
        recording.step,
        run,
        qname,
        container=container,
        python=python,
        parameters=params,
        inputs=artifacts,
        cache_key=key,
    )
    if use_cache:
        claim(run, key)
        hit = run.store.cache_get(key)
        if (
            hit is not None
            and cache_keys.outputs_still_exist(hit)
            and cache_keys.reads_unchanged(hit)
        ):
            release(run, key)
            now = time.time()
            run.collect_metrics(hit["artifacts"])
            run.record(
                qname,
                state="succeeded",
                cached=1,
                cached_from=run.store.cache_origin(key),
                started_at=now,
                finished_at=now,
                outputs=task_io.public_outputs(hit["parameters"], hit["artifacts"]),
                # The log of the run that produced the result ("from cache" in the UI).
                log_path=hit.get("log_path"),
            )
            record_step(
                state="succeeded",
                outputs=hit["artifacts"],
                output_parameters=hit["parameters"],
                cached=True,
                reads=hit.get("reads"),
                writes=hit.get("writes"),
            )
            return Outcome("succeeded", hit["parameters"], hit["artifacts"])
    retry = spec.get("retryPolicy", {})
    max_retries = int(retry.get("maxRetryCount", 0) or 0)
    backoff = duration_seconds(retry.get("backoffDuration"), 0.0)
    factor = float(retry.get("backoffFactor", 2) or 2)
    max_backoff = duration_seconds(retry.get("backoffMaxDuration"), 3600.0)
    started_at = None
    error = "failed"
    result: dict[str, Any] = {}
    log_path = task_dir / "_logs" / "task.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    for attempt in range(1, max_retries + 2):
        if run.cancelled.is_set():
            break
        header = f"kubelab: task {qname} attempt {attempt}\n"
        if container.get("image") and python is None:
            header += (
                f"kubelab: image {container['image']!r} is ignored locally; the command "
                "runs on this machine\n"
            )
        attempt_start = log_path.stat().st_size
        with open(log_path, "a") as log:
            log.write(header)
        task_io.clear_outputs(executor_input)
        gpu_ids = run.resources.acquire(cpu, gpus, run.cancelled)
        if gpu_ids is None:
            break
        try:
            if started_at is None:
                started_at = time.time()
            run.record(
                qname,
                state="running",
                attempts=attempt,
                started_at=started_at,
                log_path=str(log_path),
            )
            task_env = dict(env)
            if run.resources.total_gpus:
                # As on Kubernetes: a task sees the GPUs it asked for, and no others.
                task_env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
            ok, error, result = launch(
                run, qname, container, python, executor_input, task_env, task_dir, log_path, attempt
            )
        finally:
            run.resources.release(cpu, gpu_ids)
            copy_attempt(log_path, attempt_start, attempt)
        report = result.get("report") or {}
        for message in report.get("warnings", []):
            run.warn(qname, message, step_warnings)
        if report.get("marshal"):
            run.record(qname, marshal=report["marshal"])
        if ok:
            try:
                out_params, out_arts = task_io.read_outputs(
                    qname, component, executor_input, result
                )
            except KubelabError as exc:
                ok, error = False, exc.message
        if ok:
            run.collect_metrics(out_arts)
            # Written even when reads are off (--no-cache), so later runs can reuse it.
            entry = {"parameters": out_params, "artifacts": out_arts}
            # The files it wrote must still be there too: a hit does not write them again.
            entry["writes"] = report.get("writes", [])
            entry["files"] = cache_keys.existing_files(entry) + [w["path"] for w in entry["writes"]]
            entry["reads"] = report.get("reads", [])  # valid while these are unchanged
            entry["log_path"] = str(log_path)
            run.store.cache_put(key, entry, run.run_id, qname)
            release(run, key)
            run.record(
                qname,
                state="succeeded",
                finished_at=time.time(),
                error=None,
                outputs=task_io.public_outputs(out_params, out_arts),
            )
            record_step(
                state="succeeded",
                outputs=out_arts,
                output_parameters=out_params,
                reads=report.get("reads"),
                writes=report.get("writes"),
            )
            return Outcome("succeeded", out_params, out_arts)
        if attempt <= max_retries and not run.cancelled.is_set():
            with open(log_path, "a") as f:
                f.write(f"kubelab: attempt {attempt} failed: {error}; retrying\n")
            delay = min(backoff * factor ** (attempt - 1), max_backoff)
            if run.cancelled.wait(delay):
                break
    release(run, key)
    if run.cancelled.is_set():
        run.record(qname, state="cancelled", finished_at=time.time(), error="cancelled")
        return Outcome("cancelled", error="cancelled")
    # `where`: the notebook cell and line a notebook step failed in.
    run.record(
        qname, state="failed", finished_at=time.time(), error=error, failed_at=result.get("where")
    )
    record_step(state="failed")
    step = run.task_metadata.get(qname, {}).get("step")
    if step and result.get("where"):  # "step b failed in cell 3, line 1: ..."
        return Outcome("failed", error=f"step {step} {error}")
    return Outcome("failed", error=f"task {qname!r} failed: {error}")


def launch(
    run: Run,
    qname: str,
    container: dict[str, Any],
    python: irutil.PythonExecutor | None,
    executor_input: dict[str, Any],
    env: dict[str, str],
    task_dir: Path,
    log_path: Path,
    attempt: int,
) -> tuple[bool, str, dict[str, Any]]:
    """Start the process, wait (timeout, cancel), and say whether it succeeded."""
    result_path = task_dir / "_logs" / f"attempt-{attempt}.result.json"
    result_path.unlink(missing_ok=True)
    proc: workers.TaskProcess
    if python is not None:
        payload = {
            "executor_input": executor_input,
            "source": python.source,
            "function_name": python.function_name,
            "kfp_source": python.kfp_source,
            "log_path": str(log_path),
            "result_path": str(result_path),
            "env": env,
            "cwd": run.workdir,
            "pipeline_root": str(run.root.parent),  # not the task's data: never "read"
        }
        interpreter = workers.interpreter_for(
            python.pip, home=kubelab_home(), log_path=str(log_path)
        )
        if interpreter is not None:
            payload_path = task_dir / "_logs" / f"attempt-{attempt}.payload.json"
            payload_path.write_text(json.dumps(payload, default=str))
            proc = fork_server().run(
                {
                    "argv": workers.venv_task_argv(interpreter, str(payload_path)),
                    "env": {"PYTHONUNBUFFERED": "1"},
                    "cwd": run.workdir,
                    "log_path": str(log_path),
                }
            )
        else:
            proc = fork_server().run(payload)
    else:
        names = {
            "job_name": run.run_id,
            "job_id": run.run_id,
            "task_name": qname,
            "task_id": f"{run.run_id}/{qname}",
            "pipeline_root": str(run.root.parent),
            "create_time": run.create_time,
            "workspace": str(run.workspace),
        }
        argv = resolve_command(
            list(container.get("command", [])) + list(container.get("args", [])),
            executor_input,
            names,
        )
        if not argv:
            raise KubelabError(f"task {qname!r}: the container has no command or args")
        proc = fork_server().run(
            {"argv": argv, "env": env, "cwd": run.workdir, "log_path": str(log_path)}
        )
    with run.lock:
        run.processes.add(proc)
    if run.cancelled.is_set():
        proc.kill()
    try:
        code = proc.wait(run.task_timeout)
        timed_out = code is None
        if timed_out:
            proc.kill()
            code = proc.wait(10)
    finally:
        with run.lock:
            run.processes.discard(proc)
    result: dict[str, Any] = {}
    if result_path.exists():
        result = json.loads(result_path.read_text())
    if timed_out:
        with open(log_path, "a") as f:
            f.write(f"kubelab: timed out after {run.task_timeout}s, killed\n")
        return False, f"timed out after {run.task_timeout} s", result
    if run.cancelled.is_set() and code != 0:
        return False, "cancelled", result
    if code != 0:
        detail = result.get("error") or f"exit code {code}"
        if result.get("where"):  # the notebook cell and line say where to look
            return False, detail, result
        return False, f"{detail} (log: {log_path})", result
    if "error" in result:
        return False, result["error"], result
    return True, "", result


def copy_attempt(log_path: Path, start: int, attempt: int) -> None:
    """attempt-N.log: the part of the task's log one attempt wrote."""
    try:
        with open(log_path, "rb") as log:
            log.seek(start)
            log_path.with_name(f"attempt-{attempt}.log").write_bytes(log.read())
    except OSError:
        pass


def task_path(root: Path, qname: str) -> Path:
    """Where a task keeps its outputs and logs: `<pipeline root>/<run>/<task path>`."""
    parts = [safe_segment(p.replace("[", "-").replace("]", "")) for p in qname.split("/")]
    return root.joinpath(*parts)


def safe_segment(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "task"


def duration_seconds(text: Any, default: float = 0.0) -> float:
    """An IR duration (`"30s"`, `"1m"`, `"250ms"`, a number of seconds) in seconds."""
    if text is None:
        return default
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        return default
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]

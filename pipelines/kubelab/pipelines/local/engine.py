"""The local execution engine: runs KFP v2 IR on this machine — its public API.

It interprets the same PipelineSpec that a Kubeflow Pipelines server runs (root DAG,
sub-DAGs, loops, conditions, exit handlers, retries, caching) and records every state
change in the `RunStore`. This module owns what callers use: `run_pipeline`,
`start_run`, `wait_run`, `cancel_run`, `start_from_task`, and setting a run up.
The rest, one concern per module:

| module          | owns |
|-----------------|------|
| `scheduling.py` | `Run`: a run's state and records, the DAG walk, skip/fail propagation |
| `inputs.py`     | the values a task receives (parent, upstream, constants, statuses) |
| `loops.py`      | `dsl.ParallelFor` iterations and collected outputs |
| `launch.py`     | one executor task: cache, resources, retries, the process, outputs |
| `importer.py`   | `dsl.importer` tasks |
| `live_runs.py`  | the runs executing in this process |
| `preload.py`    | the shared warm worker and what it imports ahead of tasks |
| `outcomes.py`   | `Outcome` and `RunResult` |
| `workers.py`, `forkserver.py` | the processes that run task code |
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubelab.client.store import RunStore
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local import launch, live_runs, recording
from kubelab.pipelines.local.outcomes import RunResult
from kubelab.pipelines.local.preload import plan_preload, warm_worker
from kubelab.pipelines.local.scheduling import EventCallback, Run, downstream_tasks

__all__ = [
    "RunResult",
    "cancel_run",
    "downstream_tasks",
    "run_pipeline",
    "start_from_task",
    "start_run",
    "wait_run",
]


def _prepare(
    ir: dict[str, Any],
    arguments: dict[str, Any] | None,
    *,
    store: RunStore | None,
    pipeline_root: str | os.PathLike[str] | None,
    enable_caching: bool,
    parallelism: int | None,
    run_name: str | None,
    source: str | None,
    task_metadata: dict[str, dict[str, Any]] | None,
    on_event: EventCallback | None,
    task_timeout: float | None,
    force_rerun: set[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    preload_modules: Iterable[str] = (),
    strict_resources: bool = False,
    experiment: str | None = None,
    reproduces: str | None = None,
) -> Run:
    irutil.check_pipeline_spec(ir)
    resolved = irutil.resolve_arguments(ir, arguments)
    if parallelism is not None and parallelism < 1:
        raise KubelabError(f"parallelism must be at least 1, got {parallelism}")
    store = store or RunStore()
    workdir = os.path.abspath(workdir or os.getcwd())
    # kfp.local's default, relative to where the tasks run.
    root = Path(workdir, pipeline_root or "local_outputs").resolve()
    root.mkdir(parents=True, exist_ok=True)
    name = run_name or irutil.pipeline_name(ir)
    run_id = store.create_run(name, resolved, source=source, pipeline_root=str(root))
    run = Run(
        ir,
        resolved,
        store=store,
        run_id=run_id,
        pipeline_root=root,
        enable_caching=enable_caching,
        parallelism=parallelism,
        task_metadata=task_metadata or {},
        on_event=on_event,
        task_timeout=task_timeout,
        force_rerun=force_rerun or set(),
        workdir=workdir,
        strict_resources=strict_resources,
    )
    recording.start(run, name=name, source=source, experiment=experiment, reproduces=reproduces)
    python_executors = [
        executor
        for e in ir.get("deploymentSpec", {}).get("executors", {}).values()
        if (executor := irutil.python_executor(e.get("container", {}))) is not None
    ]
    if python_executors:
        # Decided now, so the first task forks after these imports; the worker starts
        # (and imports them) while the run is set up, not when the first step needs it.
        plan_preload(python_executors, preload_modules)
        threading.Thread(target=warm_worker, daemon=True, name="kubelab-warm").start()
    # Steps exist as soon as the run does, so a UI polling right after start sees them.
    for name, spec in ir["root"].get("dag", {}).get("tasks", {}).items():
        if run.is_executor_task(spec):
            run.add_task(name, spec.get("taskInfo", {}).get("name", name))
    live_runs.add(run)
    return run


def _finish(run: Run) -> RunResult:
    try:
        return run.execute()
    finally:
        for key in list(run.claims):
            launch.release(run, key)
        live_runs.finished(run)


def run_pipeline(
    ir: dict[str, Any],
    arguments: dict[str, Any] | None = None,
    *,
    store: RunStore | None = None,
    pipeline_root: str | os.PathLike[str] | None = None,
    enable_caching: bool = True,
    parallelism: int | None = None,
    run_name: str | None = None,
    source: str | None = None,
    task_metadata: dict[str, dict[str, Any]] | None = None,
    on_event: EventCallback | None = None,
    task_timeout: float | None = None,
    force_rerun: set[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    preload: Iterable[str] = (),
    strict_resources: bool = False,
    experiment: str | None = None,
) -> RunResult:
    """Run a pipeline to the end and return its result (a failed run does not raise).

    Tasks run with `workdir` (default: the current directory) as their working
    directory. Independent tasks all run at once unless `parallelism` caps them; a task
    reserves the CPUs its limit names. A task asking for more GPUs than the machine has
    runs on what it has, with a warning, unless `strict_resources`. `preload` names
    modules the warm worker imports before the steps (e.g. a notebook's ML imports). The
    run joins `experiment` (default: one per source file, see
    `kubelab.client.provenance.default_experiment`). In a Jupyter kernel, without an
    `on_event` of its own, it shows a live widget.
    """
    if on_event is None:
        from kubelab.pipelines.local.progress import notebook_progress

        on_event = notebook_progress(run_name or irutil.pipeline_name(ir))
    run = _prepare(
        ir,
        arguments,
        store=store,
        pipeline_root=pipeline_root,
        enable_caching=enable_caching,
        parallelism=parallelism,
        run_name=run_name,
        source=source,
        task_metadata=task_metadata,
        on_event=on_event,
        task_timeout=task_timeout,
        force_rerun=force_rerun,
        workdir=workdir,
        preload_modules=preload,
        strict_resources=strict_resources,
        experiment=experiment,
    )
    # The run executes in a worker thread so that Ctrl-C / "interrupt kernel" here
    # cancels it cleanly (processes killed, store updated) instead of orphaning it.
    thread = threading.Thread(
        target=_finish, args=(run,), name=f"kubelab-run-{run.run_id}", daemon=True
    )
    thread.start()
    try:
        while not run.finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        run.cancel()
        run.finished.wait(30)
        raise
    thread.join()
    assert run.result is not None
    return run.result


def start_run(
    ir: dict[str, Any],
    arguments: dict[str, Any] | None = None,
    **options: Any,
) -> str:
    """Start a run in a background thread and return its id at once (for the server)."""
    preload_modules = tuple(options.pop("preload", ()))
    run = _prepare(
        ir,
        arguments,
        preload_modules=preload_modules,
        **{
            "store": None,
            "pipeline_root": None,
            "enable_caching": True,
            "parallelism": None,
            "run_name": None,
            "source": None,
            "task_metadata": None,
            "on_event": None,
            "task_timeout": None,
            "experiment": None,
            **options,
        },
    )
    threading.Thread(
        target=_finish, args=(run,), name=f"kubelab-run-{run.run_id}", daemon=True
    ).start()
    return run.run_id


def wait_run(run_id: str, timeout: float | None = None) -> RunResult | None:
    """Block until a run started by this process ends; None if it is not ours or still running."""
    run = live_runs.active(run_id)
    if run is None:
        return live_runs.recent_result(run_id)
    run.finished.wait(timeout)
    return run.result


def cancel_run(run_id: str, store: RunStore | None = None) -> None:
    """Cancel a run: directly when this process runs it, else via the store flag."""
    run = live_runs.active(run_id)
    if run is not None:
        run.store.request_cancel(run_id)
        run.cancel()
        return
    (store or RunStore()).request_cancel(run_id)


def start_from_task(
    ir: dict[str, Any], arguments: dict[str, Any] | None, task: str, **options: Any
) -> RunResult:
    """Run from one step: reuse cached upstream outputs, re-execute `task` and its downstream."""
    return run_pipeline(
        ir, arguments, force_rerun=downstream_tasks(ir, task), **{"enable_caching": True, **options}
    )

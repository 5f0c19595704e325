"""Scheduling: the walk of one run's DAGs — which task starts when, what a failed,
cancelled or skipped upstream means for the tasks after it, and what a DAG outputs.

Owns: `Run` (a run's state, its records and events in the store, cancel, and the
DAG walk that hands each ready task to inputs, loops or launch), `task_deps`,
`downstream_tasks` and `dag_outcome`. Independent tasks run in threads; processes
are `launch.py`'s business, values `inputs.py`'s.
"""

from __future__ import annotations

import os
import re
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from kubelab.client.store import RunStore
from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local import recording, task_io, workers
from kubelab.pipelines.local.conditions import evaluate_condition
from kubelab.pipelines.local.inputs import argument_artifacts, resolve_inputs
from kubelab.pipelines.local.launch import run_executor
from kubelab.pipelines.local.loops import run_loop
from kubelab.pipelines.local.outcomes import ConditionSkip, Outcome, RunResult
from kubelab.pipelines.local.resources import Resources, gpu_devices

EventCallback = Callable[[dict[str, Any]], None]

ALL_UPSTREAM_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"


def task_deps(spec: dict[str, Any]) -> set[str]:
    """The tasks this one waits for: explicit `.after()` and the producers of its inputs."""
    deps = set(spec.get("dependentTasks", []))
    inputs = spec.get("inputs", {})
    for p in inputs.get("parameters", {}).values():
        for key in ("taskOutputParameter", "taskFinalStatus"):
            if key in p:
                deps.add(p[key]["producerTask"])
    for a in inputs.get("artifacts", {}).values():
        if "taskOutputArtifact" in a:
            deps.add(a["taskOutputArtifact"]["producerTask"])
    return deps


def _dependents(tasks: dict[str, Any], task: str) -> set[str]:
    """`task` and the tasks of the same DAG that depend on it, directly or not."""
    deps = {name: task_deps(spec) for name, spec in tasks.items()}
    selected = {task}
    changed = True
    while changed:
        changed = False
        for name, d in deps.items():
            if name not in selected and d & selected:
                selected.add(name)
                changed = True
    return selected


def downstream_tasks(ir: dict[str, Any], task: str) -> set[str]:
    """What "run from `task`" re-runs: the task and everything after it, as task paths.

    `task` is a root task, or a task inside a condition, loop or sub-pipeline, named by
    its path as in the run JSON (`condition-1/train`, `for-loop-2[0]/train`: a loop is
    re-run in every iteration). Tasks after an enclosing condition or loop re-run too,
    since its outputs may change. A path selects a sub-DAG with everything inside it
    (`Run.forced`).
    """
    parts = re.sub(r"\[\d+\]", "", task).split("/")
    component = ir["root"]
    prefix = ""
    selected: set[str] = set()
    for depth, part in enumerate(parts):
        tasks = component.get("dag", {}).get("tasks", {})
        if part not in tasks:
            raise NotFoundError(
                f"no step {task!r} in the pipeline; steps: {', '.join(sorted(tasks))}",
                step=task,
            )
        after = _dependents(tasks, part)
        if depth < len(parts) - 1:
            after.discard(part)  # the enclosing DAG: only what follows inside it re-runs
        selected |= {prefix + name for name in after}
        prefix += part + "/"
        component = ir["components"].get(tasks[part].get("componentRef", {}).get("name"), {})
    return selected


def dag_outcome(component: dict[str, Any], results: dict[str, Outcome], prefix: str) -> Outcome:
    """A DAG's state and outputs from its tasks' outcomes (the first failure names it)."""
    failed = [(n, o) for n, o in results.items() if o.state == "failed"]
    cancelled = [n for n, o in results.items() if o.state == "cancelled"]
    dag_outputs = component.get("dag", {}).get("outputs", {})
    params: dict[str, Any] = {}
    for out_name, spec in dag_outputs.get("parameters", {}).items():
        selectors = []
        if "valueFromParameter" in spec:
            selectors = [spec["valueFromParameter"]]
        elif "valueFromOneof" in spec:
            selectors = spec["valueFromOneof"].get("parameterSelectors", [])
        for sel in selectors:
            producer = results.get(sel["producerSubtask"])
            if producer is not None and sel["outputParameterKey"] in producer.parameters:
                params[out_name] = producer.parameters[sel["outputParameterKey"]]
                break
    arts: dict[str, list[dict[str, Any]]] = {}
    for out_name, spec in dag_outputs.get("artifacts", {}).items():
        for sel in spec.get("artifactSelectors", []):
            producer = results.get(sel["producerSubtask"])
            if producer is not None and sel["outputArtifactKey"] in producer.artifacts:
                arts[out_name] = producer.artifacts[sel["outputArtifactKey"]]
                break
    if failed:
        name, outcome = failed[0]
        error = outcome.error or "failed"
        if not error.startswith(("task ", "step ")):
            error = f"task {prefix + name!r} failed: {error}"
        return Outcome("failed", params, arts, error=error)
    if cancelled:
        return Outcome("cancelled", params, arts, error="cancelled")
    return Outcome("succeeded", params, arts)


class Run:
    """One run in this process: its settings, its state (cancel flag, processes,
    resources, metrics), its records in the store and the walk of its DAGs."""

    def __init__(
        self,
        ir: dict[str, Any],
        arguments: dict[str, Any],
        *,
        store: RunStore,
        run_id: str,
        pipeline_root: Path,
        enable_caching: bool,
        parallelism: int | None,
        task_metadata: dict[str, dict[str, Any]],
        on_event: EventCallback | None,
        task_timeout: float | None,
        force_rerun: set[str],
        workdir: str,
        strict_resources: bool = False,
    ) -> None:
        self.ir = ir
        self.arguments = arguments
        self.store = store
        self.run_id = run_id
        self.root = pipeline_root / run_id
        # KFP's workspace (dsl.WORKSPACE_PATH_PLACEHOLDER), one per run.
        self.workspace = self.root / "workspace"
        self.enable_caching = enable_caching
        self.task_metadata = task_metadata
        self.on_event = on_event
        self.task_timeout = task_timeout
        self.workdir = workdir
        self.force_rerun = force_rerun
        self.strict_resources = strict_resources
        # Tasks reserve the CPUs their limits name; `parallelism` caps tasks at once.
        self.resources = Resources(os.cpu_count() or 1, gpu_devices(), parallelism)
        self.warnings: list[str] = []
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.processes: set[workers.TaskProcess] = set()
        self.claims: set[str] = set()  # cache keys this run is computing (launch.claim)
        self.lock = threading.Lock()
        self.metrics: dict[str, Any] = {}
        self.result: RunResult | None = None
        self.recording: recording.RunRecording | None = None  # set by recording.start
        self.create_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # -- events and records -------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event({"run_id": self.run_id, **event})
            except Exception:  # a broken display must never break the run
                traceback.print_exc()

    def record(self, name: str, **fields: Any) -> None:
        self.store.update_task(self.run_id, name, **fields)
        if "state" in fields:
            self.emit({"type": "task", "name": name, **fields})

    def warn(self, name: str, message: str, step_warnings: list[str]) -> None:
        """A warning on the step and the run, shown live (CLI, widget, sidebar)."""
        step_warnings.append(message)
        with self.lock:
            self.warnings.append(message)
            snapshot = list(self.warnings)
        self.store.update_run(self.run_id, warnings=snapshot)
        self.store.update_task(self.run_id, name, warnings=list(step_warnings))
        self.emit({"type": "task", "name": name, "warning": message})

    def forced(self, qname: str) -> bool:
        """Whether run-from asked to re-run this task (or a sub-DAG or loop holding it)."""
        path = re.sub(r"\[\d+\]", "", qname)
        return any(path == f or path.startswith(f + "/") for f in self.force_rerun)

    def add_task(self, name: str, display_name: str, state: str = "pending") -> None:
        metadata = self.task_metadata.get(name, {})
        self.store.add_task(
            self.run_id, name, display_name=display_name, state=state, metadata=metadata
        )
        self.emit({"type": "task", "name": name, "display_name": display_name, "state": state})

    def cancel(self) -> None:
        self.cancelled.set()
        with self.lock:
            procs = list(self.processes)
        for proc in procs:
            proc.kill()

    # -- the run ------------------------------------------------------------------

    def execute(self) -> RunResult:
        self.store.update_run(self.run_id, state="running")
        self.emit({"type": "run", "state": "running"})
        watcher = threading.Thread(target=self._watch_cancel, daemon=True)
        watcher.start()
        error: str | None = None
        outputs: dict[str, Any] = {}
        try:
            root = self.ir["root"]
            params = {
                k: v for k, v in self.arguments.items() if k in irutil.root_parameters(self.ir)
            }
            artifacts = {
                k: argument_artifacts(k, v)
                for k, v in self.arguments.items()
                if k in irutil.root_artifacts(self.ir)
            }
            outcome = self.run_dag(root, params, artifacts, prefix="", dag_name="root")
            state, error = outcome.state, outcome.error
            outputs = {**outcome.parameters, **outcome.artifacts}
        except Exception as exc:  # a bug or bad IR: the run fails, the store says why
            state = "failed"
            error = exc.message if isinstance(exc, KubelabError) else f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        if self.cancelled.is_set() and state != "succeeded":
            state, error = "cancelled", error or "cancelled"
        self.store.update_run(
            self.run_id,
            state=state,
            error=error,
            finished_at=time.time(),
            outputs=outputs,
            metrics=self.metrics,
        )
        recording.finish(self, state)
        self.emit({"type": "run", "state": state, "error": error})
        self.finished.set()
        self.result = RunResult(self.run_id, state, outputs, error, str(self.root), self.store)
        return self.result

    def _watch_cancel(self) -> None:
        while not self.finished.wait(0.3):
            if not self.cancelled.is_set() and self.store.cancel_requested(self.run_id):
                self.cancel()

    # -- DAGs ---------------------------------------------------------------------

    def run_dag(
        self,
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
        *,
        prefix: str,
        dag_name: str,
    ) -> Outcome:
        tasks: dict[str, dict[str, Any]] = component.get("dag", {}).get("tasks", {})
        for name, spec in tasks.items():
            if self.is_executor_task(spec):
                self.add_task(prefix + name, spec.get("taskInfo", {}).get("name", name))
        results: dict[str, Outcome] = {}
        pending = dict(tasks)
        deps = {name: task_deps(spec) for name, spec in tasks.items()}
        for name, d in deps.items():
            unknown = d - set(tasks)
            if unknown:
                raise KubelabError(
                    f"task {prefix + name!r} depends on unknown task(s) {sorted(unknown)} in "
                    f"DAG {dag_name!r}",
                    task=prefix + name,
                )
        running: dict[Future[Outcome], str] = {}
        with ThreadPoolExecutor(
            max_workers=max(1, len(tasks)), thread_name_prefix="kubelab-task"
        ) as pool:
            while pending or running:
                progressed = True
                while progressed:  # gating a task may make others ready in the same pass
                    progressed = False
                    for name in list(pending):
                        if not deps[name] <= results.keys():
                            continue
                        progressed = True
                        spec = pending.pop(name)
                        outcome = self._gate(name, spec, results, deps[name], prefix)
                        if outcome is not None:
                            results[name] = outcome
                            self.record_unstarted(prefix + name, spec, outcome)
                            continue
                        future = pool.submit(
                            self._run_task_safely, name, spec, params, artifacts, results, prefix
                        )
                        running[future] = name
                if not running:
                    if pending:  # a dependency cycle: nothing can ever start
                        raise KubelabError(
                            f"dependency cycle among tasks {sorted(pending)} in DAG {dag_name!r}"
                        )
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    results[running.pop(future)] = future.result()
        return dag_outcome(component, results, prefix)

    def is_executor_task(self, spec: dict[str, Any]) -> bool:
        component = self.ir["components"].get(spec.get("componentRef", {}).get("name", ""), {})
        return "dag" not in component

    def _gate(
        self,
        name: str,
        spec: dict[str, Any],
        results: dict[str, Outcome],
        deps: set[str],
        prefix: str,
    ) -> Outcome | None:
        """Decide without running whether a ready task is cancelled or skipped."""
        if self.cancelled.is_set():
            return Outcome("cancelled", error="cancelled")
        strategy = spec.get("triggerPolicy", {}).get("strategy")
        if strategy == ALL_UPSTREAM_COMPLETED:
            return None
        bad = [
            d
            for d in sorted(deps)
            if results[d].state in ("failed", "cancelled")
            or (results[d].state == "skipped" and results[d].skip_reason != "condition")
        ]
        if bad:
            return Outcome(
                "skipped",
                error=f"upstream task {prefix + bad[0]!r} did not succeed",
                skip_reason="upstream",
            )
        return None

    def record_unstarted(self, qname: str, spec: dict[str, Any], outcome: Outcome) -> None:
        display = spec.get("taskInfo", {}).get("name", qname.rsplit("/", 1)[-1])
        self.add_task(qname, display, state=outcome.state)  # no-op if already listed
        fields: dict[str, Any] = {"state": outcome.state}
        if outcome.error and outcome.skip_reason != "condition":
            fields["error"] = outcome.error
        self.record(qname, **fields)
        if not self.is_executor_task(spec) and not (
            "parameterIterator" in spec or "artifactIterator" in spec
        ):
            # Show the steps of a branch that never ran, not just the branch.
            component = self.ir["components"][spec["componentRef"]["name"]]
            for child, child_spec in component.get("dag", {}).get("tasks", {}).items():
                self.record_unstarted(f"{qname}/{child}", child_spec, outcome)

    # -- one task -----------------------------------------------------------------

    def _run_task_safely(self, *args: Any) -> Outcome:
        name, spec, prefix = args[0], args[1], args[5]
        try:
            return self._run_task(*args)
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, KubelabError) else f"{type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, KubelabError):
                traceback.print_exc()
            qname = prefix + name
            if not self.is_executor_task(spec):
                self.add_task(qname, spec.get("taskInfo", {}).get("name", name), state="failed")
            self.record(qname, state="failed", error=message, finished_at=time.time())
            return Outcome("failed", error=f"task {qname!r}: {message}")

    def _run_task(
        self,
        name: str,
        spec: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
        results: dict[str, Outcome],
        prefix: str,
    ) -> Outcome:
        qname = prefix + name
        comp_name = spec.get("componentRef", {}).get("name")
        component = self.ir.get("components", {}).get(comp_name)
        if component is None:
            raise KubelabError(f"task {qname!r} refers to unknown component {comp_name!r}")
        try:
            task_params, task_artifacts = resolve_inputs(
                qname, spec, component, params, artifacts, results, run_id=self.run_id
            )
        except ConditionSkip as skip:
            outcome = Outcome("skipped", skip_reason="condition", error=str(skip))
            self.record_unstarted(qname, spec, outcome)
            return outcome
        condition = spec.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, task_params, task=qname):
            outcome = Outcome("skipped", skip_reason="condition")
            self.record_unstarted(qname, spec, outcome)
            return outcome
        if "parameterIterator" in spec or "artifactIterator" in spec:
            return run_loop(qname, spec, component, task_params, task_artifacts, self.run_dag)
        if "dag" in component:
            return self.run_dag(
                component, task_params, task_artifacts, prefix=qname + "/", dag_name=qname
            )
        return run_executor(self, qname, spec, component, task_params, task_artifacts)

    def collect_metrics(self, arts: task_io.Artifacts) -> None:
        """Add a task's Metrics artifacts to the run's metrics (as KFP shows them)."""
        found = task_io.metrics_of(arts)
        if found:
            with self.lock:
                self.metrics.update(found)
                snapshot = dict(self.metrics)
            self.store.update_run(self.run_id, metrics=snapshot)

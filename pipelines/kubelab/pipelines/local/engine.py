"""The local execution engine: runs KFP v2 IR on this machine.

It interprets the same PipelineSpec that a Kubeflow Pipelines server runs (root DAG,
sub-DAGs, loops, conditions, exit handlers, retries, caching) and records every state
change in the `RunStore`. Executors run in processes (`workers.py`); this module only
decides *what* runs *when*, so a Kubernetes backend can reuse the store and the IR
without this scheduler.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab.client.store import RunStore, kubelab_home
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import cache as cache_keys
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local import task_io, workers
from kubelab.pipelines.local.conditions import evaluate_condition
from kubelab.pipelines.local.placeholders import resolve_command
from kubelab.pipelines.local.resources import Resources, cpu_cores, gpu_devices

EventCallback = Callable[[dict[str, Any]], None]

ALL_UPSTREAM_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"
FINAL_STATES = ("succeeded", "failed", "skipped", "cancelled")


@dataclass
class Outcome:
    """What a task or DAG produced; artifacts are lists of KFP RuntimeArtifact dicts."""

    state: str
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None
    # "condition" when a trigger condition was false: downstream tasks still run.
    skip_reason: str | None = None


@dataclass
class RunResult:
    """A finished run: its state, the pipeline's outputs and where to find the rest."""

    run_id: str
    state: str
    outputs: dict[str, Any]
    error: str | None
    pipeline_root: str
    store: RunStore

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    def run(self) -> dict[str, Any]:
        """The run JSON (steps, timings, metrics) from the store."""
        return self.store.get_run(self.run_id)


# -- shared process-wide state ------------------------------------------------------

_fork_server: workers.ForkServer | None = None
_fork_server_lock = threading.Lock()
_active_runs: dict[str, _Run] = {}
_recent_results: dict[str, RunResult] = {}
_active_lock = threading.Lock()


def fork_server() -> workers.ForkServer:
    """The warm worker process shared by all runs of this process (started lazily)."""
    global _fork_server
    with _fork_server_lock:
        if _fork_server is None:
            preload = list(workers.DEFAULT_PRELOAD)
            preload += [m for m in os.environ.get("KUBELAB_PRELOAD", "").split(",") if m]
            _fork_server = workers.ForkServer(tuple(preload))
        return _fork_server


def _safe_segment(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "task"


def _duration_seconds(text: Any, default: float = 0.0) -> float:
    if text is None:
        return default
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        return default
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _task_deps(spec: dict[str, Any]) -> set[str]:
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


class _Run:
    def __init__(
        self,
        ir: dict[str, Any],
        arguments: dict[str, Any],
        *,
        store: RunStore,
        run_id: str,
        pipeline_root: Path,
        enable_caching: bool,
        parallelism: int,
        task_metadata: dict[str, dict[str, Any]],
        on_event: EventCallback | None,
        task_timeout: float | None,
        force_rerun: set[str],
        workdir: str,
    ) -> None:
        self.ir = ir
        self.arguments = arguments
        self.store = store
        self.run_id = run_id
        self.root = pipeline_root / run_id
        self.enable_caching = enable_caching
        self.task_metadata = task_metadata
        self.on_event = on_event
        self.task_timeout = task_timeout
        self.workdir = workdir
        self.force_rerun = force_rerun
        self.resources = Resources(parallelism, gpu_devices())
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.processes: set[workers.TaskProcess] = set()
        self.lock = threading.Lock()
        self.metrics: dict[str, Any] = {}
        self.result: RunResult | None = None
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
                k: self._argument_artifacts(k, v)
                for k, v in self.arguments.items()
                if k in irutil.root_artifacts(self.ir)
            }
            outcome = self._run_dag(root, params, artifacts, prefix="", dag_name="root")
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
        self.emit({"type": "run", "state": state, "error": error})
        self.finished.set()
        self.result = RunResult(self.run_id, state, outputs, error, str(self.root), self.store)
        return self.result

    def _watch_cancel(self) -> None:
        while not self.finished.wait(0.3):
            if not self.cancelled.is_set() and self.store.cancel_requested(self.run_id):
                self.cancel()

    def _argument_artifacts(self, name: str, value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if isinstance(item, dict):
                out.append(item)
            elif hasattr(item, "uri"):
                out.append(
                    {
                        "name": getattr(item, "name", name),
                        "type": {"schemaTitle": getattr(item, "schema_title", "system.Artifact")},
                        "uri": item.uri,
                        "metadata": dict(getattr(item, "metadata", {}) or {}),
                    }
                )
            else:
                out.append(
                    {
                        "name": name,
                        "type": {"schemaTitle": "system.Artifact"},
                        "uri": str(item),
                        "metadata": {},
                    }
                )
        return out

    # -- DAGs ---------------------------------------------------------------------

    def _run_dag(
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
            if self._is_executor_task(spec):
                self.add_task(prefix + name, spec.get("taskInfo", {}).get("name", name))
        results: dict[str, Outcome] = {}
        pending = dict(tasks)
        deps = {name: _task_deps(spec) for name, spec in tasks.items()}
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
                            self._record_unstarted(prefix + name, spec, outcome)
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
        return self._dag_outcome(component, results, prefix)

    def _is_executor_task(self, spec: dict[str, Any]) -> bool:
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

    def _record_unstarted(self, qname: str, spec: dict[str, Any], outcome: Outcome) -> None:
        display = spec.get("taskInfo", {}).get("name", qname.rsplit("/", 1)[-1])
        self.add_task(qname, display, state=outcome.state)  # no-op if already listed
        fields: dict[str, Any] = {"state": outcome.state}
        if outcome.error and outcome.skip_reason != "condition":
            fields["error"] = outcome.error
        self.record(qname, **fields)
        if not self._is_executor_task(spec) and not (
            "parameterIterator" in spec or "artifactIterator" in spec
        ):
            # Show the steps of a branch that never ran, not just the branch.
            component = self.ir["components"][spec["componentRef"]["name"]]
            for child, child_spec in component.get("dag", {}).get("tasks", {}).items():
                self._record_unstarted(f"{qname}/{child}", child_spec, outcome)

    def _dag_outcome(
        self, component: dict[str, Any], results: dict[str, Outcome], prefix: str
    ) -> Outcome:
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
            if not error.startswith("task "):
                error = f"task {prefix + name!r} failed: {error}"
            return Outcome("failed", params, arts, error=error)
        if cancelled:
            return Outcome("cancelled", params, arts, error="cancelled")
        return Outcome("succeeded", params, arts)

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
            if not self._is_executor_task(spec):
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
            task_params, task_artifacts = self._resolve_inputs(
                qname, spec, component, params, artifacts, results
            )
        except _ConditionSkip as skip:
            outcome = Outcome("skipped", skip_reason="condition", error=str(skip))
            self._record_unstarted(qname, spec, outcome)
            return outcome
        condition = spec.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, task_params, task=qname):
            outcome = Outcome("skipped", skip_reason="condition")
            self._record_unstarted(qname, spec, outcome)
            return outcome
        if "parameterIterator" in spec or "artifactIterator" in spec:
            return self._run_loop(qname, spec, component, task_params, task_artifacts)
        if "dag" in component:
            return self._run_dag(
                component, task_params, task_artifacts, prefix=qname + "/", dag_name=qname
            )
        return self._run_executor(qname, spec, component, task_params, task_artifacts)

    def _resolve_inputs(
        self,
        qname: str,
        spec: dict[str, Any],
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
        results: dict[str, Outcome],
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        inputs = spec.get("inputs", {})
        definitions = component.get("inputDefinitions", {})
        out_params: dict[str, Any] = {}
        for key, source in inputs.get("parameters", {}).items():
            if "componentInputParameter" in source:
                parent = source["componentInputParameter"]
                if parent not in params:
                    raise KubelabError(
                        f"task {qname!r}: input {key!r} reads missing parent parameter {parent!r}",
                        task=qname,
                    )
                value = params[parent]
            elif "taskOutputParameter" in source:
                ref = source["taskOutputParameter"]
                producer = results[ref["producerTask"]]
                if ref["outputParameterKey"] not in producer.parameters:
                    if producer.state == "skipped":
                        raise _ConditionSkip(f"producer {ref['producerTask']!r} was skipped")
                    raise KubelabError(
                        f"task {qname!r}: input {key!r} needs output {ref['outputParameterKey']!r} "
                        f"of task {ref['producerTask']!r}, which did not produce it",
                        task=qname,
                    )
                value = producer.parameters[ref["outputParameterKey"]]
            elif "runtimeValue" in source:
                rv = source["runtimeValue"]
                if "constant" in rv:
                    value = rv["constant"]
                else:  # legacy constantValue {stringValue|intValue|doubleValue}
                    value = next(iter(rv.get("constantValue", {"v": None}).values()))
            elif "taskFinalStatus" in source:
                producer_name = source["taskFinalStatus"]["producerTask"]
                producer = results[producer_name]
                state = {
                    "succeeded": "SUCCEEDED",
                    "failed": "FAILED",
                    "cancelled": "CANCELLED",
                }.get(producer.state, "SUCCEEDED")
                value = {
                    "state": state,
                    "pipelineJobResourceName": self.run_id,
                    "pipelineTaskName": producer_name,
                    "error": {"code": 1, "message": producer.error or ""}
                    if state != "SUCCEEDED"
                    else {},
                }
            else:
                raise KubelabError(
                    f"task {qname!r}: unsupported input source for {key!r}: {sorted(source)}",
                    task=qname,
                )
            selector = source.get("parameterExpressionSelector")
            if selector:
                value = irutil.apply_expression_selector(value, selector, task=qname)
            # Executors get their declared types; DAG inputs pass values through unchanged,
            # as on KFP, where a loop item may be declared STRING yet carry a number.
            ptype = None
            if "dag" not in component:
                ptype = definitions.get("parameters", {}).get(key, {}).get("parameterType")
            out_params[key] = irutil.coerce_value(
                value, ptype, what=f"task {qname!r} input {key!r}"
            )
        out_artifacts: dict[str, list[dict[str, Any]]] = {}
        for key, source in inputs.get("artifacts", {}).items():
            if "componentInputArtifact" in source:
                parent = source["componentInputArtifact"]
                if parent not in artifacts:
                    raise KubelabError(
                        f"task {qname!r}: input artifact {key!r} reads missing "
                        f"parent artifact {parent!r}",
                        task=qname,
                    )
                out_artifacts[key] = artifacts[parent]
            elif "taskOutputArtifact" in source:
                ref = source["taskOutputArtifact"]
                producer = results[ref["producerTask"]]
                if ref["outputArtifactKey"] not in producer.artifacts:
                    if producer.state == "skipped":
                        raise _ConditionSkip(f"producer {ref['producerTask']!r} was skipped")
                    raise KubelabError(
                        f"task {qname!r}: input artifact {key!r} needs output "
                        f"{ref['outputArtifactKey']!r} of task {ref['producerTask']!r}, "
                        "which did not produce it",
                        task=qname,
                    )
                out_artifacts[key] = producer.artifacts[ref["outputArtifactKey"]]
            else:
                raise KubelabError(
                    f"task {qname!r}: unsupported artifact source for {key!r}", task=qname
                )
        # Defaults the component declares for inputs the task leaves unset.
        for key, pdef in definitions.get("parameters", {}).items():
            if key not in out_params and "defaultValue" in pdef:
                out_params[key] = irutil.coerce_value(
                    pdef["defaultValue"],
                    pdef.get("parameterType"),
                    what=f"task {qname!r} input {key!r}",
                )
        return out_params, out_artifacts

    def _run_loop(
        self,
        qname: str,
        spec: dict[str, Any],
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
    ) -> Outcome:
        iterations: list[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]] = []
        if "parameterIterator" in spec:
            it = spec["parameterIterator"]
            items_spec = it.get("items", {})
            if "raw" in items_spec:
                raw = items_spec["raw"]
                items = json.loads(raw) if isinstance(raw, str) else raw
            else:
                items = params.get(items_spec.get("inputParameter"))
                if isinstance(items, str):
                    items = json.loads(items)
            if not isinstance(items, list):
                raise KubelabError(
                    f"task {qname!r}: ParallelFor needs a list, got {items!r}", task=qname
                )
            for item in items:
                iterations.append(({**params, it["itemInput"]: item}, artifacts))
        else:
            it = spec["artifactIterator"]
            items = artifacts.get(it.get("items", {}).get("inputArtifact"), [])
            for item in items:
                iterations.append((params, {**artifacts, it["itemInput"]: [item]}))
        limit = int(spec.get("iteratorPolicy", {}).get("parallelismLimit") or 0)
        workers_n = max(1, min(len(iterations), limit if limit > 0 else 64))
        outcomes: list[Outcome] = []
        if iterations:
            with ThreadPoolExecutor(
                max_workers=workers_n, thread_name_prefix="kubelab-loop"
            ) as pool:
                futures = [
                    pool.submit(
                        self._run_dag,
                        component,
                        p,
                        a,
                        prefix=f"{qname}[{i}]/",
                        dag_name=f"{qname}[{i}]",
                    )
                    for i, (p, a) in enumerate(iterations)
                ]
                outcomes = [f.result() for f in futures]
        out_defs = component.get("outputDefinitions", {})
        collected = {
            k: [o.parameters.get(k) for o in outcomes if k in o.parameters]
            for k in out_defs.get("parameters", {})
        }
        collected_arts = {
            k: [a for o in outcomes for a in o.artifacts.get(k, [])]
            for k in out_defs.get("artifacts", {})
        }
        failed = next((o for o in outcomes if o.state == "failed"), None)
        if failed is not None:
            return Outcome("failed", collected, collected_arts, error=failed.error)
        if any(o.state == "cancelled" for o in outcomes):
            return Outcome("cancelled", collected, collected_arts, error="cancelled")
        return Outcome("succeeded", collected, collected_arts)

    # -- executors ----------------------------------------------------------------

    def _task_dir(self, qname: str) -> Path:
        parts = [_safe_segment(p.replace("[", "-").replace("]", "")) for p in qname.split("/")]
        return self.root.joinpath(*parts)

    def _run_executor(
        self,
        qname: str,
        spec: dict[str, Any],
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
    ) -> Outcome:
        label = component.get("executorLabel")
        executor = self.ir.get("deploymentSpec", {}).get("executors", {}).get(label)
        if executor is None:
            raise KubelabError(f"task {qname!r}: no executor {label!r} in the deploymentSpec")
        if "importer" in executor:
            return self._run_importer(qname, executor["importer"], component, params)
        container = executor.get("container")
        if container is None:
            raise KubelabError(f"task {qname!r}: executor {label!r} has no container or importer")
        task_dir = self._task_dir(qname)
        task_dir.mkdir(parents=True, exist_ok=True)
        executor_input = task_io.executor_input(task_dir, component, params, artifacts)
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
        if gpus > self.resources.total_gpus:
            kind = accel.get("resourceType") or accel.get("type") or "GPU"
            raise KubelabError(
                f"task {qname!r} requests {gpus} {kind} but this machine has "
                f"{self.resources.total_gpus} GPU(s); lower the accelerator limit or run it on "
                "the kubernetes backend",
                task=qname,
            )
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
        use_cache = self.enable_caching and task_caching and qname not in self.force_rerun
        self.record(qname, inputs={"parameters": params, "artifacts": artifacts}, cache_key=key)
        if use_cache:
            hit = self.store.cache_get(key)
            if hit is not None and cache_keys.outputs_still_exist(hit):
                now = time.time()
                self._collect_metrics(hit["artifacts"])
                self.record(
                    qname,
                    state="succeeded",
                    cached=1,
                    cached_from=self.store.cache_origin(key),
                    started_at=now,
                    finished_at=now,
                    outputs=task_io.public_outputs(hit["parameters"], hit["artifacts"]),
                )
                return Outcome("succeeded", hit["parameters"], hit["artifacts"])
        python = irutil.python_executor(container)
        retry = spec.get("retryPolicy", {})
        max_retries = int(retry.get("maxRetryCount", 0) or 0)
        backoff = _duration_seconds(retry.get("backoffDuration"), 0.0)
        factor = float(retry.get("backoffFactor", 2) or 2)
        max_backoff = _duration_seconds(retry.get("backoffMaxDuration"), 3600.0)
        started_at = None
        error = "failed"
        result: dict[str, Any] = {}
        for attempt in range(1, max_retries + 2):
            if self.cancelled.is_set():
                break
            log_path = task_dir / "_logs" / f"attempt-{attempt}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            header = f"kubelab: task {qname} attempt {attempt}\n"
            if container.get("image") and python is None:
                header += (
                    f"kubelab: image {container['image']!r} is ignored locally; the command "
                    "runs on this machine\n"
                )
            log_path.write_text(header)
            task_io.clear_outputs(executor_input)
            gpu_ids = self.resources.acquire(math.ceil(cpu) if cpu else 1, gpus, self.cancelled)
            if gpu_ids is None:
                break
            try:
                if started_at is None:
                    started_at = time.time()
                self.record(
                    qname,
                    state="running",
                    attempts=attempt,
                    started_at=started_at,
                    log_path=str(log_path),
                )
                task_env = dict(env)
                if self.resources.total_gpus:
                    # As on Kubernetes: a task sees the GPUs it asked for, and no others.
                    task_env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
                ok, error, result = self._launch(
                    qname, container, python, executor_input, task_env, task_dir, log_path, attempt
                )
            finally:
                self.resources.release(math.ceil(cpu) if cpu else 1, gpu_ids)
            if ok:
                try:
                    out_params, out_arts = task_io.read_outputs(
                        qname, component, executor_input, result
                    )
                except KubelabError as exc:
                    ok, error = False, exc.message
            if ok:
                self._collect_metrics(out_arts)
                # Written even when reads are off (--no-cache), so later runs can reuse it.
                entry = {"parameters": out_params, "artifacts": out_arts}
                entry["files"] = cache_keys.existing_files(entry)
                self.store.cache_put(key, entry, self.run_id, qname)
                self.record(
                    qname,
                    state="succeeded",
                    finished_at=time.time(),
                    error=None,
                    outputs=task_io.public_outputs(out_params, out_arts),
                )
                return Outcome("succeeded", out_params, out_arts)
            if attempt <= max_retries and not self.cancelled.is_set():
                with open(log_path, "a") as f:
                    f.write(f"kubelab: attempt {attempt} failed: {error}; retrying\n")
                delay = min(backoff * factor ** (attempt - 1), max_backoff)
                if self.cancelled.wait(delay):
                    break
        if self.cancelled.is_set():
            self.record(qname, state="cancelled", finished_at=time.time(), error="cancelled")
            return Outcome("cancelled", error="cancelled")
        # `where`: the notebook cell and line a notebook step failed in.
        self.record(
            qname,
            state="failed",
            finished_at=time.time(),
            error=error,
            failed_at=result.get("where"),
        )
        return Outcome("failed", error=f"task {qname!r} failed: {error}")

    def _launch(
        self,
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
                "cwd": self.workdir,
            }
            missing = workers.missing_requirements(python.packages) if python.packages else []
            if missing:
                interpreter = workers.layered_venv(
                    tuple(python.packages), home=kubelab_home(), log_path=str(log_path)
                )
                payload_path = task_dir / "_logs" / f"attempt-{attempt}.payload.json"
                payload_path.write_text(json.dumps(payload, default=str))
                proc = fork_server().run(
                    {
                        "argv": workers.venv_task_argv(interpreter, str(payload_path)),
                        "env": {"PYTHONUNBUFFERED": "1"},
                        "cwd": self.workdir,
                        "log_path": str(log_path),
                    }
                )
            else:
                proc = fork_server().run(payload)
        else:
            names = {
                "job_name": self.run_id,
                "job_id": self.run_id,
                "task_name": qname,
                "task_id": f"{self.run_id}/{qname}",
                "pipeline_root": str(self.root.parent),
                "create_time": self.create_time,
            }
            argv = resolve_command(
                list(container.get("command", [])) + list(container.get("args", [])),
                executor_input,
                names,
            )
            if not argv:
                raise KubelabError(f"task {qname!r}: the container has no command or args")
            proc = fork_server().run(
                {"argv": argv, "env": env, "cwd": self.workdir, "log_path": str(log_path)}
            )
        with self.lock:
            self.processes.add(proc)
        if self.cancelled.is_set():
            proc.kill()
        try:
            code = proc.wait(self.task_timeout)
            timed_out = code is None
            if timed_out:
                proc.kill()
                code = proc.wait(10)
        finally:
            with self.lock:
                self.processes.discard(proc)
        result: dict[str, Any] = {}
        if result_path.exists():
            result = json.loads(result_path.read_text())
        if timed_out:
            with open(log_path, "a") as f:
                f.write(f"kubelab: timed out after {self.task_timeout}s, killed\n")
            return False, f"timed out after {self.task_timeout} s", result
        if self.cancelled.is_set() and code != 0:
            return False, "cancelled", result
        if code != 0:
            detail = result.get("error") or f"exit code {code}"
            return False, f"{detail} (log: {log_path})", result
        if "error" in result:
            return False, result["error"], result
        return True, "", result

    def _run_importer(
        self,
        qname: str,
        importer: dict[str, Any],
        component: dict[str, Any],
        params: dict[str, Any],
    ) -> Outcome:
        uri_spec = importer.get("artifactUri", {})
        if "constant" in uri_spec:
            uri = uri_spec["constant"]
        elif "runtimeParameter" in uri_spec:
            uri = params.get(uri_spec["runtimeParameter"])
        else:
            uri = next(iter(uri_spec.get("constantValue", {}).values()), None)
        if isinstance(uri, dict) and "stringValue" in uri:
            uri = uri["stringValue"]
        if not uri:
            raise KubelabError(f"importer {qname!r} has no artifact URI", task=qname)
        uri = str(uri)
        local = uri[len("file://") :] if uri.startswith("file://") else uri
        if "://" not in local and not os.path.exists(local):
            raise KubelabError(f"importer {qname!r}: {uri} does not exist", task=qname)
        now = time.time()
        self.record(qname, state="running", started_at=now, attempts=1)
        out_name = next(
            iter(component.get("outputDefinitions", {}).get("artifacts", {})), "artifact"
        )
        artifact = {
            "name": out_name,
            "type": importer.get("typeSchema", {"schemaTitle": "system.Artifact"}),
            "uri": local if "://" not in local else uri,
            "metadata": importer.get("metadata", {}),
        }
        arts = {out_name: [artifact]}
        self.record(
            qname,
            state="succeeded",
            finished_at=time.time(),
            outputs=task_io.public_outputs({}, arts),
        )
        return Outcome("succeeded", {}, arts)

    # -- outputs ------------------------------------------------------------------

    def _collect_metrics(self, arts: task_io.Artifacts) -> None:
        found = task_io.metrics_of(arts)
        if found:
            with self.lock:
                self.metrics.update(found)
                snapshot = dict(self.metrics)
            self.store.update_run(self.run_id, metrics=snapshot)


class _ConditionSkip(Exception):
    """An input comes from a task that a false condition skipped."""


# -- public API ---------------------------------------------------------------------


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
) -> _Run:
    if not isinstance(ir, dict) or "root" not in ir:
        raise KubelabError("not a compiled pipeline: the IR has no 'root' DAG")
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
    run = _Run(
        ir,
        resolved,
        store=store,
        run_id=run_id,
        pipeline_root=root,
        enable_caching=enable_caching,
        parallelism=parallelism or os.cpu_count() or 1,
        task_metadata=task_metadata or {},
        on_event=on_event,
        task_timeout=task_timeout,
        force_rerun=force_rerun or set(),
        workdir=workdir,
    )
    python_executors = [
        executor
        for e in ir.get("deploymentSpec", {}).get("executors", {}).values()
        if (executor := irutil.python_executor(e.get("container", {}))) is not None
    ]
    if python_executors:
        # Warm the worker while the run is set up, not when the first step needs it.
        threading.Thread(
            target=_warm_worker, args=(python_executors,), daemon=True, name="kubelab-warm"
        ).start()
    # Steps exist as soon as the run does, so a UI polling right after start sees them.
    for name, spec in ir["root"].get("dag", {}).get("tasks", {}).items():
        if run._is_executor_task(spec):
            run.add_task(name, spec.get("taskInfo", {}).get("name", name))
    with _active_lock:
        _active_runs[run_id] = run
    return run


# Heavy libraries that are safe to import once in the fork server and fork after:
# they start no threads and touch no devices at import time (torch initialises CUDA
# lazily; DataLoader itself forks after importing it). Others are imported per task,
# which is slower but cannot deadlock a fork. KUBELAB_PRELOAD adds more, at your risk.
FORK_SAFE_MODULES = frozenset(
    {"numpy", "pandas", "sklearn", "scipy", "joblib", "cloudpickle", "torch", "matplotlib", "PIL"}
)


def _preload_candidates(executors: list[irutil.PythonExecutor]) -> set[str]:
    """Modules worth importing once in the fork server for these components."""
    import importlib.util

    wanted: set[str] = set()
    for executor in executors:
        if executor.packages and workers.missing_requirements(executor.packages):
            continue  # runs in a venv's own interpreter, not in the fork server
        for name in irutil.imported_modules(executor.source):
            top = name.split(".")[0]
            if top == "kubelab" or top in FORK_SAFE_MODULES:
                wanted.add(name)
    wanted |= {m for m in os.environ.get("KUBELAB_PRELOAD", "").split(",") if m}
    found = set()
    for name in wanted:
        try:
            # Only top-level lookups: find_spec("a.b") would import `a` into this process.
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                found.add(name)
        except (ImportError, ValueError):
            continue
    return found


def _warm_worker(executors: list[irutil.PythonExecutor]) -> None:
    """Start the fork server and have it import what the components import.

    Measured here: a component importing pandas costs ~300 ms per task without this and
    ~40 ms with it. KUBELAB_PRELOAD is read on every run, so a long-lived server picks
    up later additions; KUBELAB_NO_PRELOAD=1 turns preloading off.
    """
    server = fork_server()
    server.start()
    if not os.environ.get("KUBELAB_NO_PRELOAD"):
        # The server imports them and ignores failures (e.g. `a.b.c` naming a function).
        server.import_modules(_preload_candidates(executors))


def _finish(run: _Run) -> RunResult:
    try:
        return run.execute()
    finally:
        with _active_lock:
            _active_runs.pop(run.run_id, None)
            if run.result is not None:
                # wait_run() may be called after a quick run has already ended.
                _recent_results[run.run_id] = run.result
                while len(_recent_results) > 256:
                    _recent_results.pop(next(iter(_recent_results)))


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
) -> RunResult:
    """Run a pipeline to the end and return its result (a failed run does not raise).

    Tasks run with `workdir` (default: the current directory) as their working
    directory. In a Jupyter kernel, without an `on_event` of its own, it shows a live
    widget.
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
    run = _prepare(
        ir,
        arguments,
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
            **options,
        },
    )
    threading.Thread(
        target=_finish, args=(run,), name=f"kubelab-run-{run.run_id}", daemon=True
    ).start()
    return run.run_id


def wait_run(run_id: str, timeout: float | None = None) -> RunResult | None:
    """Block until a run started by this process ends; None if it is not ours or still running."""
    with _active_lock:
        run = _active_runs.get(run_id)
        if run is None:
            return _recent_results.get(run_id)
    run.finished.wait(timeout)
    return run.result


def cancel_run(run_id: str, store: RunStore | None = None) -> None:
    """Cancel a run: directly when this process runs it, else via the store flag."""
    with _active_lock:
        run = _active_runs.get(run_id)
    if run is not None:
        run.store.request_cancel(run_id)
        run.cancel()
        return
    (store or RunStore()).request_cancel(run_id)


def downstream_tasks(ir: dict[str, Any], task: str) -> set[str]:
    """`task` and every root-DAG task that depends on it, directly or not."""
    tasks = ir["root"].get("dag", {}).get("tasks", {})
    if task not in tasks:
        raise KubelabError(
            f"no step {task!r} in the pipeline; steps: {', '.join(sorted(tasks))}", step=task
        )
    deps = {name: _task_deps(spec) for name, spec in tasks.items()}
    selected = {task}
    changed = True
    while changed:
        changed = False
        for name, d in deps.items():
            if name not in selected and d & selected:
                selected.add(name)
                changed = True
    return selected


def start_from_task(
    ir: dict[str, Any], arguments: dict[str, Any] | None, task: str, **options: Any
) -> RunResult:
    """Run from one step: reuse cached upstream outputs, re-execute `task` and its downstream."""
    return run_pipeline(
        ir, arguments, force_rerun=downstream_tasks(ir, task), **{"enable_caching": True, **options}
    )

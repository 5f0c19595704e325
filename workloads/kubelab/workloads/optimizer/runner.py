"""The local experiment runner: Katib's experiment and trial controllers, in a thread.

One thread per experiment asks optuna for assignments (`suggest`), starts up to
`parallelTrialCount` trials, follows their metrics as they are written (`collect`),
stops trials by the medianstop rules (`earlystop`), tells optuna each result, and
ends the experiment as Katib does: Succeeded when the goal is reached, when
`maxTrialCount` trials have completed or the grid is exhausted; Failed when
`maxFailedTrialCount` trials failed (failed or metrics unavailable), with their errors.

A trial is a process running the trialSpec's primary container command, a pipeline
run of a tuned notebook, or a local training job (`trial_processes.py`).

Everything is written to the run store as it happens: the job row (kind "tuning"),
a step per trial (`trial-0001`...) with its parameters and observation in `outputs`,
its log, its metric series. After a restart `resume()` rebuilds the optuna study
from those records and carries on.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.store import INTERRUPTED_ERROR, RunStore
from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.base import CancelWatch
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer.collect import flat_metrics, objective_value
from kubelab.workloads.optimizer.earlystop import medianstop_rules
from kubelab.workloads.optimizer.suggest import Suggester
from kubelab.workloads.optimizer.trial_processes import (
    TRIAL_KINDS,
    CommandTrial,
    NotebookTrial,
    TrainingTrial,
    TrialProcess,
)
from kubelab.workloads.optimizer.types import cast_value

if TYPE_CHECKING:
    from kubelab.workloads.base import LocalContext

EventCallback = Callable[[dict[str, Any]], None]

# Katib trial conditions -> store states (the store has no "early stopped").
SUCCEEDED, FAILED, EARLY_STOPPED = "Succeeded", "Failed", "EarlyStopped"
METRICS_UNAVAILABLE, KILLED, RUNNING = "MetricsUnavailable", "Killed", "Running"
STATE_OF = {
    SUCCEEDED: "succeeded",
    EARLY_STOPPED: "succeeded",
    FAILED: "failed",
    METRICS_UNAVAILABLE: "failed",
    KILLED: "cancelled",
    RUNNING: "running",
}
TAIL_S = 0.1  # how often running trials' metrics are read

_runners: dict[str, ExperimentRunner] = {}
_runners_lock = threading.Lock()


class ExperimentRunner:
    """Runs one experiment to its end in a background thread (see the module doc)."""

    def __init__(
        self,
        job_id: str,
        spec: dict[str, Any],
        *,
        ctx: LocalContext,
        base_dir: Path,
        experiment: dict[str, Any],
        on_event: EventCallback | None = None,
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.ctx = ctx
        self.store: RunStore = ctx.store
        self.job_dir = ctx.job_dir(job_id)
        self.root = ctx.root
        self.base_dir = base_dir
        self.experiment = experiment
        self.on_event = on_event
        self.template = spec["template"]
        self.value_kinds: dict[str, str] = spec["value_kinds"]
        es = experiment["spec"]
        self.max_trials = int(es["maxTrialCount"])
        self.parallel = int(es.get("parallelTrialCount") or katib.DEFAULT_PARALLEL_TRIALS)
        self.max_failed = es.get("maxFailedTrialCount")
        self.objective = es["objective"]
        self.goal = self.objective.get("goal")
        mc = es.get("metricsCollectorSpec") or {}
        fs = (mc.get("source") or {}).get("fileSystemPath") or {}
        self.metrics_file_path = (
            fs.get("path") if (mc.get("collector") or {}).get("kind") == "File" else None
        )
        self.suggester = Suggester(experiment, fallback_seed=spec.get("seed"))
        self.active: dict[str, TrialProcess] = {}
        self.trials: dict[str, dict[str, Any]] = {}  # name -> record (condition, objective...)
        self.succeeded_series: list[list[float]] = []
        self.next_index = 1
        self.wake = threading.Event()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.thread: threading.Thread | None = None
        self._notebook: Any = None
        self.preload: list[str] = []
        self._gpus = _gpu_pool()
        self._cpu_free = os.cpu_count() or 1
        self._cpu_lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event({"job": self.job_id, **event})
            except Exception:  # a broken display never breaks the experiment
                traceback.print_exc()

    def typed(self, assignments: dict[str, str]) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        for name, text in assignments.items():
            try:
                typed[name] = cast_value(self.value_kinds.get(name, "str"), text)
            except (ValueError, SyntaxError):
                typed[name] = text
        return typed

    def notebook(self) -> Any:
        if self._notebook is None:
            from kubelab.pipelines.notebook import compile_notebook
            from kubelab.pipelines.notebook.run import preload_modules

            self._notebook = compile_notebook(str(self.root / self.template["path"]))
            self.preload = preload_modules(self._notebook)
        return self._notebook

    def _resources(self) -> tuple[int, int]:
        """(CPUs, GPUs) each trial asks for in its primary container's limits (a training
        job's nodes take their devices through the trainer, which leases them itself)."""
        from kubelab.pipelines.local.resources import cpu_cores

        if self.template["kind"] == "training":
            return 0, 0

        template = self.experiment["spec"]["trialTemplate"]
        container = (
            katib.primary_container(template["trialSpec"], template["primaryContainerName"]) or {}
        )
        limits = (container.get("resources") or container.get("resourcesPerNode") or {}).get(
            "limits"
        ) or {}
        gpus = sum(int(float(v)) for k, v in limits.items() if k.endswith("/gpu"))
        return math.ceil(cpu_cores(limits.get("cpu"))), gpus

    def check_resources(self) -> None:
        cpus, gpus = self._resources()
        if gpus > len(self._gpus):
            raise KubelabError(
                f"each trial asks for {gpus} GPU(s) but this machine has {len(self._gpus)}; "
                "lower the trial's nvidia.com/gpu limit or tune on the kubernetes backend",
                field="spec.trialTemplate.trialSpec",
            )
        if cpus > (os.cpu_count() or 1):
            raise KubelabError(
                f"each trial asks for {cpus} CPUs but this machine has {os.cpu_count()}",
                field="spec.trialTemplate.trialSpec",
            )

    def _take_resources(self) -> tuple[int, list[str]] | None:
        cpus, gpus = self._resources()
        with self._cpu_lock:
            if cpus > self._cpu_free or gpus > len(self._gpus):
                return None
            self._cpu_free -= cpus
            taken, self._gpus = self._gpus[:gpus], self._gpus[gpus:]
            return cpus, taken

    def _give_back(self, trial: TrialProcess) -> None:
        with self._cpu_lock:
            self._cpu_free += trial.cpus
            self._gpus.extend(trial.gpu_ids)
        trial.cpus, trial.gpu_ids = 0, []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        # Owned by this process from now on, heartbeat included (a resumed experiment
        # was owned by a process that died: its stale mark must not fail it again).
        self.store.adopt(self.job_id)
        self.store.update_run(
            self.job_id, state="running", error=None, finished_at=None, cancel_requested=0
        )
        with _runners_lock:
            _runners[self.job_id] = self
        self.thread = threading.Thread(
            target=self._main, daemon=True, name=f"kubelab-tune-{self.job_id}"
        )
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()
        self.wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as error:  # record it: a job never stays "running" forever
            message = (
                error.message
                if isinstance(error, KubelabError)
                else f"{type(error).__name__}: {error}"
            )
            traceback.print_exc()
            self._kill_active("the experiment failed")
            self._finish("failed", f"the experiment stopped: {message}", reason="ExperimentFailed")
        finally:
            with _runners_lock:
                _runners.pop(self.job_id, None)
            self.finished.set()

    def _run(self) -> None:
        self.emit({"type": "experiment", "state": "running"})
        self._restore()
        if self.template["kind"] in ("function", "script", "experiment"):
            from kubelab.pipelines.local.preload import fork_server

            # Warm before the first trial, not during it, with what trials run in it.
            fork_server().import_modules({"kubelab.workloads.optimizer.trial"})
        cancel = CancelWatch(self.store, self.job_id, self.cancelled)
        while True:
            if cancel.requested():
                self._kill_active("cancelled")
                self._finish("cancelled", "cancelled", reason="ExperimentCancelled")
                return
            self.wake.clear()
            for trial in list(self.active.values()):
                self._follow(trial)
            ended = self._verdict()
            if ended is not None:
                state, message, reason = ended
                self._kill_active(message)
                self._finish(state, message, reason=reason)
                return
            self._launch()
            self.wake.wait(TAIL_S)

    # -- trials ------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        counts = {
            c: 0 for c in (SUCCEEDED, FAILED, EARLY_STOPPED, METRICS_UNAVAILABLE, KILLED, RUNNING)
        }
        for record in self.trials.values():
            counts[record["condition"]] += 1
        return counts

    def _completed(self) -> int:
        c = self._counts()
        return c[SUCCEEDED] + c[FAILED] + c[EARLY_STOPPED] + c[METRICS_UNAVAILABLE]

    def _launch(self) -> None:
        while (
            len(self.active) < self.parallel
            and self._completed() + len(self.active) < self.max_trials
            and not self.suggester.exhausted
        ):
            resources = self._take_resources()
            if resources is None:
                return
            asked = self.suggester.ask()
            rules = medianstop_rules(self.experiment, self.succeeded_series)
            trial_cls = TRIAL_KINDS.get(self.template["kind"], CommandTrial)
            trial = trial_cls(self, self.next_index, asked.number, asked.assignments, rules)
            trial.cpus, trial.gpu_ids = resources
            self.next_index += 1
            self.store.add_task(
                self.job_id,
                trial.name,
                state="running",
                metadata={
                    "parameters": trial.parameters,
                    "assignments": trial.assignments,
                    "number": trial.number,
                    "rules": [r.to_katib() for r in rules],
                },
            )
            self.store.update_task(
                self.job_id,
                trial.name,
                started_at=time.time(),
                attempts=1,
                log_path=str(trial.log_path),
                outputs={"parameters": trial.parameters, "condition": RUNNING},
            )
            self.trials[trial.name] = {"condition": RUNNING, "number": trial.number}
            self.active[trial.name] = trial
            try:
                trial.start()
            except Exception as error:
                message = (
                    error.message
                    if isinstance(error, KubelabError)
                    else f"{type(error).__name__}: {error}"
                )
                trial.note(f"could not start: {message}")
                trial.exit_code = 127
                trial.error = f"could not start: {message}"
                trial.done.set()
            self.emit(
                {
                    "type": "trial",
                    "name": trial.name,
                    "state": "running",
                    "parameters": trial.parameters,
                }
            )

    def _follow(self, trial: TrialProcess) -> None:
        finished = trial.done.is_set()
        points = trial.read(final=finished)
        if points:
            for point in points:
                self.store.add_metrics(
                    self.job_id, {point.name: point.value}, task=trial.name, step=point.step
                )
                if not trial.early_stopped and trial.checker.observe(point.name, point.value):
                    trial.early_stopped = True
                    trial.note(trial.checker.reason or "early stopped")
                    trial.kill()
            observation = trial.collector.observation()
            self.store.update_task(
                self.job_id,
                trial.name,
                outputs={
                    "parameters": trial.parameters,
                    "metrics": observation,
                    "objective": objective_value(self.experiment, observation),
                    "condition": RUNNING,
                },
            )
            self.emit(
                {"type": "metrics", "name": trial.name, "points": [p.__dict__ for p in points]}
            )
        if finished:
            self._complete(trial)

    def _complete(self, trial: TrialProcess) -> None:
        self.active.pop(trial.name, None)
        self._give_back(trial)
        for note in trial.collector.notes[:5]:
            trial.note(note)
        observation = trial.collector.observation()
        value = objective_value(self.experiment, observation)
        metric = self.objective["objectiveMetricName"]
        error = None
        if trial.early_stopped:
            condition = EARLY_STOPPED
            error = trial.checker.reason
        elif trial.exit_code != 0:
            condition = FAILED
            error = trial.error or f"exit code {trial.exit_code} (log: {trial.log_path})"
            if trial.exit_code is not None and trial.exit_code < 0:
                error = (
                    trial.error or f"killed by signal {-trial.exit_code} (log: {trial.log_path})"
                )
            tail = _last_error_line(trial.log_path)
            if tail and not trial.error:
                error = f"{tail} (exit code {trial.exit_code}; log: {trial.log_path})"
        elif value is None:
            condition = METRICS_UNAVAILABLE
            error = (
                f"the objective metric {metric!r} was not reported: print '{metric}=<value>' "
                "(or call kubelab.workloads.report) in the trial"
            )
        else:
            condition = SUCCEEDED
        if condition in (SUCCEEDED, EARLY_STOPPED):
            self.suggester.tell(trial.number, value)
        else:
            self.suggester.tell(trial.number, None)
        if condition == SUCCEEDED:
            self.succeeded_series.append(list(trial.collector.values.get(metric, [])))
        self.trials[trial.name] = {
            "condition": condition,
            "number": trial.number,
            "objective": value,
            "error": error,
        }
        outputs = {
            "parameters": trial.parameters,
            "metrics": observation,
            "objective": value,
            "condition": condition,
        }
        if isinstance(trial, NotebookTrial):
            outputs["run_id"] = trial.run_id
        if isinstance(trial, TrainingTrial):
            outputs["job_id"] = trial.job
        self.store.update_task(
            self.job_id,
            trial.name,
            state=STATE_OF[condition],
            finished_at=time.time(),
            error=error,
            outputs=outputs,
        )
        self._record_best()
        self.emit(
            {
                "type": "trial",
                "name": trial.name,
                "state": STATE_OF[condition],
                "condition": condition,
                "objective": value,
                "parameters": trial.parameters,
                "duration_s": time.time() - trial.started_at,
                "error": error,
            }
        )

    def _kill_active(self, why: str) -> None:
        for trial in list(self.active.values()):
            trial.note(f"stopped: {why}")
            trial.kill()
        for trial in list(self.active.values()):
            trial.done.wait(10)
            trial.read(final=True)
            self.active.pop(trial.name, None)
            self._give_back(trial)
            self.suggester.tell(trial.number, None)
            self.trials[trial.name] = {"condition": KILLED, "number": trial.number}
            observation = trial.collector.observation()
            self.store.update_task(
                self.job_id,
                trial.name,
                state="cancelled",
                finished_at=time.time(),
                error=f"killed: {why}",
                outputs={
                    "parameters": trial.parameters,
                    "metrics": observation,
                    "objective": objective_value(self.experiment, observation),
                    "condition": KILLED,
                },
            )
            self.emit(
                {"type": "trial", "name": trial.name, "state": "cancelled", "condition": KILLED}
            )

    # -- the experiment's condition ----------------------------------------------------

    def _best(self) -> tuple[str, dict[str, Any]] | None:
        maximize = self.objective["type"] == "maximize"
        best: tuple[str, dict[str, Any]] | None = None
        for name, record in self.trials.items():
            value = record.get("objective")
            if value is None or record["condition"] not in (SUCCEEDED, EARLY_STOPPED):
                continue
            if best is None or (
                value > best[1]["objective"] if maximize else value < best[1]["objective"]
            ):
                best = (name, record)
        return best

    def _record_best(self) -> None:
        best = self._best()
        if best is None:
            return
        info = self.store.task_info(self.job_id, best[0])
        observation = info["outputs"].get("metrics") or {}
        self.store.update_run(
            self.job_id,
            metrics=flat_metrics(self.experiment, observation),
            outputs={
                "best_trial": best[0],
                "best_parameters": info["outputs"].get("parameters"),
                "best_objective": best[1]["objective"],
            },
        )

    def _goal_reached(self) -> bool:
        best = self._best()
        if self.goal is None or best is None:
            return False
        value = best[1]["objective"]
        return value >= self.goal if self.objective["type"] == "maximize" else value <= self.goal

    def _verdict(self) -> tuple[str, str, str] | None:
        """(state, message, reason) once the experiment is over, as Katib decides it."""
        if self._goal_reached():
            return (
                "succeeded",
                "Experiment has succeeded because Objective goal has reached",
                "ExperimentGoalReached",
            )
        c = self._counts()
        failed = c[FAILED] + c[METRICS_UNAVAILABLE]
        if self.max_failed is not None and failed and failed >= self.max_failed:
            errors = [
                f"{name}: {r['error']}"
                for name, r in sorted(self.trials.items())
                if r["condition"] in (FAILED, METRICS_UNAVAILABLE)
            ]
            return (
                "failed",
                f"Experiment has failed because max failed count has reached ({failed} failed trials): "
                + "; ".join(errors),
                "ExperimentFailed",
            )
        if self._completed() >= self.max_trials:
            return (
                "succeeded",
                "Experiment has succeeded because max trial count has reached",
                "ExperimentMaxTrialsReached",
            )
        if not self.active and self.suggester.exhausted:
            return (
                "succeeded",
                "Experiment has succeeded because suggestion service has reached the end",
                "ExperimentSuggestionEndReached",
            )
        return None

    def _finish(self, state: str, message: str, *, reason: str) -> None:
        info = self.store.run_info(self.job_id)
        outputs = dict(info.get("outputs") or {})
        outputs.update({"reason": reason, "message": message, "counts": self._counts()})
        self.store.update_run(
            self.job_id,
            state=state,
            finished_at=time.time(),
            error=None if state == "succeeded" else message,
            outputs=outputs,
        )
        self.emit({"type": "experiment", "state": state, "message": message})

    # -- resume ------------------------------------------------------------------------

    def _restore(self) -> None:
        """Rebuild the study and counts from the store (a resumed experiment)."""
        job = self.store.get_run(self.job_id)
        if not job["steps"]:
            return
        recorded: list[tuple[int, dict[str, str], float | None, str]] = []
        for step in job["steps"]:
            info = self.store.task_info(self.job_id, step["name"])
            meta = info["metadata"]
            outputs = info["outputs"]
            condition = outputs.get("condition", FAILED)
            interrupted = (
                step["state"] in ("running", "pending") or step["error"] == INTERRUPTED_ERROR
            )
            if interrupted or condition in (RUNNING, KILLED):
                condition = KILLED
                self.store.update_task(
                    self.job_id,
                    step["name"],
                    state="cancelled",
                    error="interrupted; its parameters run again in a new trial",
                    finished_at=info.get("finished_at") or time.time(),
                    outputs={**outputs, "condition": KILLED},
                )
                outcome = "interrupted"
            else:
                outcome = "done" if condition in (SUCCEEDED, EARLY_STOPPED) else "failed"
            value = outputs.get("objective")
            recorded.append(
                (int(meta.get("number", 0)), meta.get("assignments") or {}, value, outcome)
            )
            self.trials[step["name"]] = {
                "condition": condition,
                "number": meta.get("number"),
                "objective": value,
                "error": step["error"],
            }
            if condition == SUCCEEDED:
                series = self.store.metric_series(self.job_id, step["name"]).get(step["name"], {})
                metric = self.objective["objectiveMetricName"]
                self.succeeded_series.append([p["value"] for p in series.get(metric, [])])
            index = int(re.sub(r"\D", "", step["name"]) or 0)
            self.next_index = max(self.next_index, index + 1)
        recorded.sort(key=lambda r: r[0])
        self.suggester.restore([(a, v, o) for _, a, v, o in recorded])


def _gpu_pool() -> list[str]:
    from kubelab.pipelines.local.resources import gpu_devices

    return gpu_devices()


def _last_error_line(path: Path) -> str | None:
    """The last line of a failed trial's log that reads like an error."""
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    for line in reversed(lines[-50:]):
        if not line.startswith("kubelab: ") and re.match(
            r"^\w*(Error|Exception)\b|^\w+Error:", line.strip()
        ):
            return line.strip()
    return None


def runner_for(job_id: str) -> ExperimentRunner | None:
    with _runners_lock:
        return _runners.get(job_id)

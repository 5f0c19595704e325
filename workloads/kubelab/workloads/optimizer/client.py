"""`OptimizerClient`: the Kubeflow SDK's `kubeflow.optimizer.OptimizerClient`, on kubelab.

    from kubelab.workloads.optimizer import OptimizerClient, Search, Objective, TrialConfig, TPE

    def objective(parameters):
        x, y = parameters["x"], parameters["y"]
        return (x - 2) ** 2 + (y + 1) ** 2            # or print("loss=...") / report(loss=...)

    client = OptimizerClient()                         # local; OptimizerClient("kubernetes")
    name = client.optimize(
        objective,                                     # a function, "train.py", "nb.ipynb"
        search_space={"x": Search.uniform(-5, 5), "y": Search.uniform(-5, 5)},
        objectives=[Objective(metric="loss", direction="minimize")],
        algorithm=TPE(random_state=1),
        trial_config=TrialConfig(num_trials=30, parallel_trials=4),
    )
    client.wait_for_job_status(name)
    client.get_best_results(name)

Jobs are records of the run store, so `list_jobs`, `get_job_logs` and the sidebar see
experiments started from Python, the CLI or REST alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.workloads.optimizer import types as t
from kubelab.workloads.optimizer.experiment import search_space as experiment_space
from kubelab.workloads.optimizer.spec import load_experiment, new_name
from kubelab.workloads.optimizer.templates import function_source
from kubelab.workloads.optimizer.workload import TuningWorkload

_STATUS = {
    "pending": t.CREATED,
    "running": t.RUNNING,
    "succeeded": t.COMPLETE,
    "failed": t.FAILED,
    "cancelled": t.FAILED,
}


class OptimizerClient:
    """Hyperparameter tuning on this machine (`backend="local"`, the default) or as Katib
    Experiments (`backend="kubernetes"`), through kubelab's one `Client`."""

    def __init__(
        self,
        backend: str = "local",
        *,
        namespace: str | None = None,
        home: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        client: Any = None,
    ) -> None:
        from kubelab.client import Client

        self.client = client or Client(backend, home=home, root=root, namespace=namespace)
        self.backend = self.client.default_backend
        self.store = self.client.store
        self.root = self.client.root
        self.workload = TuningWorkload()

    # -- creating ----------------------------------------------------------------------

    def optimize(
        self,
        trial_template: Any,
        *,
        search_space: dict[str, Any],
        objectives: list[t.Objective] | None = None,
        algorithm: t.BaseAlgorithm | None = None,
        trial_config: t.TrialConfig | None = None,
        early_stopping: t.MedianStop | None = None,
        resources_per_trial: dict[str, Any] | None = None,
        metrics_collector: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        """Start an experiment and return its name at once (a live widget in notebooks).

        `trial_template` is a `TrainJobTemplate(trainer=CustomTrainer(func=...))` (each
        trial a training job; the tuned names are passed to `func` as keyword arguments), a
        function taking the dict of parameters (or the tuned names
        as arguments; it reports metrics by returning them, printing `name=value` or
        calling `report()`), a `.py` script (gets `--name=value` arguments) or a tagged
        notebook (each trial is a pipeline run; tuned names are pipeline parameters)."""
        spec: dict[str, Any] = {
            "name": name,
            "template": self._template(trial_template),
            "search_space": search_space,
            "objectives": objectives,
            "algorithm": algorithm,
            "trial_config": trial_config,
            "early_stopping": early_stopping,
            "resources_per_trial": resources_per_trial,
            "metrics_collector": metrics_collector,
        }
        return self.create(spec)

    def create_experiment(self, experiment: dict[str, Any] | str | os.PathLike[str]) -> str:
        """Run a Katib Experiment (a dict, or the path of its YAML): as is on
        Kubernetes, its trials as local processes here."""
        if isinstance(experiment, dict):
            return self.create({"experiment": experiment})
        path = Path(experiment).resolve()
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return self.create({"experiment": load_experiment(path)})
        return self.create({"experiment_path": relative.as_posix()})

    def _template(self, template: Any) -> dict[str, Any]:
        from kubelab.workloads.trainer.types import TrainJobTemplate

        if isinstance(template, TrainJobTemplate):
            from kubelab.workloads.trainer.client import custom_trainer_spec

            try:
                training = custom_trainer_spec(
                    template.trainer, template.runtime, template.initializer
                )
            except ValueError as error:
                raise KubelabError(str(error), field="trial_template") from None
            return {"kind": "training", "training": training}
        if callable(template):
            source, function = function_source(template)
            return {"kind": "function", "source": source, "name": function}
        if isinstance(template, str | os.PathLike):
            path = Path(template)
            relative = os.path.relpath(path.resolve(), self.root)
            if path.suffix == ".ipynb":
                return {"kind": "notebook", "path": relative}
            if path.suffix == ".py":
                return {"kind": "script", "path": relative}
            raise KubelabError(
                f"cannot tune {template}: give a function, a .py script or a .ipynb notebook "
                "(a Katib Experiment YAML goes to create_experiment)",
                field="trial_template",
            )
        raise KubelabError(
            f"cannot tune {template!r}: give a function, a .py script or a .ipynb notebook",
            field="trial_template",
        )

    def create(self, spec: dict[str, Any]) -> str:
        """Start a tuning job from its spec (the REST form, see `spec.py`)."""
        name = spec.get("name") or self._experiment_name(spec) or new_name()
        name = self.client.create_job("tuning", {**spec, "name": name}, name=name)
        self._watch(name)
        return name

    def _experiment_name(self, spec: dict[str, Any]) -> str | None:
        """A Katib Experiment keeps its own name as the job's."""
        experiment = spec.get("experiment")
        if experiment is None and isinstance(spec.get("experiment_path"), str):
            path = (self.root / spec["experiment_path"]).resolve()
            experiment = load_experiment(path) if path.is_file() else None
        if isinstance(experiment, dict):
            return (experiment.get("metadata") or {}).get("name")
        return None

    def _watch(self, name: str) -> None:
        """In a notebook, a live widget on the experiment this process runs."""
        from kubelab.workloads.optimizer.runner import runner_for
        from kubelab.workloads.optimizer.widget import notebook_widget

        runner = runner_for(name)
        if runner is not None:
            widget = notebook_widget(name, self.describe_job)
            if widget is not None:
                runner.on_event = widget
                widget.refresh()

    # -- reading -----------------------------------------------------------------------

    def describe_job(self, name: str) -> dict[str, Any]:
        """The job JSON with its tuning view (what REST and `--output json` show)."""
        job = self.client.get_job(name)
        if job["kind"] != "tuning":
            raise NotFoundError(f"{name!r} is a {job['kind']} job, not a tuning job", job=name)
        return job

    def get_job(self, name: str) -> t.OptimizationJob:
        return to_optimization_job(self.describe_job(name))

    def list_jobs(self) -> list[t.OptimizationJob]:
        return [
            to_optimization_job(self.workload.describe(job, self.store))
            for job in self.client.list_jobs("tuning", limit=1000)
        ]

    def get_best_results(self, name: str) -> t.Result | None:
        job = self.get_job(name)
        if job.best_trial is None:
            return None
        return t.Result(
            job.best_trial.parameters, job.best_trial.metrics, trial=job.best_trial.name
        )

    def get_job_logs(
        self, name: str, trial_name: str | None = None, follow: bool = False
    ) -> Iterator[str]:
        """Log lines of a trial (default: the best trial so far, else the first)."""
        view = self.describe_job(name)
        if trial_name is None:
            best, trials = view["tuning"]["best"], view["tuning"]["trials"]
            if best is None and not trials:
                return
            trial_name = best["trial"] if best else trials[0]["name"]
        pending = ""
        for chunk in self.client.stream_job_logs(view["id"], trial_name, follow_until_done=follow):
            pending += chunk
            *lines, pending = pending.split("\n")
            yield from lines
        if pending:
            yield pending

    def wait_for_job_status(
        self,
        name: str,
        status: set[str] | None = None,
        timeout: int = 3600,
        polling_interval: float = 2,
    ) -> t.OptimizationJob:
        """Wait until the job reaches one of `status` (Created, Running, Complete, Failed)."""
        status = status or {t.COMPLETE}
        allowed = {t.CREATED, t.RUNNING, t.COMPLETE, t.FAILED}
        if not status <= allowed:
            raise ValueError(f"Expected status {status} must be a subset of {allowed}")
        from kubelab.workloads.optimizer.runner import runner_for

        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(name)
            if t.FAILED not in status and job.status == t.FAILED:
                raise RuntimeError(f"OptimizationJob {name} is Failed: {job.message}")
            if job.status in status:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Timeout waiting for OptimizationJob {name} to reach status: {status}"
                )
            wait = min(polling_interval, max(0.0, deadline - time.monotonic()))
            runner = runner_for(name)
            if runner is not None:  # run here: wake as soon as it ends
                runner.finished.wait(wait)
            else:
                time.sleep(wait)

    # -- ending ------------------------------------------------------------------------

    def cancel_job(self, name: str) -> None:
        job = self.client.get_job(name)
        if job["state"] in ("pending", "running"):
            self.client.cancel_job(job["id"])

    def resume_job(self, name: str) -> str:
        """Carry on a local experiment interrupted by a restart (or cancelled)."""
        job_id = self.store.resolve_run_id(name)
        self.workload.resume_local(job_id, self.client.local().context())
        self._watch(job_id)
        return job_id

    def delete_job(self, name: str) -> None:
        self.client.delete_job(name)


def _metrics(observation: dict[str, dict[str, Any]]) -> list[t.Metric]:
    return [
        t.Metric(name, m.get("min"), m.get("max"), m.get("latest"))
        for name, m in observation.items()
    ]


def _timestamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def to_optimization_job(job: dict[str, Any]) -> t.OptimizationJob:
    """The SDK-shaped object of a job JSON with its tuning view."""
    view = job["tuning"]
    experiment = job["spec"]["experiment"]
    spec = experiment["spec"]
    objective = spec["objective"]
    strategies = {s["name"]: s["value"] for s in objective.get("metricStrategies") or []}
    objectives = [
        t.Objective(
            objective["objectiveMetricName"],
            t.Direction(objective["type"]),
            objective.get("goal"),
            strategies.get(objective["objectiveMetricName"]),
        )
    ] + [
        t.Objective(m, t.Direction(objective["type"]), None, strategies.get(m))
        for m in objective.get("additionalMetricNames") or []
    ]
    trials = [
        t.Trial(
            name=x["name"],
            parameters=x["parameters"],
            metrics=_metrics(x["metrics"]),
            status=x["condition"],
            objective=x["objective"],
            duration_s=x["duration_s"],
            error=x["error"],
            series=x["series"],
        )
        for x in view["trials"]
    ]
    best = next((x for x in trials if view["best"] and x.name == view["best"]["trial"]), None)
    early = spec.get("earlyStopping")
    settings = {s["name"]: int(s["value"]) for s in (early or {}).get("algorithmSettings") or []}
    return t.OptimizationJob(
        name=job["name"],
        search_space=experiment_space(experiment),
        objectives=objectives,
        algorithm=t.algorithm_from_katib(spec["algorithm"]),
        trial_config=t.TrialConfig(
            spec["maxTrialCount"],
            spec.get("parallelTrialCount", 3),
            spec.get("maxFailedTrialCount"),
        ),
        trials=trials,
        creation_timestamp=_timestamp(job.get("created_at")),
        status=_STATUS.get(job["state"], t.CREATED),
        early_stopping=t.MedianStop(**settings) if early else None,
        best_trial=best,
        backend=job.get("backend", "local"),
        message=view["message"],
    )

"""`TuningWorkload`: tuning jobs for the client layer (kind "tuning").

Locally an experiment runs on `runner.ExperimentRunner`; on Kubernetes it is the
Katib Experiment of the spec, applied as is (a generated trial template gets the
notebook's image and the user's volume), and its state is read back from the
Experiment and its Trials.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import ConflictError, KubelabError
from kubelab.workloads.base import ClusterContext, LocalContext, Workload
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer import validation
from kubelab.workloads.optimizer.spec import normalize
from kubelab.workloads.optimizer.templates import HOME_MOUNT, Placement, trial_template
from kubelab.workloads.optimizer.view import tuning_view

if TYPE_CHECKING:  # the runner imports optuna: only when an experiment runs here
    from kubelab.client.store import RunStore
    from kubelab.workloads.optimizer.runner import EventCallback, ExperimentRunner

# Experiment conditions (Katib) -> store states.
_EXPERIMENT_STATES = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Running": "running",
    "Restarting": "running",
    "Created": "pending",
}
_TRIAL_STATES = {
    "Succeeded": "succeeded",
    "EarlyStopped": "succeeded",
    "Failed": "failed",
    "MetricsUnavailable": "failed",
    "Killed": "cancelled",
    "Running": "running",
    "Created": "pending",
}


def _with_trial_template(spec: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """The spec's experiment, its generated trial template placed for where it runs."""
    experiment = copy.deepcopy(spec["experiment"])
    template = spec["template"]
    if template["kind"] != "experiment":
        metric = experiment["spec"]["objective"]["objectiveMetricName"]
        generated = trial_template(template, spec["value_kinds"], metric, placement)
        experiment["spec"]["trialTemplate"] = katib.apply_defaults(
            {"spec": {"trialTemplate": generated}}
        )["spec"]["trialTemplate"]
    return experiment


class TuningWorkload(Workload):
    kind = "tuning"

    def validate(self, spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
        return normalize(spec, root)

    # -- on this machine ------------------------------------------------------------

    def local_experiment(self, spec: dict[str, Any], ctx: LocalContext) -> dict[str, Any]:
        """The experiment as this machine runs it, checked for what runs here."""
        experiment = _with_trial_template(
            spec, Placement(spec["template"].get("image"), str(ctx.root))
        )
        return validation.validate(experiment, local=True)

    def start_local(
        self,
        job_id: str,
        spec: dict[str, Any],
        ctx: LocalContext,
        on_event: EventCallback | None = None,
    ) -> ExperimentRunner:
        from kubelab.workloads.optimizer.runner import ExperimentRunner

        experiment = self.local_experiment(spec, ctx)
        runner = ExperimentRunner(
            job_id,
            spec,
            ctx=ctx,
            base_dir=(ctx.root / spec["template"].get("workdir", ".")).resolve(),
            experiment=experiment,
            on_event=on_event or ctx.extra.get("on_event"),
        )
        runner.check_resources()
        runner.start()
        return runner

    def resume_local(
        self, job_id: str, ctx: LocalContext, on_event: EventCallback | None = None
    ) -> ExperimentRunner:
        """Carry on an experiment that a restart (or a cancel) interrupted."""
        job = ctx.store.get_run(job_id)
        if job["kind"] != self.kind:
            raise KubelabError(f"{job_id} is a {job['kind']} job, not a tuning job", job=job_id)
        if job["backend"] != "local":
            raise KubelabError(
                f"{job_id} runs on {job['backend']}; only local experiments resume here", job=job_id
            )
        if job["state"] in ("pending", "running"):
            raise ConflictError(f"tuning job {job['id']} is still {job['state']}", job=job["id"])
        if job["state"] == "succeeded":
            raise ConflictError(f"tuning job {job['id']} has already succeeded", job=job["id"])
        return self.start_local(job["id"], ctx.store.run_info(job["id"])["spec"], ctx, on_event)

    def cancel_local(self, job_id: str, ctx: LocalContext) -> None:
        from kubelab.workloads.optimizer.runner import runner_for

        ctx.store.request_cancel(job_id)
        runner = runner_for(job_id)
        if runner is not None:
            runner.cancel()
            runner.wait(30)

    def describe(self, job: dict[str, Any], store: RunStore) -> dict[str, Any]:
        """The job JSON with its `tuning` view (trials, best, chart): see `view.py`."""
        series = store.metric_series(job["id"])
        outputs = store.run_info(job["id"]).get("outputs") or {}
        return tuning_view(job, series, outputs)

    # -- on Kubernetes -----------------------------------------------------------------

    def manifests(
        self, spec: dict[str, Any], *, name: str, cluster: ClusterContext
    ) -> list[dict[str, Any]]:
        image = spec["template"].get("image") or cluster.image
        if spec["template"]["kind"] != "experiment" and not image:
            raise KubelabError(
                "no image for the trials: run from a kubelab notebook server (its image is "
                "used) or name one (--image)",
                field="image",
            )
        experiment = _with_trial_template(spec, Placement(image, HOME_MOUNT, cluster.pvc))
        metadata = experiment.setdefault("metadata", {})
        metadata["name"] = name
        metadata["namespace"] = cluster.namespace
        labels = {**(metadata.get("labels") or {}), **cluster.labels, "kubelab.io/job": name}
        metadata["labels"] = labels
        return [experiment]

    def cluster_state(
        self,
        objects: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """From the Experiment and its Trials (label katib.kubeflow.org/experiment)."""
        experiment = next((o for o in objects if o.get("kind") == katib.KIND), None)
        if experiment is None:
            return {
                "state": "failed",
                "message": "the Experiment no longer exists",
                "steps": {},
                "metrics": {},
            }
        status = experiment.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
        state, message = "pending", None
        for condition in conditions:  # the last true condition wins, as Katib appends them
            state = _EXPERIMENT_STATES.get(condition.get("type"), state)
            message = condition.get("message") or message
        objective = experiment["spec"]["objective"]
        primary = (experiment["spec"].get("trialTemplate") or {}).get("primaryContainerName")
        pods_of = {
            (p.get("metadata", {}).get("labels") or {}).get(katib.TRIAL_LABEL): p["metadata"][
                "name"
            ]
            for p in pods
        }
        steps: dict[str, dict[str, Any]] = {}
        for trial in (o for o in objects if o.get("kind") == "Trial"):
            name = trial["metadata"]["name"]
            steps[name] = _trial_step(trial, objective)
            if name in pods_of:  # where the backend reads the trial's log
                steps[name].update(pod=pods_of[name], container=primary)
        optimal = status.get("currentOptimalTrial") or {}
        metrics = {
            m["name"]: _number(m.get(_strategy(objective, m["name"])))
            for m in (optimal.get("observation") or {}).get("metrics") or []
        }
        best = None
        if optimal.get("bestTrialName"):
            best = {
                "trial": optimal["bestTrialName"],
                "parameters": {
                    a["name"]: a.get("value") for a in optimal.get("parameterAssignments") or []
                },
                "metrics": {k: v for k, v in metrics.items() if v is not None},
            }
        return {
            "state": state,
            "message": message,
            "steps": steps,
            "metrics": {k: v for k, v in metrics.items() if v is not None},
            "best": best,
        }

    def related_objects(self, name: str) -> list[tuple[str, str, str]]:
        return [(katib.API_VERSION, "Trial", f"{katib.EXPERIMENT_LABEL}={name}")]

    def pod_selector(self, name: str) -> str:
        """Katib labels each trial's pods with their trial's name (not the experiment's)."""
        return katib.TRIAL_LABEL


def _strategy(objective: dict[str, Any], metric: str) -> str:
    for strategy in objective.get("metricStrategies") or []:
        if strategy.get("name") == metric:
            return str(strategy.get("value"))
    return {"minimize": "min", "maximize": "max"}.get(objective.get("type", ""), "latest")


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None  # Katib writes "unavailable"


def _trial_step(trial: dict[str, Any], objective: dict[str, Any]) -> dict[str, Any]:
    """A Katib Trial as a store step: state plus the outputs a local trial records."""
    status = trial.get("status") or {}
    condition = "Created"
    message = None
    for c in status.get("conditions") or []:
        if c.get("status") == "True":
            condition = c.get("type", condition)
            if condition in ("Failed", "MetricsUnavailable", "EarlyStopped"):
                message = c.get("message")
    observation = {
        m["name"]: {k: _number(m.get(k)) for k in ("min", "max", "latest")}
        for m in (status.get("observation") or {}).get("metrics") or []
    }
    metric = objective["objectiveMetricName"]
    value = None
    if metric in observation:
        value = observation[metric].get(_strategy(objective, metric))
    return {
        "state": _TRIAL_STATES.get(condition, "pending"),
        "started_at": status.get("startTime"),
        "finished_at": status.get("completionTime"),
        "message": message,
        "outputs": {
            "parameters": {
                a["name"]: a.get("value")
                for a in (trial.get("spec") or {}).get("parameterAssignments") or []
            },
            "metrics": observation,
            "objective": value,
            "condition": condition,
        },
    }

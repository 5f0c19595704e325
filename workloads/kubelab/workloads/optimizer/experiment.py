"""The Katib Experiment (kubeflow.org/v1beta1) as a plain dict: build, default, trials.

Pure functions, no I/O: the same Experiment is applied to a cluster as is and run
here by the local runner, so both read it through this module. `apply_defaults`
does what Katib's mutating webhook does (`experiment_defaults.go`); checking it is
`validation.py` (Katib's validating webhook); `substitute` makes a trial's run spec.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.optimizer.types import (
    DOUBLE,
    INT,
    UNIFORM,
    BaseAlgorithm,
    MedianStop,
    Objective,
    ParameterSpec,
    TrialConfig,
    parameter_from_katib,
)

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"  # on Trials
TRIAL_LABEL = "katib.kubeflow.org/trial"  # on the trials' pods

# Katib's defaults (experiments/v1beta1/constants.go).
DEFAULT_PARALLEL_TRIALS = 3
JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob", "TrainJob")
KUBEFLOW_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAINJOB_PRIMARY_POD_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"


META_REF = re.compile(r"\$\{trialSpec\.(.+?)\}")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Annotations", "Labels")


# -- building -------------------------------------------------------------------------


def build_experiment(
    name: str,
    *,
    search_space: dict[str, ParameterSpec],
    objectives: list[Objective],
    algorithm: BaseAlgorithm,
    trial_config: TrialConfig,
    trial_template: dict[str, Any],
    early_stopping: MedianStop | None = None,
    metrics_collector: dict[str, Any] | None = None,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Katib Experiment from the SDK-shaped pieces (no defaults applied)."""
    if not objectives:
        objectives = [Objective()]
    first, *others = objectives
    objective: dict[str, Any] = {
        "type": first.direction.value,
        "objectiveMetricName": first.metric,
    }
    if first.goal is not None:
        objective["goal"] = float(first.goal)
    if others:
        objective["additionalMetricNames"] = [o.metric for o in others]
    strategies = [{"name": o.metric, "value": o.strategy} for o in objectives if o.strategy]
    if strategies:
        objective["metricStrategies"] = strategies
    spec: dict[str, Any] = {
        "objective": objective,
        "algorithm": algorithm.to_katib(),
        "parameters": [p.to_katib(n) for n, p in search_space.items()],
        "maxTrialCount": trial_config.num_trials,
        "parallelTrialCount": trial_config.parallel_trials,
        "trialTemplate": trial_template,
    }
    if trial_config.max_failed_trials is not None:
        spec["maxFailedTrialCount"] = trial_config.max_failed_trials
    if early_stopping is not None:
        spec["earlyStopping"] = early_stopping.to_katib()
    if metrics_collector:
        spec["metricsCollectorSpec"] = metrics_collector
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def trial_parameters(names: list[str]) -> list[dict[str, str]]:
    """`trialParameters` that pass each search-space parameter under its own name."""
    return [{"name": n, "reference": n} for n in names]


# -- defaults (Katib's mutating webhook) -------------------------------------------------


def apply_defaults(experiment: dict[str, Any]) -> dict[str, Any]:
    """A copy with Katib's defaults filled in, so local runs read what Katib would."""
    exp = copy.deepcopy(experiment)
    spec = exp.setdefault("spec", {})
    spec.setdefault("parallelTrialCount", DEFAULT_PARALLEL_TRIALS)
    spec.setdefault("resumePolicy", "Never")
    objective = spec.get("objective")
    if isinstance(objective, dict):
        strategies = list(objective.get("metricStrategies") or [])
        named = {s.get("name") for s in strategies}
        by_type = {"minimize": "min", "maximize": "max"}.get(objective.get("type", ""), "latest")
        # Katib's webhook gives additional metrics the objective's strategy too.
        for metric in [
            objective.get("objectiveMetricName"),
            *objective.get("additionalMetricNames", []),
        ]:
            if metric and metric not in named:
                strategies.append({"name": metric, "value": by_type})
        objective["metricStrategies"] = strategies
    template = spec.get("trialTemplate")
    if isinstance(template, dict) and isinstance(template.get("trialSpec"), dict):
        kind = template["trialSpec"].get("kind")
        if kind == "Job":
            template.setdefault("successCondition", JOB_SUCCESS)
            template.setdefault("failureCondition", JOB_FAILURE)
        elif kind in KUBEFLOW_JOB_KINDS:
            trainjob = kind == "TrainJob"
            template.setdefault(
                "successCondition", JOB_SUCCESS if trainjob else KUBEFLOW_JOB_SUCCESS
            )
            template.setdefault("failureCondition", JOB_FAILURE)
            if not template.get("primaryPodLabels"):
                template["primaryPodLabels"] = dict(
                    TRAINJOB_PRIMARY_POD_LABELS if trainjob else KUBEFLOW_PRIMARY_POD_LABELS
                )
    collector_spec = spec.setdefault("metricsCollectorSpec", {})
    collector = collector_spec.setdefault("collector", {"kind": "StdOut"})
    if collector.get("kind") == "File":
        path = collector_spec.setdefault("source", {}).setdefault("fileSystemPath", {})
        path.setdefault("kind", "File")
        path.setdefault("path", DEFAULT_METRICS_FILE)
        path.setdefault("format", "TEXT")
    for parameter in spec.get("parameters") or []:
        if isinstance(parameter, dict) and isinstance(parameter.get("feasibleSpace"), dict):
            parameter["feasibleSpace"].setdefault("distribution", UNIFORM)
    return exp


def grid_combinations(parameters: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every value of each parameter, as Katib's grid (int range by step, float range
    by step (required), the categorical list)."""
    combos: dict[str, list[Any]] = {}
    for i, p in enumerate(parameters):
        spec = parameter_from_katib(p)
        name = p.get("name", "")
        if spec.parameter_type == INT:
            step = int(spec.step or 1)
            combos[name] = list(range(int(spec.min or 0), int(spec.max or 0) + 1, step))
        elif spec.parameter_type == DOUBLE:
            if not spec.step:
                raise KubelabError(
                    f"grid search needs a step for double parameter {name!r}",
                    field=f"spec.parameters[{i}].feasibleSpace.step",
                )
            low, high, step = float(spec.min or 0), float(spec.max or 0), float(spec.step)
            count = math.floor((high - low) / step + 1e-9) + 1
            combos[name] = [round(low + k * step, 12) for k in range(count)]
        else:
            combos[name] = [str(v) for v in spec.values or []]
    return combos


def grid_size(parameters: list[dict[str, Any]]) -> int:
    return len(list(itertools.product(*grid_combinations(parameters).values())))


def placeholder(name: str) -> str:
    """How a trial template refers to a trial parameter: `${trialParameters.NAME}`."""
    return "${trialParameters." + name + "}"


# -- trials -----------------------------------------------------------------------------


def primary_container(trial_spec: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The container that runs the trial, inside `trial_spec` (not a copy).

    A TrainJob's trainer is its container (`node`); a Job or a Kubeflow job names it
    among its pod template's containers (for PyTorchJob, the Master replica first)."""
    kind = trial_spec.get("kind")
    spec = trial_spec.get("spec") or {}
    if kind == "TrainJob":
        trainer = spec.get("trainer")
        return trainer if isinstance(trainer, dict) else None
    templates: list[dict[str, Any]] = []
    if kind == "Job":
        templates = [spec.get("template") or {}]
    else:
        replicas = next((v for k, v in spec.items() if k.endswith("ReplicaSpecs")), {}) or {}
        ordered = sorted(
            replicas.items(), key=lambda kv: (kv[0] not in ("Master", "Launcher"), kv[0])
        )
        templates = [r.get("template") or {} for _, r in ordered]
    for template in templates:
        for container in (template.get("spec") or {}).get("containers") or []:
            if container.get("name") == name:
                return container
    return None


def search_space(experiment: dict[str, Any]) -> dict[str, ParameterSpec]:
    return {p["name"]: parameter_from_katib(p) for p in experiment["spec"].get("parameters") or []}


def substitute(
    experiment: dict[str, Any], assignments: dict[str, str], *, trial_name: str, namespace: str = ""
) -> dict[str, Any]:
    """The trial's run spec: `${trialParameters.x}` replaced as Katib's manifest
    generator does (values JSON-escaped, so a quote cannot break the object)."""
    template = experiment["spec"]["trialTemplate"]
    trial_spec = template["trialSpec"]
    values: dict[str, str] = {}
    for tp in template.get("trialParameters") or []:
        reference = tp["reference"]
        meta = META_REF.fullmatch(reference)
        if meta is None:
            values[tp["name"]] = str(assignments[reference])
            continue
        key, _, index = meta.group(1).partition("[")
        index = index.rstrip("]")
        metadata = trial_spec.get("metadata") or {}
        values[tp["name"]] = {
            "Name": trial_name,
            "Namespace": namespace,
            "Kind": trial_spec.get("kind", ""),
            "APIVersion": trial_spec.get("apiVersion", ""),
            "Labels": (metadata.get("labels") or {}).get(index, ""),
            "Annotations": (metadata.get("annotations") or {}).get(index, ""),
        }[key]
    text = json.dumps(trial_spec)
    for name, value in values.items():
        text = text.replace(placeholder(name), json.dumps(value)[1:-1])
    return json.loads(text)

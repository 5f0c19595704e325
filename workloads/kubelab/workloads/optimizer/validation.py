"""Katib's validating webhook for an Experiment, and what its suggestion services refuse.

`validate` returns the experiment with Katib's defaults (`experiment.apply_defaults`)
or raises one `KubelabError` naming every bad field, including what Katib only finds
out later (min > max, a grid too small), so a bad spec fails before any trial
starts. With `local`, it also refuses what only the local runner cannot run (an
algorithm optuna does not have, a trialSpec kind or a metrics collector that needs
a cluster).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.optimizer.experiment import (
    API_VERSION,
    KIND,
    META_KEYS,
    META_REF,
    apply_defaults,
    grid_combinations,
    placeholder,
    primary_container,
)
from kubelab.workloads.optimizer.types import (
    CATEGORICAL,
    DISCRETE,
    DOUBLE,
    INT,
    LOG_UNIFORM,
    UNIFORM,
)

# What Katib's default configuration serves, and what runs here (optuna, as Katib's
# own optuna suggestion service maps them).
KATIB_ALGORITHMS = (
    "random",
    "tpe",
    "grid",
    "hyperband",
    "bayesianoptimization",
    "cmaes",
    "sobol",
    "multivariate-tpe",
    "enas",
    "darts",
    "pbt",
)
LOCAL_ALGORITHMS = ("random", "grid", "tpe", "multivariate-tpe", "cmaes")
ALGORITHM_SETTINGS = {
    "tpe": ("n_startup_trials", "n_ei_candidates", "random_state"),
    "multivariate-tpe": ("n_startup_trials", "n_ei_candidates", "random_state"),
    "cmaes": ("restart_strategy", "sigma", "random_state"),
    "random": ("random_state",),
    "grid": ("random_state",),
}
LOCAL_KINDS = ("Job", "TrainJob", "PyTorchJob")
METRIC_STRATEGIES = ("min", "max", "latest")
COLLECTOR_KINDS = (
    "StdOut",
    "File",
    "TensorFlowEvent",
    "PrometheusMetric",
    "Custom",
    "Push",
    "None",
)
PARAM_REF = re.compile(r"\$\{trialParameters\.(.+?)\}")
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self, name: str) -> None:
        if not self.items:
            return
        text = "; ".join(f"{path}: {message}" for path, message in self.items)
        raise KubelabError(
            f"experiment {name!r} is not valid: {text}",
            field=self.items[0][0],
            errors=[{"field": p, "message": m} for p, m in self.items],
        )


def validate(experiment: dict[str, Any], *, local: bool) -> dict[str, Any]:
    """The experiment with Katib's defaults, or a `KubelabError` naming every bad field.

    `local` adds what only the local runner needs (an algorithm optuna runs, a
    trialSpec kind and a metrics collector that run on this machine)."""
    errors = _Errors()
    if not isinstance(experiment, dict):
        raise KubelabError("an Experiment must be a mapping (kind: Experiment)", field="")
    if experiment.get("apiVersion") != API_VERSION or experiment.get("kind") != KIND:
        errors.add(
            "apiVersion/kind",
            f"must be {API_VERSION} Experiment, got "
            f"{experiment.get('apiVersion')} {experiment.get('kind')}",
        )
    name = str((experiment.get("metadata") or {}).get("name") or "")
    if not NAME.fullmatch(name) or len(name) > 40:
        errors.add(
            "metadata.name",
            f"{name!r} must be lower case letters, digits and '-', start with a letter, end "
            "with a letter or digit, and be at most 40 characters",
        )
    spec = experiment.get("spec")
    if not isinstance(spec, dict):
        errors.add("spec", "must be specified")
        errors.raise_if_any(name)
    exp = apply_defaults(experiment)
    spec = exp["spec"]
    _check_counts(spec, errors)
    _check_objective(spec.get("objective"), errors)
    _check_parameters(spec, errors)
    _check_algorithm(spec, errors, local=local)
    _check_early_stopping(spec.get("earlyStopping"), errors)
    if spec.get("resumePolicy") not in ("Never", "LongRunning", "FromVolume"):
        errors.add(
            "spec.resumePolicy",
            f"{spec.get('resumePolicy')!r} is not Never, LongRunning or FromVolume",
        )
    _check_trial_template(spec, errors, local=local)
    _check_metrics_collector(spec.get("metricsCollectorSpec") or {}, errors, local=local)
    errors.raise_if_any(name)
    return exp


def _int_field(spec: dict[str, Any], key: str, errors: _Errors) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(f"spec.{key}", f"must be an integer, got {value!r}")
        return None
    return value


def _check_counts(spec: dict[str, Any], errors: _Errors) -> None:
    max_trials = _int_field(spec, "maxTrialCount", errors)
    parallel = _int_field(spec, "parallelTrialCount", errors)
    max_failed = _int_field(spec, "maxFailedTrialCount", errors)
    if max_trials is None:
        errors.add("spec.maxTrialCount", "must be specified (how many trials to run)")
    elif max_trials <= 0:
        errors.add("spec.maxTrialCount", f"must be greater than 0, got {max_trials}")
    if parallel is not None and parallel <= 0:
        errors.add("spec.parallelTrialCount", f"must be greater than 0, got {parallel}")
    if max_failed is not None and max_failed < 0:
        errors.add("spec.maxFailedTrialCount", f"should not be less than 0, got {max_failed}")
    if max_trials and max_trials > 0:
        if max_failed is not None and max_failed > max_trials:
            errors.add(
                "spec.maxFailedTrialCount", "should be less than or equal to spec.maxTrialCount"
            )
        if parallel is not None and parallel > max_trials:
            errors.add(
                "spec.parallelTrialCount", "should be less than or equal to spec.maxTrialCount"
            )


def _check_objective(objective: Any, errors: _Errors) -> None:
    if not isinstance(objective, dict):
        errors.add("spec.objective", "must be specified")
        return
    if objective.get("type") not in ("minimize", "maximize"):
        errors.add(
            "spec.objective.type", f"must be minimize or maximize, got {objective.get('type')!r}"
        )
    metric = objective.get("objectiveMetricName")
    if not metric:
        errors.add("spec.objective.objectiveMetricName", "must be specified")
    if metric and metric in (objective.get("additionalMetricNames") or []):
        errors.add(
            "spec.objective.additionalMetricNames",
            "should not contain spec.objective.objectiveMetricName",
        )
    goal = objective.get("goal")
    if goal is not None and (isinstance(goal, bool) or not isinstance(goal, int | float)):
        errors.add("spec.objective.goal", f"must be a number, got {goal!r}")
    for i, strategy in enumerate(objective.get("metricStrategies") or []):
        if strategy.get("value") not in METRIC_STRATEGIES:
            errors.add(
                f"spec.objective.metricStrategies[{i}].value",
                f"{strategy.get('value')!r} is not one of {', '.join(METRIC_STRATEGIES)}",
            )


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _check_parameters(spec: dict[str, Any], errors: _Errors) -> None:
    parameters = spec.get("parameters")
    if not parameters:
        errors.add("spec.parameters", "the search space is empty: declare at least one parameter")
        return
    seen: set[str] = set()
    for i, p in enumerate(parameters):
        path = f"spec.parameters[{i}]"
        if not isinstance(p, dict):
            errors.add(path, "must be a mapping with name, parameterType and feasibleSpace")
            continue
        name = p.get("name")
        if not name:
            errors.add(f"{path}.name", "must be specified")
        elif name in seen:
            errors.add(f"{path}.name", f"parameter {name!r} is declared twice")
        seen.add(name or "")
        label = f"{path} ({name})" if name else path
        kind = p.get("parameterType")
        if kind not in (DOUBLE, INT, CATEGORICAL, DISCRETE):
            errors.add(
                f"{label}.parameterType", f"{kind!r} is not double, int, categorical or discrete"
            )
            continue
        space = p.get("feasibleSpace")
        if not isinstance(space, dict) or not any(
            space.get(k) not in (None, "", []) for k in space
        ):
            errors.add(f"{label}.feasibleSpace", "must be specified")
            continue
        distribution = space.get("distribution")
        if distribution not in (UNIFORM, LOG_UNIFORM, "normal", "logNormal", ""):
            errors.add(f"{label}.feasibleSpace.distribution", f"{distribution!r} is not supported")
        if kind in (DOUBLE, INT):
            if space.get("list"):
                errors.add(
                    f"{label}.feasibleSpace.list", f"is not supported for parameterType {kind}"
                )
            low, high = _number(space.get("min")), _number(space.get("max"))
            if low is None or high is None:
                errors.add(
                    f"{label}.feasibleSpace",
                    f"min and max must be numbers for parameterType {kind}",
                )
                continue
            if low > high:
                errors.add(
                    f"{label}.feasibleSpace",
                    f"min {space.get('min')} is greater than max {space.get('max')}",
                )
            if kind == INT and not (low.is_integer() and high.is_integer()):
                errors.add(
                    f"{label}.feasibleSpace", "min and max must be integers for parameterType int"
                )
            if distribution == LOG_UNIFORM and low <= 0:
                errors.add(
                    f"{label}.feasibleSpace.min",
                    "must be greater than 0 for a logUniform distribution",
                )
            step = space.get("step")
            if step not in (None, "") and not (_number(step) or 0) > 0:
                errors.add(
                    f"{label}.feasibleSpace.step", f"must be a positive number, got {step!r}"
                )
        else:
            if any(space.get(k) not in (None, "") for k in ("min", "max", "step")):
                errors.add(
                    f"{label}.feasibleSpace",
                    f"min, max and step are not supported for parameterType {kind}",
                )
            if not space.get("list"):
                errors.add(f"{label}.feasibleSpace.list", "must list at least one value")


def _check_algorithm(spec: dict[str, Any], errors: _Errors, *, local: bool) -> None:
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict) or not algorithm.get("algorithmName"):
        errors.add("spec.algorithm.algorithmName", "must be specified")
        return
    name = algorithm["algorithmName"]
    if name not in KATIB_ALGORITHMS:
        errors.add(
            "spec.algorithm.algorithmName",
            f"unknown algorithm {name!r}; algorithms: {', '.join(LOCAL_ALGORITHMS)}"
            + (
                ""
                if local
                else f" (on Katib also: {', '.join(sorted(set(KATIB_ALGORITHMS) - set(LOCAL_ALGORITHMS)))})"
            ),
        )
        return
    if name not in LOCAL_ALGORITHMS:
        if local:
            errors.add(
                "spec.algorithm.algorithmName",
                f"{name!r} runs only on Katib (--backend kubernetes); locally use one of "
                f"{', '.join(LOCAL_ALGORITHMS)}",
            )
        return
    allowed = ALGORITHM_SETTINGS[name]
    for i, setting in enumerate(algorithm.get("algorithmSettings") or []):
        path = f"spec.algorithm.algorithmSettings[{i}]"
        key, value = setting.get("name"), setting.get("value")
        if key not in allowed:
            errors.add(
                f"{path}.name",
                f"unknown setting {key!r} for algorithm {name}; settings: {', '.join(allowed)}",
            )
        elif key == "restart_strategy":
            if value not in ("ipop", "None", "none"):
                errors.add(f"{path}.value", f"restart_strategy {value!r} is not ipop or none")
        elif key == "sigma":
            if (_number(value) or -1) < 0:
                errors.add(f"{path}.value", f"sigma must be a number >= 0, got {value!r}")
        else:
            try:
                ok = int(str(value)) >= 0
            except ValueError:
                ok = False
            if not ok:
                errors.add(f"{path}.value", f"{key} must be an integer >= 0, got {value!r}")
    parameters = [p for p in spec.get("parameters") or [] if isinstance(p, dict)]
    if name == "cmaes":
        numeric = [p for p in parameters if p.get("parameterType") in (DOUBLE, INT)]
        if len(numeric) < 2:
            errors.add(
                "spec.algorithm.algorithmName", "cmaes needs two or more double/int parameters"
            )
    if name == "grid" and parameters:
        try:
            combos = grid_combinations(parameters)
        except KubelabError as error:
            errors.add(error.details.get("field", "spec.parameters"), error.message)
            return
        total = math.prod(len(v) for v in combos.values())
        max_trials = spec.get("maxTrialCount")
        if isinstance(max_trials, int) and max_trials > total:
            errors.add(
                "spec.maxTrialCount", f"{max_trials} is more than the {total} grid combinations"
            )


def _check_early_stopping(early: Any, errors: _Errors) -> None:
    if early is None:
        return
    if not isinstance(early, dict) or early.get("algorithmName") != "medianstop":
        name = early.get("algorithmName") if isinstance(early, dict) else early
        errors.add(
            "spec.earlyStopping.algorithmName",
            f"unknown early stopping algorithm {name!r}; algorithms: medianstop",
        )
        return
    for i, setting in enumerate(early.get("algorithmSettings") or []):
        path = f"spec.earlyStopping.algorithmSettings[{i}]"
        key = setting.get("name")
        try:
            value = int(str(setting.get("value")))
        except ValueError:
            errors.add(f"{path}.value", f"{key} must be an integer, got {setting.get('value')!r}")
            continue
        if key == "min_trials_required" and value <= 0:
            errors.add(f"{path}.value", "min_trials_required must be greater than zero")
        elif key == "start_step" and value < 1:
            errors.add(f"{path}.value", "start_step must be at least one")
        elif key not in ("min_trials_required", "start_step"):
            errors.add(f"{path}.name", f"unknown setting {key!r} for medianstop")


def _check_trial_template(spec: dict[str, Any], errors: _Errors, *, local: bool) -> None:
    template = spec.get("trialTemplate")
    path = "spec.trialTemplate"
    if not isinstance(template, dict):
        errors.add(path, "must be specified")
        return
    if not template.get("primaryContainerName"):
        errors.add(f"{path}.primaryContainerName", "must be specified")
    trial_spec, config_map = template.get("trialSpec"), template.get("configMap")
    if trial_spec is None and config_map is None:
        errors.add(
            f"{path}.trialSpec",
            "spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must be specified",
        )
        return
    if trial_spec is not None and config_map is not None:
        errors.add(path, "only one of trialSpec and configMap can be specified")
        return
    if config_map is not None:
        if local:
            errors.add(
                f"{path}.configMap",
                "a trial template from a ConfigMap runs only on Katib; inline it as trialSpec",
            )
        return
    if not isinstance(trial_spec, dict):
        errors.add(f"{path}.trialSpec", "must be a Kubernetes object")
        return
    if not template.get("successCondition") or not template.get("failureCondition"):
        errors.add(path, "successCondition and failureCondition must be specified for this kind")
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        errors.add(f"{path}.trialSpec", "apiVersion and kind must be specified")
    meta = trial_spec.get("metadata") or {}
    if meta.get("name") or meta.get("namespace"):
        errors.add(
            f"{path}.trialSpec.metadata", "name and namespace must be omitted (Katib sets them)"
        )
    parameters = {p.get("name") for p in spec.get("parameters") or [] if isinstance(p, dict)}
    trial_params = template.get("trialParameters")
    if trial_params is None:
        errors.add(f"{path}.trialParameters", "must be specified")
        return
    text = json.dumps(trial_spec)
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(trial_params):
        tp_path = f"{path}.trialParameters[{i}]"
        name, reference = tp.get("name"), tp.get("reference")
        if not name or not reference or "{" in name or "}" in name:
            errors.add(
                tp_path, "name and reference must be specified and name must not contain '{' or '}'"
            )
            continue
        if name in names:
            errors.add(f"{tp_path}.name", f"{name!r} is declared twice")
            continue
        if reference in references:
            errors.add(f"{tp_path}.reference", f"{reference!r} is referenced twice")
            continue
        names.add(name)
        references.add(reference)
        if not _is_meta(reference) and reference not in parameters:
            errors.add(
                f"{tp_path}.reference",
                f"{reference!r} is not a parameter in spec.parameters ({', '.join(sorted(p for p in parameters if p)) or 'none'})",
            )
        if placeholder(name) not in text:
            errors.add(
                f"{tp_path}.name",
                f"${{trialParameters.{name}}} is not used in spec.trialTemplate.trialSpec",
            )
    undeclared = sorted(set(PARAM_REF.findall(text)) - names)
    if undeclared:
        errors.add(
            f"{path}.trialSpec",
            "uses "
            + ", ".join(f"${{trialParameters.{u}}}" for u in undeclared)
            + " but spec.trialTemplate.trialParameters does not declare "
            + ("it" if len(undeclared) == 1 else "them"),
        )
    if local:
        kind = trial_spec.get("kind")
        if kind not in LOCAL_KINDS:
            errors.add(
                f"{path}.trialSpec.kind",
                f"{kind!r} cannot run locally; kinds: {', '.join(LOCAL_KINDS)}",
            )
            return
        container = primary_container(trial_spec, template.get("primaryContainerName", ""))
        if container is None:
            errors.add(
                f"{path}.primaryContainerName",
                f"no container {template.get('primaryContainerName')!r} in the {kind}",
            )
        elif not (container.get("command") or container.get("args")):
            errors.add(
                f"{path}.trialSpec", "the primary container has no command or args to run locally"
            )


def _is_meta(reference: str) -> bool:
    match = META_REF.fullmatch(reference)
    if not match:
        return False
    key = match.group(1).split("[", 1)[0]
    return key in META_KEYS


def _check_metrics_collector(mc: dict[str, Any], errors: _Errors, *, local: bool) -> None:
    path = "spec.metricsCollectorSpec"
    kind = (mc.get("collector") or {}).get("kind")
    if kind not in COLLECTOR_KINDS:
        errors.add(f"{path}.collector.kind", f"{kind!r} is not one of {', '.join(COLLECTOR_KINDS)}")
        return
    source = mc.get("source") or {}
    if kind == "File":
        fs = source.get("fileSystemPath") or {}
        if fs.get("kind") != "File" or not str(fs.get("path", "")).startswith("/"):
            errors.add(
                f"{path}.source.fileSystemPath.path",
                "an absolute file path is required for the File collector",
            )
        if fs.get("format") not in ("TEXT", "JSON"):
            errors.add(f"{path}.source.fileSystemPath.format", "must be TEXT or JSON")
        if fs.get("format") == "JSON" and (source.get("filter") or {}).get("metricsFormat"):
            errors.add(f"{path}.source.filter", "must be empty when the metrics file is JSON")
    elif local and kind != "StdOut":
        errors.add(
            f"{path}.collector.kind",
            f"the {kind} collector runs only on Katib; locally metrics come from StdOut or File",
        )
    for i, pattern in enumerate((source.get("filter") or {}).get("metricsFormat") or []):
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            errors.add(f"{path}.source.filter.metricsFormat[{i}]", f"invalid filter: {error}")
            continue
        if compiled.groups < 2:
            errors.add(
                f"{path}.source.filter.metricsFormat[{i}]", "two groups are required (name, value)"
            )

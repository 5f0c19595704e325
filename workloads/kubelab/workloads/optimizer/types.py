"""What a data scientist writes to tune: the Kubeflow SDK's `kubeflow.optimizer` names.

`Search.*` gives a Katib `ParameterSpec`, algorithms and `MedianStop` give Katib's
`AlgorithmSpec`/`EarlyStoppingSpec` (the same setting names Katib's suggestion
services read), and the results (`OptimizationJob`, `Trial`, `Metric`, `Result`) read
the same whether the trials ran here or as a Katib Experiment. Everything converts to
and from plain Katib dicts, so a job spec is JSON all the way down.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from kubelab.pipelines.errors import KubelabError

# Katib's parameter types and distributions (experiments/v1beta1).
DOUBLE, INT, CATEGORICAL, DISCRETE = "double", "int", "categorical", "discrete"
UNIFORM, LOG_UNIFORM = "uniform", "logUniform"

# The SDK's OptimizationJob statuses.
CREATED, RUNNING, COMPLETE, FAILED = "Created", "Running", "Complete", "Failed"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


def _is_literal(value: Any) -> bool:
    """Numbers and booleans round-trip through Katib's strings (`str` -> `literal_eval`)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, bool | int)


@dataclass
class ParameterSpec:
    """One search-space dimension, as Katib's `ParameterSpec` (`parameterType`,
    `feasibleSpace`). `values` keeps the Python values of a choice, which Katib only
    knows as strings, so trials get `3` and `True` back rather than `"3"`."""

    parameter_type: str
    min: float | int | None = None
    max: float | int | None = None
    step: float | int | None = None
    distribution: str | None = None
    values: list[Any] | None = None

    def to_katib(self, name: str) -> dict[str, Any]:
        space: dict[str, Any] = {}
        if self.values is not None:
            space["list"] = [str(v) for v in self.values]
        for key in ("min", "max", "step"):
            value = getattr(self, key)
            if value is not None:
                space[key] = str(value)
        if self.distribution:
            space["distribution"] = self.distribution
        return {"name": name, "parameterType": self.parameter_type, "feasibleSpace": space}

    @property
    def value_kind(self) -> str:
        """How a trial turns Katib's string assignment back into a value."""
        if self.parameter_type == DOUBLE:
            return "double"
        if self.parameter_type == INT:
            return "int"
        if self.values and all(_is_literal(v) and not isinstance(v, bool) for v in self.values):
            return "number"
        if self.values and all(_is_literal(v) for v in self.values):
            return "literal"
        return "str"


def cast_value(kind: str, text: str) -> Any:
    """A Katib assignment (always a string) as the value a trial function receives."""
    if kind == "double":
        return float(text)
    if kind == "int":
        return int(float(text))
    if kind in ("number", "literal"):
        return ast.literal_eval(text)
    return text


class Search:
    """Search-space helpers, as `kubeflow.optimizer.Search`."""

    @staticmethod
    def uniform(min: float, max: float, step: float | None = None) -> ParameterSpec:
        """A float in [min, max]; with `step`, on a grid (GridSearch needs a step)."""
        return ParameterSpec(DOUBLE, min=min, max=max, step=step, distribution=UNIFORM)

    @staticmethod
    def loguniform(min: float, max: float) -> ParameterSpec:
        """A float in [min, max], uniform in log space (learning rates)."""
        return ParameterSpec(DOUBLE, min=min, max=max, distribution=LOG_UNIFORM)

    log_uniform = loguniform  # the SDK's earlier spelling

    @staticmethod
    def randint(min: int, max: int, step: int | None = None) -> ParameterSpec:
        """An integer in [min, max], both ends included (Katib's `int` parameter)."""
        return ParameterSpec(INT, min=int(min), max=int(max), step=step, distribution=UNIFORM)

    @staticmethod
    def choice(values: list[Any]) -> ParameterSpec:
        """One of `values`; numbers and booleans reach the trial with their type."""
        return ParameterSpec(CATEGORICAL, values=list(values))


def parameter_from_katib(spec: dict[str, Any]) -> ParameterSpec:
    """A `ParameterSpec` from Katib's dict form (what an Experiment YAML holds)."""
    space = spec.get("feasibleSpace") or {}

    def number(key: str) -> float | int | None:
        text = space.get(key)
        if text in (None, ""):
            return None
        value = float(text)
        return int(value) if spec.get("parameterType") == INT and value.is_integer() else value

    values = space.get("list")
    return ParameterSpec(
        parameter_type=spec.get("parameterType", ""),
        min=number("min"),
        max=number("max"),
        step=number("step"),
        distribution=space.get("distribution") or None,
        values=list(values) if values is not None else None,
    )


# -- objectives and trial settings -----------------------------------------------------


@dataclass
class Objective:
    """The metric to optimize (the first objective) or to record (the others).

    `goal` ends the experiment as soon as a trial reaches it; `strategy` is Katib's
    metric strategy (min/max/latest: which reported value counts for the trial;
    default min when minimizing, max when maximizing)."""

    metric: str = "loss"
    direction: Direction = Direction.MINIMIZE
    goal: float | None = None
    strategy: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.direction, str):
            try:
                self.direction = Direction(self.direction)
            except ValueError:
                raise KubelabError(
                    f"objective direction must be 'minimize' or 'maximize', got {self.direction!r}",
                    field="objective.direction",
                ) from None


@dataclass
class TrialConfig:
    """How many trials, how many at once, how many failures end the experiment."""

    num_trials: int = 10
    parallel_trials: int = 1
    max_failed_trials: int | None = None


# -- algorithms (Katib's names and settings) ----------------------------------------------


class BaseAlgorithm:
    """A search algorithm; its dataclass fields are Katib's algorithm settings."""

    algorithm_name: ClassVar[str]

    def to_katib(self) -> dict[str, Any]:
        settings = [
            {"name": f.name, "value": str(getattr(self, f.name))}
            for f in fields(self)  # type: ignore[arg-type]
            if getattr(self, f.name) is not None and f.name != "multivariate"
        ]
        spec: dict[str, Any] = {"algorithmName": self.katib_name}
        if settings:
            spec["algorithmSettings"] = settings
        return spec

    @property
    def katib_name(self) -> str:
        return self.algorithm_name


@dataclass
class RandomSearch(BaseAlgorithm):
    random_state: int | None = None
    algorithm_name: ClassVar[str] = "random"


@dataclass
class GridSearch(BaseAlgorithm):
    """Every combination once: choices, integer ranges, and float ranges with a step."""

    random_state: int | None = None
    algorithm_name: ClassVar[str] = "grid"


@dataclass
class TPE(BaseAlgorithm):
    """Tree-structured Parzen Estimator; `multivariate=True` is Katib's multivariate-tpe."""

    n_startup_trials: int | None = None
    n_ei_candidates: int | None = None
    random_state: int | None = None
    multivariate: bool = False
    algorithm_name: ClassVar[str] = "tpe"

    @property
    def katib_name(self) -> str:
        return "multivariate-tpe" if self.multivariate else "tpe"


@dataclass
class CMAES(BaseAlgorithm):
    """CMA-ES, for two or more numeric parameters."""

    sigma: float | None = None
    restart_strategy: str | None = None
    random_state: int | None = None
    algorithm_name: ClassVar[str] = "cmaes"


@dataclass
class KatibAlgorithm(BaseAlgorithm):
    """Another algorithm Katib serves, by its name and settings (e.g. `bayesianoptimization`
    or `hyperband` on a cluster; refused for local runs, which use optuna's samplers)."""

    name: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    algorithm_name: ClassVar[str] = ""

    @property
    def katib_name(self) -> str:
        return self.name

    def to_katib(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"algorithmName": self.name}
        if self.settings:
            spec["algorithmSettings"] = [
                {"name": k, "value": str(v)} for k, v in self.settings.items()
            ]
        return spec


ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "random": RandomSearch,
    "grid": GridSearch,
    "tpe": TPE,
    "multivariate-tpe": TPE,
    "cmaes": CMAES,
}


def algorithm_from_katib(spec: dict[str, Any]) -> BaseAlgorithm:
    """The algorithm object for a Katib AlgorithmSpec."""
    name = spec.get("algorithmName", "")
    cls = ALGORITHMS.get(name)
    if cls is None:
        settings = {s["name"]: s["value"] for s in spec.get("algorithmSettings") or []}
        return KatibAlgorithm(name=name, settings=settings)
    known = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for setting in spec.get("algorithmSettings") or []:
        key = {"sigma0": "sigma", "seed": "random_state"}.get(setting["name"], setting["name"])
        if key not in known:
            continue
        text = setting["value"]
        kwargs[key] = (
            float(text) if key == "sigma" else text if key == "restart_strategy" else int(text)
        )
    if name == "multivariate-tpe":
        kwargs["multivariate"] = True
    return cls(**kwargs)


@dataclass
class MedianStop:
    """Katib's median stopping rule: once `min_trials_required` trials have succeeded,
    a trial whose best objective after `start_step` reports is worse than the mean of
    the succeeded trials' first `start_step` reports is stopped (EarlyStopped)."""

    min_trials_required: int = 3
    start_step: int = 4

    def to_katib(self) -> dict[str, Any]:
        return {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": str(self.min_trials_required)},
                {"name": "start_step", "value": str(self.start_step)},
            ],
        }


# -- results -----------------------------------------------------------------------------


@dataclass
class Metric:
    """A metric of a trial as Katib observes it: min, max and latest of what it reported."""

    name: str
    min: float | None = None
    max: float | None = None
    latest: float | None = None


@dataclass
class Trial:
    """One trial: its parameters, its metrics, and how it ended.

    `status` is Katib's trial condition (Created, Running, Succeeded, Failed,
    EarlyStopped, MetricsUnavailable, Killed); `objective` the value that counts (by
    the objective's metric strategy); `series` every reported value per metric."""

    name: str
    parameters: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    status: str = "Created"
    objective: float | None = None
    duration_s: float | None = None
    error: str | None = None
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Result:
    """The best trial's parameters and metrics (`get_best_results`)."""

    parameters: dict[str, Any]
    metrics: list[Metric]
    trial: str | None = None


@dataclass
class OptimizationJob:
    """An experiment: what it searches, how, and its trials so far."""

    name: str
    search_space: dict[str, ParameterSpec]
    objectives: list[Objective]
    algorithm: BaseAlgorithm
    trial_config: TrialConfig
    trials: list[Trial]
    creation_timestamp: datetime | None
    status: str = CREATED
    early_stopping: MedianStop | None = None
    best_trial: Trial | None = None
    backend: str = "local"
    message: str | None = None

"""Suggestions for the local runner: optuna ask/tell, mapped as Katib's optuna service.

Katib's `pkg/suggestion/v1beta1/optuna` turns an Experiment into an optuna study:
the same sampler per algorithm (tpe and multivariate-tpe with `constant_liar`, so
parallel trials spread out; cmaes; random; grid over Katib's combinations), the
same settings (`random_state` is the seed, `sigma` is cmaes' `sigma0`) and the same
distribution per parameter (log-uniform floats clipped at 1e-10, log-uniform ints at
1, categorical values as strings). This class does the same in process, so a local
experiment asks optuna what a Katib experiment would, and tells it the objective
value of each trial by the objective's metric strategy.

Trials are numbered by optuna in ask order and recorded with that number, so a
study can be rebuilt from the store after a restart (`restore`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from kubelab.workloads.optimizer.experiment import grid_combinations
from kubelab.workloads.optimizer.types import (
    CATEGORICAL,
    DISCRETE,
    DOUBLE,
    INT,
    LOG_UNIFORM,
    parameter_from_katib,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Katib's OptimizerConfiguration: setting name -> (optuna keyword, converter).
_SETTINGS: dict[str, dict[str, tuple[str, Any]]] = {
    "tpe": {
        "n_startup_trials": ("n_startup_trials", int),
        "n_ei_candidates": ("n_ei_candidates", int),
        "random_state": ("seed", int),
    },
    "cmaes": {
        "restart_strategy": ("restart_strategy", lambda v: None if v in ("None", "none") else v),
        "sigma": ("sigma0", float),
        "random_state": ("seed", int),
    },
    "random": {"random_state": ("seed", int)},
    "grid": {"random_state": ("seed", int)},
}
_SETTINGS["multivariate-tpe"] = _SETTINGS["tpe"]


@dataclass
class Asked:
    number: int
    assignments: dict[str, str]  # Katib's parameterAssignments: name -> string value


def distributions(parameters: list[dict[str, Any]]) -> dict[str, BaseDistribution]:
    """optuna distributions for Katib parameters, as Katib's optuna service builds them."""
    space: dict[str, BaseDistribution] = {}
    for p in parameters:
        spec = parameter_from_katib(p)
        log = spec.distribution == LOG_UNIFORM
        if spec.parameter_type == INT:
            low, high = int(spec.min or 0), int(spec.max or 0)
            if log:
                space[p["name"]] = IntDistribution(max(1, low), high, log=True, step=1)
            else:
                space[p["name"]] = IntDistribution(low, high, step=int(spec.step or 1))
        elif spec.parameter_type == DOUBLE:
            low, high = float(spec.min or 0), float(spec.max or 0)
            if log:
                space[p["name"]] = FloatDistribution(max(1e-10, low), high, log=True)
            else:
                space[p["name"]] = FloatDistribution(
                    low, high, step=float(spec.step) if spec.step else None
                )
        elif spec.parameter_type in (CATEGORICAL, DISCRETE):
            space[p["name"]] = CategoricalDistribution([str(v) for v in spec.values or []])
    return space


def _assignment(value: Any) -> str:
    """Katib's string form of a suggested value (what `str()` gives in its service)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


class Suggester:
    """One optuna study for one experiment: `ask()` the next assignments, `tell()` results."""

    def __init__(self, experiment: dict[str, Any], *, fallback_seed: int | None = None) -> None:
        spec = experiment["spec"]
        self.algorithm = spec["algorithm"]["algorithmName"]
        self.parameters = list(spec["parameters"])
        self.space = distributions(self.parameters)
        config: dict[str, Any] = {}
        table = _SETTINGS[self.algorithm]
        for setting in spec["algorithm"].get("algorithmSettings") or []:
            keyword, convert = table[setting["name"]]
            config[keyword] = convert(setting["value"])
        if self.algorithm == "grid":
            # A fixed shuffle, so that a resumed study walks the same grid order.
            config.setdefault("seed", fallback_seed)
        direction = spec["objective"]["type"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(sampler=self._sampler(config), direction=direction)
        self.grid_total = (
            math.prod(len(v) for v in grid_combinations(self.parameters).values())
            if self.algorithm == "grid"
            else None
        )

    def _sampler(self, config: dict[str, Any]) -> optuna.samplers.BaseSampler:
        if self.algorithm in ("tpe", "multivariate-tpe"):
            return optuna.samplers.TPESampler(
                constant_liar=True, multivariate=self.algorithm == "multivariate-tpe", **config
            )
        if self.algorithm == "cmaes":
            return optuna.samplers.CmaEsSampler(**config)
        if self.algorithm == "random":
            return optuna.samplers.RandomSampler(**config)
        return optuna.samplers.GridSampler(grid_combinations(self.parameters), **config)

    @property
    def exhausted(self) -> bool:
        """Grid search has handed out every combination (Katib's "suggestion end")."""
        if self.grid_total is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return False
        return len({tuple(sorted(t.params.items())) for t in trials if t.params}) >= self.grid_total

    def ask(self) -> Asked:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask(fixed_distributions=self.space)
        return Asked(trial.number, {k: _assignment(v) for k, v in trial.params.items()})

    def tell(self, number: int, value: float | None) -> None:
        """The objective value of a finished trial; None marks it failed (never retried)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if value is None or not math.isfinite(value):
                    self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                else:
                    self.study.tell(number, value, skip_if_finished=True)
            except RuntimeError:
                # GridSampler calls study.stop() after the last combination, which optuna
                # allows only inside study.optimize; the result is stored all the same.
                if self.algorithm != "grid":
                    raise

    def restore(self, trials: list[tuple[dict[str, str], float | None, str]]) -> None:
        """Rebuild the study from recorded trials, in ask order: (assignments, value,
        outcome) with outcome "done" (value told), "failed", or "interrupted" (its
        assignments are asked again first, as optuna's enqueued trials)."""
        for assignments, value, outcome in trials:
            params = {k: self._internal(k, v) for k, v in assignments.items() if k in self.space}
            dists = {k: self.space[k] for k in params}
            done = outcome == "done" and value is not None and math.isfinite(value)
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    value=value if done else None,
                    state=TrialState.COMPLETE if done else TrialState.FAIL,
                )
            )
            if outcome == "interrupted":
                self.study.enqueue_trial(params, skip_if_exists=False)

    def _internal(self, name: str, text: str) -> Any:
        dist = self.space[name]
        if isinstance(dist, IntDistribution):
            return int(float(text))
        if isinstance(dist, FloatDistribution):
            return float(text)
        return text

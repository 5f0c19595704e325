"""Katib's median stopping, for local trials.

As Katib's medianstop service: once `min_trials_required` trials have succeeded,
each new trial gets a rule whose value is the mean, over the succeeded trials, of
the average of their first `start_step` objective values (Katib calls it the median;
its code takes the mean, and so do we, so both backends stop the same trials). The
rule compares "greater" when minimizing and "less" when maximizing.

As Katib's metrics collector applies rules: the objective's best value so far is
compared when the trial reports the objective for the `start_step`-th time; a rule
that holds is dropped, and a trial whose rules are all dropped is EarlyStopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StopRule:
    name: str
    value: float
    comparison: str  # "less" | "greater" | "equal"
    start_step: int

    def to_katib(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": repr(self.value),
            "comparison": self.comparison,
            "startStep": self.start_step,
        }


def medianstop_settings(experiment: dict[str, Any]) -> tuple[int, int] | None:
    """(min_trials_required, start_step), or None without early stopping."""
    early = experiment["spec"].get("earlyStopping")
    if not early:
        return None
    settings = {s["name"]: int(s["value"]) for s in early.get("algorithmSettings") or []}
    return settings.get("min_trials_required", 3), settings.get("start_step", 4)


def medianstop_rules(experiment: dict[str, Any], succeeded: list[list[float]]) -> list[StopRule]:
    """Rules for a trial created now, from the objective series of succeeded trials."""
    settings = medianstop_settings(experiment)
    if settings is None:
        return []
    min_trials, start_step = settings
    averages = [sum(s[:start_step]) / len(s[:start_step]) for s in succeeded if s]
    if len(averages) < min_trials:
        return []
    objective = experiment["spec"]["objective"]
    comparison = "less" if objective["type"] == "maximize" else "greater"
    return [
        StopRule(
            objective["objectiveMetricName"], sum(averages) / len(averages), comparison, start_step
        )
    ]


class RuleChecker:
    """Applies a trial's stop rules to its metrics as they are reported."""

    def __init__(self, rules: list[StopRule], objective: str, direction: str) -> None:
        self.rules = list(rules)
        self.active = bool(rules)
        self.objective = objective
        self.maximize = direction == "maximize"
        self.best: float | None = None
        self.left = {r.name: r.start_step for r in rules if r.start_step}
        self.reason: str | None = None

    def observe(self, name: str, value: float) -> bool:
        """True once every rule holds: the trial should be stopped."""
        if not self.active:
            return False
        if name == self.objective:
            if self.best is None or (value > self.best if self.maximize else value < self.best):
                self.best = value
            value = self.best
        for rule in list(self.rules):
            if rule.name != name:
                continue
            if rule.name in self.left:
                self.left[rule.name] -= 1
                if self.left[rule.name] != 0:
                    continue
            if (
                (rule.comparison == "less" and value < rule.value)
                or (rule.comparison == "greater" and value > rule.value)
                or (rule.comparison == "equal" and value == rule.value)
            ):
                self.rules.remove(rule)
                self.reason = (
                    f"early stopped by medianstop: best {name} {value:g} after {rule.start_step} "
                    f"reports is {rule.comparison} than {rule.value:g}"
                )
        if not self.rules:
            self.active = False
            return True
        return False

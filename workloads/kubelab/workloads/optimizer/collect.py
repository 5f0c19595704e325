"""Katib's metrics collection for local trials: what the sidecar would read, read here.

The StdOut collector reads the trial's output (stdout and stderr, as Katib tees
them into its metrics file); the File collector reads the file the trial writes,
as TEXT (`name=value` lines, Katib's default filter or the experiment's own
`metricsFormat` regexes) or JSON lines (`{"loss": "0.3"}`: Katib only takes string
values there). A trial's observation is each metric's min, max and latest value;
the objective value is the one its metric strategy picks.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kubelab.workloads.metrics import KATIB_DEFAULT_FILTER, parse_line


@dataclass
class Point:
    name: str
    value: float
    step: int


@dataclass
class Collector:
    """Incremental parser of one trial's metrics (`feed` text as it is written)."""

    names: list[str]
    patterns: list[re.Pattern[str]]
    json_format: bool = False
    values: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _partial: str = ""

    @classmethod
    def for_experiment(cls, experiment: dict[str, Any]) -> Collector:
        spec = experiment["spec"]
        objective = spec["objective"]
        names = [objective["objectiveMetricName"], *(objective.get("additionalMetricNames") or [])]
        source = (spec.get("metricsCollectorSpec") or {}).get("source") or {}
        filters = (source.get("filter") or {}).get("metricsFormat") or [KATIB_DEFAULT_FILTER]
        fmt = (source.get("fileSystemPath") or {}).get("format")
        return cls(
            names=names,
            patterns=[re.compile(f, re.ASCII) for f in filters],
            json_format=fmt == "JSON",
        )

    def feed(self, text: str, *, final: bool = False) -> list[Point]:
        """Points in the complete lines of `text` (a partial last line waits for more)."""
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        points: list[Point] = []
        for line in lines:
            points.extend(self._parse(line))
        return points

    def _parse(self, line: str) -> list[Point]:
        found: dict[str, float] = {}
        step: int | None = None
        if self.json_format:
            line = line.strip()
            if not line:
                return []
            try:
                record = json.loads(line)
            except ValueError:
                self.notes.append(f"not a JSON metrics line: {line[:80]!r}")
                return []
            for name in self.names:
                value = record.get(name) if isinstance(record, dict) else None
                if isinstance(value, str):
                    number = _float(value)
                    if number is not None:
                        found[name] = number
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    self.notes.append(
                        f"{name}={value} is a JSON number: Katib's File collector reads only "
                        f'string values (write "{name}": "{value}")'
                    )
        else:
            if not any(name in line for name in self.names):
                return []
            for pattern in self.patterns:
                line_step, values = parse_line(line, set(self.names), pattern)
                step = line_step if line_step is not None else step
                found.update(values)
        points = []
        for name, value in found.items():
            series = self.values.setdefault(name, [])
            series.append(value)
            points.append(Point(name, value, step if step is not None else len(series)))
        return points

    def observation(self) -> dict[str, dict[str, float]]:
        """Katib's trial observation: min, max and latest per reported metric."""
        return {
            name: {"min": min(v), "max": max(v), "latest": v[-1]}
            for name, v in self.values.items()
            if v
        }


def objective_value(
    experiment: dict[str, Any], observation: dict[str, dict[str, float]]
) -> float | None:
    """The trial's objective by its metric strategy; None when it was never reported."""
    objective = experiment["spec"]["objective"]
    name = objective["objectiveMetricName"]
    metric = observation.get(name)
    if metric is None:
        return None
    return metric[strategy_of(experiment, name)]


def strategy_of(experiment: dict[str, Any], metric: str) -> str:
    for strategy in experiment["spec"]["objective"].get("metricStrategies") or []:
        if strategy.get("name") == metric:
            return strategy["value"]
    return "latest"


def flat_metrics(
    experiment: dict[str, Any], observation: dict[str, dict[str, float]]
) -> dict[str, float]:
    """One number per metric (each by its strategy): what a run's `metrics` shows."""
    return {name: m[strategy_of(experiment, name)] for name, m in observation.items()}


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

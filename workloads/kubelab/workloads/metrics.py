"""Metrics from training code: `report()` and Katib's StdOut format.

`report(step=3, loss=0.25)` prints one line in the format Katib's StdOut metrics
collector reads (`name=value` pairs, its default filter), so the same training code
reports to kubelab's local runners, to a Katib trial and to a TrainJob's logs. The
local runners read the lines back from the process output with `parse_line()`.
"""

from __future__ import annotations

import math
import re
import sys

# Katib's default metrics filter (`DefaultFilter` in pkg/metricscollector/v1beta1/common/
# const.go). Katib compiles it with Go's RE2, where \w and \d are ASCII only: so here.
KATIB_DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
_PAIR = re.compile(KATIB_DEFAULT_FILTER, re.ASCII)
STEP_KEYS = ("step", "epoch")


def report(step: int | None = None, **metrics: float) -> None:
    """Report metrics of the current step (epoch); values must be finite numbers."""
    if not metrics:
        raise ValueError("report() needs at least one metric, e.g. report(loss=0.25)")
    pairs = []
    if step is not None:
        pairs.append(f"step={int(step)}")
    for name, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} is {number}; report finite numbers")
        pairs.append(f"{name}={number!r}")
    print(" ".join(pairs), file=sys.stdout, flush=True)


def parse_line(
    line: str, names: set[str] | None = None, pattern: re.Pattern[str] = _PAIR
) -> tuple[int | None, dict[str, float]]:
    """The step (from a `step=`/`epoch=` pair) and metric values found in one line.

    `names` keeps only those metrics (Katib collects only the objective and
    additional metric names); a pair whose value is not a number is ignored.
    """
    step: int | None = None
    values: dict[str, float] = {}
    for match in pattern.finditer(line):
        name, text = match.group(1), match.group(2)
        if not text or text in "+-":
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if name in STEP_KEYS and value.is_integer():
            step = int(value)
            if names is None or name not in names:
                continue
        if names is None or name in names:
            values[name] = value
    return step, values

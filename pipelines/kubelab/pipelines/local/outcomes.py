"""What tasks, DAGs and runs produce, as the engine's modules pass it around.

Owns: `Outcome` (one task, loop or DAG), `RunResult` (a finished run, what callers
get back) and `ConditionSkip` (an input whose producer a false condition skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelab.client.store import RunStore


@dataclass
class Outcome:
    """What a task or DAG produced; artifacts are lists of KFP RuntimeArtifact dicts."""

    state: str
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None
    # "condition" when a trigger condition was false: downstream tasks still run.
    skip_reason: str | None = None


@dataclass
class RunResult:
    """A finished run: its state, the pipeline's outputs and where to find the rest."""

    run_id: str
    state: str
    outputs: dict[str, Any]
    error: str | None
    pipeline_root: str
    store: RunStore

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    def run(self) -> dict[str, Any]:
        """The run JSON (steps, timings, metrics) from the store."""
        return self.store.get_run(self.run_id)


class ConditionSkip(Exception):
    """An input comes from a task that a false condition skipped."""

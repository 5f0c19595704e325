"""Hyperparameter tuning, shaped like the Kubeflow SDK's `kubeflow.optimizer`.

`OptimizerClient().optimize(fn | "train.py" | "nb.ipynb", search_space=..., ...)`
runs trials in parallel on this machine (optuna, as Katib's suggestion service uses
it) or submits the same spec as a Katib Experiment; `kubelab tune` does it from the
terminal, and `kubelab tune experiment.yaml` runs a Katib Experiment YAML here.
Names are imported on first use so `import kubelab.workloads.optimizer` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelab.workloads.optimizer.client import OptimizerClient
    from kubelab.workloads.optimizer.types import (
        CMAES,
        TPE,
        Direction,
        GridSearch,
        MedianStop,
        Metric,
        Objective,
        OptimizationJob,
        RandomSearch,
        Result,
        Search,
        Trial,
        TrialConfig,
    )
    from kubelab.workloads.optimizer.workload import TuningWorkload
    from kubelab.workloads.trainer.types import CustomTrainer, TrainJobTemplate

__all__ = [
    "CMAES",
    "TPE",
    "CustomTrainer",
    "Direction",
    "GridSearch",
    "MedianStop",
    "Metric",
    "Objective",
    "OptimizationJob",
    "OptimizerClient",
    "RandomSearch",
    "Result",
    "Search",
    "TrainJobTemplate",
    "Trial",
    "TrialConfig",
    "TuningWorkload",
]
_HOMES = {name: f"{__name__}.types" for name in __all__}
_HOMES.update(OptimizerClient=f"{__name__}.client", TuningWorkload=f"{__name__}.workload")
# As in the Kubeflow SDK, the trainer's template types are importable from here too.
_HOMES.update(
    CustomTrainer="kubelab.workloads.trainer.types",
    TrainJobTemplate="kubelab.workloads.trainer.types",
)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

"""Model serving: a local Open Inference Protocol server and KServe InferenceServices.

`serve(model_or_path, name=...)` starts a model server on this machine (its own
process, recorded in the run store) or an InferenceService on Kubernetes. The
attributes below import on first use, so that importing this package (as the server
process and the job listing do) never pulls the client or an HTTP library.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "serve": "kubelab.workloads.serving.api",
    "ModelServer": "kubelab.workloads.serving.api",
    "ServingWorkload": "kubelab.workloads.serving.workload",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

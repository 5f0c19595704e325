"""Notebook -> pipeline: Kale-compatible cell tags to a KFP v2 DSL module, validated and run.

Public API (used by the CLI, the server REST API and the sidebar; keep it stable):
`compile_notebook`, `validate_notebook`, `run_notebook`, `NotebookPipeline`,
`ValidationReport`.

Everything is loaded on first use: pipeline steps import `runtime` from this package
inside pods where only the standard library and cloudpickle are installed, so
importing the package must not pull in nbformat or the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelab.pipelines.notebook.pipeline import NotebookPipeline, compile_notebook
    from kubelab.pipelines.notebook.run import run_notebook
    from kubelab.pipelines.notebook.validate import ValidationReport, validate_notebook

__all__ = [
    "NotebookPipeline",
    "ValidationReport",
    "compile_notebook",
    "run_notebook",
    "validate_notebook",
]

_HOMES = {
    "NotebookPipeline": "pipeline",
    "compile_notebook": "pipeline",
    "run_notebook": "run",
    "ValidationReport": "validate",
    "validate_notebook": "validate",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

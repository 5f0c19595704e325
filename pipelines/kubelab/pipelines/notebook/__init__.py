"""Notebook -> pipeline: Kale-compatible cell tags to a KFP v2 DSL module, validated and run.

Public API (used by the CLI, the server REST API and the sidebar; keep it stable):
`compile_notebook`, `validate_notebook`, `run_notebook`, `NotebookPipeline`,
`ValidationReport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelab.pipelines.notebook.pipeline import NotebookPipeline, compile_notebook

if TYPE_CHECKING:
    from kubelab.pipelines.notebook.validate import ValidationReport

__all__ = [
    "NotebookPipeline",
    "ValidationReport",
    "compile_notebook",
    "run_notebook",
    "validate_notebook",
]


def __getattr__(name: str) -> Any:
    # Validation and running pull in subprocess/engine code; load them on first use.
    if name in ("validate_notebook", "ValidationReport"):
        from kubelab.pipelines.notebook import validate

        return getattr(validate, name)
    if name == "run_notebook":
        from kubelab.pipelines.notebook.run import run_notebook

        return run_notebook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

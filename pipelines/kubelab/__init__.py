"""kubelab: Kubeflow-style ML from JupyterLab.

`kubelab` spans several source folders (pipelines/, client/, workloads/, server/, spawner/); extend_path
joins them into one package in a source checkout, as the wheel does on install.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import Any

__path__ = extend_path(__path__, __name__)


def __getattr__(name: str) -> Any:
    # Notebook-facing helpers, imported lazily so `import kubelab` stays cheap.
    if name == "run_notebook":
        from kubelab.pipelines.notebook import run_notebook

        return run_notebook
    raise AttributeError(f"module 'kubelab' has no attribute {name!r}")

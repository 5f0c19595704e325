"""`run_notebook`: compile a notebook and run it on the local engine, like any pipeline."""

from __future__ import annotations

import ast
import os
from typing import Any

from kubelab.pipelines.notebook.pipeline import NotebookPipeline, compile_notebook


def preload_modules(nb: NotebookPipeline) -> list[str]:
    """Modules of the notebook's imports cells worth importing once in the fork server
    (12 s -> 3 s on the demo's first run); the engine gets them with the run."""
    from kubelab.pipelines.local.preload import FORK_SAFE_MODULES

    modules = ["kubelab.pipelines.notebook.runtime"]
    for _, code in nb.graph.prelude:
        for node in ast.walk(ast.parse(code)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            modules += [
                n for n in names if n.split(".")[0] in FORK_SAFE_MODULES and n not in modules
            ]
    return modules


def run_notebook(
    path: str | os.PathLike[str],
    /,
    *,
    parameters: dict[str, Any] | None = None,
    enable_caching: bool = True,
    pipeline_root: str | os.PathLike[str] | None = None,
    store: Any = None,
    on_event: Any = None,
    experiment: str | None = None,
    **params: Any,
) -> Any:
    """Run the notebook as a pipeline and return the engine's RunResult.

    Pipeline parameters are keyword arguments (`run_notebook("nb.ipynb", n_estimators=10)`)
    or, when a name clashes with an option here, `parameters={...}`. The run joins
    `experiment` (default: the notebook's). Inside a notebook the engine shows a live
    progress widget.
    """
    from kubelab.pipelines.local import engine
    from kubelab.pipelines.local.ir import check_parameter_names

    nb = compile_notebook(path)
    arguments = {**(parameters or {}), **params}
    check_parameter_names(arguments, nb.parameters)
    return engine.run_pipeline(
        nb.pipeline_spec(),
        arguments,
        store=store,
        pipeline_root=pipeline_root,
        enable_caching=enable_caching,
        source=os.fspath(path),
        task_metadata=nb.task_metadata(),
        on_event=on_event,  # None: the engine shows its live widget inside a kernel
        preload=preload_modules(nb),
        experiment=experiment,
    )

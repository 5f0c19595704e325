"""`run_notebook`: compile a notebook and run it on the local engine, like any pipeline."""

from __future__ import annotations

import os
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook.pipeline import compile_notebook


def run_notebook(
    path: str | os.PathLike[str],
    /,
    *,
    parameters: dict[str, Any] | None = None,
    enable_caching: bool = True,
    pipeline_root: str | os.PathLike[str] | None = None,
    store: Any = None,
    on_event: Any = None,
    **params: Any,
) -> Any:
    """Run the notebook as a pipeline and return the engine's RunResult.

    Pipeline parameters are keyword arguments (`run_notebook("nb.ipynb", n_estimators=10)`)
    or, when a name clashes with an option here, `parameters={...}`. Inside a notebook the
    engine shows a live progress widget.
    """
    from kubelab.pipelines.local import engine, progress

    nb = compile_notebook(path)
    arguments = {**(parameters or {}), **params}
    unknown = sorted(set(arguments) - set(nb.parameters))
    if unknown:
        known = ", ".join(nb.parameters) or "none"
        raise KubelabError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}; the notebook's "
            f"pipeline-parameters cell defines: {known}",
            parameters=unknown,
        )
    if on_event is None:
        on_event = progress.notebook_progress(nb.name)
    return engine.run_pipeline(
        nb.pipeline_spec(),
        arguments,
        store=store,
        pipeline_root=pipeline_root,
        enable_caching=enable_caching,
        source=os.fspath(path),
        task_metadata=nb.task_metadata(),
        on_event=on_event,
    )

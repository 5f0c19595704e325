"""`run_notebook`: compile a notebook and run it on the local engine, like any pipeline."""

from __future__ import annotations

import ast
import os
from typing import Any

from kubelab.pipelines.notebook.pipeline import NotebookPipeline, compile_notebook

# What every notebook step imports besides the cells: the runtime and the marshallers'
# hash (the data libraries come from the cells themselves).
RUNTIME_MODULES = ("kubelab.pipelines.notebook.runtime", "xxhash")


def preload_modules(nb: NotebookPipeline) -> list[str]:
    """The one decision of what the engine's fork server imports for a notebook pipeline:
    the step runtime, and the modules the imports/functions cells and the steps import,
    when they are on the fork-safe list (`local.preload.FORK_SAFE_MODULES`). The CLI,
    `run_notebook`, the server and tuning trials pass it with the run (12 s -> 3 s on the
    demo's first run); the step code itself hides them from the engine's own scan."""
    sources = [code for _, code in nb.graph.prelude]
    sources += [code for step in nb.steps for _, code in step.sources]
    return fork_safe_imports(sources)


def preload_modules_of(path: str | os.PathLike[str]) -> list[str]:
    """The same, read straight from the file's code cells before the notebook compiles,
    so a cold `kubelab run` starts these imports while it compiles (cells that do not
    parse are left to the compiler to report)."""
    from kubelab.pipelines.notebook.magics import translate
    from kubelab.pipelines.notebook.pipeline import load_notebook, read_cells

    sources = []
    for cell in read_cells(load_notebook(path)[0]):
        try:
            sources.append(translate(cell.source, cell=cell.index, step=None).source)
        except Exception:  # reported by the compiler, with its cell
            continue
    return fork_safe_imports(sources)


def fork_safe_imports(sources: list[str]) -> list[str]:
    """The runtime's modules and the fork-safe modules `sources` import, in order."""
    from kubelab.pipelines.local.preload import FORK_SAFE_MODULES

    modules = list(RUNTIME_MODULES)
    for code in sources:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from scipy import stats` imports a submodule; a name that is not one
                # (`from sklearn.svm import SVC`) fails quietly in the server.
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
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
    strict_resources: bool = False,
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
        strict_resources=strict_resources,
        experiment=experiment,
    )

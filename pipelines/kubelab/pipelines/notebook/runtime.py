"""What a generated notebook step calls while it runs (inside the step's process).

Each cell is compiled with a file name such as `<notebook cell 8, step train>` (cells
counted from 1, as JupyterLab shows them) and its
lines registered in `linecache`, so a traceback in the step log shows the notebook
cell, the line within it and the line's text, not the generated module.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import traceback
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import marshal
from kubelab.pipelines.notebook.tags import cell_label


def cell_filename(cell: int, step: str) -> str:
    return f"<notebook {cell_label(cell)}, step {step}>"


# The directory the step process started in: artifact paths are relative to it even
# after `namespace` moves into the notebook's directory.
_start_dir = os.getcwd()


def display(*objects: Any, **kwargs: Any) -> None:
    """IPython's display when available (imported on first use), else print."""
    try:
        from IPython.display import display as ipython_display
    except ImportError:  # a slim step image
        print(*objects)
        return
    ipython_display(*objects, **kwargs)


def namespace(
    step: str, parameters: dict[str, Any] | None = None, workdir: str | None = None
) -> dict[str, Any]:
    """A fresh module-like namespace, as a notebook kernel's would be.

    `workdir` is the notebook's directory: relative paths in cells (`pd.read_csv("data.csv")`)
    resolve as they do in Jupyter. Where it does not exist (another machine, a cluster
    pod) the step stays in its own working directory.
    """
    global _start_dir
    _start_dir = os.getcwd()
    if workdir and os.path.isdir(workdir):
        os.chdir(workdir)
    ns: dict[str, Any] = {"__name__": "__main__", "__doc__": None, "__builtins__": __builtins__}
    ns["display"] = display
    ns.update(parameters or {})
    return ns


def run_cell(ns: dict[str, Any], cell: int, step: str, source: str) -> None:
    """Run one cell's code; on failure say which cell and line, then re-raise."""
    filename = cell_filename(cell, step)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    try:
        exec(code, ns)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
        line = frames[-1].lineno if frames else None
        _located(error, cell, line)
        print(
            f"kubelab: step {step!r} failed in notebook {cell_label(cell)}"
            + (f", line {line}" if line else "")
            + f": {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        raise


def _located(error: BaseException, cell: int, line: int | None = None) -> BaseException:
    """Mark where in the notebook `error` happened; the engine records it on the step."""
    with contextlib.suppress(AttributeError, TypeError):  # a few builtins refuse attributes
        error.kubelab_where = {"cell": cell, "line": line}  # type: ignore[attr-defined]
    return error


def load(ns: dict[str, Any], name: str, path: str) -> None:
    ns[name] = marshal.load(os.path.join(_start_dir, path))


def save(ns: dict[str, Any], name: str, path: str, *, step: str, cell: int) -> str:
    """Save a variable for downstream steps; an unsavable value names variable and cell."""
    if name not in ns:
        raise _located(
            KubelabError(
                f"step {step!r} ({cell_label(cell)}) should have defined {name!r} for the steps after "
                "it, but did not (was the code that sets it skipped by a condition?)",
                cell=cell,
                step=step,
                variable=name,
            ),
            cell,
        )
    try:
        return marshal.save(ns[name], os.path.join(_start_dir, path)).name
    except marshal.MarshalError as error:
        raise _located(
            KubelabError(
                f"variable {name!r} of step {step!r} ({cell_label(cell)}) cannot be passed to the next "
                f"steps: {error}. Create it in the step that uses it, or tag that code 'skip'",
                cell=cell,
                step=step,
                variable=name,
            ),
            cell,
        ) from error


def log_metrics(ns: dict[str, Any], output: Any, names: list[str], *, step: str, cell: int) -> None:
    """Report the named values as pipeline metrics (a KFP Metrics artifact)."""
    for name in names:
        value = ns.get(name)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _located(
                KubelabError(
                    f"metric {name!r} ({cell_label(cell)}) must be a number, got "
                    f"{type(value).__name__}: {value!r:.80}",
                    cell=cell,
                    step=step,
                    variable=name,
                ),
                cell,
            ) from None
        output.log_metric(name, number)
        print(f"metric {name} = {number}")

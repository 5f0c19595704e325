"""What a generated notebook step calls while it runs (inside the step's process).

Each cell is compiled with a file name such as `<notebook cell 8, step train>` (cells
counted from 1, as JupyterLab shows them) and its
lines registered in `linecache`, so a traceback in the step log shows the notebook
cell, the line within it and the line's text, not the generated module. A failing
cell marks the exception with its cell and line (`kubelab_where`), which the engine
puts on the step.

A step sees the notebook's folder as the kernel does: as its working directory and
first on `sys.path` (so `from helpers import f` finds `helpers.py` beside the
notebook), and the files it reads there are recorded for the cache (`task_report`).
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import time
import traceback
from typing import Any

from kubelab.pipelines import task_report
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import marshal
from kubelab.pipelines.notebook.tags import cell_label


def cell_filename(cell: int, step: str) -> str:
    return f"<notebook {cell_label(cell)}, step {step}>"


# The directory the step process started in: artifact paths are relative to it even
# after `namespace` moves into the notebook's directory.
_start_dir = os.getcwd()
# Variable -> the artifact directory it was loaded from (to hand it on unchanged).
_loaded: dict[str, str] = {}


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
    and imports of modules beside the notebook resolve as they do in Jupyter. Where it
    does not exist (another machine, a cluster pod) the step stays where it is.
    """
    global _start_dir
    _start_dir = os.getcwd()
    _loaded.clear()
    if workdir and os.path.isdir(workdir):
        os.chdir(workdir)
        if workdir not in sys.path[:1]:
            sys.path.insert(0, workdir)
        task_report.watch_reads(workdir)
    ns: dict[str, Any] = {"__name__": "__main__", "__doc__": None, "__builtins__": __builtins__}
    ns["display"] = display
    ns.update(parameters or {})
    return ns


def _located(error: BaseException, cell: int, line: int | None = None) -> BaseException:
    """Mark where in the notebook `error` happened; the engine records it on the step."""
    with contextlib.suppress(AttributeError, TypeError):  # a few builtins refuse attributes
        error.kubelab_where = {"cell": cell, "line": line}  # type: ignore[attr-defined]
    return error


def run_cell(ns: dict[str, Any], cell: int, step: str, source: str) -> None:
    """Run one cell's code; on failure say which cell and line, then re-raise."""
    filename = cell_filename(cell, step)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    started = time.perf_counter()
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
    finally:
        # The step's own time, to tell it from what running it as a step costs.
        task_report.add("marshal", cells_seconds=time.perf_counter() - started)


def load(ns: dict[str, Any], name: str, path: str) -> None:
    directory = os.path.join(_start_dir, path)
    started = time.perf_counter()
    ns[name] = marshal.load(directory)
    seconds = time.perf_counter() - started
    _loaded[name] = directory
    task_report.add("marshal", load_bytes=marshal.describe(directory).get("bytes", 0),
                    load_seconds=seconds, loaded=1)  # fmt: skip


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
        saved = marshal.save(ns[name], os.path.join(_start_dir, path), previous=_loaded.get(name))
    except marshal.MarshalError as error:
        raise _located(
            KubelabError(
                f"variable {name!r} of step {step!r} ({cell_label(cell)}) cannot be passed to the "
                f"next steps: {error}. Create it in the step that uses it, or tag that code "
                "'skip'",
                cell=cell,
                step=step,
                variable=name,
            ),
            cell,
        ) from error
    task_report.add("marshal", save_bytes=saved.bytes, save_seconds=saved.seconds, saved=1,
                    linked=int(saved.linked))  # fmt: skip
    return saved.marshaller.name


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

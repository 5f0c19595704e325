"""What a running task tells the local engine besides its outputs.

The task's process fills a report; the fork server writes it next to the task's
result and the engine records it: warnings for the step, marshalling figures, the
files the task read (so a cached result is only reused while those files are
unchanged) and the files it wrote (its lineage: where a model saved to a file came
from). On Kubeflow nobody collects it, which costs nothing.

Reads and writes are recorded with an audit hook (PEP 578): every file opened under
a watched folder (the task's working directory, a notebook's folder), except under
the pipeline root (artifacts are already part of the cache key), hidden folders and
Python installations (a venv or conda under the home folder: its libraries are the
environment, not the task's data).
Modules imported from there count too: Python opens their cached bytecode, which we
map back to the source file. Standard library only: this runs in every task.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_report: dict[str, Any] = {}
_roots: list[str] = []
_excluded: list[str] = []
_reads: set[str] = set()
_writes: set[str] = set()
_hooked = False


def warn(message: str) -> None:
    """A warning shown on the step (CLI, run JSON, sidebar)."""
    _report.setdefault("warnings", []).append(message)


def add(section: str, **figures: float) -> None:
    """Add numbers to a section of the report (e.g. bytes and seconds of marshalling)."""
    values = _report.setdefault(section, {})
    for key, value in figures.items():
        values[key] = values.get(key, 0) + value


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":
        return
    path, mode, flags = args
    if isinstance(path, int) or path is None:
        return
    if mode is not None:
        reads = "r" in mode or "+" in mode
        writes = any(m in mode for m in "wax+")
    else:
        access = flags & os.O_ACCMODE
        reads, writes = access != os.O_WRONLY, access != os.O_RDONLY
    try:
        full = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if reads:
        _reads.add(full)
    if writes:
        _writes.add(full)


def watch_reads(folder: str, *, exclude: str | None = None) -> None:
    """Record the files this process reads under `folder` (and never under `exclude`)."""
    global _hooked
    folder = os.path.realpath(folder)
    if folder not in _roots:
        _roots.append(folder)
    if exclude:
        _excluded.append(os.path.realpath(exclude))
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True


def _source_of(path: str) -> str:
    """`pkg/__pycache__/m.cpython-311.pyc` -> `pkg/m.py`: what an import really read."""
    head, name = os.path.split(path)
    if os.path.basename(head) == "__pycache__" and name.endswith(".pyc"):
        return os.path.join(os.path.dirname(head), name.split(".")[0] + ".py")
    return path


def _installations() -> list[str]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return [os.path.realpath(p) for p in prefixes if p]


def _task_files(paths: set[str]) -> list[str]:
    """Of `paths`, the regular files under the watched folders that are the task's
    data (not the environment's, not hidden), sorted."""
    found: set[str] = set()
    installations = _installations()
    for raw in list(paths):
        path = os.path.realpath(_source_of(raw))
        if not _inside(path, _roots) or _inside(path, _excluded + installations):
            continue
        parts = path.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            continue
        relative = os.path.relpath(path, next(r for r in _roots if _inside(path, [r])))
        if any(part.startswith(".") for part in relative.split(os.sep)):
            continue  # .ipynb_checkpoints, .git, .venv: not the task's data
        if os.path.isfile(path):
            found.add(path)
    return sorted(found)


def files_read() -> list[str]:
    """The regular files read under the watched folders, sorted."""
    return _task_files(_reads)


def files_written() -> list[str]:
    """The regular files written under the watched folders (and still there), sorted."""
    return _task_files(_writes)


def collect() -> dict[str, Any]:
    """The report, with each file read or written and its digest (taken now, after
    the task)."""
    from kubelab.pipelines import digests

    report = dict(_report)
    for key, paths in (("reads", files_read()), ("writes", files_written())):
        found = []
        for path in paths:
            try:
                found.append({"path": path, "digest": digests.file_digest(path)})
            except OSError:
                continue
        if found:
            report[key] = found
    return report

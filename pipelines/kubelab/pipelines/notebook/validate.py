"""`validate_notebook`: graph checks plus a real round trip of every cross-step variable.

Static checks catch wrong tags and undefined names; only running the steps shows that
a value (an open file, a generator, a lock) cannot travel to the next step. The
steps run once, in dependency order, in a separate Python process (see
validate_worker) so that user code never runs inside the caller, e.g. the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook.pipeline import NotebookPipeline, compile_notebook
from kubelab.pipelines.notebook.tags import cell_label


@dataclass
class VariableCheck:
    name: str
    producer: str
    consumers: list[str]
    marshaller: str | None
    ok: bool
    error: str | None = None
    cell: int | None = None
    type: str | None = None


@dataclass
class StepCheck:
    name: str
    ok: bool
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None
    cell: int | None = None
    line: int | None = None
    traceback: str | None = None


@dataclass
class ValidationReport:
    notebook: str
    ok: bool
    errors: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)
    variables: list[VariableCheck] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "ok": self.ok,
            "errors": self.errors,
            "steps": [vars(s) for s in self.steps],
            "variables": [vars(v) for v in self.variables],
            "metrics": self.metrics,
            "warnings": self.warnings,
            "seconds": self.seconds,
        }

    def format_text(self) -> str:
        lines = [f"{self.notebook}: {'OK' if self.ok else 'FAILED'} ({self.seconds:.1f} s)"]
        for error in self.errors:
            lines.append(f"  error: {error['message']}")
        if self.steps:
            lines.append("steps:")
            for s in self.steps:
                state = "skipped" if s.skipped else ("ok" if s.ok else "FAILED")
                lines.append(f"  {s.name:<24} {state:<8} {s.seconds:6.2f} s")
                if s.error:
                    where = cell_label(s.cell) + (f", line {s.line}" if s.line else "")
                    lines.append(f"    {where}: {s.error}")
        if self.variables:
            lines.append("variables:")
            lines.append(f"  {'name':<20} {'from step':<20} {'marshaller':<14} {'to steps':<28} ok")
            for v in self.variables:
                lines.append(
                    f"  {v.name:<20} {v.producer:<20} {v.marshaller or '-':<14} "
                    f"{','.join(v.consumers):<28} {'ok' if v.ok else 'ERROR'}"
                )
                if v.error:
                    lines.append(f"    {v.error}")
        if self.metrics:
            lines.append("metrics: " + ", ".join(f"{k}={v:g}" for k, v in self.metrics.items()))
        for warning in self.warnings:
            lines.append(f"note: {warning}")
        return "\n".join(lines)


def _plan(nb: NotebookPipeline, scratch: str, parameters: dict[str, Any]) -> dict[str, Any]:
    values = {name: p["default"] for name, p in nb.parameters.items()}
    values.update(parameters)
    return {
        "scratch": scratch,
        "parameters": values,
        "prelude": nb.graph.prelude,
        "steps": [
            {
                "name": s.name,
                "cells": s.cells,
                "parameters": s.parameters,
                "reimports": s.reimports,
                "inputs": [[v, s.producers[v]] for v in s.inputs],
                "sources": s.sources,
                "outputs": [[v, s.output_cells[v]] for v in s.outputs],
                "metrics": nb.metrics if s.is_metrics else [],
            }
            for s in nb.steps
        ],
    }


def _run_bounded(command: list[str], cwd: str, timeout: float) -> tuple[int, str] | None:
    """(exit code, stderr) of `command`, or None when it ran past `timeout`. It runs in
    a session of its own, killed whole at the end: nothing the notebook started stays."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        proc.communicate()
        return None
    finally:
        _kill_session(proc.pid)
    return proc.returncode, stderr


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def validate_notebook(
    path: str | os.PathLike[str],
    *,
    parameters: dict[str, Any] | None = None,
    execute: bool = True,
    timeout: float = 900,
) -> ValidationReport:
    """Check the notebook; never raises for problems in the notebook, reports them."""
    started = time.perf_counter()
    report = ValidationReport(notebook=str(path), ok=False)
    try:
        nb = compile_notebook(path)
    except KubelabError as error:
        report.errors.append(error.to_json())
        report.seconds = time.perf_counter() - started
        return report
    report.warnings = nb.warnings
    consumers: dict[tuple[str, str], list[str]] = {}
    for edge in nb.edges:
        for var in edge.variables:
            consumers.setdefault((edge.source, var), []).append(edge.target)
    if not execute:
        report.ok = True
        report.variables = [
            VariableCheck(v, s.name, consumers.get((s.name, v), []), None, True, cell=c)
            for s in nb.steps
            for v, c in s.output_cells.items()
        ]
        report.seconds = time.perf_counter() - started
        return report
    with tempfile.TemporaryDirectory(prefix="kubelab-validate-") as scratch:
        plan_file = Path(scratch) / "plan.json"
        result_file = Path(scratch) / "result.json"
        plan_file.write_text(json.dumps(_plan(nb, str(Path(scratch) / "data"), parameters or {})))
        cwd = str(Path(path).resolve().parent)
        worker = [sys.executable, "-m", "kubelab.pipelines.notebook.validate_worker"]
        ended = _run_bounded([*worker, str(plan_file), str(result_file)], cwd, timeout)
        if ended is None:
            report.errors.append({"message": f"the notebook's steps took over {timeout:.0f} s"})
            report.seconds = time.perf_counter() - started
            return report
        if not result_file.exists():
            returncode, stderr = ended
            report.errors.append(
                {"message": f"validation process died (exit {returncode}): "
                 f"{stderr.strip()[-2000:]}"}
            )  # fmt: skip
            report.seconds = time.perf_counter() - started
            return report
        result = json.loads(result_file.read_text())
    report.steps = [
        StepCheck(
            name=s["name"], ok=s["ok"], seconds=s["seconds"], skipped=s.get("skipped", False),
            error=s.get("error"), cell=s.get("cell"), line=s.get("line"),
            traceback=s.get("traceback"),
        )
        for s in result["steps"]
    ]  # fmt: skip
    report.variables = [
        VariableCheck(
            name=v["name"], producer=v["producer"],
            consumers=consumers.get((v["producer"], v["name"]), []),
            marshaller=v.get("marshaller"), ok=v["ok"], error=v.get("error"),
            cell=v.get("cell"), type=v.get("type"),
        )
        for v in result["variables"]
    ]  # fmt: skip
    report.metrics = result.get("metrics", {})
    for s in report.steps:
        if s.error:
            where = f"{cell_label(s.cell)}, " if s.cell is not None else ""
            report.errors.append(
                {"message": f"step {s.name!r} failed: {where}{s.error}",
                 "cell": s.cell, "step": s.name, "line": s.line}
            )  # fmt: skip
    for v in report.variables:
        if not v.ok:
            report.errors.append(
                {"message": v.error or f"variable {v.name!r} failed",
                 "cell": v.cell, "step": v.producer, "variable": v.name}
            )  # fmt: skip
    report.ok = not report.errors
    report.seconds = time.perf_counter() - started
    return report

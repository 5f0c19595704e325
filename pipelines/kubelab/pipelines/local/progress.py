"""Live progress of a local run: a widget in notebooks, terminal lines for the CLI.

Both are `on_event` callbacks for the engine, so the engine never knows where it is
displayed. `notebook_progress()` returns None outside a Jupyter kernel so that plain
Python and terminals get no extra output.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from typing import Any, TextIO

_ICONS = {
    "pending": "⏳",
    "running": "▶️",
    "succeeded": "✅",
    "failed": "❌",
    "skipped": "⏭️",
    "cancelled": "⏹️",
}


class _Steps:
    """Per-step state folded from engine events."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.run_state = "pending"
        self.run_id = ""
        self.error: str | None = None
        self.lock = threading.Lock()

    def apply(self, event: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            self.run_id = event.get("run_id", self.run_id)
            if event.get("type") == "run":
                self.run_state = event["state"]
                self.error = event.get("error")
                return None
            step = self.steps.setdefault(event["name"], {"state": "pending", "cached": False})
            if "display_name" in event:
                step["display_name"] = event["display_name"]
            step["state"] = event.get("state", step["state"])
            if event.get("cached"):
                step["cached"] = True
            if step["state"] == "running" and "t0" not in step:
                step["t0"] = time.monotonic()
            if step["state"] in ("succeeded", "failed", "skipped", "cancelled"):
                step["duration"] = time.monotonic() - step["t0"] if "t0" in step else 0.0
            if event.get("error"):
                step["error"] = event["error"]
            return dict(step, name=event["name"])


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class NotebookProgress:
    """An HTML widget with one row per step, updated as events arrive."""

    def __init__(self, title: str) -> None:
        import ipywidgets
        from IPython.display import display

        self.title = title
        self.state = _Steps()
        self.widget = ipywidgets.HTML(value=self._render())
        display(self.widget)

    def _render(self) -> str:
        rows = []
        for name, step in self.state.steps.items():
            duration = step.get("duration")
            if duration is None and "t0" in step:
                duration = time.monotonic() - step["t0"]
            cached = " (cached)" if step.get("cached") else ""
            error = html.escape(step.get("error") or "")
            rows.append(
                f"<tr><td>{_ICONS.get(step['state'], '')}</td>"
                f"<td>{html.escape(step.get('display_name', name))}</td>"
                f"<td>{step['state']}{cached}</td>"
                f"<td>{'' if duration is None else f'{duration:.2f}s'}</td>"
                f"<td style='color:#b00'>{error}</td></tr>"
            )
        head = (
            f"<b>{html.escape(self.title)}</b> {html.escape(self.state.run_id)}: "
            f"{_ICONS.get(self.state.run_state, '')} {self.state.run_state}"
        )
        return f"<div>{head}<table>{''.join(rows)}</table></div>"

    def __call__(self, event: dict[str, Any]) -> None:
        self.state.apply(event)
        self.widget.value = self._render()


def notebook_progress(title: str) -> NotebookProgress | None:
    """A live widget when running inside a Jupyter kernel with ipywidgets, else None."""
    if not in_notebook():
        return None
    try:
        return NotebookProgress(title)
    except ImportError:
        return None


class TerminalProgress:
    """One line per step state change, for `kubelab run` on stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.state = _Steps()

    def __call__(self, event: dict[str, Any]) -> None:
        step = self.state.apply(event)
        if step is None:
            if event.get("state") != "running":
                suffix = f": {event['error']}" if event.get("error") else ""
                print(f"run {event.get('run_id')} {event['state']}{suffix}", file=self.stream)
            return
        state = step["state"]
        if state == "pending":
            return
        line = f"  {_ICONS.get(state, '')} {step.get('display_name', step['name'])}: {state}"
        if step.get("cached"):
            line += " (cached)"
        if state != "running" and step.get("duration") is not None:
            line += f" in {step['duration']:.2f}s"
        if state in ("failed",) and step.get("error"):
            line += f" — {step['error']}"
        print(line, file=self.stream, flush=True)

"""Live progress of a local run: a widget in notebooks, terminal lines for the CLI,
and the user's own prints streamed back (`LogStreamer`) as kfp.local shows them.

All are `on_event` callbacks for the engine, so the engine never knows where it is
displayed. `notebook_progress()` returns None outside a Jupyter kernel so that plain
Python and terminals get no extra widget.
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
        """Fold one event in; the step it changed (with `changed`: its state moved)."""
        with self.lock:
            self.run_id = event.get("run_id", self.run_id)
            if event.get("type") == "run":
                self.run_state = event["state"]
                self.error = event.get("error")
                return None
            step = self.steps.setdefault(event["name"], {"state": "pending", "cached": False})
            before = step["state"]
            if event.get("warning"):
                step.setdefault("warnings", []).append(event["warning"])
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
            return dict(step, name=event["name"], changed=step["state"] != before)


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
            error = html.escape("; ".join([*step.get("warnings", []), step.get("error") or ""]))
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
        self.lock = threading.Lock()  # steps finish in several threads: whole lines only

    def _print(self, line: str) -> None:
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        step = self.state.apply(event)
        if step is None:
            if event.get("state") != "running":
                suffix = f": {event['error']}" if event.get("error") else ""
                self._print(f"run {event.get('run_id')} {event['state']}{suffix}")
            return
        label = step.get("display_name", step["name"])
        if event.get("warning"):
            self._print(f"  ⚠️ {label}: warning: {event['warning']}")
        state = step["state"]
        if state == "pending" or not step["changed"]:
            return  # an unstarted step is announced once, not once per record
        line = f"  {_ICONS.get(state, '')} {label}: {state}"
        if step.get("cached"):
            line += " (cached)"
        if state != "running" and step.get("duration") is not None:
            line += f" in {step['duration']:.2f}s"
        if state in ("failed",) and step.get("error"):
            line += f" — {step['error']}"
        self._print(line)


class LogStreamer:
    """Prints each task's log lines as they are written, prefixed with the task name.

    One tail thread per running attempt; it stops once the task reaches a final state
    and the file is drained. Lines the engine itself writes ("kubelab: ...") are left out.
    """

    def __init__(self, stream: TextIO | None = None, poll_s: float = 0.1) -> None:
        self.stream = stream or sys.stdout
        self.poll_s = poll_s
        self.names: dict[str, str] = {}
        self.tails: dict[str, tuple[threading.Thread, threading.Event]] = {}
        # Where each log was read up to: a retry appends to the same log, so its
        # tail goes on from there instead of printing the first attempt again.
        self.positions: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("type") != "task":
            return
        name = event["name"]
        if "display_name" in event:
            self.names[name] = event["display_name"]
        label = self.names.get(name, name.rsplit("/", 1)[-1])
        state = event.get("state")
        if state == "running" and event.get("log_path"):
            self._stop(name)
            done = threading.Event()
            thread = threading.Thread(
                target=self._tail, args=(label, event["log_path"], done), daemon=True
            )
            with self.lock:
                self.tails[name] = (thread, done)
            thread.start()
        elif state in ("succeeded", "failed", "skipped", "cancelled"):
            self._stop(name)
            if event.get("cached"):
                self._print(f"[{label}] (cached)")

    def _stop(self, name: str) -> None:
        with self.lock:
            tail = self.tails.pop(name, None)
        if tail is not None:
            tail[1].set()
            tail[0].join(10)

    def _print(self, line: str) -> None:
        with self.lock:
            print(line, file=self.stream, flush=True)

    def _tail(self, label: str, path: str, done: threading.Event) -> None:
        pending = ""
        position = self.positions.get(path, 0)
        while True:
            finished = done.is_set()
            try:
                with open(path, errors="replace") as f:
                    f.seek(position)
                    chunk = f.read()
                    position = f.tell()
            except OSError:
                chunk = ""
            self.positions[path] = position
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                if not line.startswith("kubelab: "):
                    self._print(f"[{label}] {line}")
            if finished:
                if pending and not pending.startswith("kubelab: "):
                    self._print(f"[{label}] {pending}")
                return
            done.wait(self.poll_s)


def combine(*callbacks: Any) -> Any:
    """One `on_event` callback that calls each non-None callback in turn."""
    active = [c for c in callbacks if c is not None]

    def on_event(event: dict[str, Any]) -> None:
        for callback in active:
            callback(event)

    return on_event

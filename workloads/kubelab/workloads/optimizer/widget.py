"""The live notebook widget of a tuning job: the trials table and the objective chart.

`render(view)` is pure HTML (an inline SVG chart: a dot per trial, the best-so-far
line, pruned and failed trials marked), so it is tested without a browser; the
widget re-renders it from the store as the runner reports trials.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

_COLORS = {
    "Succeeded": "#1a7f37",
    "EarlyStopped": "#9a6700",
    "Failed": "#cf222e",
    "MetricsUnavailable": "#cf222e",
    "Killed": "#6e7781",
    "Running": "#0969da",
    "Created": "#6e7781",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def chart_svg(chart: list[dict[str, Any]], *, width: int = 420, height: int = 160) -> str:
    """Objective per trial (dots) and the best value so far (a step line)."""
    points = [c for c in chart if c.get("objective") is not None]
    if not points:
        return "<svg width='0' height='0'></svg>"
    values = [c["objective"] for c in points] + [
        c["best_so_far"] for c in points if c["best_so_far"] is not None
    ]
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    left, right, top, bottom = 48, 8, 8, 20
    last = max(c["index"] for c in chart)

    def x(i: float) -> float:
        return left + (width - left - right) * ((i - 1) / max(1, last - 1) if last > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / span)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        "role='img' aria-label='objective per trial'>",
        f"<line x1='{left}' y1='{height - bottom}' x2='{width - right}' y2='{height - bottom}' stroke='#d0d7de'/>",
        f"<text x='2' y='{top + 8}' font-size='10'>{_fmt(high)}</text>",
        f"<text x='2' y='{height - bottom}' font-size='10'>{_fmt(low)}</text>",
        f"<text x='{left}' y='{height - 4}' font-size='10'>trial 1</text>",
        f"<text x='{width - right - 40}' y='{height - 4}' font-size='10'>trial {last}</text>",
    ]
    line = []
    for c in chart:
        if c.get("best_so_far") is not None:
            if line:
                line.append(f"{x(c['index']):.1f},{line[-1].split(',')[1]}")
            line.append(f"{x(c['index']):.1f},{y(c['best_so_far']):.1f}")
    if line:
        parts.append(
            f"<polyline class='best' fill='none' stroke='#0969da' stroke-width='1.5' points='{' '.join(line)}'/>"
        )
    for c in points:
        color = _COLORS.get(c["condition"], "#6e7781")
        parts.append(
            f"<circle cx='{x(c['index']):.1f}' cy='{y(c['objective']):.1f}' r='3' fill='{color}'>"
            f"<title>{html.escape(c['trial'])}: {_fmt(c['objective'])} ({c['condition']})</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render(job: dict[str, Any]) -> str:
    view = job["tuning"]
    names = [p["name"] for p in view["parameters"]]
    metric = view["objective"]["metric"] or "objective"
    counts = view["counts"]
    best = view["best"]
    head = (
        f"<b>{html.escape(job['name'])}</b> {html.escape(job['state'])} · "
        f"{counts['trials']}/{counts['max_trials']} trials · {counts['succeeded']} succeeded"
        + (f" · {counts['early_stopped']} pruned" if counts["early_stopped"] else "")
        + (
            f" · {counts['failed'] + counts['metrics_unavailable']} failed"
            if counts["failed"] + counts["metrics_unavailable"]
            else ""
        )
    )
    if best is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best["parameters"].items())
        head += f"<br>best {html.escape(metric)} {_fmt(best['objective'])} ({html.escape(best['trial'])}: {params})"
    if view["message"] and job["state"] not in ("pending", "running"):
        head += f"<br><span style='color:#57606a'>{html.escape(str(view['message'])[:500])}</span>"
    header = "".join(
        f"<th>{html.escape(h)}</th>" for h in ["trial", "status", *names, metric, "time"]
    )
    rows = []
    for t in view["trials"]:
        style = " style='font-weight:bold;background:#dafbe1'" if t["best"] else ""
        duration = "" if t["duration_s"] is None else f"{t['duration_s']:.1f}s"
        cells = [t["name"], t["condition"], *[t["parameters"].get(n, "") for n in names]]
        cells += ["" if t["objective"] is None else t["objective"], duration]
        title = f" title='{html.escape(t['error'])}'" if t.get("error") else ""
        rows.append(f"<tr{style}{title}>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    table = f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f"<div class='kubelab-tuning'><div>{head}</div>{chart_svg(view['chart'])}{table}</div>"


class TuningWidget:
    """An ipywidgets.HTML kept up to date from the store (at most 4 renders a second)."""

    def __init__(self, job_id: str, describe: Any) -> None:
        import ipywidgets
        from IPython.display import display

        self.job_id = job_id
        self.describe = describe
        self.widget = ipywidgets.HTML(value=f"<b>{html.escape(job_id)}</b> starting…")
        self.last = 0.0
        self.lock = threading.Lock()
        display(self.widget)

    def refresh(self) -> None:
        with self.lock:
            self.widget.value = render(self.describe(self.job_id))
            self.last = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        final = event.get("type") == "experiment" and event.get("state") not in (
            "running",
            "pending",
        )
        if final or event.get("type") == "trial" or time.monotonic() - self.last > 0.25:
            self.refresh()


def notebook_widget(job_id: str, describe: Any) -> TuningWidget | None:
    """A widget when running inside a Jupyter kernel with ipywidgets, else None."""
    from kubelab.pipelines.local.progress import in_notebook

    if not in_notebook():
        return None
    try:
        return TuningWidget(job_id, describe)
    except ImportError:
        return None

"""The live view `TrainerClient.train()` shows in a notebook (ipywidgets).

Per node: state, device, duration and the last log lines; a small line chart per
reported metric (inline SVG, no plotting library needed); the error with the
failing rank's traceback. A daemon thread refreshes it until the job ends. Every
text shown comes from the job (logs, names) and is HTML-escaped.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from kubelab.pipelines.errors import KubelabError

TAIL_LINES = 6
REFRESH = 0.5
COLORS = {"pending": "#888", "running": "#1a73e8", "succeeded": "#188038", "failed": "#d93025"}


def sparkline(points: list[dict[str, Any]], width: int = 220, height: int = 50) -> str:
    """An SVG polyline of `[{step, value}]`, with the last value written beside it."""
    values = [p["value"] for p in points]
    if not values:
        return ""
    xs = [p["step"] if p.get("step") is not None else i for i, p in enumerate(points)]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(values), max(values)
    span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1
    coords = " ".join(
        f"{4 + (x - x0) / span_x * (width - 8):.1f},{height - 4 - (v - y0) / span_y * (height - 8):.1f}"
        for x, v in zip(xs, values, strict=True)
    )
    return (
        f'<svg width="{width}" height="{height}" style="background:var(--jp-layout-color2,#f5f5f5)">'
        f'<polyline fill="none" stroke="#1a73e8" stroke-width="1.5" points="{coords}"/></svg>'
    )


def render(job: dict[str, Any], tails: dict[str, list[str]], series: dict[str, Any]) -> str:
    state = job["state"]
    color = COLORS.get(state, "#888")
    parts = [
        f'<div><b>{html.escape(job["id"])}</b> <span style="color:{color}">● {html.escape(state)}'
        f"</span> · {html.escape(job.get('backend', 'local'))}</div>",
        '<table style="font-size:12px"><tr><th>node</th><th>state</th><th>device</th>'
        "<th>duration</th><th>last lines</th></tr>",
    ]
    for step in job.get("steps", []):
        tail = "\n".join(tails.get(step["name"], [])[-TAIL_LINES:])
        duration = f"{step['duration_s']:.1f} s" if step.get("duration_s") is not None else ""
        device = f"{step.get('device') or ''} {step.get('device_count') or ''}".strip()
        parts.append(
            f"<tr><td>{html.escape(step['name'])}</td>"
            f'<td style="color:{COLORS.get(step["state"], "#888")}">{html.escape(step["state"])}</td>'
            f"<td>{html.escape(device)}</td><td>{duration}</td>"
            f'<td><pre style="margin:0;max-width:520px;overflow:hidden">{html.escape(tail)}</pre></td></tr>'
        )
    parts.append("</table>")
    charts = []
    for metric, points in (series.get("node-0") or {}).items():
        last = points[-1]["value"] if points else None
        charts.append(
            f"<div style='display:inline-block;margin-right:12px'>{html.escape(metric)} "
            f"<b>{last:.4g}</b><br>{sparkline(points)}</div>"
        )
    parts.extend(charts)
    if job.get("error"):
        parts.append(
            f'<pre style="color:#d93025;white-space:pre-wrap">{html.escape(job["error"])}</pre>'
        )
    return "".join(parts)


def show(trainer: Any, name: str) -> Any:
    """Display the live view of job `name` and keep it fresh until the job ends."""
    import ipywidgets as widgets
    from IPython.display import display

    view = widgets.HTML(value=f"<b>{html.escape(name)}</b> starting…")
    display(view)
    client = trainer.client

    def refresh() -> None:
        offsets: dict[str, int] = {}
        tails: dict[str, list[str]] = {}
        while True:
            try:
                job = client.get_job(name)
                for step in job.get("steps", []):
                    lines = tails.setdefault(step["name"], [])
                    try:
                        chunk = client.job_logs(name, step["name"], offsets.get(step["name"], 0))
                    except KubelabError as unreadable:  # e.g. the node's kubelet is away
                        lines[:] = [unreadable.message]
                        continue
                    offsets[step["name"]] = chunk["offset"]
                    lines.extend(line for line in chunk["text"].splitlines() if line)
                    del lines[:-TAIL_LINES]
                view.value = render(job, tails, client.job_metrics(name))
            except Exception as error:  # the view must never break the notebook
                view.value = f"<b>{html.escape(name)}</b>: {html.escape(str(error))}"
                return
            if job["state"] not in ("pending", "running"):
                return
            time.sleep(REFRESH)

    threading.Thread(target=refresh, name=f"kubelab-view-{name}", daemon=True).start()
    return view

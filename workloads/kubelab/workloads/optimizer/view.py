"""The tuning view of a job: what the REST API, the CLI, the SDK types and the widget show.

Pure: it reads the job JSON of the run store (steps are trials, each with its
parameters, observation, objective value and Katib condition in `outputs`) and the
metric series, and adds counts, the best trial, and the objective per trial with the
best-so-far line. Local and Kubernetes jobs record trials the same way, so one view
serves both.
"""

from __future__ import annotations

from typing import Any

CONDITIONS = (
    "Succeeded",
    "EarlyStopped",
    "Failed",
    "MetricsUnavailable",
    "Killed",
    "Running",
    "Created",
)


def _experiment(job: dict[str, Any]) -> dict[str, Any]:
    return (job.get("spec") or {}).get("experiment") or {}


def _strategy(objective: dict[str, Any], metric: str) -> str:
    for strategy in objective.get("metricStrategies") or []:
        if strategy.get("name") == metric:
            return str(strategy.get("value"))
    return {"minimize": "min", "maximize": "max"}.get(objective.get("type", ""), "latest")


def tuning_view(
    job: dict[str, Any],
    series: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`job` plus a `tuning` key: objective, search space, counts, best, trials, chart."""
    experiment = _experiment(job)
    spec = experiment.get("spec") or {}
    objective = spec.get("objective") or {}
    metric = objective.get("objectiveMetricName")
    maximize = objective.get("type") == "maximize"
    series = series or {}
    trials: list[dict[str, Any]] = []
    chart: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_so_far: float | None = None
    counts = {c: 0 for c in CONDITIONS}
    ordered = sorted(job.get("steps") or [], key=lambda s: (s.get("started_at") or "", s["name"]))
    for index, step in enumerate(ordered, start=1):
        out = step.get("outputs") or {}
        condition = out.get("condition") or ("Running" if step["state"] == "running" else "Created")
        counts[condition] = counts.get(condition, 0) + 1
        value = out.get("objective")
        observation = out.get("metrics") or {}
        counted = value is not None and condition in ("Succeeded", "EarlyStopped")
        if counted and (
            best_so_far is None or (value > best_so_far if maximize else value < best_so_far)
        ):
            best_so_far = value
            best = {
                "trial": step["name"],
                "parameters": out.get("parameters") or {},
                "metrics": {n: m.get(_strategy(objective, n)) for n, m in observation.items()},
                "objective": value,
            }
        trial_series = {
            name: [{"step": p.get("step"), "value": p["value"]} for p in points]
            for name, points in (series.get(step["name"]) or {}).items()
        }
        trials.append(
            {
                "name": step["name"],
                "parameters": out.get("parameters") or {},
                "metrics": observation,
                "objective": value,
                "condition": condition,
                "state": step["state"],
                "started_at": step.get("started_at"),
                "finished_at": step.get("finished_at"),
                "duration_s": step.get("duration_s"),
                "error": step.get("error"),
                "run_id": out.get("run_id"),
                "series": trial_series,
                "intermediate": [p["value"] for p in trial_series.get(metric or "", [])],
            }
        )
        chart.append(
            {
                "index": index,
                "trial": step["name"],
                "objective": value,
                "condition": condition,
                "best_so_far": best_so_far,
            }
        )
    for trial in trials:
        trial["best"] = best is not None and trial["name"] == best["trial"]
    outputs = outputs or {}
    algorithm = spec.get("algorithm") or {}
    early = spec.get("earlyStopping") or {}
    view = {
        "objective": {
            "metric": metric,
            "type": objective.get("type"),
            "goal": objective.get("goal"),
            "additional_metrics": objective.get("additionalMetricNames") or [],
            "strategy": _strategy(objective, metric) if metric else None,
        },
        "algorithm": {
            "name": algorithm.get("algorithmName"),
            "settings": {s["name"]: s["value"] for s in algorithm.get("algorithmSettings") or []},
        },
        "early_stopping": {
            "name": early.get("algorithmName"),
            "settings": {s["name"]: s["value"] for s in early.get("algorithmSettings") or []},
        }
        if early
        else None,
        "parameters": spec.get("parameters") or [],
        "counts": {
            "trials": len(trials),
            "succeeded": counts["Succeeded"],
            "early_stopped": counts["EarlyStopped"],
            "failed": counts["Failed"],
            "metrics_unavailable": counts["MetricsUnavailable"],
            "killed": counts["Killed"],
            "running": counts["Running"],
            "pending": counts["Created"],
            "max_trials": spec.get("maxTrialCount"),
            "parallel_trials": spec.get("parallelTrialCount"),
            "max_failed_trials": spec.get("maxFailedTrialCount"),
        },
        "best": best,
        "trials": trials,
        "chart": chart,
        "reason": outputs.get("reason"),
        "message": outputs.get("message") or job.get("error"),
    }
    return {**job, "tuning": view}


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """`kubelab tune --output json`: `{name, state, best, trials}` (as `kubelab run`'s)."""
    view = job["tuning"]
    best = view["best"]
    return {
        "name": job["name"],
        "id": job["id"],
        "state": job["state"],
        "backend": job.get("backend"),
        "message": view["message"],
        "best": {
            "trial": best["trial"],
            "parameters": best["parameters"],
            "metrics": best["metrics"],
        }
        if best
        else None,
        "trials": [
            {
                "name": t["name"],
                "parameters": t["parameters"],
                "metrics": {n: m.get("latest") for n, m in t["metrics"].items()},
                "objective": t["objective"],
                "state": t["state"],
                "condition": t["condition"],
            }
            for t in view["trials"]
        ],
    }

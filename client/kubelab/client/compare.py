"""What changed between runs: KFP's "Compare runs", from the run store and lineage.

`compare(store, refs)` answers for two or more runs (or jobs, or one step of a job
such as a tuning trial, named `JOB/STEP`), each section aligned with `runs` and each
row marked `changed` when the runs disagree:

* `runs`: who, when, where from (source digest and git state, environment digest);
* `parameters`, `metrics` (final values), `series` (metric points per step/epoch,
  for training nodes and tuning trials; compared job steps share one row per metric);
* `steps`: state, cached or not, duration, image, and whether the step's code
  changed, with a unified diff against the first run (a notebook step's cells);
* `inputs`: the digests of what each step read (declared input artifacts, imported
  data, files read) — which input data changed;
* `outputs`: the digests of what each step wrote and its output parameters (what
  `reproduce` checks);
* `environment`: the environment digests and, when they differ, the distributions
  added, removed or changed against the first run.

Reading is a handful of indexed queries per run, whatever the store holds.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.lineage import FILE, IMPORTER_EXECUTION
from kubelab.pipelines.errors import KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore

MAX_RUNS = 10


@dataclass
class Unit:
    """One compared thing: a run or job, or one step of a job (a tuning trial)."""

    ref: str
    run: dict[str, Any]
    record: dict[str, Any]
    facts: dict[str, Any]
    series: dict[str, dict[str, list[dict[str, Any]]]]
    step: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def _gather(store: RunStore, ref: str) -> Unit:
    step = None
    try:
        run_id = store.resolve_run_id(ref)
    except NotFoundError:
        run_part, sep, step = ref.rpartition("/")
        if not sep:
            raise
        run_id = store.resolve_run_id(run_part)
    run = store.get_run(run_id)
    record = store.lineage.run_record(run_id)
    facts = store.lineage.run_facts(run_id, record)
    if step is None:
        return Unit(
            run_id,
            run,
            record,
            facts,
            store.metric_series(run_id),
            parameters=run["parameters"] or facts.get("parameters") or {},
            metrics=run["metrics"],
        )
    task = store.task_info(run_id, step)
    # The step is the compared unit: its curves line up with the other units' (two
    # trials' loss is one chart with a line each), whatever each step is named.
    series = {"": store.metric_series(run_id, task["name"]).get(task["name"], {})}
    metadata = task.get("metadata") or {}
    parameters = metadata.get("parameters") or task.get("inputs", {}).get("parameters") or {}
    metrics = {
        name: points[-1]["value"]
        for per_task in series.values()
        for name, points in per_task.items()
        if points
    }
    step_run = {**run, "state": task["state"], "steps": []}
    return Unit(
        f"{run_id}/{task['name']}",
        step_run,
        {"execution": None, "facts": {}, "steps": {}},
        facts,
        series,
        step=task["name"],
        parameters=parameters,
        metrics=metrics,
    )


def _changed(values: list[Any]) -> bool:
    return any(v != values[0] for v in values[1:])


def _rows(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: list[str] = []
    for d in dicts:
        names += [n for n in d if n not in names]
    rows = []
    for name in names:
        values = [d.get(name) for d in dicts]
        missing = [name not in d for d in dicts]
        rows.append(
            {
                "name": name,
                "values": values,
                "missing": missing,
                "changed": _changed(values) or _changed(missing),
            }
        )
    return rows


def _code(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except OSError:
        return "(the code snapshot is gone)\n"


def _diff(first: str, other: str, a: str, b: str) -> str:
    return "".join(
        difflib.unified_diff(
            first.splitlines(keepends=True), other.splitlines(keepends=True), a, b, n=2
        )
    )


def _steps(units: list[Unit], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order: list[str] = []
    for unit in units:
        order += [s["name"] for s in unit.run["steps"] if s["name"] not in order]
    rows = []
    for name in order:
        steps = [next((s for s in u.run["steps"] if s["name"] == name), None) for u in units]
        executions = [
            (u.record["steps"].get(name) or {}).get("execution") or {"properties": {}}
            for u in units
        ]
        props = [e["properties"] for e in executions]
        digests = [p.get("code_digest") for p in props]
        known = [d for d in digests if d]
        code_changed = len(set(known)) > 1
        diffs: list[str | None] = [None] * len(units)
        if code_changed and digests[0]:
            first = _code(props[0].get("code"))
            for i in range(1, len(units)):
                if digests[i] and digests[i] != digests[0]:
                    diffs[i] = _diff(
                        first,
                        _code(props[i].get("code")),
                        f"{units[0].ref}/{name}",
                        f"{units[i].ref}/{name}",
                    )
        images = [p.get("image") for p in props]
        display = next((s["display_name"] for s in steps if s), name)
        rows.append(
            {
                "name": name,
                "display_name": display,
                "step": next((p["step"] for p in props if p.get("step")), None),
                "cells": [p.get("cells") for p in props],
                "states": [s["state"] if s else None for s in steps],
                "cached": [bool(s and s["cached"]) for s in steps],
                "durations": [s["duration_s"] if s else None for s in steps],
                "code_digests": digests,
                "code_changed": code_changed,
                "diffs": diffs,
                "images": images,
                "image_changed": _changed(images),
                "parameters_changed": _changed([p.get("inputs") for p in props]),
                "inputs_changed": any(r["changed"] for r in inputs if r["step"] == name),
            }
        )
    return rows


def _artifact_rows(units: list[Unit], section: str) -> list[dict[str, Any]]:
    """Per (step, name): the artifacts' digests in each run (`section`: inputs/outputs)."""
    keys: list[tuple[str, str]] = []
    found: list[dict[tuple[str, str], dict[str, Any]]] = []
    for unit in units:
        # Data enters a run through importers, files read and pipeline input artifacts.
        produced = {a["id"] for s in unit.record["steps"].values() for a in s["outputs"]}
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for task, step in unit.record["steps"].items():
            importer = step["execution"]["type"] == IMPORTER_EXECUTION
            if section == "inputs":
                events = step["inputs"] + (step["outputs"] if importer else [])
            else:
                events = [] if importer else step["outputs"]
            for art in events:
                name = art["event"] if art["index"] == 0 else f"{art['event']}[{art['index']}]"
                key = (task, name)
                by_key[key] = {
                    **art,
                    "external": importer or art["type"] == FILE or art["id"] not in produced,
                }
                if key not in keys:
                    keys.append(key)
        found.append(by_key)
    rows = []
    for task, name in keys:
        arts = [f.get((task, name)) for f in found]
        digests = [a["digest"] if a else None for a in arts]
        first = next(a for a in arts if a)
        rows.append(
            {
                "step": task,
                "name": name,
                "type": first["type"],
                "external": any(a and a["external"] for a in arts),
                "digests": digests,
                "uris": [a["uri"] if a else None for a in arts],
                "changed": _changed(digests),
            }
        )
    return rows


def _output_parameters(units: list[Unit]) -> list[dict[str, Any]]:
    keys: list[tuple[str, str]] = []
    for unit in units:
        for task, step in unit.record["steps"].items():
            for name in step["execution"]["properties"].get("outputs") or {}:
                if (task, name) not in keys:
                    keys.append((task, name))
    rows = []
    for task, name in keys:
        values = [
            ((u.record["steps"].get(task) or {}).get("execution") or {})
            .get("properties", {})
            .get("outputs", {})
            .get(name)
            for u in units
        ]
        rows.append({"step": task, "name": name, "values": values, "changed": _changed(values)})
    return rows


def _series(units: list[Unit]) -> list[dict[str, Any]]:
    keys: list[tuple[str, str]] = []
    for unit in units:
        for task, metrics in unit.series.items():
            keys += [(task, m) for m in metrics if (task, m) not in keys]
    return [
        {
            "task": task,
            "metric": metric,
            "runs": [
                [
                    {"step": p["step"], "value": p["value"], "ts": p["ts"]}
                    for p in u.series.get(task, {}).get(metric, [])
                ]
                for u in units
            ],
        }
        for task, metric in keys
    ]


def _environment(store: RunStore, units: list[Unit]) -> dict[str, Any]:
    envs = [u.facts.get("environment") or {} for u in units]
    digests = [e.get("digest") for e in envs]
    answer: dict[str, Any] = {
        "digests": digests,
        "python": [e.get("python") for e in envs],
        "changed": _changed(digests),
        "differences": [None] * len(units),
    }
    if answer["changed"] and digests[0]:
        first = dict(d.split("==", 1) for d in store.lineage.environment_distributions(digests[0]))
        for i in range(1, len(units)):
            if not digests[i] or digests[i] == digests[0]:
                continue
            other = dict(
                d.split("==", 1) for d in store.lineage.environment_distributions(digests[i])
            )
            answer["differences"][i] = {
                "added": sorted(f"{n}=={v}" for n, v in other.items() if n not in first),
                "removed": sorted(f"{n}=={v}" for n, v in first.items() if n not in other),
                "changed": sorted(
                    f"{n} {first[n]} -> {v}"
                    for n, v in other.items()
                    if n in first and first[n] != v
                ),
            }
    return answer


def _run_header(unit: Unit) -> dict[str, Any]:
    run, facts = unit.run, unit.facts
    source = facts.get("source") or {}
    return {
        "ref": unit.ref,
        "id": run["id"],
        "step": unit.step,
        "name": run["name"],
        "kind": run["kind"],
        "state": run["state"],
        "created_at": run["created_at"],
        "finished_at": run["finished_at"],
        "experiment": run.get("experiment"),
        "user": facts.get("user"),
        "backend": run["backend"],
        "image": facts.get("image"),
        "reproduces": facts.get("reproduces"),
        "source": {
            "path": source.get("path") or run.get("source"),
            "digest": source.get("digest"),
            "git": source.get("git"),
        },
        "environment": facts.get("environment"),
    }


def compare(store: RunStore, refs: list[str]) -> dict[str, Any]:
    """The comparison of 2..10 runs, jobs or job steps (see the module docstring)."""
    if len(refs) < 2:
        raise KubelabError("compare needs at least two runs")
    if len(refs) > MAX_RUNS:
        raise KubelabError(f"compare takes at most {MAX_RUNS} runs at a time")
    units = [_gather(store, ref) for ref in refs]
    sources = [(u.facts.get("source") or {}).get("digest") for u in units]
    inputs = _artifact_rows(units, "inputs")
    return {
        "runs": [_run_header(u) for u in units],
        "source_changed": _changed(sources),
        "parameters": _rows([u.parameters for u in units]),
        "metrics": _rows([u.metrics for u in units]),
        "series": _series(units),
        "steps": _steps(units, inputs),
        "inputs": inputs,
        "outputs": _artifact_rows(units, "outputs"),
        "output_parameters": _output_parameters(units),
        "environment": _environment(store, units),
    }


def reproduction(store: RunStore, original: str, reproduced: str) -> dict[str, Any]:
    """Whether `reproduced` (a re-run of `original`'s snapshot and parameters, without
    the cache) wrote the same outputs, artifact by artifact."""
    comparison = compare(store, [original, reproduced])
    artifacts = [
        {
            "step": row["step"],
            "name": row["name"],
            "type": row["type"],
            "original": row["digests"][0],
            "reproduced": row["digests"][1],
            "equal": not row["changed"] and row["digests"][0] is not None,
        }
        for row in comparison["outputs"]
    ]
    parameters = [
        {
            "step": row["step"],
            "name": row["name"],
            "original": row["values"][0],
            "reproduced": row["values"][1],
            "equal": not row["changed"],
        }
        for row in comparison["output_parameters"]
    ]
    environment = comparison["environment"]
    runs = comparison["runs"]
    warnings = []
    if environment["changed"]:
        warnings.append(
            "the environment differs from the original run's "
            f"({environment['digests'][0]} -> {environment['digests'][1]}): "
            "different outputs may come from different library versions"
        )
    if comparison["source_changed"]:
        warnings.append("the source snapshot differs from the original run's")
    moved = [
        f"{r['step']} {r['name']}" for r in comparison["inputs"] if r["external"] and r["changed"]
    ]
    if moved:
        warnings.append(f"input data differs from what the original run read: {', '.join(moved)}")
    return {
        "run": runs[0]["id"],
        "reproduction": runs[1]["id"],
        "state": runs[1]["state"],
        "equal": runs[1]["state"] == "succeeded"
        and all(a["equal"] for a in artifacts)
        and all(p["equal"] for p in parameters),
        "artifacts": artifacts,
        "output_parameters": parameters,
        "environment": {
            "equal": not environment["changed"],
            "original": environment["digests"][0],
            "reproduced": environment["digests"][1],
            "differences": environment["differences"][1],
        },
        "warnings": warnings,
    }

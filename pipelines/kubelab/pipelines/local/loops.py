"""`dsl.ParallelFor`: a loop task's iterations, run side by side, and their collected outputs.

Owns: `run_loop`. The loop body is a sub-DAG that the scheduler runs (`run_dag`);
this module only expands the items and gathers the outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local.outcomes import Outcome


def run_loop(
    qname: str,
    spec: dict[str, Any],
    component: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
    run_dag: Callable[..., Outcome],
) -> Outcome:
    """Run the loop body (a sub-DAG) once per item, `parallelismLimit` at a time (64
    without one), and collect each output into a list as `dsl.Collected` reads it."""
    iterations: list[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]] = []
    if "parameterIterator" in spec:
        it = spec["parameterIterator"]
        items_spec = it.get("items", {})
        if "raw" in items_spec:
            raw = items_spec["raw"]
            items = json.loads(raw) if isinstance(raw, str) else raw
        else:
            items = params.get(items_spec.get("inputParameter"))
            if isinstance(items, str):
                items = json.loads(items)
        if not isinstance(items, list):
            raise KubelabError(
                f"task {qname!r}: ParallelFor needs a list, got {items!r}", task=qname
            )
        for item in items:
            iterations.append(({**params, it["itemInput"]: item}, artifacts))
    else:
        it = spec["artifactIterator"]
        items = artifacts.get(it.get("items", {}).get("inputArtifact"), [])
        for item in items:
            iterations.append((params, {**artifacts, it["itemInput"]: [item]}))
    limit = int(spec.get("iteratorPolicy", {}).get("parallelismLimit") or 0)
    workers_n = max(1, min(len(iterations), limit if limit > 0 else 64))
    outcomes: list[Outcome] = []
    if iterations:
        with ThreadPoolExecutor(max_workers=workers_n, thread_name_prefix="kubelab-loop") as pool:
            futures = [
                pool.submit(
                    run_dag,
                    component,
                    p,
                    a,
                    prefix=f"{qname}[{i}]/",
                    dag_name=f"{qname}[{i}]",
                )
                for i, (p, a) in enumerate(iterations)
            ]
            outcomes = [f.result() for f in futures]
    out_defs = component.get("outputDefinitions", {})
    collected = {
        k: [o.parameters.get(k) for o in outcomes if k in o.parameters]
        for k in out_defs.get("parameters", {})
    }
    collected_arts = {
        k: [a for o in outcomes for a in o.artifacts.get(k, [])]
        for k in out_defs.get("artifacts", {})
    }
    failed = next((o for o in outcomes if o.state == "failed"), None)
    if failed is not None:
        return Outcome("failed", collected, collected_arts, error=failed.error)
    if any(o.state == "cancelled" for o in outcomes):
        return Outcome("cancelled", collected, collected_arts, error="cancelled")
    return Outcome("succeeded", collected, collected_arts)

"""Kubeflow Pipelines runs as kubelab run JSON (pure: no I/O).

KFP v2 on Argo reports one task detail per Argo node: `root-driver`, `root`,
`<task>-driver`, `<task>` (the task's executor DAG), and `executor` pods, named by
display name only. The user's steps are the IR's container tasks; each is the node
whose display name is the task's name (several nodes inside a loop). A cached step is
one whose executor pod never ran: Argo marks it Skipped under the task's node, which
only the workflow manifest shows (`GET /apis/v1beta1/runs/{id}`): there the task's
node lists its children. Unset timestamps come back as 1970-01-01 (0001-01-01 for
Argo's zero time) and mean "not yet". A terminated run goes CANCELING, then FAILED:
KFP terminates by setting the workflow's `activeDeadlineSeconds` to 0, which is how a
FAILED run is known to have been cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubelab.client.store import FINAL_STATES, iso_time

# KFP RuntimeState -> the store's states; CANCELING is still active.
STATES = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "SKIPPED": "skipped",
    "FAILED": "failed",
    "CANCELING": "running",
    "CANCELED": "cancelled",
    "PAUSED": "running",
    "RUNTIME_STATE_UNSPECIFIED": "pending",
}
# Which state a step with several nodes (loop iterations) shows: the first present.
_PRECEDENCE = ("running", "pending", "failed", "cancelled", "succeeded", "skipped")
# Argo node templates of a task's executor DAG and of its pod (KFP's argocompiler).
_EXECUTOR_DAG = "system-container-executor"
_EXECUTOR_POD = "system-container-impl"


def timestamp(value: Any) -> str | None:
    """An RFC 3339 time in the store's form (UTC, milliseconds), None when unset."""
    return iso_time(epoch(value))


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; None when unset or invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year <= 1970:  # protobuf's zero Timestamp, or Go's zero time
        return None
    return moment.timestamp()


def user_tasks(ir: dict[str, Any]) -> dict[str, str]:
    """Task name -> display name of every container task of the IR, in DAG order."""
    components = ir.get("components", {}) or {}
    dags = [ir.get("root", {}), *components.values()]
    tasks: dict[str, str] = {}
    for dag in dags:
        for name, task in ((dag.get("dag") or {}).get("tasks") or {}).items():
            component = components.get((task.get("componentRef") or {}).get("name", ""), {})
            if "executorLabel" in component:
                tasks.setdefault(name, (task.get("taskInfo") or {}).get("name") or name)
    return tasks


def pod_name(workflow: dict[str, Any], node: dict[str, Any]) -> str:
    """The pod of an Argo node, as KFP's `RetrievePodName` (pod-name format v2)."""
    meta = workflow.get("metadata", {}) or {}
    name = meta.get("name", "")
    if (meta.get("annotations") or {}).get("workflows.argoproj.io/pod-name-format") == "v1":
        return str(node.get("id", ""))
    if node.get("name") == name:
        return name
    suffix = str(node.get("id", "")).rsplit("-", 1)[-1]
    prefix = (
        name if ".inline" in str(node.get("name", "")) else f"{name}-{node.get('templateName')}"
    )
    return f"{prefix}-{suffix}"


def executions(workflow: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Task name -> one record per executor DAG node of that task (several in loops):
    `{cached, attempts, pods, message}`, from the Argo workflow manifest."""
    if not workflow:
        return {}
    nodes: dict[str, dict[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    found: dict[str, list[dict[str, Any]]] = {}
    for node in nodes.values():
        if not str(node.get("templateName", "")).endswith(_EXECUTOR_DAG):
            continue
        below = _descendants(nodes, node)
        pods = [n for n in below if n.get("type") == "Pod"]
        pods.sort(key=lambda n: n.get("startedAt") or "")
        skipped = [n for n in below if n.get("phase") == "Skipped"]
        messages = [n.get("message") for n in [*pods, node] if n.get("message")]
        found.setdefault(str(node.get("displayName")), []).append(
            {
                "cached": not pods and bool(skipped) and node.get("phase") == "Succeeded",
                "attempts": len(pods),
                "pods": [pod_name(workflow, n) for n in pods],
                "message": messages[-1] if messages else None,
            }
        )
    return found


def _descendants(nodes: dict[str, dict[str, Any]], node: dict[str, Any]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    stack = list(node.get("children") or [])
    while stack:
        child = nodes.get(stack.pop())
        if child is None or child in seen:
            continue
        seen.append(child)
        stack.extend(child.get("children") or [])
    return seen


def was_terminated(workflow: dict[str, Any] | None) -> bool:
    return (workflow or {}).get("spec", {}).get("activeDeadlineSeconds") == 0


def step_json(
    name: str,
    display_name: str,
    details: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    *,
    run_state: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """One user step from its task details (`details`) and executions (`runs`)."""
    states = [STATES.get(str(d.get("state")), "pending") for d in details]
    if not details:
        state = "pending" if run_state not in FINAL_STATES else "skipped"
        if run_state == "cancelled":
            state = "cancelled"
    else:
        state = next(s for s in _PRECEDENCE if s in states)
    if state in ("pending", "running") and run_state in FINAL_STATES:
        state = "cancelled" if run_state == "cancelled" else "failed"
    if state == "failed" and run_state == "cancelled":
        state = "cancelled"  # Argo fails the pods a termination kills
    starts = [e for e in (epoch(d.get("start_time")) for d in details) if e is not None]
    ends = [e for e in (epoch(d.get("end_time")) for d in details) if e is not None]
    started = min(starts) if starts else None
    finished = max(ends) if ends and state in FINAL_STATES else None
    errors = [(d.get("error") or {}).get("message") for d in details]
    errors += [r["message"] for r in runs if state == "failed"]
    error = next((e for e in errors if e), None)
    if state == "skipped" and not details and run_state != "cancelled":
        error = "did not run: an upstream step did not succeed"
    return {
        "name": name,
        "display_name": display_name,
        "state": state,
        "started_at": iso_time(started),
        "finished_at": iso_time(finished),
        "duration_s": round(finished - started, 3) if started and finished else None,
        "cached": bool(runs) and all(r["cached"] for r in runs) and state == "succeeded",
        "attempts": max((r["attempts"] for r in runs), default=1 if started else 0),
        "error": error,
        "cells": list(metadata.get("cells", [])),
        "outputs": {},
        **({"pods": [p for r in runs for p in r["pods"]]} if runs else {}),
    }


def run_json(
    run: dict[str, Any],
    *,
    workflow: dict[str, Any] | None = None,
    task_metadata: dict[str, dict[str, Any]] | None = None,
    cancel_requested: bool = False,
) -> dict[str, Any]:
    """The kubelab run JSON of a KFP v2beta1 `Run` (plus its Argo workflow, if read)."""
    state = STATES.get(str(run.get("state")), "pending")
    if state == "failed" and (cancel_requested or was_terminated(workflow)):
        state = "cancelled"
    task_metadata = task_metadata or {}
    details = ((run.get("run_details") or {}).get("task_details")) or []
    by_name: dict[str, list[dict[str, Any]]] = {}
    for detail in details:
        by_name.setdefault(str(detail.get("display_name")), []).append(detail)
    execs = executions(workflow)
    ir = run.get("pipeline_spec") or {}
    if "pipeline_spec" in ir and "root" not in ir:  # {pipeline_spec, platform_spec}
        ir = ir["pipeline_spec"]
    tasks = user_tasks(ir) or {name: name for name in task_metadata}
    steps = [
        step_json(
            name,
            display,
            by_name.get(name, []),
            execs.get(name, []),
            run_state=state,
            metadata=task_metadata.get(name, {}),
        )
        for name, display in tasks.items()
    ]
    error = (run.get("error") or {}).get("message")
    if not error and state == "failed":
        failed = next((s for s in steps if s["state"] == "failed"), None)
        error = (
            f"step {failed['name']} failed: {failed['error'] or 'see its log'}" if failed else None
        )
    if state == "cancelled":
        error = error or "cancelled"
    return {
        "id": run.get("run_id"),
        "name": run.get("display_name") or run.get("run_id"),
        "kind": "pipeline",
        "backend": "kubernetes",
        "state": state,
        "created_at": timestamp(run.get("created_at")),
        "finished_at": timestamp(run.get("finished_at")) if state in FINAL_STATES else None,
        "parameters": (run.get("runtime_config") or {}).get("parameters") or {},
        "metrics": {},
        "outputs": {},
        "error": error,
        "source": None,
        "steps": steps,
        "experiment_id": run.get("experiment_id"),
    }


def needs_workflow(run: dict[str, Any]) -> bool:
    """Whether the task details alone leave something unknown: a step that may have
    been cached (a SKIPPED node), or why a FAILED run failed (terminated? which pod?)."""
    if run.get("state") == "FAILED":
        return True
    details = ((run.get("run_details") or {}).get("task_details")) or []
    return any(d.get("state") == "SKIPPED" for d in details)


def disable_caching(ir: dict[str, Any]) -> dict[str, Any]:
    """The IR with caching off for every root task, as kfp.Client does for
    `enable_caching=False` (compile-time settings of nested tasks are kept)."""
    tasks = {
        name: {
            **task,
            "cachingOptions": {**(task.get("cachingOptions") or {}), "enableCache": False},
        }
        for name, task in ((ir.get("root") or {}).get("dag") or {}).get("tasks", {}).items()
    }
    return {**ir, "root": {**ir["root"], "dag": {**ir["root"]["dag"], "tasks": tasks}}}

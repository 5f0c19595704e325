"""A training job's state on a cluster, from its object, its pods and their events.

The job's conditions decide the state (as the Kubeflow SDK reads them: TrainJob
`Complete`/`Failed`, PyTorchJob `Created`/`Running`/`Succeeded`/`Failed`), with their
reason and message. Pods give the per-node steps (`node-0`… from the JobSet index or
the PyTorchJob replica type and index). Warning events are read too, because many
failures show only there (an image that cannot be pulled, a pod that cannot be
scheduled): they are added to the message of the job and of the node they concern.
Pure: the client's Kubernetes backend reads the objects and passes them in.
"""

from __future__ import annotations

from typing import Any

POD_STATES = {
    "Pending": "pending",
    "Running": "running",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Unknown": "pending",
}
# Waiting reasons that will not fix themselves: the node has failed.
STUCK_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
)
JOBSET_INDEX = "batch.kubernetes.io/job-completion-index"
JOBSET_ROLE = "jobset.sigs.k8s.io/replicatedjob-name"
PYTORCH_TYPE = "training.kubeflow.org/replica-type"
PYTORCH_INDEX = "training.kubeflow.org/replica-index"


def _true(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == kind and str(condition.get("status")) == "True":
            return condition
    return None


def _describe(condition: dict[str, Any]) -> str:
    reason, message = condition.get("reason") or "", condition.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message


def node_of(pod: dict[str, Any]) -> str | None:
    """`node-N` of a training pod, or None for pods that are not training nodes."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(JOBSET_ROLE) == "node" and str(labels.get(JOBSET_INDEX, "")).isdigit():
        return f"node-{labels[JOBSET_INDEX]}"
    kind = str(labels.get(PYTORCH_TYPE, "")).lower()
    index = str(labels.get(PYTORCH_INDEX, ""))
    if kind == "master" and index.isdigit():
        return "node-0"
    if kind == "worker" and index.isdigit():
        return f"node-{int(index) + 1}"
    return None


def _pod_step(pod: dict[str, Any]) -> dict[str, Any]:
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or [{}]
    container = next((c for c in containers if c.get("name") in ("node", "pytorch")), containers[0])
    state = POD_STATES.get(status.get("phase") or "Pending", "pending")
    message = None
    times: dict[str, str] = {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != container.get("name"):
            continue
        now = cs.get("state") or {}
        if "waiting" in now and now["waiting"].get("reason"):
            waiting = now["waiting"]
            message = _describe(waiting)
            if waiting["reason"] in STUCK_REASONS:
                state = "failed"
        ran = now.get("running") or now.get("terminated") or {}
        if ran.get("startedAt"):
            times["started_at"] = str(ran["startedAt"])
        if "terminated" in now:
            if now["terminated"].get("finishedAt"):
                times["finished_at"] = str(now["terminated"]["finishedAt"])
            if now["terminated"].get("exitCode", 0) != 0:
                message = (
                    _describe(now["terminated"]) or f"exit code {now['terminated']['exitCode']}"
                )
    limits = (container.get("resources") or {}).get("limits") or {}
    gpu = next((v for k, v in limits.items() if k.endswith("/gpu") or "/mig-" in k), None)
    return {
        "state": state,
        "message": message,
        "pod": (pod.get("metadata") or {}).get("name"),
        "container": container.get("name"),
        "node": spec.get("nodeName"),
        "device": "gpu" if gpu else "cpu",
        "device_count": str(gpu) if gpu else str(limits.get("cpu", "")) or None,
        **times,  # ISO 8601, when the container has started (and ended)
    }


def _warnings(events: list[dict[str, Any]], name: str) -> list[str]:
    found = []
    for event in events:
        if event.get("type") != "Warning":
            continue
        if ((event.get("involvedObject") or {}).get("name")) != name:
            continue
        text = _describe(event)
        if text and text not in found:
            found.append(text)
    return found


def state(
    objects: list[dict[str, Any]], pods: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """`{state, message, steps, metrics}` of the job (see `Workload.cluster_state`)."""
    job = next(
        (o for o in objects if o.get("kind") in ("TrainJob", "PyTorchJob")),
        objects[0] if objects else {},
    )
    kind = job.get("kind")
    name = (job.get("metadata") or {}).get("name") or ""
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    conditions = status.get("conditions") or []
    if kind == "PyTorchJob":
        replicas = spec.get("pytorchReplicaSpecs") or {}
        num_nodes = sum(int(r.get("replicas") or 1) for r in replicas.values()) or 1
    else:
        num_nodes = int((spec.get("trainer") or {}).get("numNodes") or 1)

    steps: dict[str, dict[str, Any]] = {f"node-{i}": {"state": "pending"} for i in range(num_nodes)}
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        node = node_of(pod)
        if node is None:
            continue
        step = _pod_step(pod)
        if step["state"] in ("pending", "failed"):
            # an eviction, a failed mount or scheduling: often told only by the pod's events
            said = [step["message"], *_warnings(events, step["pod"] or "")]
            step["message"] = "; ".join(dict.fromkeys(m for m in said if m)) or None
        steps[node] = step

    message = ""
    failed = _true(conditions, "Failed")
    done = _true(conditions, "Complete") or _true(conditions, "Succeeded")
    if failed:
        job_state, message = "failed", _describe(failed)
    elif done:
        job_state, message = "succeeded", _describe(done)
    elif _true(conditions, "Suspended"):
        job_state, message = "pending", _describe(_true(conditions, "Suspended") or {})
    elif _true(conditions, "Running") or (
        steps and all(s["state"] in ("running", "succeeded") for s in steps.values())
    ):
        job_state = "running"
    else:
        job_state = "pending"
    if job_state != "succeeded" and any(s["state"] == "failed" for s in steps.values()):
        # A node that cannot start (bad image) fails the job before the controller says so.
        bad = next(n for n, s in steps.items() if s["state"] == "failed")
        if job_state != "failed":
            job_state = "failed"
            message = f"{bad}: {steps[bad].get('message') or 'failed'}"
    notes = _warnings(events, name)
    if job_state in ("pending", "failed"):
        for step in steps.values():
            if step.get("message") and step["state"] in ("pending", "failed"):
                notes.append(step["message"])
    extra = [n for n in dict.fromkeys(notes) if n and n not in message]
    if extra and job_state in ("pending", "failed"):
        message = "; ".join([message, *extra] if message else extra)

    metrics: dict[str, float] = {}
    for item in (status.get("trainerStatus") or {}).get("metrics") or []:
        try:
            metrics[item["name"]] = float(item["value"])
        except (KeyError, TypeError, ValueError):
            continue
    return {"state": job_state, "message": message or None, "steps": steps, "metrics": metrics}

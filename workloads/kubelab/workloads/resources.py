"""Container resources and scheduling of a job's pods, from the user's profile.

The profile is the non-secret summary the spawner records (`Profile.summary()`:
cpu/memory guarantee and limit, gpu count and resource key), optionally with the
profile's `node_selector` and `tolerations`. Pure functions: the Kubernetes objects
of every workload (TrainJob, Experiment trial, InferenceService) take their
`resources`, `nodeSelector` and `tolerations` from here.
"""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.errors import KubelabError

DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


def quantity(value: Any) -> str:
    """A Kubernetes quantity string: the API refuses numbers (`"1"`, `"500m"`, `"2Gi"`)."""
    if isinstance(value, bool):
        raise KubelabError(f"{value!r} is not a resource quantity")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{round(value * 1000)}m"
    return str(value)


def container_resources(
    profile: dict[str, Any] | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`{requests, limits}` for one container: the profile's guarantees and limits,
    with `overrides` (`cpu`, `memory`, `gpu`) setting request and limit alike.

    GPUs (extended resources) get requests equal to limits, as the API requires; a
    GPU count above the profile's is refused.
    """
    profile = profile or {}
    overrides = overrides or {}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for key in ("cpu", "memory"):
        amounts = profile.get(key) or {}
        if amounts.get("guarantee") is not None:
            requests[key] = quantity(amounts["guarantee"])
        if amounts.get("limit") is not None:
            limits[key] = quantity(amounts["limit"])
        if overrides.get(key) is not None:
            requests[key] = limits[key] = quantity(overrides[key])
    gpu = profile.get("gpu") or {}
    allowed = int(gpu.get("count") or 0)
    count = allowed if overrides.get("gpu") is None else int(overrides["gpu"])
    if count > allowed:
        name = profile.get("display_name") or profile.get("slug") or "your profile"
        raise KubelabError(
            f"{count} GPU(s) asked, but {name} allows {allowed}", field="resources.gpu"
        )
    if count:
        key = gpu.get("resource") or DEFAULT_GPU_RESOURCE
        requests[key] = limits[key] = str(count)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def scheduling(profile: dict[str, Any] | None) -> dict[str, Any]:
    """The profile's `nodeSelector` and `tolerations`, as pod spec fields."""
    profile = profile or {}
    fields: dict[str, Any] = {}
    if profile.get("node_selector"):
        fields["nodeSelector"] = dict(profile["node_selector"])
    if profile.get("tolerations"):
        fields["tolerations"] = [dict(t) for t in profile["tolerations"]]
    return fields

"""Kubernetes-only task settings, with kfp-kubernetes' API (`from kfp import kubernetes`).

They land in the task's `platform_config["kubernetes"]`, which the compiler writes
as a second YAML document (the PlatformSpec) in KFP's KubernetesExecutorConfig
shape. The local engine ignores them; a Kubeflow Pipelines cluster applies them.
"""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.errors import KubelabError

_PULL_POLICIES = ("Always", "Never", "IfNotPresent")
_TOLERATION_OPERATORS = ("Exists", "Equal")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _config(task: PipelineTask, what: str) -> dict[str, Any]:
    if not isinstance(task, PipelineTask):
        raise KubelabError(f"kubernetes.{what} takes a task, got {type(task).__name__}.")
    if not task.component.runs_in_container:
        raise KubelabError(
            f"kubernetes.{what}: task '{task.name}' does not run a container.", task=task.name
        )
    return task.platform_config.setdefault("kubernetes", {})


def _text(task: PipelineTask, what: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise KubelabError(
            f"kubernetes.{what}: {field} must be a non-empty string, got {value!r}.",
            task=task.name,
            field=field,
        )
    return value


def _constant(value: str) -> dict[str, Any]:
    return {"runtimeValue": {"constant": value}}


def add_node_selector(task: PipelineTask, label_key: str, label_value: str) -> PipelineTask:
    """Schedule the task's pod on nodes with this label."""
    config = _config(task, "add_node_selector")
    labels = config.setdefault("nodeSelector", {}).setdefault("labels", {})
    labels[_text(task, "add_node_selector", "label_key", label_key)] = str(label_value)
    return task


def add_toleration(
    task: PipelineTask,
    key: str | None = None,
    operator: str = "Equal",
    value: str | None = None,
    effect: str | None = None,
    toleration_seconds: int | None = None,
) -> PipelineTask:
    """Let the task's pod run on nodes with a matching taint (e.g. GPU nodes)."""
    config = _config(task, "add_toleration")
    if operator not in _TOLERATION_OPERATORS:
        raise KubelabError(
            f"kubernetes.add_toleration: operator must be one of {_TOLERATION_OPERATORS}, "
            f"got {operator!r}.",
            task=task.name,
            field="operator",
        )
    if effect is not None and effect not in _TOLERATION_EFFECTS:
        raise KubelabError(
            f"kubernetes.add_toleration: effect must be one of {_TOLERATION_EFFECTS}, "
            f"got {effect!r}.",
            task=task.name,
            field="effect",
        )
    toleration: dict[str, Any] = {"operator": operator}
    for field, given in (("key", key), ("value", value), ("effect", effect)):
        if given is not None:
            toleration[field] = given
    if toleration_seconds is not None:
        toleration["tolerationSeconds"] = str(int(toleration_seconds))
    config.setdefault("tolerations", []).append(toleration)
    return task


def use_secret_as_env(
    task: PipelineTask,
    secret_name: str,
    secret_key_to_env: dict[str, str],
    optional: bool = False,
) -> PipelineTask:
    """Expose keys of a Kubernetes Secret as environment variables."""
    config = _config(task, "use_secret_as_env")
    name = _text(task, "use_secret_as_env", "secret_name", secret_name)
    config.setdefault("secretAsEnv", []).append(
        {
            "secretName": name,
            "secretNameParameter": _constant(name),
            "keyToEnv": [{"secretKey": k, "envVar": v} for k, v in secret_key_to_env.items()],
            "optional": bool(optional),
        }
    )
    return task


def use_secret_as_volume(
    task: PipelineTask, secret_name: str, mount_path: str, optional: bool = False
) -> PipelineTask:
    """Mount a Kubernetes Secret as files under `mount_path`."""
    config = _config(task, "use_secret_as_volume")
    name = _text(task, "use_secret_as_volume", "secret_name", secret_name)
    config.setdefault("secretAsVolume", []).append(
        {
            "secretName": name,
            "secretNameParameter": _constant(name),
            "mountPath": _text(task, "use_secret_as_volume", "mount_path", mount_path),
            "optional": bool(optional),
        }
    )
    return task


def use_config_map_as_env(
    task: PipelineTask,
    config_map_name: str,
    config_map_key_to_env: dict[str, str],
    optional: bool = False,
) -> PipelineTask:
    """Expose keys of a ConfigMap as environment variables."""
    config = _config(task, "use_config_map_as_env")
    name = _text(task, "use_config_map_as_env", "config_map_name", config_map_name)
    config.setdefault("configMapAsEnv", []).append(
        {
            "configMapName": name,
            "configMapNameParameter": _constant(name),
            "keyToEnv": [
                {"configMapKey": k, "envVar": v} for k, v in config_map_key_to_env.items()
            ],
            "optional": bool(optional),
        }
    )
    return task


def mount_pvc(task: PipelineTask, pvc_name: str, mount_path: str) -> PipelineTask:
    """Mount an existing PersistentVolumeClaim at `mount_path`."""
    config = _config(task, "mount_pvc")
    name = _text(task, "mount_pvc", "pvc_name", pvc_name)
    config.setdefault("pvcMount", []).append(
        {
            "constant": name,
            "pvcNameParameter": _constant(name),
            "mountPath": _text(task, "mount_pvc", "mount_path", mount_path),
        }
    )
    return task


def add_pod_label(task: PipelineTask, label_key: str, label_value: str) -> PipelineTask:
    config = _config(task, "add_pod_label")
    labels = config.setdefault("podMetadata", {}).setdefault("labels", {})
    labels[_text(task, "add_pod_label", "label_key", label_key)] = str(label_value)
    return task


def add_pod_annotation(
    task: PipelineTask, annotation_key: str, annotation_value: str
) -> PipelineTask:
    config = _config(task, "add_pod_annotation")
    annotations = config.setdefault("podMetadata", {}).setdefault("annotations", {})
    annotations[_text(task, "add_pod_annotation", "annotation_key", annotation_key)] = str(
        annotation_value
    )
    return task


def set_image_pull_policy(task: PipelineTask, policy: str) -> PipelineTask:
    config = _config(task, "set_image_pull_policy")
    if policy not in _PULL_POLICIES:
        raise KubelabError(
            f"kubernetes.set_image_pull_policy: policy must be one of {_PULL_POLICIES}, "
            f"got {policy!r}.",
            task=task.name,
            field="policy",
        )
    config["imagePullPolicy"] = policy
    return task


def set_image_pull_secrets(task: PipelineTask, secret_names: list[str]) -> PipelineTask:
    config = _config(task, "set_image_pull_secrets")
    config["imagePullSecret"] = [
        {
            "secretName": _text(task, "set_image_pull_secrets", "secret_names", name),
            "secretNameParameter": _constant(name),
        }
        for name in secret_names
    ]
    return task


def set_timeout(task: PipelineTask, seconds: int) -> PipelineTask:
    """Kill the task's pod after `seconds` (activeDeadlineSeconds)."""
    config = _config(task, "set_timeout")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise KubelabError(
            f"kubernetes.set_timeout: seconds must be a non-negative int, got {seconds!r}.",
            task=task.name,
            field="seconds",
        )
    if seconds:
        config["activeDeadlineSeconds"] = str(seconds)
    else:
        config.pop("activeDeadlineSeconds", None)
    return task

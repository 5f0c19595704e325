"""Kubernetes-only task settings, with kfp-kubernetes' API (`from kfp import kubernetes`).

They land in the task's `platform_config["kubernetes"]`, which the compiler writes
as a second YAML document (the PlatformSpec) in kfp-kubernetes' KubernetesExecutorConfig
shape. A name may be a pipeline parameter or a task output: the config then holds
the channel itself, which the compiler turns into a reference from the task's DAG
(a `{INLINE_REFERENCE: channel}` entry is merged into its mapping, for the
deprecated `pvcMount` fields). The local engine ignores these settings; a Kubeflow
Pipelines cluster applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl.container_component import ContainerSpec, container_component
from kubelab.pipelines.dsl.pipeline_channel import PipelineChannel
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.dsl.type_annotations import OutputPath
from kubelab.pipelines.errors import KubelabError

__all__ = [
    "INLINE_REFERENCE",
    "CreatePVC",
    "DeletePVC",
    "add_ephemeral_volume",
    "add_node_affinity",
    "add_node_affinity_json",
    "add_node_selector",
    "add_node_selector_json",
    "add_pod_annotation",
    "add_pod_label",
    "add_toleration",
    "add_toleration_json",
    "empty_dir_mount",
    "mount_pvc",
    "set_image_pull_policy",
    "set_image_pull_secrets",
    "set_security_context",
    "set_timeout",
    "use_config_map_as_env",
    "use_config_map_as_volume",
    "use_field_path_as_env",
    "use_secret_as_env",
    "use_secret_as_volume",
]

INLINE_REFERENCE = "$reference"
_PULL_POLICIES = ("Always", "Never", "IfNotPresent")
_TOLERATION_OPERATORS = ("Exists", "Equal")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_AFFINITY_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


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


def _parameter(task: PipelineTask, what: str, field: str, value: Any) -> Any:
    """A constant as KFP's `runtimeValue`, or a parameter channel the task now reads."""
    if isinstance(value, PipelineTask):
        value = value.output
    if isinstance(value, PipelineChannel):
        if value.is_artifact:
            raise KubelabError(
                f"kubernetes.{what}: {field} must be a parameter, got {value.describe()}.",
                task=task.name,
                field=field,
            )
        task.platform_channels.append(value)
        if value.task is not None:
            task.after(value.task)
        return value
    if isinstance(value, str):
        value = _text(task, what, field, value)
    elif not isinstance(value, (dict, list)):
        raise KubelabError(
            f"kubernetes.{what}: {field} must be a string, a dict or a pipeline channel, "
            f"got {value!r}.",
            task=task.name,
            field=field,
        )
    return {"runtimeValue": {"constant": value}}


def _named(
    task: PipelineTask, what: str, field: str, name: Any, body: dict[str, Any], key: str
) -> dict[str, Any]:
    """`<key>Parameter` for a name, plus the deprecated `<key>` when it is a constant."""
    entry = dict(body)
    entry[f"{key}Parameter"] = _parameter(task, what, field, name)
    if isinstance(name, str):
        entry[key] = name
    return entry


def add_node_selector(task: PipelineTask, label_key: str, label_value: str) -> PipelineTask:
    """Schedule the task's pod on nodes with this label."""
    config = _config(task, "add_node_selector")
    key = _text(task, "add_node_selector", "label_key", label_key)
    config.setdefault("nodeSelector", {}).setdefault("labels", {})[key] = str(label_value)
    return task


def add_node_selector_json(task: PipelineTask, node_selector_json: Any) -> PipelineTask:
    """A whole node selector (a dict or a parameter holding one)."""
    config = _config(task, "add_node_selector_json")
    reference = _parameter(task, "add_node_selector_json", "node_selector_json", node_selector_json)
    config.setdefault("nodeSelector", {})["nodeSelectorJson"] = reference
    return task


def add_toleration(
    task: PipelineTask,
    key: str | None = None,
    operator: str | None = None,
    value: str | None = None,
    effect: str | None = None,
    toleration_seconds: int | None = None,
) -> PipelineTask:
    """Let the task's pod run on nodes with a matching taint (e.g. GPU nodes)."""
    config = _config(task, "add_toleration")
    for field, given, allowed in (
        ("operator", operator, _TOLERATION_OPERATORS),
        ("effect", effect, _TOLERATION_EFFECTS),
    ):
        if given is not None and given not in allowed:
            raise KubelabError(
                f"kubernetes.add_toleration: {field} must be one of {allowed}, got {given!r}.",
                task=task.name,
                field=field,
            )
    toleration: dict[str, Any] = {}
    for field, given in (
        ("key", key),
        ("operator", operator),
        ("value", value),
        ("effect", effect),
    ):
        if given:
            toleration[field] = given
    if toleration_seconds is not None:
        toleration["tolerationSeconds"] = str(int(toleration_seconds))
    config.setdefault("tolerations", []).append(toleration)
    return task


def add_toleration_json(task: PipelineTask, toleration_json: Any) -> PipelineTask:
    """Tolerations from a dict, a list of dicts, or a parameter holding them."""
    if isinstance(toleration_json, (PipelineChannel, PipelineTask)):
        config = _config(task, "add_toleration_json")
        reference = _parameter(task, "add_toleration_json", "toleration_json", toleration_json)
        config.setdefault("tolerations", []).append({"tolerationJson": reference})
        return task
    items = toleration_json if isinstance(toleration_json, list) else [toleration_json]
    for item in items:
        if not isinstance(item, dict):
            raise KubelabError(
                "kubernetes.add_toleration_json takes a dict, a list of dicts or a "
                f"pipeline parameter, got {item!r}.",
                task=getattr(task, "name", None),
            )
        add_toleration(
            task,
            key=item.get("key"),
            operator=item.get("operator"),
            value=item.get("value"),
            effect=item.get("effect"),
            toleration_seconds=item.get("toleration_seconds"),
        )
    return task


def add_node_affinity(
    task: PipelineTask,
    match_expressions: list[dict] | None = None,
    match_fields: list[dict] | None = None,
    weight: int | None = None,
) -> PipelineTask:
    """A node affinity term; with `weight` (1-100) it is preferred, not required."""
    config = _config(task, "add_node_affinity")
    term: dict[str, Any] = {}
    for field, key, selectors in (
        ("match_expressions", "matchExpressions", match_expressions),
        ("match_fields", "matchFields", match_fields),
    ):
        for selector in selectors or []:
            operator = selector.get("operator")
            if not selector.get("key") or operator not in _AFFINITY_OPERATORS:
                raise KubelabError(
                    f"kubernetes.add_node_affinity: each of {field} needs a 'key' and an "
                    f"'operator' among {_AFFINITY_OPERATORS}, got {selector!r}.",
                    task=task.name,
                    field=field,
                )
            entry = {"key": selector["key"], "operator": operator}
            if selector.get("values"):
                entry["values"] = list(selector["values"])
            term.setdefault(key, []).append(entry)
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
            raise KubelabError(
                f"kubernetes.add_node_affinity: weight must be between 1 and 100, got {weight!r}.",
                task=task.name,
                field="weight",
            )
        term["weight"] = weight
    config.setdefault("nodeAffinity", []).append(term)
    return task


def add_node_affinity_json(task: PipelineTask, node_affinity_json: Any) -> PipelineTask:
    """A V1NodeAffinity as JSON (or a parameter holding one); replaces an earlier one."""
    config = _config(task, "add_node_affinity_json")
    if isinstance(node_affinity_json, dict):
        known = {
            "requiredDuringSchedulingIgnoredDuringExecution",
            "preferredDuringSchedulingIgnoredDuringExecution",
        }
        unknown = set(node_affinity_json) - known
        if unknown:
            raise KubelabError(
                f"kubernetes.add_node_affinity_json: not a V1NodeAffinity, unknown fields "
                f"{sorted(unknown)} (expected {sorted(known)}).",
                task=task.name,
                field="node_affinity_json",
            )
    reference = _parameter(task, "add_node_affinity_json", "node_affinity_json", node_affinity_json)
    terms = [t for t in config.get("nodeAffinity", []) if "nodeAffinityJson" not in t]
    config["nodeAffinity"] = [*terms, {"nodeAffinityJson": reference}]
    return task


def _add_named(
    task: PipelineTask,
    what: str,
    section: str,
    name_field: str,
    name: Any,
    key: str,
    body: Callable[[], dict[str, Any]],
) -> PipelineTask:
    """Append an entry named by a Secret or ConfigMap (a constant or a channel)."""
    config = _config(task, what)
    entry = _named(task, what, name_field, name, body(), key)
    config.setdefault(section, []).append(entry)
    return task


def _key_to_env(key: str, mapping: dict[str, str], optional: bool) -> dict[str, Any]:
    return {"keyToEnv": [{key: k, "envVar": v} for k, v in mapping.items()], "optional": optional}


def _mount(task: PipelineTask, what: str, mount_path: str, optional: bool) -> dict[str, Any]:
    return {"mountPath": _text(task, what, "mount_path", mount_path), "optional": bool(optional)}


def use_secret_as_env(
    task: PipelineTask,
    secret_name: Any,
    secret_key_to_env: dict[str, str],
    optional: bool = False,
) -> PipelineTask:
    """Expose keys of a Kubernetes Secret as environment variables."""
    return _add_named(
        task,
        "use_secret_as_env",
        "secretAsEnv",
        "secret_name",
        secret_name,
        "secretName",
        lambda: _key_to_env("secretKey", secret_key_to_env, bool(optional)),
    )


def use_secret_as_volume(
    task: PipelineTask, secret_name: Any, mount_path: str, optional: bool = False
) -> PipelineTask:
    """Mount a Kubernetes Secret as files under `mount_path`."""
    what = "use_secret_as_volume"
    return _add_named(
        task,
        what,
        "secretAsVolume",
        "secret_name",
        secret_name,
        "secretName",
        lambda: _mount(task, what, mount_path, optional),
    )


def use_config_map_as_env(
    task: PipelineTask,
    config_map_name: Any,
    config_map_key_to_env: dict[str, str],
    optional: bool = False,
) -> PipelineTask:
    """Expose keys of a ConfigMap as environment variables."""
    return _add_named(
        task,
        "use_config_map_as_env",
        "configMapAsEnv",
        "config_map_name",
        config_map_name,
        "configMapName",
        lambda: _key_to_env("configMapKey", config_map_key_to_env, bool(optional)),
    )


def use_config_map_as_volume(
    task: PipelineTask, config_map_name: Any, mount_path: str, optional: bool = False
) -> PipelineTask:
    """Mount a ConfigMap as files under `mount_path`."""
    what = "use_config_map_as_volume"
    return _add_named(
        task,
        what,
        "configMapAsVolume",
        "config_map_name",
        config_map_name,
        "configMapName",
        lambda: _mount(task, what, mount_path, optional),
    )


def use_field_path_as_env(task: PipelineTask, env_name: str, field_path: str) -> PipelineTask:
    """An environment variable from the pod's own fields (Downward API), e.g. metadata.name."""
    config = _config(task, "use_field_path_as_env")
    entry = {
        "name": _text(task, "use_field_path_as_env", "env_name", env_name),
        "fieldPath": _text(task, "use_field_path_as_env", "field_path", field_path),
    }
    config.setdefault("fieldPathAsEnv", []).append(entry)
    return task


def mount_pvc(
    task: PipelineTask, pvc_name: Any, mount_path: str, sub_path: str = ""
) -> PipelineTask:
    """Mount a PersistentVolumeClaim (a name, a parameter or CreatePVC's output)."""
    config = _config(task, "mount_pvc")
    entry: dict[str, Any] = {"mountPath": _text(task, "mount_pvc", "mount_path", mount_path)}
    if sub_path:
        entry["subPath"] = sub_path
    reference = _parameter(task, "mount_pvc", "pvc_name", pvc_name)
    entry["pvcNameParameter"] = reference
    if isinstance(reference, PipelineChannel):
        entry[INLINE_REFERENCE] = reference
    else:
        entry["constant"] = pvc_name
    config.setdefault("pvcMount", []).append(entry)
    return task


def empty_dir_mount(
    task: PipelineTask,
    volume_name: str,
    mount_path: str,
    medium: str | None = None,
    size_limit: str | None = None,
) -> PipelineTask:
    """A scratch emptyDir volume (medium='Memory' for a tmpfs)."""
    config = _config(task, "empty_dir_mount")
    entry = {
        "volumeName": _text(task, "empty_dir_mount", "volume_name", volume_name),
        "mountPath": _text(task, "empty_dir_mount", "mount_path", mount_path),
    }
    if medium:
        entry["medium"] = medium
    if size_limit:
        entry["sizeLimit"] = size_limit
    config.setdefault("emptyDirMounts", []).append(entry)
    return task


def add_ephemeral_volume(
    task: PipelineTask,
    volume_name: str,
    mount_path: str,
    access_modes: list[str],
    size: str,
    storage_class_name: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> PipelineTask:
    """A generic ephemeral volume: a PVC created with the pod and deleted with it."""
    config = _config(task, "add_ephemeral_volume")
    entry: dict[str, Any] = {
        "volumeName": _text(task, "add_ephemeral_volume", "volume_name", volume_name),
        "mountPath": _text(task, "add_ephemeral_volume", "mount_path", mount_path),
        "accessModes": list(access_modes),
        "size": _text(task, "add_ephemeral_volume", "size", size),
    }
    if storage_class_name is None:
        entry["defaultStorageClass"] = True
    else:
        entry["storageClassName"] = storage_class_name
    metadata = {k: dict(v) for k, v in (("labels", labels), ("annotations", annotations)) if v}
    if metadata:
        entry["metadata"] = metadata
    config.setdefault("genericEphemeralVolume", []).append(entry)
    return task


def set_security_context(
    task: PipelineTask,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    run_as_non_root: bool | None = None,
) -> PipelineTask:
    """The container's user, group and non-root requirement."""
    config = _config(task, "set_security_context")
    if run_as_user is None and run_as_group is None and run_as_non_root is None:
        raise KubelabError(
            "kubernetes.set_security_context: give at least one of run_as_user, "
            "run_as_group, run_as_non_root.",
            task=task.name,
        )
    context: dict[str, Any] = {}
    for field, key, given in (
        ("run_as_user", "runAsUser", run_as_user),
        ("run_as_group", "runAsGroup", run_as_group),
    ):
        if given is None:
            continue
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise KubelabError(
                f"kubernetes.set_security_context: {field} must be an int >= 0, got {given!r}.",
                task=task.name,
                field=field,
            )
        context[key] = str(given)
    if run_as_non_root is not None:
        if not isinstance(run_as_non_root, bool):
            raise KubelabError(
                "kubernetes.set_security_context: run_as_non_root must be a bool.",
                task=task.name,
                field="run_as_non_root",
            )
        context["runAsNonRoot"] = run_as_non_root
    config.setdefault("securityContext", {}).update(context)
    return task


def add_pod_label(task: PipelineTask, label_key: str, label_value: str) -> PipelineTask:
    config = _config(task, "add_pod_label")
    key = _text(task, "add_pod_label", "label_key", label_key)
    config.setdefault("podMetadata", {}).setdefault("labels", {})[key] = str(label_value)
    return task


def add_pod_annotation(
    task: PipelineTask, annotation_key: str, annotation_value: str
) -> PipelineTask:
    config = _config(task, "add_pod_annotation")
    key = _text(task, "add_pod_annotation", "annotation_key", annotation_key)
    annotations = config.setdefault("podMetadata", {}).setdefault("annotations", {})
    annotations[key] = str(annotation_value)
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


def set_image_pull_secrets(task: PipelineTask, secret_names: list[Any]) -> PipelineTask:
    config = _config(task, "set_image_pull_secrets")
    entries = [
        _named(task, "set_image_pull_secrets", "secret_names", name, {}, "secretName")
        for name in secret_names
    ]
    config.setdefault("imagePullSecret", []).extend(entries)
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


# Kubeflow Pipelines' driver creates and deletes the claim itself: the images are stubs
# that it recognises. The descriptions are kubelab's own wording (kfp-kubernetes' differ).
@container_component
def CreatePVC(
    name: OutputPath(str),
    access_modes: list,
    size: str,
    pvc_name: str | None = None,
    pvc_name_suffix: str | None = None,
    storage_class_name: str | None = "",
    volume_name: str | None = None,
    annotations: dict | None = None,
    data_source: dict | None = None,
) -> ContainerSpec:
    """Create a PersistentVolumeClaim that later tasks mount with `mount_pvc`.

    Args:
        access_modes: The claim's access modes, e.g. ``['ReadWriteOnce']``.
        size: Storage to request, e.g. ``'5Gi'``.
        pvc_name: A fixed name for the claim (or give ``pvc_name_suffix``).
        pvc_name_suffix: The claim is named ``<run name>-<suffix>``.
        storage_class_name: The StorageClass; ``None`` for the cluster default,
            ``''`` for a statically provisioned volume.
        volume_name: An existing PersistentVolume to bind (static provisioning).
        annotations: Annotations of the claim.
        data_source: A VolumeSnapshot or claim to clone, as
            ``{'apiGroup': ..., 'kind': ..., 'name': ...}``.
    """
    return ContainerSpec(image="argostub/createpvc")


@container_component
def DeletePVC(pvc_name: str) -> ContainerSpec:
    """Delete a PersistentVolumeClaim.

    Args:
        pvc_name: The claim to delete, e.g. ``CreatePVC(...).outputs['name']``.
    """
    return ContainerSpec(image="argostub/deletepvc")

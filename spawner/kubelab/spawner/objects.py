"""Pure builders: profiles → KubeSpawner profile_list, identity documents, Kubernetes objects.

No I/O here (as in KubeSpawner's objects.py) so every manifest can be checked in tests
against the kubernetes client's models without a cluster.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from kubernetes_asyncio.client import (
    RbacV1Subject,
    V1ConfigMap,
    V1ConfigMapVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1KeyToPath,
    V1ObjectMeta,
    V1Pod,
    V1ProjectedVolumeSource,
    V1RoleBinding,
    V1RoleRef,
    V1Secret,
    V1SecretKeySelector,
    V1SecretVolumeSource,
    V1ServiceAccountTokenProjection,
    V1Volume,
    V1VolumeMount,
    V1VolumeProjection,
)

from .profiles import Image, Profile, ProfilesConfig, cpu_to_float, memory_to_bytes

LABEL_PREFIX = "kubelab.io"
TOKEN_FILES = ("access_token", "id_token")
IDENTITY_FILENAME = "identity.json"
POD_IDENTITY_DIR = "/etc/kubelab/identity"
POD_TOKEN_DIR = "/var/run/secrets/kubelab/oidc"
USER_NAMESPACE_LABEL = f"{LABEL_PREFIX}/user-namespace"  # deploy/kubernetes/rbac.yaml checks it
HUB_ROLE_BINDING = "kubelab-hub"
NOTEBOOK_ROLE_BINDING = "kubelab-notebook"
# JupyterHub's token for the single-user server: a key of the token Secret, so the pod
# spec (readable by whoever may read pods) holds a reference instead of the value
API_TOKEN_KEY = "jupyterhub-api-token"
API_TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
# Where kfp.Client and kubelab read the Kubeflow Pipelines token (KF_PIPELINES_SA_TOKEN_PATH).
KFP_TOKEN_DIR = "/var/run/secrets/kubeflow/pipelines"
KFP_TOKEN_AUDIENCE = "pipelines.kubeflow.org"

_LABEL_INVALID = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_label_value(value: str) -> str:
    """Make any string a valid label value (≤63 chars, alphanumeric at both ends)."""
    cleaned = _LABEL_INVALID.sub("-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def kube_name(value: str, max_length: int = 63) -> str:
    """DNS-1123 label from an arbitrary string (lowercase alphanumerics and '-')."""
    name = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:max_length].strip("-")
    return name or "x"


def profile_overrides(profile: Profile) -> dict[str, Any]:
    """KubeSpawner trait overrides for one profile (resources, scheduling, labels)."""
    overrides: dict[str, Any] = {
        "extra_labels": {
            f"{LABEL_PREFIX}/profile": sanitize_label_value(profile.slug),
        },
        "extra_annotations": {f"{LABEL_PREFIX}/profile": profile.slug},
    }
    if profile.cpu_guarantee:
        overrides["cpu_guarantee"] = cpu_to_float(profile.cpu_guarantee)
    if profile.cpu_limit:
        overrides["cpu_limit"] = cpu_to_float(profile.cpu_limit)
    if profile.memory_guarantee:
        overrides["mem_guarantee"] = memory_to_bytes(profile.memory_guarantee)
    if profile.memory_limit:
        overrides["mem_limit"] = memory_to_bytes(profile.memory_limit)
    if profile.gpu_count:
        # extended resources: the API server demands requests == limits
        count = str(profile.gpu_count)
        overrides["extra_resource_limits"] = {profile.gpu_resource: count}
        overrides["extra_resource_guarantees"] = {profile.gpu_resource: count}
    if profile.node_selector:
        overrides["node_selector"] = dict(profile.node_selector)
    if profile.tolerations:
        overrides["tolerations"] = [dict(t) for t in profile.tolerations]
    return overrides


def make_profile_list(config: ProfilesConfig, groups: set[str]) -> list[dict[str, Any]]:
    """KubeSpawner `profile_list` with only the profiles the user's groups allow."""
    profile_list: list[dict[str, Any]] = []
    for profile in config.allowed_profiles(groups):
        images = config.images_for(profile)
        choices = {
            image.name: {
                "display_name": image.display_name,
                "default": index == 0,
                "kubespawner_override": {
                    "image": image.image,
                    "extra_labels": {f"{LABEL_PREFIX}/image": sanitize_label_value(image.name)},
                },
            }
            for index, image in enumerate(images)
        }
        profile_list.append(
            {
                "slug": profile.slug,
                "display_name": profile.display_name,
                "description": profile.description,
                "default": profile.default,
                "kubespawner_override": profile_overrides(profile),
                "profile_options": {"image": {"display_name": "Image", "choices": choices}},
            }
        )
    if profile_list and not any(p["default"] for p in profile_list):
        profile_list[0]["default"] = True
    return profile_list


def make_identity(
    username: str,
    groups: list[str],
    profile: Profile,
    image: Image,
    display_name: str | None = None,
) -> dict[str, Any]:
    """The non-secret identity document the notebook server reads (KUBELAB_IDENTITY_FILE)."""
    return {
        "user": username,
        "name": display_name or username,
        "groups": sorted(groups),
        "profile": profile.summary(image),
    }


def _metadata(name: str, namespace: str, username: str, labels: dict[str, str]) -> V1ObjectMeta:
    return V1ObjectMeta(
        name=name,
        namespace=namespace,
        labels={**labels, f"{LABEL_PREFIX}/user": sanitize_label_value(username)},
        annotations={f"{LABEL_PREFIX}/username": username},
    )


def make_token_secret(
    name: str,
    namespace: str,
    username: str,
    tokens: dict[str, str],
    labels: dict[str, str] | None = None,
    api_token: str | None = None,
) -> V1Secret:
    """A Secret with the user's OIDC tokens (mounted as files) and the hub API token."""
    values = {key: value for key, value in tokens.items() if key in TOKEN_FILES and value}
    if api_token:
        values[API_TOKEN_KEY] = api_token
    return V1Secret(
        api_version="v1",
        kind="Secret",
        type="Opaque",
        metadata=_metadata(name, namespace, username, labels or {}),
        data={k: base64.b64encode(v.encode()).decode("ascii") for k, v in values.items()},
    )


def make_identity_configmap(
    name: str,
    namespace: str,
    username: str,
    identity: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> V1ConfigMap:
    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=_metadata(name, namespace, username, labels or {}),
        data={IDENTITY_FILENAME: json.dumps(identity, indent=2, sort_keys=True)},
    )


def identity_volumes(secret_name: str, configmap_name: str) -> list[V1Volume]:
    return [
        V1Volume(
            name="kubelab-oidc-tokens",
            secret=V1SecretVolumeSource(
                secret_name=secret_name,
                default_mode=0o400,
                optional=True,
                items=[V1KeyToPath(key=k, path=k, mode=0o400) for k in TOKEN_FILES],
            ),
        ),
        V1Volume(
            name="kubelab-identity",
            config_map=V1ConfigMapVolumeSource(name=configmap_name, default_mode=0o444),
        ),
    ]


def identity_volume_mounts() -> list[V1VolumeMount]:
    # no subPath: kubelet only propagates Secret updates (token refresh) to whole-volume mounts
    return [
        V1VolumeMount(name="kubelab-oidc-tokens", mount_path=POD_TOKEN_DIR, read_only=True),
        V1VolumeMount(name="kubelab-identity", mount_path=POD_IDENTITY_DIR, read_only=True),
    ]


def kfp_token_volume() -> V1Volume:
    """The pod's ServiceAccount token for KFP's TokenReview (as Kubeflow's PodDefault
    "access-ml-pipeline"); the kubelet rotates it, readers re-read the file."""
    token = V1ServiceAccountTokenProjection(
        audience=KFP_TOKEN_AUDIENCE, expiration_seconds=7200, path="token"
    )
    return V1Volume(
        name="kubeflow-pipelines-token",
        projected=V1ProjectedVolumeSource(
            sources=[V1VolumeProjection(service_account_token=token)]
        ),
    )


def kfp_token_volume_mount() -> V1VolumeMount:
    return V1VolumeMount(name="kubeflow-pipelines-token", mount_path=KFP_TOKEN_DIR, read_only=True)


def _quantity_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{round(value * 1000)}m"
    return str(value)


def finalize_pod(
    pod: V1Pod,
    secret_name: str,
    configmap_name: str,
    username: str,
    profile: Profile | None = None,
) -> V1Pod:
    """Make KubeSpawner's pod what an API server accepts and mount the identity volumes.

    KubeSpawner copies float CPUs and integer bytes into resources; Kubernetes wants
    quantity strings, and extended resources (GPUs) with requests equal to limits. The
    hub API token comes from the token Secret instead of a plain env value.
    """
    pod.metadata.labels = {
        **(pod.metadata.labels or {}),
        f"{LABEL_PREFIX}/user": sanitize_label_value(username),
    }
    pod.metadata.annotations = {
        **(pod.metadata.annotations or {}),
        f"{LABEL_PREFIX}/username": username,
    }
    for container in pod.spec.containers:
        resources = container.resources
        if resources is None:
            continue
        limits = {k: _quantity_string(v) for k, v in (resources.limits or {}).items()}
        requests = {k: _quantity_string(v) for k, v in (resources.requests or {}).items()}
        if profile is not None and container is pod.spec.containers[0]:
            # keep the admin's spelling ("24Gi", "500m") instead of KubeSpawner's bytes/floats
            for target, key, value in (
                (limits, "cpu", profile.cpu_limit),
                (limits, "memory", profile.memory_limit),
                (requests, "cpu", profile.cpu_guarantee),
                (requests, "memory", profile.memory_guarantee),
            ):
                if value:
                    target[key] = value
        for key, value in limits.items():
            if "/" in key and not key.startswith("kubernetes.io/"):
                requests[key] = value
        resources.limits = limits or None
        resources.requests = requests or None
    notebook = pod.spec.containers[0]
    notebook.env = [
        V1EnvVar(
            name=env.name,
            value_from=V1EnvVarSource(
                secret_key_ref=V1SecretKeySelector(name=secret_name, key=API_TOKEN_KEY)
            ),
        )
        if env.name in API_TOKEN_ENV and env.value
        else env
        for env in notebook.env or []
    ]
    pod.spec.volumes = [*(pod.spec.volumes or []), *identity_volumes(secret_name, configmap_name)]
    notebook.volume_mounts = [*(notebook.volume_mounts or []), *identity_volume_mounts()]
    if profile is not None and profile.kubeflow_pipelines:
        pod.spec.volumes.append(kfp_token_volume())
        notebook.volume_mounts.append(kfp_token_volume_mount())
    return pod


def rbac_subject(username: str) -> RbacV1Subject:
    """The RBAC subject for a username as the API server reports it (SelfSubjectReview)."""
    parts = username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return RbacV1Subject(kind="ServiceAccount", name=parts[3], namespace=parts[2])
    return RbacV1Subject(kind="User", name=username, api_group="rbac.authorization.k8s.io")


def _role_binding(
    name: str, namespace: str, cluster_role: str, subject: RbacV1Subject
) -> V1RoleBinding:
    return V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={"app.kubernetes.io/managed-by": "kubelab"},
        ),
        role_ref=V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role
        ),
        subjects=[subject],
    )


def make_hub_role_binding(namespace: str, cluster_role: str, hub_username: str) -> V1RoleBinding:
    """Grants the hub `cluster_role` in one user namespace, and nowhere else."""
    return _role_binding(HUB_ROLE_BINDING, namespace, cluster_role, rbac_subject(hub_username))


def make_notebook_role_binding(
    namespace: str, cluster_role: str, service_account: str
) -> V1RoleBinding:
    """Grants the user's pod (its ServiceAccount) `cluster_role` in its own namespace."""
    subject = RbacV1Subject(kind="ServiceAccount", name=service_account, namespace=namespace)
    return _role_binding(NOTEBOOK_ROLE_BINDING, namespace, cluster_role, subject)

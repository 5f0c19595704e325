"""KubelabSpawner against a real API server, as the hub's own ServiceAccount.

start() / poll() / stop() are called as JupyterHub calls them; the objects are read
back from the server (as admin). The kubelet is simulated (tests/k8s/simulate.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from k8s import Cluster, wait_for
from kubelab.spawner import load_profiles

from .conftest import EXAMPLE_PROFILES
from .kube_hub import KubeHub, in_thread

pytestmark = [pytest.mark.k8s, pytest.mark.asyncio]

PROFILES = load_profiles(EXAMPLE_PROFILES)
GROUPS = ["gpu-users", "data-science"]


def auth_state(access: str, id_token: str) -> dict[str, Any]:
    return {
        "access_token": access,
        "id_token": id_token,
        "refresh_token": "never-used-here",
        "oauth_user": {"name": "Alice Smith", "groups": GROUPS},
    }


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


@pytest.mark.parametrize("slug", [p.slug for p in PROFILES.profiles])
async def test_start_poll_stop_every_example_profile(
    k8s: Cluster, kube_hub: KubeHub, slug: str
) -> None:
    profile = PROFILES.profile(slug)
    image = PROFILES.images_for(profile)[-1]  # a choice, not always the default
    user = kube_hub.user("Alice.Smith@example.com", GROUPS)  # the server validates the names
    await user.save_auth_state(auth_state("at-1", "it-1"))
    spawner, url, pod = await kube_hub.start(user, {"profile": slug, "image": image.name})
    ns = spawner.namespace

    # the namespace is a kubelab user namespace where the hub, and only it, holds its role
    namespace = k8s.get("v1", "Namespace", ns)
    assert namespace["metadata"]["labels"]["kubelab.io/user-namespace"] == "true"
    binding = k8s.get("rbac.authorization.k8s.io/v1", "RoleBinding", "kubelab-hub", ns)
    assert binding["roleRef"]["name"] == "kubelab-hub-user-namespace"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hub", "namespace": "kubelab"}
    ]

    # the running pod, as JupyterHub sees it
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert await spawner.poll() is None
    assert pod["metadata"]["labels"]["kubelab.io/profile"] == slug
    assert pod["metadata"]["labels"]["kubelab.io/image"] == image.name
    assert ns.startswith("kubelab-alice-smith")
    assert pod["metadata"]["annotations"]["kubelab.io/username"] == user.name
    spec = pod["spec"]
    # the pod's ServiceAccount token is there for kubelab's jobs (kubelab-notebook only)
    assert spec["automountServiceAccountToken"] is True
    notebook = k8s.get("rbac.authorization.k8s.io/v1", "RoleBinding", "kubelab-notebook", ns)
    assert notebook["roleRef"]["name"] == "kubelab-notebook"
    container = spec["containers"][0]
    assert container["image"] == image.image
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert limits["cpu"] == profile.cpu_limit and limits["memory"] == profile.memory_limit
    assert requests["cpu"] == profile.cpu_guarantee
    assert requests["memory"] == profile.memory_guarantee
    if profile.gpu_count:
        assert limits[profile.gpu_resource] == requests[profile.gpu_resource] == "1"
        assert spec["nodeSelector"] == profile.node_selector
        for toleration in profile.tolerations:  # the server adds its own defaults
            assert toleration in spec["tolerations"]
    else:
        assert not any("gpu" in key or "mig" in key for key in limits)
        assert "nodeSelector" not in spec
        assert not any(t["key"].startswith("nvidia") for t in spec.get("tolerations", []))

    # home on the PVC; identity and tokens as files; no token in any env value
    pvc = k8s.get("v1", "PersistentVolumeClaim", spawner.pvc_name, ns)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == spawner.pvc_name
    configmap = k8s.get("v1", "ConfigMap", spawner.identity_configmap_name, ns)
    identity = json.loads(configmap["data"]["identity.json"])
    assert identity["user"] == user.name and identity["name"] == "Alice Smith"
    assert identity["groups"] == sorted(GROUPS)
    assert identity["profile"]["slug"] == slug
    secret = k8s.get("v1", "Secret", spawner.token_secret_name, ns)
    values = secret_values(secret)
    assert values == {
        "access_token": "at-1",
        "id_token": "it-1",
        "jupyterhub-api-token": spawner.api_token,
    }
    assert volumes["kubelab-oidc-tokens"]["secret"]["secretName"] == secret["metadata"]["name"]
    # Kubeflow Pipelines: a projected ServiceAccount token for KFP's TokenReview, where
    # kfp.Client and kubelab read it, only for profiles that ask for it
    if profile.kubeflow_pipelines:
        (source,) = volumes["kubeflow-pipelines-token"]["projected"]["sources"]
        assert source["serviceAccountToken"] == {
            "audience": "pipelines.kubeflow.org",
            "expirationSeconds": 7200,
            "path": "token",
        }
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["kubeflow-pipelines-token"] == {
            "name": "kubeflow-pipelines-token",
            "mountPath": "/var/run/secrets/kubeflow/pipelines",
            "readOnly": True,
        }
    else:
        assert "kubeflow-pipelines-token" not in volumes
    env = container["env"]
    assert not [e["name"] for e in env if e.get("value") in values.values()]
    api_token_env = {e["name"]: e for e in env}["JUPYTERHUB_API_TOKEN"]
    assert api_token_env["valueFrom"]["secretKeyRef"] == {
        "name": spawner.token_secret_name,
        "key": "jupyterhub-api-token",
    }

    # stop: the pod and the tokens go, the home stays
    await kube_hub.stop(spawner)
    assert k8s.get("v1", "Pod", spawner.pod_name, ns) is None
    assert k8s.get("v1", "Secret", spawner.token_secret_name, ns) is None
    assert k8s.get("v1", "PersistentVolumeClaim", spawner.pvc_name, ns) is not None
    assert await spawner.poll() == 1


async def test_token_refresh_patches_the_secret(k8s: Cluster, kube_hub: KubeHub) -> None:
    user = kube_hub.user("bob", ["data-science"])
    await user.save_auth_state(auth_state("at-1", "it-1"))
    spawner, _, _ = await kube_hub.start(user, {"profile": "small"})
    before = k8s.get("v1", "Secret", spawner.token_secret_name, spawner.namespace)
    api_token = secret_values(before)["jupyterhub-api-token"]

    # the hub refreshed the user (refresh_user_hook); its next poll delivers the tokens
    await user.save_auth_state(auth_state("at-2", "it-2"))
    assert await spawner.poll() is None
    after = k8s.get("v1", "Secret", spawner.token_secret_name, spawner.namespace)
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    assert secret_values(after) == {
        "access_token": "at-2",
        "id_token": "it-2",
        "jupyterhub-api-token": api_token,
    }
    assert await spawner.poll() is None  # unchanged tokens: no write
    unchanged = k8s.get("v1", "Secret", spawner.token_secret_name, spawner.namespace)
    assert unchanged["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    # after a hub restart the spawner no longer knows the API token: the pod keeps it
    restarted = kube_hub.after_restart(user).spawner
    assert not restarted.api_token and restarted.kubelab_profile.slug == "small"
    await user.save_auth_state({**auth_state("at-3", "it-2"), "id_token": None})
    assert await restarted.poll() is None
    refreshed = k8s.get("v1", "Secret", spawner.token_secret_name, spawner.namespace)
    assert secret_values(refreshed) == {
        "access_token": "at-3",
        "id_token": "it-2",  # a refresh without an id_token keeps the last one
        "jupyterhub-api-token": api_token,
    }
    await kube_hub.stop(spawner)


async def test_poll_reports_the_exit_code_and_removes_the_pod(
    k8s: Cluster, kube_hub: KubeHub
) -> None:
    user = kube_hub.user("carol", ["data-science"])
    spawner, _, pod = await kube_hub.start(user, {"profile": "small"})
    await in_thread(k8s.simulate_container_terminated, pod, 3)  # the notebook server died
    assert await kube_hub.poll_until_exited(spawner) == 3
    assert k8s.get("v1", "Pod", spawner.pod_name, spawner.namespace) is None  # stop(now=True)


async def test_spawn_waits_for_the_namespace_service_account(
    k8s: Cluster, kube_hub: KubeHub
) -> None:
    """Pods are refused until the controller manager made `default`: the spawner waits."""
    if not k8s.simulated:
        pytest.skip("needs the simulated controller manager")
    user = kube_hub.user("dave", ["data-science"])
    spawner = user.spawner
    with k8s.serviceaccount_controller_paused():
        spawning = asyncio.ensure_future(kube_hub.start(user, {"profile": "small"}))
        await in_thread(
            wait_for, lambda: k8s.get("v1", "Namespace", spawner.namespace), "no namespace"
        )
        await asyncio.sleep(1.0)
        assert not spawning.done()
        assert k8s.get("v1", "Pod", spawner.pod_name, spawner.namespace) is None
    _, url, _ = await asyncio.wait_for(spawning, 60)
    assert url.startswith("http://10.")
    await kube_hub.stop(spawner)

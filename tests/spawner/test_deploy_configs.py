"""The shipped hub configs load, and the Kubernetes one drives a working KubelabSpawner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from kubelab.spawner import KubelabSpawner

from .conftest import EXAMPLE_PROFILES, REPO

KUBE_DIR = REPO / "deploy" / "kubernetes"


def load(path: Path) -> Any:
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


def test_kubernetes_config_uses_kubelab_and_oidc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_ISSUER", "https://keycloak.example.com/realms/ml")
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_URL", "https://hub.example.com")
    monkeypatch.setenv("KUBELAB_PROFILES_FILE", str(EXAMPLE_PROFILES))
    monkeypatch.setenv("KUBELAB_ALLOWED_GROUPS", "data-science,gpu-users")
    config = load(KUBE_DIR / "jupyterhub_config.py")
    assert config.JupyterHub.spawner_class == "kubelab.spawner.KubelabSpawner"
    oauth = config.GenericOAuthenticator
    assert oauth.authorize_url == (
        "https://keycloak.example.com/realms/ml/protocol/openid-connect/auth"
    )
    assert oauth.oauth_callback_url == "https://hub.example.com/hub/oauth_callback"
    assert oauth.manage_groups is True
    assert oauth.allowed_groups == {"data-science", "gpu-users"}
    assert "offline_access" in oauth.scope  # refresh tokens
    assert config.Authenticator.enable_auth_state is True


@pytest.mark.asyncio
async def test_kubernetes_config_builds_pods(make_user: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBELAB_PROFILES_FILE", str(EXAMPLE_PROFILES))
    config = load(KUBE_DIR / "jupyterhub_config.py")
    user = make_user("bob", ["data-science"], KubelabSpawner)
    user.settings["config"] = config
    spawner = user.spawner
    assert spawner.namespace == "kubelab-bob"
    spawner.user_options = {"profile": "large"}
    await spawner.apply_user_options(spawner, spawner.user_options)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    assert pod.spec.containers[0].resources.limits == {"cpu": "4", "memory": "16Gi"}


def test_invalid_profiles_stop_the_kubernetes_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(EXAMPLE_PROFILES.read_text())
    data["profiles"][2]["gpu"]["count"] = -1
    bad = tmp_path / "profiles.yaml"
    bad.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("KUBELAB_PROFILES_FILE", str(bad))
    with pytest.raises(SystemExit, match=r"profiles\[2\]\.gpu\.count: -1 is less than"):
        load(KUBE_DIR / "jupyterhub_config.py")


def test_chart_values_and_rbac_parse() -> None:
    values = yaml.safe_load((KUBE_DIR / "values.yaml").read_text())
    env = values["hub"]["extraEnv"]
    assert "secretKeyRef" in env["OIDC_CLIENT_SECRET"]["valueFrom"]  # never inline
    assert "secretKeyRef" in env["JUPYTERHUB_CRYPT_KEY"]["valueFrom"]
    api = kubernetes.client.ApiClient()
    names = {}
    for doc in yaml.safe_load_all((KUBE_DIR / "rbac.yaml").read_text()):
        model = api.deserialize(json.dumps(doc), f"V1{doc['kind']}", "application/json")
        names[doc["kind"]] = [*names.get(doc["kind"], []), model.metadata.name]
    # applied to a real API server and exercised in test_kube_rbac.py
    assert names == {
        "ClusterRole": [
            "kubelab-hub",
            "kubelab-hub-user-namespace",
            "kubelab-notebook",
            "kubelab-notebook-training",
            "kubelab-training-runtimes-view",
        ],
        "ClusterRoleBinding": ["kubelab-hub", "kubelab-training-runtimes-view"],
        "ValidatingAdmissionPolicy": ["kubelab-hub-user-namespace"],
        "ValidatingAdmissionPolicyBinding": ["kubelab-hub-user-namespace"],
    }


def test_local_config_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBELAB_HUB_DIR", str(tmp_path))
    monkeypatch.setenv("KUBELAB_GPU_IDS", "0,1")
    config = load(REPO / "deploy" / "local" / "jupyterhub_config.py")
    assert config.JupyterHub.spawner_class == "kubelab.spawner.LocalKubelabSpawner"
    assert config.LocalKubelabSpawner.gpu_ids == ["0", "1"]
    assert config.JupyterHub.bind_url == "http://127.0.0.1:8000"

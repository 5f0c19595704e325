"""Fixtures for the spawner tests: real JupyterHub ORM users (in-memory SQLite), no hub."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper
from jupyterhub.objects import Hub
from jupyterhub.user import User
from traitlets.config import Config

from k8s import Cluster, Identity

from .kube_hub import KubeHub, install_hub_rbac

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROFILES = REPO / "deploy" / "profiles.example.yaml"

DUMMY_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: none
  user: {token: not-a-real-token}
contexts:
- name: none
  context: {cluster: none, user: none}
current-context: none
"""


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # KubeSpawner loads a kube config even to build manifests (TOOLCHAIN gotcha 6);
    # kubernetes_asyncio reads $KUBECONFIG once at import, so patch its default too.
    import kubernetes_asyncio.config.kube_config as kube_config

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setenv("KUBELAB_HUB_DIR", str(tmp_path / "hub"))
    monkeypatch.delenv("KUBELAB_PROFILES_FILE", raising=False)


@pytest.fixture
def hub_db() -> Iterator[Any]:
    session = orm.new_session_factory("sqlite://")()
    yield session
    session.close()


@pytest.fixture
def make_user(hub_db: Any) -> Callable[..., User]:
    """A real JupyterHub User (ORM-backed) in the given hub groups, with a spawner class."""

    def make(name: str, groups: list[str], spawner_class: type, **traits: Any) -> User:
        orm_user = orm.User(name=name)
        hub_db.add(orm_user)
        for group_name in groups:
            group = orm.Group.find(hub_db, group_name) or orm.Group(name=group_name)
            hub_db.add(group)
            orm_user.groups.append(group)
        hub_db.commit()
        config = Config()
        for key, value in {"profiles_file": str(EXAMPLE_PROFILES), **traits}.items():
            setattr(config[spawner_class.__name__], key, value)
        settings = {
            "spawner_class": spawner_class,
            "config": config,
            "hub": Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
            "domain": "",
        }
        return User(orm_user, settings, db=hub_db)

    return make


@pytest.fixture(scope="session")
def hub_account(k8s: Cluster) -> Identity:
    """The hub's own ServiceAccount, bound by deploy/kubernetes/rbac.yaml (never admin)."""
    return install_hub_rbac(k8s)


@pytest_asyncio.fixture
async def kube_hub(
    k8s: Cluster,
    hub_account: Identity,
    make_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[KubeHub]:
    """KubelabSpawner talking to the API server with the hub's token, as in the hub pod."""
    import kubernetes_asyncio.config.kube_config as kube_config
    from kubernetes_asyncio.client import Configuration
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    monkeypatch.setenv("KUBECONFIG", str(hub_account.kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(hub_account.kubeconfig))
    monkeypatch.setattr(CryptKeeper.instance(), "keys", [os.urandom(32)])  # auth_state
    previous = Configuration._default
    load_config.cache_clear()  # KubeSpawner loads the kube config once per process
    hub = KubeHub(k8s, make_user)
    try:
        yield hub
    finally:
        await KubeSpawner._stop_all_reflectors()
        load_config.cache_clear()
        Configuration._default = previous
        hub.cleanup()

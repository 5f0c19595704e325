"""The hub's side of KubelabSpawner against a real API server: JupyterHub's calls, the
hub's own ServiceAccount, and the kubelet simulated by the test (tests/k8s)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub import orm
from jupyterhub.user import User
from kubernetes.client.rest import ApiException

from k8s import Cluster, Identity, wait_for
from kubelab.spawner import KubelabSpawner

RBAC_YAML = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "rbac.yaml"
HUB_NAMESPACE, HUB_ACCOUNT = "kubelab", "hub"  # the subject in rbac.yaml


def hub_role_binding(name: str) -> dict[str, Any]:
    """A RoleBinding that gives the hub its user-namespace role (as the spawner makes)."""
    return {
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "kubelab-hub-user-namespace",
        },
        "subjects": [{"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": HUB_NAMESPACE}],
    }


def install_hub_rbac(k8s: Cluster) -> Identity:
    """deploy/kubernetes/rbac.yaml applied; the hub's ServiceAccount and its token."""
    try:
        k8s.core.create_namespace({"metadata": {"name": HUB_NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    k8s.apply_file(RBAC_YAML)
    k8s.simulate_clusterrole_aggregation()  # kubelab-notebook gathers its parts
    # admission policies are compiled asynchronously: wait until this one says no
    probe = hub_role_binding("policy-probe")

    def policy_denies() -> bool:
        try:
            k8s.rbac.create_namespaced_role_binding("default", probe, dry_run="All")
        except ApiException as error:
            return "may only be bound in kubelab user namespaces" in (error.body or "")
        return False

    wait_for(policy_denies, "the kubelab-hub-user-namespace admission policy is not in force")
    return k8s.service_account(HUB_NAMESPACE, HUB_ACCOUNT)


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The cluster helpers block; the spawner must keep running on the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


class KubeHub:
    """What JupyterHub does with a spawner (User.spawn, the poll loop, User.stop)."""

    def __init__(self, k8s: Cluster, make_user: Callable[..., User]) -> None:
        self.k8s = k8s
        self.make_user = make_user
        self.namespaces: list[str] = []

    def user(self, prefix: str, groups: list[str], **traits: Any) -> User:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"  # envtest never finishes deleting namespaces
        user = self.make_user(name, groups, KubelabSpawner, **traits)
        self.namespaces.append(user.spawner.namespace)
        return user

    async def start(self, user: User, options: dict[str, Any]) -> tuple[Any, str, dict]:
        """User.spawn up to the HTTP check, with the kubelet simulated; (spawner, url, pod)."""
        spawner = user.spawner
        spawner.user_options = options
        spawner.clear_state()
        if not user.db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").first():
            user.db.add(orm.OAuthClient(identifier="jupyterhub"))  # as JupyterHub.init_db
        spawner.api_token = user.new_api_token(note="server")
        await spawner.apply_group_overrides()
        await spawner._run_apply_user_options(spawner.user_options)
        start = asyncio.ensure_future(spawner.start())
        while not (pod := await in_thread(self.pod, spawner)):
            if start.done():
                start.result()  # the spawn failed before making a pod: raise its error
                raise AssertionError("start() returned without a pod")
            await asyncio.sleep(0.05)
        await in_thread(self.k8s.simulate_kubelet_ready, pod)
        url = await asyncio.wait_for(start, 60)
        spawner.orm_spawner.state = spawner.get_state()
        return spawner, url, self.pod(spawner)

    async def poll_until_exited(self, spawner: Any, timeout: float = 30.0) -> int:
        """The hub's poll loop: poll() sees the pod through KubeSpawner's watch, a moment late."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (status := await spawner.poll()) is None:
            assert asyncio.get_running_loop().time() < deadline, "poll() never saw the exit"
            await asyncio.sleep(0.1)
        return status

    def after_restart(self, user: User) -> User:
        """The same user as a restarted hub sees it: a new spawner, loaded from its state."""
        return User(user.orm_user, user.settings, db=user.db)

    async def stop(self, spawner: Any) -> None:
        """User.stop: the pod is deleted gracefully; the simulated kubelet confirms."""
        pod = self.pod(spawner)
        stop = asyncio.ensure_future(spawner.stop())
        if pod is not None:
            await in_thread(self.k8s.simulate_pod_deleted, pod)
        await asyncio.wait_for(stop, 60)
        spawner.clear_state()

    def pod(self, spawner: Any) -> Any:
        return self.k8s.get("v1", "Pod", spawner.pod_name, spawner.namespace)

    def cleanup(self) -> None:
        for namespace in self.namespaces:
            self.k8s.delete_namespace(namespace)

"""Tokens must not outlive the server: a user's pod that disappears without JupyterHub
stopping it (evicted, node lost, deleted by someone) takes its token Secret along."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from k8s import Cluster

from .kube_hub import KubeHub, in_thread
from .test_kube_cluster import auth_state

pytestmark = [pytest.mark.k8s, pytest.mark.asyncio]


def evict(k8s: Cluster, pod: dict) -> None:
    """What the node-pressure or drain path does: an Eviction, then the kubelet's end."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    k8s.core.create_namespaced_pod_eviction(
        name,
        namespace,
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}},
    )
    k8s.simulate_pod_deleted(pod)


@pytest.mark.parametrize("how", ["evicted", "deleted", "evicted while the hub was down"])
async def test_a_pod_gone_without_stop_takes_its_token_secret(
    k8s: Cluster, kube_hub: KubeHub, hub_account, how: str
) -> None:
    user = kube_hub.user("erin", ["data-science"])
    await user.save_auth_state(auth_state("at-1", "it-1"))
    spawner, _, pod = await kube_hub.start(user, {"profile": "small"})
    name, ns = spawner.token_secret_name, spawner.namespace
    assert k8s.get("v1", "Secret", name, ns) is not None
    if how.startswith("evicted"):
        await in_thread(evict, k8s, pod)
    else:  # someone with rights in the namespace: `kubectl delete pod`
        await in_thread(k8s.core.delete_namespaced_pod, pod["metadata"]["name"], ns)
        await in_thread(k8s.simulate_pod_deleted, pod)
    if how.endswith("hub was down"):  # the restarted hub polls each server it knew
        spawner = kube_hub.after_restart(user).spawner
    # The hub's poll loop notices; JupyterHub will not call stop() for a stopped server.
    assert await kube_hub.poll_until_exited(spawner) == 1
    assert k8s.get("v1", "Secret", name, ns) is None
    # The hub's own account (which may delete, never read, Secrets) sees it gone too.
    with hub_account.api_client() as api:
        from kubernetes.client import CoreV1Api

        with pytest.raises(ApiException) as raised:
            CoreV1Api(api).delete_namespaced_secret(name, ns)
        assert raised.value.status == 404
    assert k8s.get("v1", "PersistentVolumeClaim", spawner.pvc_name, ns) is not None

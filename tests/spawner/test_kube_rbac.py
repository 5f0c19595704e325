"""deploy/kubernetes/rbac.yaml: the hub can spawn (test_kube_cluster.py) and no more.

The hub's rights are checked with SubjectAccessReviews (`kubectl auth can-i --as`) and
with real calls made with its own token; a user's pod ServiceAccount is checked the same
way against another user's token Secret.
"""

from __future__ import annotations

import kubernetes.client
import kubernetes_asyncio.client
import pytest
from kubernetes.client.rest import ApiException

from k8s import Cluster, Identity

from .kube_hub import KubeHub, hub_role_binding

pytestmark = [pytest.mark.k8s]


def status_of(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value.status, info.value.body or ""


@pytest.mark.asyncio
async def test_hub_rights_are_confined_to_user_namespaces(
    k8s: Cluster, kube_hub: KubeHub, hub_account: Identity, k8s_namespace: str
) -> None:
    user = kube_hub.user("erin", ["data-science"])
    spawner, _, _ = await kube_hub.start(user, {"profile": "small"})
    mine, other, hub = spawner.namespace, k8s_namespace, hub_account.username
    k8s.core.create_namespaced_secret(other, {"metadata": {"name": "db-password"}})

    allowed = [
        ("create", "namespaces", None),
        ("watch", "pods", None),  # KubeSpawner's reflectors, across namespaces
        ("list", "events", None),
        ("create", "pods", mine),
        ("delete", "pods", mine),
        ("create", "persistentvolumeclaims", mine),
        ("create", "secrets", mine),
        ("patch", "secrets", mine),
        ("delete", "secrets", mine),
        ("update", "configmaps", mine),
        ("create", "rolebindings", mine),
    ]
    denied = [
        ("get", "secrets", mine),  # it writes tokens it holds; it never reads a Secret
        ("list", "secrets", mine),
        ("get", "secrets", other),
        ("list", "secrets", None),
        ("get", "secrets", "kube-system"),
        ("create", "pods", other),
        ("delete", "persistentvolumeclaims", other),
        ("patch", "namespaces", None),  # so it cannot label a namespace into its reach
        ("create", "clusterrolebindings", None),
        ("escalate", "clusterroles", None),
    ]

    def can(verb: str, resource: str, namespace: str | None) -> bool:
        group = "rbac.authorization.k8s.io" if "role" in resource else ""
        return k8s.can(hub, verb, resource, namespace, group=group)

    assert [a for a in allowed if not can(*a)] == []
    assert [d for d in denied if can(*d)] == []

    # the same with real calls and the hub's own token
    with hub_account.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        assert status_of(core.read_namespaced_secret, "db-password", other)[0] == 403
        assert status_of(core.list_secret_for_all_namespaces)[0] == 403
        assert status_of(core.read_namespaced_secret, spawner.token_secret_name, mine)[0] == 403
        patch = {"metadata": {"labels": {"kubelab.io/user-namespace": "true"}}}
        assert status_of(core.patch_namespace, other, patch)[0] == 403

        # it may bind its namespace role, but the admission policy keeps it in user namespaces
        binding = hub_role_binding("kubelab-hub")
        rbac = kubernetes.client.RbacAuthorizationV1Api(api)
        status, body = status_of(rbac.create_namespaced_role_binding, other, binding)
        assert status == 403 and "only be bound in kubelab user namespaces" in body
        # and it cannot hand itself a stronger role anywhere
        stronger = {**binding, "roleRef": {**binding["roleRef"], "name": "admin"}}
        assert status_of(rbac.create_namespaced_role_binding, other, stronger)[0] == 403
    await kube_hub.stop(spawner)


@pytest.mark.asyncio
async def test_without_its_namespace_role_the_hub_cannot_spawn(kube_hub: KubeHub) -> None:
    """The cluster-wide role alone creates the namespace and nothing in it."""
    user = kube_hub.user("frank", ["data-science"], hub_user_namespace_role="")
    with pytest.raises(kubernetes_asyncio.client.ApiException) as info:
        await kube_hub.start(user, {"profile": "small"})
    assert info.value.status == 403
    assert "persistentvolumeclaims is forbidden" in info.value.body


@pytest.mark.asyncio
async def test_a_users_pod_cannot_read_another_users_tokens(
    k8s: Cluster, kube_hub: KubeHub
) -> None:
    alice = kube_hub.user("alice", ["data-science"])
    bob = kube_hub.user("bob", ["data-science"])
    for user in (alice, bob):
        await user.save_auth_state({"access_token": f"at-{user.name}", "id_token": "it"})
    alice_spawner, _, alice_pod = await kube_hub.start(alice, {"profile": "small"})
    bob_spawner, _, _ = await kube_hub.start(bob, {"profile": "small"})

    # the identity a process in Alice's pod has: her pod's ServiceAccount, whose token is
    # mounted for kubelab's jobs and bound to kubelab-notebook in her namespace only
    account = alice_pod["spec"]["serviceAccountName"]
    assert alice_pod["spec"]["automountServiceAccountToken"] is True
    alice_pod_identity = k8s.service_account(alice_spawner.namespace, account)
    assert not k8s.can(alice_pod_identity.username, "get", "secrets", alice_spawner.namespace)
    bobs_secret = (bob_spawner.token_secret_name, bob_spawner.namespace)
    assert not k8s.can(alice_pod_identity.username, "get", "secrets", bobs_secret[1])
    with alice_pod_identity.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        assert status_of(core.read_namespaced_secret, *bobs_secret)[0] == 403
        assert status_of(core.list_namespaced_secret, bobs_secret[1])[0] == 403
    for spawner in (alice_spawner, bob_spawner):
        await kube_hub.stop(spawner)


@pytest.mark.asyncio
async def test_the_notebook_may_run_jobs_in_its_own_namespace_only(
    k8s: Cluster, kube_hub: KubeHub, hub_account: Identity, k8s_namespace: str
) -> None:
    """The hub binds kubelab-notebook to the pod's ServiceAccount in the user namespace
    (what kubelab's Kubernetes job backend runs as), and cannot bind it anywhere else."""
    user = kube_hub.user("grace", ["data-science"])
    spawner, _, pod = await kube_hub.start(user, {"profile": "small"})
    mine = spawner.namespace
    binding = k8s.rbac.read_namespaced_role_binding("kubelab-notebook", mine)
    assert binding.role_ref.name == "kubelab-notebook"
    assert [(s.kind, s.name) for s in binding.subjects] == [("ServiceAccount", "default")]
    notebook = f"system:serviceaccount:{mine}:{pod['spec']['serviceAccountName']}"
    trainer, core = "trainer.kubeflow.org", ""

    def can(verb: str, resource: str, namespace: str, group: str = core) -> bool:
        return k8s.can(notebook, verb, resource, namespace, group=group)

    assert can("create", "trainjobs", mine, trainer) and can("delete", "trainjobs", mine, trainer)
    assert can("create", "pytorchjobs", mine, "kubeflow.org")
    assert can("get", "pods/log", mine) and can("list", "events", mine)
    assert k8s.can(notebook, "list", "clustertrainingruntimes", None, group=trainer)
    assert not can("create", "trainjobs", k8s_namespace, trainer)
    assert not can("create", "pods", mine) and not can("get", "secrets", mine)

    with hub_account.api_client() as api:
        rbac = kubernetes.client.RbacAuthorizationV1Api(api)
        elsewhere = {
            "metadata": {"name": "kubelab-notebook"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kubelab-notebook",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": mine}],
        }
        status, body = status_of(rbac.create_namespaced_role_binding, k8s_namespace, elsewhere)
        assert status == 403
        assert "kubelab-notebook may only be bound in kubelab user namespaces" in body
    await kube_hub.stop(spawner)

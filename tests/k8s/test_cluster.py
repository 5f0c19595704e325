"""The test API server itself: pinned version, RBAC, ServiceAccount tokens, CRDs, simulations."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kubernetes.client
import kubernetes_asyncio.client
import kubernetes_asyncio.config
import pytest
from kubernetes.client.rest import ApiException

from k8s import CRDS_DIR, MAKE_TARGET, Cluster
from k8s.cluster import load_yaml
from k8s.control_plane import ControlPlane, ControlPlaneError, pinned_versions

pytestmark = pytest.mark.k8s
HERE = Path(__file__).resolve().parent


def forbidden(call, *args, **kwargs) -> str:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    assert info.value.status == 403, info.value
    return info.value.body


def test_pinned_version_and_admin(k8s: Cluster) -> None:
    version = kubernetes.client.VersionApi(k8s.api).get_code()
    if k8s.simulated:
        assert version.git_version == pinned_versions()[0]
    names = {ns.metadata.name for ns in k8s.core.list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_every_crd_is_established(k8s: Cluster) -> None:
    expected = {
        doc["metadata"]["name"]
        for path in CRDS_DIR.glob("*.yaml")
        for doc in load_yaml(path)
        if doc["kind"] == "CustomResourceDefinition"
    }
    assert len(expected) == 6
    for name in expected:
        crd = k8s.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True", name
    runtime = k8s.get(
        "trainer.kubeflow.org/v1alpha1", "ClusterTrainingRuntime", "torch-distributed"
    )
    assert runtime is not None


def test_crd_schema_is_enforced(k8s: Cluster, k8s_namespace: str) -> None:
    """A custom resource is validated by the server: wrong types answer 422 naming the field."""
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "bad", "namespace": k8s_namespace},
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": "two", "template": {}}}},
    }
    with pytest.raises(kubernetes.dynamic.exceptions.UnprocessibleEntityError) as info:
        k8s.create(job)
    assert "spec.pytorchReplicaSpecs.Master.replicas in body must be of type integer" in str(
        info.value.body
    )


def test_service_account_has_only_what_it_was_granted(k8s: Cluster, k8s_namespace: str) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create"]}]
    bot = k8s.service_account(k8s_namespace, "bot", rules=rules)
    assert bot.username == f"system:serviceaccount:{k8s_namespace}:bot"
    with bot.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespaced_config_map(k8s_namespace, {"metadata": {"name": "made-by-bot"}})
        assert [c.metadata.name for c in core.list_namespaced_config_map(k8s_namespace).items] == [
            "made-by-bot"
        ]
        forbidden(core.list_namespaced_secret, k8s_namespace)
        forbidden(core.list_namespaced_config_map, "default")
        forbidden(core.list_namespace)
    assert k8s.can(bot.username, "create", "configmaps", k8s_namespace)
    assert not k8s.can(bot.username, "get", "secrets", k8s_namespace)
    viewer = k8s.service_account(k8s_namespace, "viewer", cluster_role="view")
    assert k8s.can(viewer.username, "list", "pods", k8s_namespace)
    assert not k8s.can(viewer.username, "list", "pods", "default")


@pytest.mark.asyncio
async def test_kubeconfig_works_for_kubernetes_asyncio(k8s: Cluster, k8s_namespace: str) -> None:
    """What KubeSpawner and async code load: the same file, the same identity."""
    bot = k8s.service_account(k8s_namespace, "async-bot", cluster_role="view")
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(bot.kubeconfig))
    async with api:
        pods = await kubernetes_asyncio.client.CoreV1Api(api).list_namespaced_pod(k8s_namespace)
        assert pods.items == []


def pod(namespace: str, name: str = "worker") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
    }


def test_pod_lifecycle_is_simulated(k8s: Cluster, k8s_namespace: str) -> None:
    created = k8s.apply(pod(k8s_namespace))[0]  # the default ServiceAccount exists by now
    assert created["status"]["phase"] == "Pending"
    ready = k8s.simulate_kubelet_ready(created)
    assert ready["spec"]["nodeName"]
    assert ready["status"]["phase"] == "Running"
    assert ready["status"]["podIP"].startswith("10.")
    assert ready["status"]["containerStatuses"][0]["ready"] is True

    k8s.core.delete_namespaced_pod("worker", k8s_namespace, grace_period_seconds=30)
    terminating = k8s.read(created)
    assert terminating["metadata"]["deletionTimestamp"]  # a kubelet must confirm
    k8s.simulate_pod_deleted(created)
    assert k8s.read(created) is None


def test_container_exit_is_simulated(k8s: Cluster, k8s_namespace: str) -> None:
    created = k8s.apply(pod(k8s_namespace, "exits"))[0]
    k8s.simulate_kubelet_ready(created)
    done = k8s.simulate_container_terminated(created, exit_code=3)
    assert done["status"]["phase"] == "Failed"
    state = done["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 3


def test_operator_conditions_are_simulated(k8s: Cluster, k8s_namespace: str) -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": k8s_namespace},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m"}}
        },
    }
    created = k8s.apply(isvc)[0]
    k8s.simulate_condition(created, "Ready", "False", "Pending", "waiting for the predictor")
    ready = k8s.simulate_condition(created, "Ready", "True")
    k8s.simulate_status(created, url=f"http://iris.{k8s_namespace}.example.com")
    current = k8s.read(created)
    assert current["status"]["url"] == f"http://iris.{k8s_namespace}.example.com"
    assert [c["type"] for c in current["status"]["conditions"]] == ["Ready"]  # replaced
    assert ready["status"]["conditions"][0]["status"] == "True"
    assert current["spec"]["predictor"]["model"]["storageUri"] == "pvc://m"


def test_new_namespaces_get_a_default_service_account(k8s: Cluster) -> None:
    name = f"made-by-code-{os.getpid()}"
    k8s.core.create_namespace({"metadata": {"name": name}})
    try:
        k8s.wait_for_default_service_account(name)
    finally:
        k8s.delete_namespace(name)


def test_missing_binaries_name_the_make_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_K8S_BIN", str(tmp_path / "empty"))
    with pytest.raises(ControlPlaneError, match=f"run `{MAKE_TARGET}`"):
        ControlPlane(tmp_path / "plane").start()


def run_pytest(
    tmp_path: Path, test: str, env: dict[str, str], conftest: str = ""
) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["k8s.plugin"]\n' + textwrap.dedent(conftest)
    )
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(HERE.parent), **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_session_without_binaries_fails_not_skips(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        "def test_needs_cluster(k8s):\n    pass\n",
        {"KUBELAB_K8S_BIN": str(tmp_path / "none"), "KUBELAB_TEST_KUBECONFIG": ""},
    )
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert MAKE_TARGET in result.stdout


@pytest.mark.skipif(
    bool(os.environ.get("KUBELAB_TEST_KUBECONFIG")), reason="about envtest's own processes"
)
def test_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    """A session interrupted mid-test stops etcd and kube-apiserver in its teardown."""
    during, after = tmp_path / "during", tmp_path / "after"
    children = "open(f'/proc/self/task/{os.getpid()}/children').read()"
    result = run_pytest(
        tmp_path,
        f"""
        import os, signal
        def test_interrupted(k8s):
            k8s.core.list_namespace()
            open({str(during)!r}, "w").write({children})
            os.kill(os.getpid(), signal.SIGINT)
        """,
        {"KUBELAB_TEST_KUBECONFIG": "", "KUBELAB_TEST_CRDS": ""},
        conftest=f"""
        import os, pytest
        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):  # after every fixture's teardown
            open({str(after)!r}, "w").write({children})
        """,
    )
    assert "KeyboardInterrupt" in result.stdout, result.stdout + result.stderr
    assert len(during.read_text().split()) == 2  # etcd and kube-apiserver ran
    assert after.read_text().split() == []  # and were stopped before pytest exited

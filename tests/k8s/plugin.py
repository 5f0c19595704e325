"""pytest fixtures: a Kubernetes API server for the session, a fresh namespace per test.

Registered for the whole suite in tests/conftest.py. Tests that use `k8s` are marked
`k8s` automatically (`pytest -m k8s` runs them alone). Without the binaries they fail
with the make target to run; they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab.spawner.objects import USER_NAMESPACE_LABEL

from .cluster import Cluster
from .control_plane import ControlPlane, ControlPlaneError

CRDS_DIR = Path(__file__).resolve().parent / "crds"
REAL_CLUSTER_ENV = "KUBELAB_TEST_KUBECONFIG"
CRDS_ENV = "KUBELAB_TEST_CRDS"  # another folder of CRDs; empty: none


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "k8s" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The API server: envtest's etcd + kube-apiserver, or $KUBELAB_TEST_KUBECONFIG's cluster.

    Started on first use, stopped at the end of the session (also on Ctrl-C). The CRDs
    of tests/k8s/crds ($KUBELAB_TEST_CRDS) are installed and Established.
    """
    workdir = tmp_path_factory.mktemp("k8s")
    real = os.environ.get(REAL_CLUSTER_ENV)
    plane = None if real else ControlPlane(workdir)
    cluster = None
    try:
        admin_kubeconfig = _start(plane) if plane is not None else Path(real)
        cluster = Cluster(admin_kubeconfig, workdir, simulated=plane is not None)
        cluster.run_serviceaccount_controller()
        cluster.simulate_clusterrole_aggregation()
        crds = os.environ.get(CRDS_ENV, str(CRDS_DIR))
        if crds:
            cluster.install_crds(Path(crds))
        yield cluster
    finally:
        if cluster is not None:
            cluster.close()
        if plane is not None:
            plane.stop()


def _start(plane: ControlPlane) -> Path:
    try:
        return plane.start()
    except ControlPlaneError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)  # a failure, never a skip: the suite needs it


@pytest.fixture
def k8s_namespace(k8s: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace named after the test, deleted afterwards."""
    name = k8s.create_namespace(f"t-{request.node.name}")
    yield name
    k8s.delete_namespace(name)


@pytest.fixture
def k8s_user_namespace(k8s: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace labelled as KubelabSpawner labels a user's: the only kind where
    deploy/kubernetes/rbac.yaml's admission policy lets `kubelab-notebook` be bound."""
    name = k8s.create_namespace(f"u-{request.node.name}", labels={USER_NAMESPACE_LABEL: "true"})
    yield name
    k8s.delete_namespace(name)

"""A real Kubernetes API server for kubelab's tests (envtest-style); see docs/development.md.

from k8s import Cluster          # the `k8s` fixture's type
def test_x(k8s: Cluster, k8s_namespace: str): ...
"""

from .cluster import Cluster, Identity, wait_for
from .control_plane import MAKE_TARGET
from .plugin import CRDS_DIR

__all__ = ["CRDS_DIR", "MAKE_TARGET", "Cluster", "Identity", "wait_for"]

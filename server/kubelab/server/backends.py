"""Which execution backends this server can reach."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def kubernetes_reason_unavailable() -> str | None:
    """Why the Kubernetes backend cannot be used here, or None when it can."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    if any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p):
        return None
    return "no in-cluster service account and no kubeconfig found"


def available_backends() -> list[dict[str, Any]]:
    reason = kubernetes_reason_unavailable()
    return [
        {"name": "local", "available": True},
        {"name": "kubernetes", "available": reason is None, "reason": reason},
    ]

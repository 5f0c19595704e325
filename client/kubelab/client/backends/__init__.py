"""One backend class per engine, behind the two interfaces of `base.py`.

| name         | runs (pipelines)             | jobs (training, tuning, serving) |
|--------------|------------------------------|----------------------------------|
| `local`      | `LocalBackend` (local engine) | `LocalBackend` (local runners)   |
| `kubernetes` | `KubeflowPipelinesBackend`   | `KubernetesBackend` (Kubeflow CRDs) |

Modules are imported on demand: the `kubernetes` package only when a job goes there.
"""

from __future__ import annotations

from typing import Any

BACKENDS = ("local", "kubernetes")


def available_backends() -> list[dict[str, Any]]:
    """What `GET status` reports: each backend and why it cannot be used, if so."""
    from kubelab.client.backends.kubernetes import reason_unavailable

    reason = reason_unavailable()
    return [
        {"name": "local", "available": True},
        {"name": "kubernetes", "available": reason is None, "reason": reason},
    ]

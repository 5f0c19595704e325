"""One backend class per engine, behind the two interfaces of `base.py`.

| name         | runs (pipelines)             | jobs (training, tuning, serving) |
|--------------|------------------------------|----------------------------------|
| `local`      | `LocalBackend` (local engine) | `LocalBackend` (local runners)   |
| `kubernetes` | `KubeflowPipelinesBackend`   | `KubernetesBackend` (Kubeflow CRDs) |

Modules are imported on demand: the `kubernetes` package only when a job goes there.
Whether a backend can be used now is `reachability.py`'s concern.
"""

from __future__ import annotations

BACKENDS = ("local", "kubernetes")

"""kubelab.client: one client for runs and jobs, their backends, the run store and the CLI.

`Client` is what Python users, the `kubelab` CLI and the jupyter server's handlers
all use; one backend class per engine sits behind it (`backends/`). The SQLite store
(`kubelab.client.store`) sits below the pipelines engine and the workloads' local
runners, which write it. Submodules are imported on demand so that
`import kubelab.client` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelab.client.client import Client, RunPipelineResult

__all__ = ["Client", "RunPipelineResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kubelab.client import client

        return getattr(client, name)
    raise AttributeError(f"module 'kubelab.client' has no attribute {name!r}")

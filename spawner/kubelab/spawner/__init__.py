"""JupyterHub spawners for kubelab: Kubernetes (KubeSpawner) and local processes.

    c.JupyterHub.spawner_class = "kubelab.spawner.KubelabSpawner"       # Kubernetes
    c.JupyterHub.spawner_class = "kubelab.spawner.LocalKubelabSpawner"  # this machine

Both read the same admin profiles file (`profiles_file`); see docs/spawner.md.
"""

from __future__ import annotations

from typing import Any

from .profiles import (
    ChoiceError,
    ProfilesConfig,
    ProfilesError,
    check_profiles_file_or_exit,
    load_profiles,
)

__all__ = [
    "ChoiceError",
    "KubelabSpawner",
    "LocalKubelabSpawner",
    "ProfilesConfig",
    "ProfilesError",
    "check_profiles_file_or_exit",
    "load_profiles",
]


def __getattr__(name: str) -> Any:
    # imported lazily: the local spawner must not need a kube config, and vice versa
    if name == "KubelabSpawner":
        from .kube import KubelabSpawner

        return KubelabSpawner
    if name == "LocalKubelabSpawner":
        from .local import LocalKubelabSpawner

        return LocalKubelabSpawner
    raise AttributeError(f"module 'kubelab.spawner' has no attribute {name!r}")

"""The kubelab jupyter-server extension: REST API under /kubelab/api/."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import KubelabApp

    return [{"module": "kubelab.server", "app": KubelabApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "kubelab"}]

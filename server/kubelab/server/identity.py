"""Who is using this server: the Jupyter user and, under JupyterHub, the OIDC groups."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import User

# Written by the kubelab spawners: non-secret identity (user, groups, profile) as JSON.
IDENTITY_FILE_ENV = "KUBELAB_IDENTITY_FILE"


def read_spawner_identity() -> dict[str, Any]:
    path = os.environ.get(IDENTITY_FILE_ENV)
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def describe_identity(user: User) -> dict[str, Any]:
    from_spawner = read_spawner_identity()
    return {
        "user": user.username,
        "name": user.display_name or user.name or user.username,
        "groups": list(from_spawner.get("groups", [])),
    }


def current_profile() -> dict[str, Any] | None:
    return read_spawner_identity().get("profile")

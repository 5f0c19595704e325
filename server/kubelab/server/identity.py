"""Who is using this server: the Jupyter user and, under JupyterHub, the OIDC groups.

The kubelab spawners write a non-secret JSON file (user, groups, profile) and name it
in KUBELAB_IDENTITY_FILE; OIDC tokens live as files in KUBELAB_TOKEN_DIR and are never
read into this API's responses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import User

from kubelab.client.provenance import read_spawner_identity

# Directory with the OIDC token files (access_token, id_token); only presence is reported.
TOKEN_DIR_ENV = "KUBELAB_TOKEN_DIR"


def token_files() -> dict[str, bool]:
    """Which OIDC token files exist (never their contents)."""
    directory = os.environ.get(TOKEN_DIR_ENV)
    if not directory:
        return {}
    return {name: (Path(directory) / name).is_file() for name in ("access_token", "id_token")}


def describe_identity(user: User) -> dict[str, Any]:
    from_spawner = read_spawner_identity()
    hub_user = os.environ.get("JUPYTERHUB_USER")
    return {
        "user": user.username,
        "name": from_spawner.get("name") or user.display_name or user.name or user.username,
        "groups": list(from_spawner.get("groups", [])),
        "hub_user": from_spawner.get("user") or hub_user,
        "tokens": token_files(),
    }


def current_profile() -> dict[str, Any] | None:
    """The profile the spawner started this server with, and how its limits are enforced
    (`limits`: per resource "cgroup-v2", "cgroup-v1", "rlimit", or "advisory")."""
    identity = read_spawner_identity()
    profile = identity.get("profile")
    if not isinstance(profile, dict):
        return None
    return {**profile, "limits": identity.get("limits")} if "limits" in identity else profile

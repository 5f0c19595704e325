"""Calls to the kubelab REST API of the test's jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError
from traitlets import List, Unicode


class GrantAuthorizer(Authorizer):
    """Allows exactly the `action:resource` pairs in `grants` (`*` for any resource)."""

    grants = List(Unicode(), config=True)

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return f"{action}:{resource}" in self.grants or f"{action}:*" in self.grants


READ_ONLY = ["read:*"]  # a JupyterHub read-only share
NO_EXECUTE = ["read:*", "write:*"]  # may edit files and stop runs, never run code
KUBELAB_ONLY = ["read:kubelab"]  # may see runs, not the user's files


async def call(jp_fetch, method: str, *parts: str, body: Any = None, **params: Any) -> Any:
    """(status, JSON answer) of `METHOD /kubelab/api/<parts>`."""
    response = await jp_fetch(
        "kubelab",
        "api",
        *parts,
        method=method,
        body=json.dumps(body) if body is not None else None,
        params=params or None,
    )
    return response.code, json.loads(response.body)


async def refused(
    jp_fetch, method: str, *parts: str, body: Any = None, **params: Any
) -> tuple[int, dict]:
    """(status, JSON error) of a call that must fail."""
    with pytest.raises(HTTPClientError) as raised:
        await call(jp_fetch, method, *parts, body=body, **params)
    error = raised.value
    return error.code, json.loads(error.response.body)

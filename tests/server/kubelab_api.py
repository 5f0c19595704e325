"""Calls to the kubelab REST API of the test's jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


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

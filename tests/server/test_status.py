"""GET /kubelab/api/status through a real jupyter server."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from kubelab.pipelines import __version__


async def test_status_reports_version_backends_and_identity(jp_fetch) -> None:
    response = await jp_fetch("kubelab", "api", "status")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["version"] == __version__
    assert body["default_backend"] == "local"
    names = {backend["name"]: backend for backend in body["backends"]}
    assert names["local"]["available"] is True
    assert "kubernetes" in names
    assert body["identity"]["user"]
    assert isinstance(body["identity"]["groups"], list)
    assert "profile" in body


async def test_status_without_token_is_forbidden(jp_fetch) -> None:
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("kubelab", "api", "status", headers={"Authorization": ""})
    assert raised.value.code == 403


async def test_status_reads_identity_written_by_the_spawner(
    jp_fetch, tmp_path, monkeypatch
) -> None:
    identity = tmp_path / "identity.json"
    identity.write_text(
        json.dumps({"user": "alice", "groups": ["gpu-users"], "profile": {"slug": "gpu-small"}})
    )
    monkeypatch.setenv("KUBELAB_IDENTITY_FILE", str(identity))
    body = json.loads((await jp_fetch("kubelab", "api", "status")).body)
    assert body["identity"]["groups"] == ["gpu-users"]
    assert body["profile"]["slug"] == "gpu-small"


async def test_unknown_api_path_is_a_json_404(jp_fetch) -> None:
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("kubelab", "api", "no-such-thing")
    assert raised.value.code == 404

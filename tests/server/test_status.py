"""GET /kubelab/api/status through a real jupyter server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from kubelab.client.backends.reachability import PROBE_TIMEOUT_S
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


# -- is the kubernetes backend usable? ---------------------------------------------------


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No in-cluster ServiceAccount, no kubeconfig, no Kubeflow Pipelines endpoint."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBELAB_KFP_ENDPOINT", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return kubeconfig


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung API server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def kfp_healthz() -> Iterator[str]:
    """An HTTP server that answers Kubeflow Pipelines' `GET /apis/v2beta1/healthz`
    (its API server cannot be built here: see TOOLCHAIN.md)."""

    class Healthz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/apis/v2beta1/healthz"
            body = json.dumps({"multi_user": False} if ok else {"error": "not found"}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_kubeconfig(path: Path, server: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )


async def kubernetes_status(jp_fetch) -> tuple[dict, float]:
    started = time.perf_counter()
    body = json.loads((await jp_fetch("kubelab", "api", "status")).body)
    (kubernetes,) = [b for b in body["backends"] if b["name"] == "kubernetes"]
    return kubernetes, time.perf_counter() - started


async def test_kubernetes_is_unavailable_when_not_configured(no_cluster, jp_fetch) -> None:
    kubernetes, _ = await kubernetes_status(jp_fetch)
    assert kubernetes["available"] is False
    assert kubernetes["pipelines"]["reason"].startswith("no Kubeflow Pipelines endpoint")
    assert kubernetes["jobs"]["reason"] == "no in-cluster service account and no kubeconfig found"
    assert kubernetes["reason"].startswith("pipelines: no Kubeflow Pipelines endpoint")


@pytest.fixture
def hung_cluster(no_cluster: Path, silent_server: str) -> str:
    """A kubeconfig and a Kubeflow Pipelines endpoint whose servers never answer."""
    write_kubeconfig(no_cluster, f"https://{silent_server}")
    return silent_server


@pytest.fixture
def kubelab_settings(request: pytest.FixtureRequest) -> dict:
    """The server's Kubeflow Pipelines endpoint: the test's KFP server, if it has one."""
    for name, scheme in (("hung_cluster", "http://"), ("kfp_healthz", "")):
        if name in request.fixturenames:
            return {"kfp_endpoint": scheme + request.getfixturevalue(name)}
    return {}


async def test_configured_but_unreachable_is_unavailable_quickly_and_cached(
    hung_cluster, jp_fetch
) -> None:
    kubernetes, seconds = await kubernetes_status(jp_fetch)
    # Without a timeout the probes would wait forever; both run at once, each bounded.
    assert seconds < 4 * PROBE_TIMEOUT_S, "status waited for a hung server"
    assert kubernetes["available"] is False
    assert kubernetes["pipelines"]["reason"].startswith(
        f"cannot reach Kubeflow Pipelines at http://{hung_cluster}"
    )
    assert kubernetes["jobs"]["reason"].startswith(
        f"cannot reach the Kubernetes API at https://{hung_cluster}"
    )
    again, seconds = await kubernetes_status(jp_fetch)
    # A probe of a hung server takes PROBE_TIMEOUT_S at least: this answer was cached.
    assert again == kubernetes and seconds < PROBE_TIMEOUT_S


async def test_kubeflow_pipelines_that_answers_makes_the_backend_available(
    no_cluster, kfp_healthz, jp_fetch
) -> None:
    kubernetes, _ = await kubernetes_status(jp_fetch)
    assert kubernetes["available"] is True
    assert kubernetes["pipelines"] == {"available": True, "reason": None}
    assert kubernetes["jobs"]["available"] is False
    assert kubernetes["reason"] == "jobs: no in-cluster service account and no kubeconfig found"

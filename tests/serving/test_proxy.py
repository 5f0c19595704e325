"""Model servers through a real jupyter server (pytest-jupyter): started with the jobs
API, seen in the server view, called through `/kubelab/api/serving/{name}/...` under
Jupyter's login, with calling the model authorized as `execute`."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .conftest import IRIS_ROWS


class NoExecuteAuthorizer(Authorizer):
    """May read and manage servers, may not call models."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action != "execute"


@pytest.fixture
def no_execute() -> None:
    """Marks a test whose server refuses `execute`."""


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict:
    config: dict[str, Any] = {"ServerApp": {"jpserver_extensions": {"kubelab.server": True}}}
    if "no_execute" in request.fixturenames:
        config["ServerApp"]["authorizer_class"] = NoExecuteAuthorizer
    return config


@pytest.fixture
def model_in_root(jp_root_dir: Path, iris_file: Path) -> str:
    (jp_root_dir / "models").mkdir()
    shutil.copy(iris_file, jp_root_dir / "models" / "iris.joblib")
    return "models/iris.joblib"


async def api(jp_fetch: Any, method: str, *parts: str, body: Any = None) -> tuple[int, Any]:
    try:
        response = await jp_fetch(
            "kubelab",
            "api",
            *parts,
            method=method,
            body=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
            allow_nonstandard_methods=True,
        )
    except HTTPClientError as error:
        assert error.response is not None
        return error.code, json.loads(error.response.body)
    return response.code, json.loads(response.body)


async def serve_iris(jp_fetch: Any, model: str) -> dict[str, Any]:
    code, created = await api(
        jp_fetch,
        "POST",
        "jobs",
        body={"kind": "serving", "name": "iris", "spec": {"name": "iris", "model": model}},
    )
    assert code == 201, created
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        code, view = await api(jp_fetch, "GET", "serving", "iris")
        assert code == 200, view
        if view["ready"] or view["state"] not in ("pending", "running"):
            return view
        await asyncio.sleep(0.1)
    raise TimeoutError(view)


async def test_serve_view_and_call_through_jupyter(jp_fetch: Any, model_in_root: str) -> None:
    view = await serve_iris(jp_fetch, model_in_root)
    try:
        assert view["state"] == "running" and view["ready"] is True
        assert view["url"].startswith("http://127.0.0.1:")
        assert view["proxy_url"].endswith("/kubelab/api/serving/iris")
        assert view["format"] == "sklearn" and view["model"] == model_in_root
        assert view["metadata"]["inputs"][0]["shape"] == [-1, 4]
        assert view["example"]["inputs"][0]["shape"] == [1, 4]
        assert "ready in" in view["log_tail"]

        body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
        code, answer = await api(
            jp_fetch, "POST", "serving", "iris", "v2", "models", "iris", "infer", body=body
        )
        assert code == 200 and answer["outputs"][0]["data"] == [0, 1]
        code, answer = await api(
            jp_fetch,
            "POST",
            "serving",
            "iris",
            "v1",
            "models",
            "iris:predict",
            body={"instances": IRIS_ROWS},
        )
        assert (code, answer) == (200, {"predictions": [0, 1]})
        code, answer = await api(
            jp_fetch, "POST", "serving", "iris", "v2", "models", "iris", "infer", body="{"
        )
        assert code == 400 and "not valid JSON" in answer["error"]  # the model server's own 400
        assert (await api(jp_fetch, "GET", "serving", "iris", "v2", "health", "ready")) == (
            200,
            {"ready": True},
        )
        code, view = await api(jp_fetch, "GET", "serving", "iris")
        assert view["stats"]["requests"] >= 3 and view["stats"]["by_code"]["400"] >= 1
    finally:
        code, job = await api(jp_fetch, "POST", "jobs", "iris", "cancel")
    assert code == 200 and job["state"] == "cancelled"
    code, answer = await api(jp_fetch, "GET", "serving", "iris", "v2", "health", "ready")
    assert code == 409 and "is cancelled" in answer["message"]


async def test_the_proxy_needs_jupyters_login(
    jp_fetch: Any, jp_base_url: str, jp_http_port: int, model_in_root: str
) -> None:
    await serve_iris(jp_fetch, model_in_root)
    try:
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}kubelab/api/serving/iris/v2/models/iris"
        with pytest.raises(HTTPClientError) as anonymous:
            await AsyncHTTPClient().fetch(url, follow_redirects=False)
        assert anonymous.value.code in (302, 403)
        code, answer = await api(jp_fetch, "GET", "serving", "nope")
        assert code == 404 and "nope" in answer["message"]
    finally:
        await api(jp_fetch, "POST", "jobs", "iris", "cancel")


async def test_calling_a_model_is_execute(
    jp_fetch: Any,
    no_execute: None,
    model_in_root: str,
    jp_root_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A user without `execute` cannot start a server (that runs the model's code), so
    # the server is started beside Jupyter, as from the user's own notebook.
    code, refused_start = await api(
        jp_fetch,
        "POST",
        "jobs",
        body={"kind": "serving", "name": "iris", "spec": {"name": "iris", "model": model_in_root}},
    )
    assert code == 403 and "execute" in refused_start["message"]
    from kubelab.workloads.serving import serve

    monkeypatch.chdir(jp_root_dir)  # the notebook's folder: its models may be served
    server = await asyncio.to_thread(serve, str(jp_root_dir / model_in_root), name="iris")
    try:
        code, view = await api(jp_fetch, "GET", "serving", "iris")
        assert code == 200 and view["ready"]
        code, _ = await api(jp_fetch, "GET", "serving", "iris", "v2", "models", "iris")
        assert code == 200  # reading metadata is `read`
        body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch(
                "kubelab",
                "api",
                "serving",
                "iris",
                "v2",
                "models",
                "iris",
                "infer",
                method="POST",
                body=json.dumps(body),
            )
        assert refused.value.code == 403
    finally:
        await asyncio.to_thread(server.stop)

"""Model servers through the Jupyter server: a server's view, and a proxy to it, so a
JupyterHub user reaches a model server (which listens on the notebook's 127.0.0.1, or
is an InferenceService inside the cluster) from the browser, under Jupyter's login.

| method path                                   | answer                                   | authorization |
|-----------------------------------------------|------------------------------------------|---------------|
| GET  serving/{name}                           | 200 the server's view (below)            | read          |
| GET  serving/{name}/{v1/...,v2...,metrics}    | the model server's answer, as it is      | read          |
| POST serving/{name}/{v1/...:predict,v2/.../infer} | the model server's answer, as it is  | execute       |

The view: `{job, name, state, ready, url, proxy_url, format, model, metadata, stats,
example, log_tail}`: `stats` is `{requests, errors, by_code, latency_ms: {mean, p50,
p99}}` from the server's `/metrics`, `example` a v2 request prefilled from `metadata`.

Authorization is Jupyter's, on resource "kubelab": reading a server's state,
metadata, health and metrics is `read`; calling the model is `execute` (it runs the
model's code, a custom model's arbitrary Python, as running a cell is `execute` on
kernels). Starting, stopping and deleting servers are the jobs API's (`write`).
Neither cookies nor the Jupyter token are forwarded to the model server.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import httpclient, web

from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError
from kubelab.workloads.serving.api import internal_url, server_ready, server_url
from kubelab.workloads.serving.workload import STEP

from .handlers import API_PREFIX, KubelabHandler, guarded

PROXIED = r"(?P<path>v1/models(?:/[^/]+)?|v2(?:/.*)?|metrics)"
# Request and answer headers that carry the protocol, never credentials.
FORWARD_REQUEST = ("content-type", "inference-header-content-length", "accept")
FORWARD_RESPONSE = ("content-type", "inference-header-content-length")
LOG_TAIL = 4096


class UpstreamError(KubelabError):
    """The model server gave no HTTP answer (not listening any more, reset, timeout)."""

    status_code = 502


class ServingBase(KubelabHandler):
    async def server(self, name: str) -> dict[str, Any]:
        job = await self.call(self.client.get_job, name)
        if job.get("kind") != "serving":
            raise NotFoundError(f"no model server {name!r} ({name} is a {job.get('kind')} job)")
        return job


class ServerHandler(ServingBase):
    @guarded
    async def get(self, name: str) -> None:
        job = await self.server(name)
        url = server_url(job)
        ready = job["state"] == "running" and server_ready(job)
        spec = job.get("spec") or {}
        view: dict[str, Any] = {
            "job": job,
            "name": spec.get("name", name),
            "state": job["state"],
            "ready": ready,
            "url": url,
            "proxy_url": f"{self.base_url.rstrip('/')}{API_PREFIX}/serving/{job['id']}",
            "format": spec.get("format"),
            "model": spec.get("home_path") or spec.get("model_file"),
            "metadata": None,
            "stats": None,
            "example": None,
            "log_tail": await self._log_tail(job),
        }
        reachable = internal_url(job)
        if ready and reachable:
            from kubelab.workloads.serving.status import example_request, summarize_metrics

            metadata = await self._fetch_json(f"{reachable}/v2/models/{view['name']}")
            if metadata is not None:
                view["metadata"] = metadata
                view["example"] = example_request(metadata)
            metrics = await self._fetch(f"{reachable}/metrics")
            if metrics is not None and metrics.code == 200:
                view["stats"] = summarize_metrics(metrics.body.decode(), view["name"])
        self.write_json(view)

    async def _fetch(self, url: str) -> httpclient.HTTPResponse | None:
        try:
            return await httpclient.AsyncHTTPClient().fetch(
                url, raise_error=False, request_timeout=5
            )
        except (OSError, httpclient.HTTPClientError):
            return None

    async def _fetch_json(self, url: str) -> Any:
        import json

        answer = await self._fetch(url)
        if answer is None or answer.code != 200:
            return None
        return json.loads(answer.body)

    async def _log_tail(self, job: dict[str, Any]) -> str:
        try:
            log = await self.call(self.client.job_logs, job["id"], STEP)
        except KubelabError:
            return ""
        return str(log["text"])[-LOG_TAIL:]


class ProxyHandler(ServingBase):
    """Forwards one request to the model server and its answer back, status included."""

    async def _forward(self, name: str, path: str) -> None:
        job = await self.server(name)
        url = internal_url(job)
        if job["state"] not in ("pending", "running") or not url:
            raise ConflictError(
                f"model server {name} is {job['state']}; serve it again to call it",
                state=job["state"],
            )
        target = f"{url}/{path}"
        if self.request.query:
            target += f"?{self.request.query}"
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() in FORWARD_REQUEST}
        body = self.request.body if self.request.method == "POST" else None
        try:
            answer = await httpclient.AsyncHTTPClient().fetch(
                httpclient.HTTPRequest(
                    target,
                    method=self.request.method,
                    headers=headers,
                    body=body,
                    request_timeout=300,
                    follow_redirects=False,
                    decompress_response=False,
                ),
                raise_error=False,
            )
        except (OSError, httpclient.HTTPClientError) as error:
            raise UpstreamError(f"model server {name} does not answer at {url}: {error}") from None
        self.set_status(answer.code)
        for key in FORWARD_RESPONSE:
            if key in answer.headers:
                self.set_header(key, answer.headers[key])
        self.finish(answer.body)

    @guarded
    async def get(self, name: str, path: str) -> None:
        await self._forward(name, path)

    @web.authenticated
    @authorized("execute")
    async def post(self, name: str, path: str) -> None:
        await self._forward(name, path)


def serving_handlers(prefix: str) -> list[tuple[str, Any]]:
    server = rf"{prefix}/serving/(?P<name>[^/]+)"
    return [(server, ServerHandler), (rf"{server}/{PROXIED}", ProxyHandler)]

"""The model server process: one model behind the Open Inference Protocol (v2 REST),
KServe's v1 protocol and Prometheus `/metrics`, on the small asyncio HTTP server of
`httpserver.py`.

    python -m kubelab.workloads.serving.server --name iris --model model.joblib \
        [--format sklearn] [--host 127.0.0.1] [--port 0] [--job ID --store kubelab.db]

The same command serves a model on this machine (started by `kubelab serve`, recorded
in the run store under `--job`) and inside a KServe InferenceService's custom container
(no store; `--host 0.0.0.0 --port 8080`). It listens at once and loads the model in a
thread: `/v2/health/live` answers while `/v2/health/ready` is 503 until the model is
loaded. A model that fails to load is recorded as failed with its error and the process
exits 1. SIGTERM stops it cleanly; the store then says "cancelled".

Inference runs on the event loop, as in KServe's server: one process, one model in
memory, loaded once.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import prometheus_client
from prometheus_client import REGISTRY, Counter, Histogram, exposition

from . import protocol
from .formats import FORMATS, ServedModel, make_model
from .httpserver import HTTPServer, Request, Response, Router
from .protocol import InferRequest, ModelNotFound, ModelNotReady, NotSupported, ServerNotReady

log = logging.getLogger("kubelab.serving")
prometheus_client.disable_created_metrics()
SERVER_NAME = "kubelab"
EXTENSIONS = ["binary_tensor_data"]
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Same name and label as KServe's histogram, so dashboards built for KServe keep working.
PREDICT_SECONDS = Histogram(
    "request_predict_seconds", "predict request latency", ["model_name"], buckets=LATENCY_BUCKETS
)
REQUESTS = Counter(
    "kubelab_inference_requests_total",
    "inference requests by protocol and HTTP status",
    ["model_name", "protocol", "code"],
)
REQUEST_SECONDS = Histogram(
    "kubelab_inference_request_seconds",
    "inference request latency, from the request read to the response written",
    ["model_name", "protocol"],
    buckets=LATENCY_BUCKETS,
)


@functools.cache
def _version() -> str:
    """kubelab's version, looked up on the first `GET /v2` (not during the cold start)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubelab")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class ModelApp:
    """The endpoints of KServe's REST server (`/v1/...`, `/v2/...`, `/metrics`) for one
    model, and the metrics of its inference requests."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.error: str | None = None
        self.loading = True
        name = model.name
        self.predict_seconds = PREDICT_SECONDS.labels(name)
        self.request_seconds = {p: REQUEST_SECONDS.labels(name, p) for p in ("v1", "v2")}
        self._counters: dict[tuple[str, int], Any] = {}

    def router(self) -> Router:
        router = Router()
        m = r"(?P<name>[^/:]+)"
        v = r"(?:/versions/(?P<version>[^/]+))?"
        for method, path, handler in (
            ("GET", "/", self.live),
            ("GET", "/metrics", self.metrics),
            ("GET", "/v1/models", self.models),
            ("GET", f"/v1/models/{m}", self.model_ready),
            ("POST", f"/v1/models/{m}:predict", self.predict),
            ("POST", f"/v1/models/{m}:explain", self.explain),
            ("GET", "/v2", self.server_metadata),
            ("GET", "/v2/health/live", self.server_live),
            ("GET", "/v2/health/ready", self.server_ready),
            ("GET", "/v2/models", self.models),
            ("GET", f"/v2/models/{m}{v}", self.model_metadata),
            ("GET", f"/v2/models/{m}{v}/ready", self.model_ready),
            ("POST", f"/v2/models/{m}{v}/infer", self.infer),
        ):
            router.add(method, path, handler)
        return router

    def model_for(self, name: str) -> ServedModel:
        if name != self.model.name:
            raise ModelNotFound(name)
        if not self.model.ready:
            raise ModelNotReady(name, self.error or ("loading" if self.loading else None))
        return self.model

    # -- health and metadata ------------------------------------------------------------------

    def live(self, request: Request) -> Response:
        return Response.json({"status": "alive"})

    def metrics(self, request: Request) -> Response:
        encoder, content_type = exposition.choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), content_type=content_type)

    def server_metadata(self, request: Request) -> Response:
        return Response.json({"name": SERVER_NAME, "version": _version(), "extensions": EXTENSIONS})

    def server_live(self, request: Request) -> Response:
        return Response.json({"live": True})

    def server_ready(self, request: Request) -> Response:
        if not self.model.ready:
            raise ServerNotReady(self.error or ("loading" if self.loading else None))
        return Response.json({"ready": True})

    def models(self, request: Request) -> Response:
        return Response.json({"models": [self.model.name]})

    def model_metadata(self, request: Request) -> Response:
        return Response.json(self.model_for(request.params["name"]).metadata())

    def model_ready(self, request: Request) -> Response:
        name = request.params["name"]
        self.model_for(name)
        return Response.json({"name": name, "ready": True})

    def explain(self, request: Request) -> Response:
        name = request.params["name"]
        self.model_for(name)
        raise NotSupported(f"model {name!r} has no explainer")

    # -- inference ----------------------------------------------------------------------------

    def infer(self, request: Request) -> Response | Awaitable[Response]:
        request.params["protocol"] = "v2"
        name = request.params["name"]
        model = self.model_for(name)
        call = protocol.decode_infer_request(name, request.body, request.headers)
        call.model_version = request.params.get("version")
        return self._run(model.infer(call), lambda result: self._infer_response(call, result))

    def predict(self, request: Request) -> Response | Awaitable[Response]:
        request.params["protocol"] = "v1"
        model = self.model_for(request.params["name"])
        body = protocol.decode_predict_request(request.body)
        return self._run(model.predict_v1(body), self._predict_response)

    def _run(
        self, result: Any, respond: Callable[[Any], Response]
    ) -> Response | Awaitable[Response]:
        """Time the model; await it only when its code is async."""
        started = time.perf_counter()
        if not inspect.isawaitable(result):
            self.predict_seconds.observe(time.perf_counter() - started)
            return respond(result)

        async def finish() -> Response:
            value = await result
            self.predict_seconds.observe(time.perf_counter() - started)
            return respond(value)

        return finish()

    @staticmethod
    def _infer_response(call: InferRequest, result: Any) -> Response:
        if isinstance(result, list):
            body, headers = protocol.encode_infer_response(call, result)
            return Response(body, content_type=headers.pop("Content-Type"), headers=headers)
        if isinstance(result, tuple):  # KServe's InferResponse.to_rest(): (body, json length)
            raw, json_length = result
            if json_length is None:
                return Response.json(raw)
            return Response(
                raw,
                content_type="application/octet-stream",
                headers={protocol.HEADER_LENGTH: str(json_length)},
            )
        return Response.json(result)

    @staticmethod
    def _predict_response(result: Any) -> Response:
        if isinstance(result, dict):
            return Response.json(result)
        return Response(protocol.encode_predict_response(result))

    def on_response(self, request: Request, response: Response) -> None:
        proto = request.params.get("protocol")
        if proto is None:
            # Readiness probes answer 503 while the model loads: not worth a log line.
            if response.status >= 400 and not (response.status == 503 and self.loading):
                log.warning("%d %s %s", response.status, request.method, request.path)
            return
        counter = self._counters.get((proto, response.status))
        if counter is None:
            counter = self._counters[(proto, response.status)] = REQUESTS.labels(
                self.model.name, proto, str(response.status)
            )
        counter.inc()
        self.request_seconds[proto].observe(time.perf_counter() - request.started)
        if response.status >= 400:
            log.warning(
                "%d %s %s: %s", response.status, request.method, request.path, response.body[:300]
            )


# -- the process ---------------------------------------------------------------------------


class Recorder:
    """Writes the server's life into the run store row of its job (when it has one)."""

    def __init__(self, store_path: str | None, job_id: str | None) -> None:
        self.job_id = job_id
        self.store: Any = None
        if store_path and job_id:
            from kubelab.client.store import RunStore

            self.store = RunStore(store_path)

    def started(self, url: str, port: int) -> None:
        if self.store is None:
            return
        outputs = {"url": url, "port": port, "pid": os.getpid(), "ready": False}
        self.store.adopt(self.job_id)  # the job lives as long as this process
        self.store.update_task(
            self.job_id, "server", state="running", started_at=time.time(), outputs=outputs
        )
        self.outputs = outputs

    def ready(self) -> None:
        if self.store is None:
            return
        self.outputs["ready"] = True
        self.store.update_task(self.job_id, "server", outputs=self.outputs)
        self.store.update_run(self.job_id, state="running")

    def ended(self, state: str, error: str | None = None) -> None:
        if self.store is None:
            return
        now = time.time()
        if hasattr(self, "outputs"):
            self.outputs["ready"] = False
            self.store.update_task(self.job_id, "server", outputs=self.outputs)
        self.store.update_task(self.job_id, "server", state=state, error=error, finished_at=now)
        self.store.update_run(self.job_id, state=state, error=error, finished_at=now)


async def serve_forever(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"predict_proba": args.predict_proba}
    if args.class_name:
        options["class_name"] = args.class_name
    recorder = Recorder(args.store, args.job)
    try:
        model = make_model(args.name, args.model, args.format, options)
    except Exception as error:
        message = f"cannot serve {args.model}: {error}"
        log.error("%s", message)
        recorder.ended("failed", message)
        return 1
    app = ModelApp(model)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as error:
        message = f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
        log.error("%s", message)
        recorder.ended("failed", message)
        return 1
    server = HTTPServer(app.router(), app.on_response)
    await server.start([sock])
    port = sock.getsockname()[1]
    url = f"http://{'127.0.0.1' if args.host in ('', '0.0.0.0') else args.host}:{port}"
    recorder.started(url, port)
    log.info("listening on %s; loading %s model %s", url, model.format, model.path)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    started = time.perf_counter()
    try:
        await loop.run_in_executor(None, model.load)
    except Exception as error:
        app.loading = False
        app.error = f"{model.format} model {model.path.name}: {type(error).__name__}: {error}"
        log.error("model %s failed to load:\n%s", args.name, traceback.format_exc())
        await server.stop(grace=0)
        recorder.ended("failed", f"model failed to load: {app.error}")
        return 1
    app.loading = False
    log.info(
        "model %s (%s) ready in %.2fs: %s/v2/models/%s",
        args.name,
        model.format,
        time.perf_counter() - started,
        url,
        args.name,
    )
    recorder.ready()
    await stop.wait()
    log.info("stopping")
    await server.stop()
    recorder.ended("cancelled")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kubelab.workloads.serving.server",
        description="Serve one model over the Open Inference Protocol (v2) and KServe v1.",
    )
    parser.add_argument("--name", required=True, help="model name in the protocol's paths")
    parser.add_argument("--model", required=True, help="model file or directory")
    parser.add_argument("--format", choices=FORMATS, help="model format (default: recognised)")
    parser.add_argument("--class-name", help="custom format: the class to serve")
    parser.add_argument("--predict-proba", action="store_true", help="sklearn: predict_proba")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--job", help="run store job id to record the server's life in")
    parser.add_argument("--store", help="run store (SQLite file) of --job")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    args = parse_args(argv)
    try:
        import uvloop  # libuv's loop: fewer wake-ups per request than asyncio's own
    except ImportError:
        return asyncio.run(serve_forever(args))
    return int(uvloop.run(serve_forever(args)))


if __name__ == "__main__":
    sys.exit(main())

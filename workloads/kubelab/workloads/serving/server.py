"""The model server process: one model behind the Open Inference Protocol (v2 REST),
KServe's v1 protocol and Prometheus `/metrics`, on tornado.

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
import logging
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from prometheus_client import REGISTRY, Counter, Histogram, exposition

from . import protocol
from .formats import FORMATS, ServedModel, make_model
from .protocol import (
    ModelNotFound,
    ModelNotReady,
    NotSupported,
    ProtocolError,
    ServerNotReady,
    dumps,
)

log = logging.getLogger("kubelab.serving")
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubelab")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class State:
    """What every handler shares: the model, whether it is ready, and why not."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.error: str | None = None
        self.loading = True
        self.version = _version()
        name = model.name
        self.predict_seconds = PREDICT_SECONDS.labels(name)
        self.request_seconds = {p: REQUEST_SECONDS.labels(name, p) for p in ("v1", "v2")}
        self._counters: dict[tuple[str, int], Any] = {}

    def count(self, proto: str, code: int, seconds: float) -> None:
        counter = self._counters.get((proto, code))
        if counter is None:
            counter = self._counters[(proto, code)] = REQUESTS.labels(
                self.model.name, proto, str(code)
            )
        counter.inc()
        self.request_seconds[proto].observe(seconds)

    def model_for(self, name: str, *, ready: bool = True) -> ServedModel:
        if name != self.model.name:
            raise ModelNotFound(name)
        if ready and not self.model.ready:
            raise ModelNotReady(name, self.error or ("loading" if self.loading else None))
        return self.model


class Handler(tornado.web.RequestHandler):
    """JSON answers; every error is KServe's `{"error": message}` with its status."""

    state: State

    def initialize(self, state: State) -> None:
        self.state = state

    def compute_etag(self) -> None:
        return None

    def check_xsrf_cookie(self) -> None:
        return None  # an API for programs on 127.0.0.1; the Jupyter proxy checks XSRF

    def send(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(payload))

    def fail(self, error: ProtocolError) -> None:
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(error.body())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
        elif exc is not None:
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(dumps({"error": message}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ProtocolError):
            if not self._finished:
                self.fail(e)
            return
        super()._handle_request_exception(e)


class Live(Handler):
    def get(self) -> None:
        self.send({"status": "alive"})


class Metrics(Handler):
    def get(self) -> None:
        encoder, content_type = exposition.choose_encoder(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.finish(encoder(REGISTRY))


class ServerMetadata(Handler):
    def get(self) -> None:
        self.send({"name": SERVER_NAME, "version": self.state.version, "extensions": EXTENSIONS})


class ServerLive(Handler):
    def get(self) -> None:
        self.send({"live": True})


class ServerReady(Handler):
    def get(self) -> None:
        if not self.state.model.ready:
            raise ServerNotReady(self.state.error or ("loading" if self.state.loading else None))
        self.send({"ready": True})


class ModelList(Handler):
    def get(self) -> None:
        self.send({"models": [self.state.model.name]})


class ModelMetadata(Handler):
    def get(self, name: str, version: str | None = None) -> None:
        model = self.state.model_for(name)
        self.send(model.metadata())


class ModelReady(Handler):
    def get(self, name: str, version: str | None = None) -> None:
        self.state.model_for(name)
        self.send({"name": name, "ready": True})


class Inference(Handler):
    """Shared by v2 infer and v1 predict: timing, counting and the answer."""

    protocol_name = "v2"

    def on_finish(self) -> None:
        seconds = self.request.request_time()
        self.state.count(self.protocol_name, self.get_status(), seconds)

    async def run_model(self, call: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.state.predict_seconds.observe(time.perf_counter() - started)


class Infer(Inference):
    async def post(self, name: str, version: str | None = None) -> None:
        model = self.state.model_for(name)
        headers = {k.lower(): v for k, v in self.request.headers.items()}
        request = protocol.decode_infer_request(name, self.request.body, headers)
        request.model_version = version
        result = await self.run_model(model.infer(request))
        if isinstance(result, list):
            body, extra = protocol.encode_infer_response(request, result)
        elif isinstance(result, tuple):  # KServe's InferResponse.to_rest(): (body, json length)
            raw, json_length = result
            body, extra = (raw, {}) if isinstance(raw, bytes) else (dumps(raw), {})
            if json_length is not None:
                extra = {"Inference-Header-Content-Length": str(json_length)}
        else:
            body, extra = dumps(result), {"Content-Type": "application/json"}
        extra.setdefault("Content-Type", "application/json")
        for key, value in extra.items():
            self.set_header(key, value)
        self.finish(body)


class Predict(Inference):
    protocol_name = "v1"

    async def post(self, name: str) -> None:
        model = self.state.model_for(name)
        body = protocol.decode_predict_request(self.request.body)
        result = await self.run_model(model.predict_v1(body))
        if isinstance(result, dict):
            payload = dumps(result)
        else:
            payload = protocol.encode_predict_response(result)
        self.set_header("Content-Type", "application/json")
        self.finish(payload)


class Explain(Handler):
    def post(self, name: str) -> None:
        self.state.model_for(name)
        raise NotSupported(f"model {name!r} has no explainer")


class NotFound(Handler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, f"no such endpoint: {self.request.path}")


def make_app(state: State) -> tornado.web.Application:
    """Routes as KServe's REST server has them (`/v1/...`, `/v2/...`, `/metrics`)."""
    m = r"(?P<name>[^/:]+)"
    v = r"(?:/versions/(?P<version>[^/]+))?"
    routes: list[tuple[str, type[Handler]]] = [
        (r"/", Live),
        (r"/metrics", Metrics),
        (r"/v1/models", ModelList),
        (rf"/v1/models/{m}", ModelReady),
        (rf"/v1/models/{m}:predict", Predict),
        (rf"/v1/models/{m}:explain", Explain),
        (r"/v2", ServerMetadata),
        (r"/v2/health/live", ServerLive),
        (r"/v2/health/ready", ServerReady),
        (r"/v2/models", ModelList),
        (rf"/v2/models/{m}{v}", ModelMetadata),
        (rf"/v2/models/{m}{v}/ready", ModelReady),
        (rf"/v2/models/{m}{v}/infer", Infer),
    ]
    return tornado.web.Application(
        [(path, handler, {"state": state}) for path, handler in routes],
        default_handler_class=NotFound,
        default_handler_args={"state": state},
        log_function=_log_request,
        compress_response=False,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Errors only: a line per inference would bury the log the sidebar shows."""
    status = handler.get_status()
    if status >= 400:
        log.warning(
            "%d %s %s %.1fms",
            status,
            handler.request.method,
            handler.request.path,
            1000 * handler.request.request_time(),
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
        self.store.update_run(self.job_id, owner_pid=os.getpid(), owner_host=socket.gethostname())
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
    state = State(model)
    try:
        sockets = tornado.netutil.bind_sockets(args.port, args.host, family=socket.AF_INET)
    except OSError as error:
        message = f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
        log.error("%s", message)
        recorder.ended("failed", message)
        return 1
    server = tornado.httpserver.HTTPServer(make_app(state), xheaders=False)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
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
        state.loading = False
        state.error = f"{type(error).__name__}: {error}"
        log.error("model %s failed to load:\n%s", args.name, traceback.format_exc())
        server.stop()
        recorder.ended("failed", f"model failed to load: {state.error}")
        return 1
    state.loading = False
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
    server.stop()
    await server.close_all_connections()
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
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    args = parse_args(argv)
    return asyncio.run(serve_forever(args))


if __name__ == "__main__":
    sys.exit(main())

"""A small HTTP/1.1 server on asyncio (uvloop's loop when installed), with httptools
(llhttp, uvicorn's parser) doing the parsing: keep-alive, pipelining, chunked bodies,
`Expect: 100-continue`.

Why not tornado.web or an ASGI stack: measured on this machine (benchmarks/README.md),
a request through `tornado.web` costs ~300 µs of server CPU, through uvicorn with a
bare ASGI app ~100 µs, and through this module ~40 µs; for a model that predicts in
~200 µs the server's own cost decides the throughput.

A handler takes a `Request` and returns a `Response`, or an awaitable of one (only
models with async code need that); a `ProtocolError` it raises becomes its status and
`{"error": ...}` body, anything else a 500 with the exception named (and logged).
Responses on one connection go out in request order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httptools

from .protocol import ProtocolError, dumps

log = logging.getLogger("kubelab.serving")
MAX_BODY = 256 * 1024 * 1024
IDLE_TIMEOUT = 65.0  # seconds a kept-alive connection may sit idle (KServe's default)
REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
JSON = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's named groups
    started: float = 0.0
    keep_alive: bool = True


@dataclass
class Response:
    body: bytes
    status: int = 200
    content_type: str = JSON
    headers: dict[str, str] | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls(dumps(payload), status)


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class Router:
    """Exact paths by dict lookup, then patterns in order; methods per route."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` is exact, or a regular expression when it has a group `(...)`."""
        if "(" not in path:
            self.exact.setdefault(path, {})[method] = handler
            return
        pattern = re.compile(path + r"\Z")
        for existing, methods in self.patterns:
            if existing.pattern == pattern.pattern:
                methods[method] = handler
                return
        self.patterns.append((pattern, {method: handler}))

    def find(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, params, path_known): no handler with path_known means 405."""
        methods = self.exact.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for pattern, candidates in self.patterns:
                match = pattern.match(path)
                if match:
                    methods = candidates
                    params = {k: v for k, v in match.groupdict().items() if v is not None}
                    break
        if methods is None:
            return None, params, False
        handler = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        return handler, params, True


def _head(status: int, response: Response, length: int, close: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        f"content-type: {response.content_type}",
        f"content-length: {length}",
    ]
    if response.headers:
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Request] = deque()
        self.busy = False
        self.idle: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0

    # -- asyncio ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.idle:
            self.idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.idle:
            self.idle.cancel()
            self.idle = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as error:
            self._fail(400, f"malformed HTTP request: {error}")

    # -- httptools callbacks --------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self._fail(413, f"request body over {MAX_BODY // 2**20} MiB")
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None:
            return
        url = httptools.parse_url(self.url)
        request = Request(
            method=self.parser.get_method().decode(),
            path=unquote(url.path.decode("latin-1")),
            query=(url.query or b"").decode("latin-1"),
            headers=self.headers,
            body=b"".join(self.body),
            started=time.perf_counter(),
            keep_alive=self.parser.should_keep_alive(),
        )
        self._reset()
        self.pending.append(request)
        if not self.busy:
            self._next()

    # -- answering ---------------------------------------------------------------------------

    def _next(self) -> None:
        while self.pending and self.transport is not None:
            request = self.pending.popleft()
            result = self.server.dispatch(request)
            if inspect.isawaitable(result):
                self.busy = True
                self.transport.pause_reading()
                task = asyncio.ensure_future(result)
                task.add_done_callback(lambda t, r=request: self._finish_async(r, t))
                return
            self._send(request, result)
        if self.transport is not None and not self.pending:
            self._arm_idle()

    def _finish_async(self, request: Request, task: asyncio.Future[Response]) -> None:
        self.busy = False
        if self.transport is None:
            return
        self.transport.resume_reading()
        self._send(request, self.server.result_of(request, task))
        self._next()

    def _send(self, request: Request, response: Response) -> None:
        if self.transport is None:
            return
        close = not request.keep_alive or self.server.closing
        body = b"" if request.method == "HEAD" else response.body
        self.transport.write(_head(response.status, response, len(response.body), close) + body)
        self.server.on_response(request, response)
        if close:
            self.transport.close()
            self.transport = None

    def _fail(self, status: int, message: str) -> None:
        if self.transport is None:
            return
        response = Response.json({"error": message}, status)
        self.transport.write(_head(status, response, len(response.body), True) + response.body)
        self.transport.close()
        self.transport = None

    def _arm_idle(self) -> None:
        if self.transport is not None and self.idle is None:
            self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._close_idle)

    def _close_idle(self) -> None:
        self.idle = None
        if self.transport is not None and not self.busy:
            self.transport.close()

    def close_if_idle(self) -> None:
        if not self.busy and not self.pending and self.transport is not None:
            self.transport.close()


class HTTPServer:
    """Routes requests to handlers; `on_response(request, response)` sees every answer."""

    def __init__(
        self, router: Router, on_response: Callable[[Request, Response], None] | None = None
    ) -> None:
        self.router = router
        self.on_response = on_response or (lambda request, response: None)
        self.connections: set[Connection] = set()
        self.closing = False
        self._servers: list[asyncio.AbstractServer] = []

    def dispatch(self, request: Request) -> Response | Awaitable[Response]:
        handler, params, known = self.router.find(request.method, request.path)
        if handler is None:
            status = 405 if known else 404
            message = "method not allowed" if known else "no such endpoint"
            return Response.json({"error": f"{message}: {request.method} {request.path}"}, status)
        request.params.update(params)
        try:
            return handler(request)
        except Exception as error:
            return self.error_response(request, error)

    def result_of(self, request: Request, task: asyncio.Future[Response]) -> Response:
        error = task.exception()
        return task.result() if error is None else self.error_response(request, error)

    @staticmethod
    def error_response(request: Request, error: BaseException) -> Response:
        if isinstance(error, ProtocolError):
            return Response(error.body(), error.status)
        log.error(
            "%s %s failed:\n%s",
            request.method,
            request.path,
            "".join(traceback.format_exception(error)),
        )
        return Response.json({"error": f"{type(error).__name__}: {error}"}, 500)

    async def start(self, sockets: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            self._servers.append(await loop.create_server(lambda: Connection(self), sock=sock))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests in progress finish (up to `grace` s), close."""
        self.closing = True
        for server in self._servers:
            server.close()
        deadline = time.monotonic() + grace
        while True:
            for connection in list(self.connections):
                connection.close_if_idle()
            if not self.connections or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()

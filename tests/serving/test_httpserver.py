"""The small HTTP/1.1 server under the model server, with raw sockets and curl: what
clients other than tritonclient send (pipelining, chunked bodies, 100-continue)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess

import pytest

from kubelab.workloads.serving.httpserver import HTTPServer, Request, Response, Router
from kubelab.workloads.serving.protocol import InvalidInput


def app() -> HTTPServer:
    router = Router()

    def echo(request: Request) -> Response:
        return Response.json({"n": len(request.body), "path": request.path, "q": request.query})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response.json({"slow": True})

    def bad(request: Request) -> Response:
        raise InvalidInput("bad thing")

    def boom(request: Request) -> Response:
        raise RuntimeError("kaput")

    router.add("POST", "/echo", echo)
    router.add("GET", "/slow", slow)
    router.add("GET", "/bad", bad)
    router.add("GET", "/boom", boom)
    router.add("GET", r"/items/(?P<item>[^/]+)", lambda r: Response.json(r.params))
    return HTTPServer(router)


def exchange(port: int, raw: bytes, replies: int = 1) -> list[tuple[int, dict]]:
    """Send raw bytes; read `replies` responses off the same connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data, answers = b"", []
        while len(answers) < replies:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            while b"\r\n\r\n" in data:
                head, rest = data.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                if len(rest) < length:
                    break
                answers.append((int(head[9:12]), json.loads(rest[:length] or b"{}")))
                data = rest[length:]
        return answers


async def send(raw: bytes, replies: int = 1) -> list[tuple[int, dict]]:
    """The answers of a fresh server to `raw`, sent on one connection."""
    server = app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.start([sock])
    try:
        return await asyncio.to_thread(exchange, int(sock.getsockname()[1]), raw, replies)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_pipelined_requests_answer_in_order() -> None:
    raw = (
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /items/a%20b HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert await send(raw, 3) == [
        (200, {"slow": True}),
        (200, {"n": 3, "path": "/echo", "q": "a=1"}),
        (200, {"item": "a b"}),
    ]


@pytest.mark.asyncio
async def test_errors_and_methods() -> None:
    raw = (
        b"GET /bad HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = await send(raw, 4)
    assert answers[0] == (400, {"error": "bad thing"})
    assert answers[1] == (500, {"error": "RuntimeError: kaput"})
    assert answers[2][0] == 405 and answers[3][0] == 404
    garbage = await send(b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage[0][0] == 400 and "malformed HTTP request" in garbage[0][1]["error"]


@pytest.mark.asyncio
async def test_chunked_body_and_connection_close() -> None:
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    )
    # the server closes the connection after one answer
    assert await send(raw, 2) == [(200, {"n": 7, "path": "/echo", "q": ""})]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.asyncio
async def test_curl_large_body_with_expect_100_continue() -> None:
    server = app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.start([sock])
    port = sock.getsockname()[1]
    body = "x" * 300_000  # curl asks `Expect: 100-continue` for large bodies
    result = await asyncio.to_thread(
        subprocess.run,
        ["curl", "-sS", "--data-binary", "@-", f"http://127.0.0.1:{port}/echo"],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(result.stdout)["n"] == len(body), result.stderr
    await server.stop()

"""Why the model server has its own small HTTP layer: the server CPU one request costs
on each candidate stack, with the same trivial JSON handler (no model).

    .venv/bin/python benchmarks/serving_http_stacks.py [--seconds 5] [--rounds 2]

| stack | what runs |
|---|---|
| tornado.web | a `RequestHandler` in an `Application` (what jupyter_server uses) |
| tornado.httpserver | tornado's HTTP/1.1 connection with a bare request callback |
| uvicorn + ASGI | uvicorn (httptools parser, asyncio loop) with a bare ASGI app, no framework |
| kubelab.httpserver | `kubelab.workloads.serving.httpserver` (httptools on asyncio; uvloop too) |

Each server runs in its own process; `serving_load.py` drives it (8 connections, closed
loop); CPU per request is the server's user + system time over the requests answered.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HANDLER = """
import json, sys
PORT = int(sys.argv[1])
ANSWER = json.dumps({"model_name": "m", "id": "1", "outputs": [
    {"name": "output-0", "shape": [2], "datatype": "INT64", "data": [0, 1]}]}).encode()
def work(body):
    json.loads(body)
    return ANSWER
"""
SERVERS = {
    "tornado.web": """
import asyncio, tornado.web
class H(tornado.web.RequestHandler):
    def compute_etag(self):
        return None
    def post(self):
        self.set_header("Content-Type", "application/json")
        self.finish(work(self.request.body))
async def main():
    app = tornado.web.Application([(r"/infer", H)], log_function=lambda h: None)
    app.listen(PORT, "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
""",
    "tornado.httpserver": """
import asyncio, tornado.httpserver, tornado.httputil
def handle(request):
    body = work(request.body)
    request.connection.write_headers(
        tornado.httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
        tornado.httputil.HTTPHeaders(
            {"Content-Type": "application/json", "Content-Length": str(len(body))}),
        body)
    request.connection.finish()
async def main():
    tornado.httpserver.HTTPServer(handle).listen(PORT, "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
""",
    "uvicorn + ASGI": """
import uvicorn
async def app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = work(body)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})
uvicorn.run(app, host="127.0.0.1", port=PORT, http="httptools", loop="asyncio",
            access_log=False, log_level="warning", lifespan="off")
""",
    "kubelab.httpserver": """
import asyncio, socket
from kubelab.workloads.serving.httpserver import HTTPServer, Response, Router
router = Router()
router.add("POST", "/infer", lambda request: Response(work(request.body)))
async def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", PORT))
    await HTTPServer(router).start([sock])
    await asyncio.Event().wait()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
""",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    body = HERE / "results" / "serving" / "stack-request.json"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_text(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [2, 4],
                        "datatype": "FP32",
                        "data": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]],
                    }
                ]
            }
        )
    )
    processes, ports = {}, {}
    for name, code in SERVERS.items():
        if name.startswith("uvicorn"):
            try:
                import uvicorn  # noqa: F401
            except ImportError:
                print(f"{name}: skipped, uvicorn is not installed")
                continue
        ports[name] = free_port()
        processes[name] = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HANDLER + code), str(ports[name])]
        )
    time.sleep(3)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in processes}
    try:
        for _ in range(args.rounds):
            for name, process in processes.items():
                before = cpu_seconds(process.pid)
                out = subprocess.run(
                    [
                        sys.executable,
                        str(HERE / "serving_load.py"),
                        "--port",
                        str(ports[name]),
                        "--path",
                        "/infer",
                        "--body-file",
                        str(body),
                        "--seconds",
                        str(args.seconds),
                        "--warmup",
                        "0",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                load = json.loads(out.stdout)
                spent = cpu_seconds(process.pid) - before
                results[name].append(
                    {
                        "throughput": load["throughput"],
                        "us_per_request": round(1e6 * spent / max(1, load["requests"]), 1),
                    }
                )
    finally:
        for process in processes.values():
            process.terminate()
            process.wait()
    for name, rows in results.items():
        best = min(r["us_per_request"] for r in rows)
        print(f"{name:20} server CPU {best:7.1f} µs/request  (windows: {json.dumps(rows)})")
    (HERE / "results" / "serving_http_stacks.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

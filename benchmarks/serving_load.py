"""A closed-loop HTTP load generator: N keep-alive connections, each sending the same
request as soon as the last answer arrived, for a fixed duration.

    python benchmarks/serving_load.py --port 8080 --path /v2/models/iris/infer \
        --body-file request.json --concurrency 8 --seconds 20 [--warmup 2]

Prints one JSON object: requests, errors, throughput (req/s), latency percentiles (ms).
Standard library only, so the same client loads every server from any venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


class Connection(asyncio.Protocol):
    """One keep-alive connection in a closed loop: send, read the whole answer, send again.

    A bare protocol rather than asyncio streams: the client must cost far less per
    request than the servers it measures, on the same CPUs.
    """

    def __init__(
        self,
        request: bytes,
        start: float,
        end: float,
        latencies: list[float],
        errors: list[str],
        done: asyncio.Future[None],
    ) -> None:
        self.request, self.start, self.end = request, start, end
        self.latencies, self.errors, self.done = latencies, errors, done
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        self.sent = time.perf_counter()
        if self.sent >= self.end:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end]
        at = head.lower().find(b"content-length:") + 15
        line_end = head.find(b"\r\n", at)
        length = int(head[at : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = self.buffer[head_end + 4 + length :]
        if self.sent >= self.start:  # after the warm-up
            self.latencies.append(time.perf_counter() - self.sent)
            if head[9:12] != b"200":
                self.errors.append(head[9:12].decode())
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run(args: argparse.Namespace) -> dict[str, object]:
    with open(args.body_file, "rb") as file:
        body = file.read()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[str] = []
    now = time.perf_counter()
    start, end = now + args.warmup, now + args.warmup + args.seconds
    loop = asyncio.get_running_loop()
    finished = []
    for _ in range(args.concurrency):
        done = loop.create_future()
        await loop.create_connection(
            lambda done=done: Connection(request, start, end, latencies, errors, done),
            "127.0.0.1",
            args.port,
        )
        finished.append(done)
    await asyncio.gather(*finished)
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_codes": sorted(set(errors)),
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "throughput": round(len(latencies) / args.seconds, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

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


async def connection(
    port: int, request: bytes, start: float, end: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            sent = time.perf_counter()
            if sent >= end:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            status = head[9:12]
            if sent >= start:  # after the warm-up
                latencies.append(done - sent)
                if status != b"200":
                    errors.append(status.decode())
    finally:
        writer.close()


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
    await asyncio.gather(
        *(
            connection(args.port, request, start, end, latencies, errors)
            for _ in range(args.concurrency)
        )
    )
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

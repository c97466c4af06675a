"""A small load generator for when wrk is not installed: asyncio, raw sockets, one process.

`python -m bench.loadgen URL REQUESTS_FILE COUNT CONCURRENCY` posts the first COUNT records
of REQUESTS_FILE (the format wrk.lua reads) with CONCURRENCY connections and prints the
same "BENCH {...}" line as wrk.lua. Heavier on the CPU than wrk: prefer wrk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def read_requests(path: str, host: str) -> list[bytes]:
    out = []
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                break
            header, length = line.rstrip(b"\n").split(b"\t")
            body = f.read(int(length))
            out.append(
                b"POST /stripe/webhook/ HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Stripe-Signature: " + header + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + body
            )
    return out


async def run(url: str, path: str, count: int, concurrency: int) -> dict:
    parts = urlsplit(url)
    requests = read_requests(path, parts.netloc)[:count]
    latencies: list[float] = []
    errors = {"non_2xx": 0, "connect_errors": 0, "read_errors": 0}
    queue = iter(requests)

    async def client():
        for raw in queue:
            start = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            except OSError:
                errors["connect_errors"] += 1
                continue
            try:
                writer.write(raw)
                data = await reader.read()
            except OSError:
                errors["read_errors"] += 1
                continue
            finally:
                writer.close()
            latencies.append(time.perf_counter() - start)
            if not data.startswith(b"HTTP/1.1 2") and not data.startswith(b"HTTP/1.0 2"):
                errors["non_2xx"] += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    duration = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6) if latencies else 0

    return {
        "requests": len(latencies), "duration_us": int(duration * 1e6), "p50_us": pct(50), "p95_us": pct(95),
        "p99_us": pct(99), "max_us": pct(100), "mean_us": sum(latencies) / max(1, len(latencies)) * 1e6,
        **errors, "write_errors": 0, "timeouts": 0,
    }


def main(argv: list[str]) -> None:
    url, path, count, concurrency = argv[0], argv[1], int(argv[2]), int(argv[3])
    print("BENCH " + json.dumps(asyncio.run(run(url, path, count, concurrency))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

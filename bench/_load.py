"""Open-loop HTTP load generator for the benchmarks: cheap enough to share 2 cores with a server.

httpx's async client spends ~1-2 ms of CPU per request, which on a 2-core machine steals the
server's time at 200 requests/s. This client keeps HTTP/1.1 keep-alive connections open, sends
pre-encoded GET requests and reads responses by Content-Length, so almost all CPU goes to the
server under test. Request ``i`` is due at ``start + i / rps`` whatever happened before it
(open loop), and latency is measured from that due time, so a server that falls behind is
charged for the queueing it causes (no coordinated omission, as in wrk2).
Only ever pointed at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from urllib.parse import urlencode

import numpy as np


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(cpu.get(p, 0.0) for p in tree)


def request_bytes(host: str, path: str, params: dict | None = None) -> bytes:
    """One pre-encoded keep-alive GET request."""
    target = path + ("?" + urlencode(params, doseq=True) if params else "")
    return f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


class TransportError(Exception):
    """Refused, reset or cut off mid-answer: the server (process) is gone, not slow."""


class RawClient:
    """Keep-alive HTTP/1.1 to 127.0.0.1 ports: GETs and JSON POSTs for about 0.1-0.3 ms of
    client CPU each, where httpx's async client took ~6 ms a request in bench/soak.py."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def request(
        self, port: int, method: str, path: str, body: bytes | None = None, *, timeout: float
    ) -> int:
        """The response status; raises ``TimeoutError`` (slow) or ``TransportError`` (gone)."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        payload = (head + "\r\n").encode() + (body or b"")
        pool = self.idle.setdefault(port, [])
        for attempt in range(2):
            reused = bool(pool) and attempt == 0  # the retry always takes a new connection
            try:
                reader, writer = (
                    pool.pop() if reused else await asyncio.open_connection(self.host, port)
                )
            except OSError as exc:
                raise TransportError(type(exc).__name__) from exc
            try:
                writer.write(payload)
                status = await asyncio.wait_for(_read_response(reader), timeout)
            except TimeoutError:
                writer.close()
                raise
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                # A pooled connection the server closed while idle: try once on a new one.
                if reused and attempt == 0:
                    continue
                raise TransportError(type(exc).__name__) from exc
            pool.append((reader, writer))
            return status
        raise TransportError("unreachable")

    def close(self) -> None:
        """Close every idle connection."""
        for pool in self.idle.values():
            for _, writer in pool:
                writer.close()
        self.idle.clear()


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    seconds: float,
    rps: float,
    connections: int = 32,
    timeout: float = 10.0,
) -> dict:
    """Send ``requests`` (cycled) at ``rps`` for ``seconds``; latency percentiles and errors."""
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    lat: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}

    async def one(due: float, payload: bytes) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            writer.write(payload)
            status = await asyncio.wait_for(_read_response(reader), timeout)
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                errors += 1
            pool.put_nowait((reader, writer))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            writer.close()
            try:  # replace the broken connection
                pool.put_nowait(await asyncio.open_connection(host, port))
            except OSError:
                pass
        lat.append(time.perf_counter() - due)

    start = time.perf_counter()
    total = int(seconds * rps)
    tasks = []
    for i in range(total):
        due = start + i / rps
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(due, requests[i % len(requests)])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    arr = np.asarray(lat) * 1000
    return {
        "requests": len(lat),
        "seconds": elapsed,
        "achieved_rps": len(lat) / elapsed,
        "target_rps": rps,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "load_avg": os.getloadavg()[0],
    }

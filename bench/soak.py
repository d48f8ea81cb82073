"""Soak and failure test: API processes and workflow workers sharing one database.

A bounded, open-loop load (search, feed, events, assistant) against N `twinengine serve`
processes on 127.0.0.1. Optionally kills -9 one API process and one worker mid-run and
restarts them, then checks that every event answered 200 is stored exactly once, that
workflows complete, that p99 recovers, and that RSS stays bounded. Writes
bench/results/soak.json.

    python bench/soak.py --duration 1800 --rps 150            # the 30-minute soak
    python bench/soak.py --duration 120 --rps 100 --kill      # the kill test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "twinengine"
QUERIES = [
    "poster",
    "anime girl",
    "product shot",
    "watercolor",
    "infographic",
    "ポスター",
    "海报",
    "cyberpunk city",
    "logo",
    "portrait photo",
    "sticker",
    "3d render",
    "vintage",
    "food",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Fleet:
    """The API processes and workers under test."""

    def __init__(self, env: dict[str, str], n_api: int, n_workers: int) -> None:
        self.env = env
        self.ports = [free_port() for _ in range(n_api)]
        self.api: list[subprocess.Popen[bytes] | None] = [None] * n_api
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * n_workers
        self.logs = ROOT / "bench" / "results" / "soak-logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start_api(self, i: int) -> None:
        log = (self.logs / f"api{i}.log").open("ab")
        self.api[i] = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(self.ports[i])],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_worker(self, i: int) -> None:
        log = (self.logs / f"worker{i}.log").open("ab")
        env = {**self.env, "TWINENGINE_WORKFLOW_EXECUTOR_ID": f"soak-worker-{i}"}
        self.workers[i] = subprocess.Popen(
            [str(BIN), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"API on port {port} did not come up")
                time.sleep(0.5)

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for proc in [*self.api, *self.workers]:
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


class Load:
    """Open-loop load: requests start on schedule whether or not earlier ones finished."""

    def __init__(self, fleet: Fleet, rps: float, item_ids: list[str]) -> None:
        self.fleet = fleet
        self.rps = rps
        self.items = item_ids
        self.samples: list[tuple[float, str, int, float]] = []  # (t, kind, status, ms)
        self.acked: set[str] = set()
        self.sent_events = 0
        self.rng = random.Random(7)

    def _request(self) -> tuple[str, str, str, dict[str, Any] | None]:
        r = self.rng.random()
        user = f"soak-u{self.rng.randrange(500)}"
        if r < 0.40:
            return "search", "GET", f"/v1/search?q={self.rng.choice(QUERIES)}&k=20", None
        if r < 0.65:
            return "feed", "GET", f"/v1/feed?user={user}&k=20", None
        if r < 0.92:
            events = [
                {
                    "event_id": f"soak-{uuid.uuid4().hex}",
                    "type": "click",
                    "user_id": user,
                    "item_id": self.rng.choice(self.items),
                    "surface": "feed",
                    "position": 1 + i,
                }
                for i in range(5)
            ]
            return "events", "POST", "/v1/events", {"events": events}
        return "assistant", "POST", "/v1/assistant", {"brief": "a cosy autumn poster for a bakery"}

    async def _one(self, client: httpx.AsyncClient, t0: float) -> None:
        kind, method, path, body = self._request()
        port = self.rng.choice(self.fleet.ports)
        start = time.perf_counter()
        try:
            resp = await client.request(method, f"http://127.0.0.1:{port}{path}", json=body)
            status = resp.status_code
        except httpx.HTTPError:
            status = 0
        ms = (time.perf_counter() - start) * 1000
        self.samples.append((time.monotonic() - t0, kind, status, ms))
        if kind == "events" and body:
            self.sent_events += len(body["events"])
            if status == 200:
                self.acked.update(e["event_id"] for e in body["events"])

    async def run(self, duration: float, on_tick: Any = None) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            t0 = time.monotonic()
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            while (elapsed := time.monotonic() - t0) < duration:
                due = int(elapsed * self.rps)
                while n < due:
                    task = asyncio.create_task(self._one(client, t0))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    n += 1
                if on_tick:
                    on_tick(elapsed)
                await asyncio.sleep(0.002)
            if tasks:
                await asyncio.wait(tasks, timeout=15)


def windows(samples: list[tuple[float, str, int, float]], width: float) -> list[dict[str, Any]]:
    by: dict[int, list[tuple[float, str, int, float]]] = defaultdict(list)
    for s in samples:
        by[int(s[0] // width)].append(s)
    out = []
    for w in sorted(by):
        rows = by[w]
        ok = [r[3] for r in rows if 200 <= r[2] < 500]
        errors = sum(1 for r in rows if r[2] == 0 or r[2] >= 500)
        out.append(
            {
                "window_start_s": w * width,
                "requests": len(rows),
                "error_rate": errors / len(rows),
                "p50_ms": float(np.percentile(ok, 50)) if ok else None,
                "p99_ms": float(np.percentile(ok, 99)) if ok else None,
            }
        )
    return out


def count_stored(database_url: str, ids: set[str]) -> tuple[int, int]:
    """(distinct acked ids found, rows holding them) in the events table."""
    from sqlalchemy import create_engine, text

    from twinengine.storage.database import normalise_url

    engine = create_engine(normalise_url(database_url))
    found = rows = 0
    id_list = sorted(ids)
    with engine.connect() as conn:
        for i in range(0, len(id_list), 5000):
            chunk = id_list[i : i + 5000]
            res = conn.execute(
                text(
                    "SELECT event_id, count(*) FROM events WHERE event_id IN :ids GROUP BY event_id"
                ).bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)),
                {"ids": chunk},
            ).all()
            found += len(res)
            rows += sum(r[1] for r in res)
    engine.dispose()
    return found, rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--rps", type=float, default=150)
    ap.add_argument("--api", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--window", type=float, default=300)
    ap.add_argument(
        "--kill", action="store_true", help="kill -9 one API process and one worker mid-run"
    )
    ap.add_argument("--database-url", default=os.environ.get("TWINENGINE_DATABASE_URL", ""))
    ap.add_argument("--home", default=str(ROOT / ".twinengine"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = ap.parse_args()
    if not args.database_url:
        sys.exit("give --database-url postgresql://... (processes must share one database)")

    env = {**os.environ, "TWINENGINE_DATABASE_URL": args.database_url, "TWINENGINE_HOME": args.home}
    fleet = Fleet(env, args.api, args.workers)
    for i in range(args.api):
        fleet.start_api(i)
    for i in range(args.workers):
        fleet.start_worker(i)
    fleet.wait_ready()
    items = httpx.get(f"http://127.0.0.1:{fleet.ports[0]}/v1/items?limit=100").json()["data"]
    load = Load(fleet, args.rps, [i["id"] for i in items] or ["none"])
    rss: list[tuple[float, list[float]]] = []
    state = {"killed": False, "restarted": False, "last_rss": -1.0}

    def tick(elapsed: float) -> None:
        if elapsed - state["last_rss"] >= 10:
            state["last_rss"] = elapsed
            rss.append((elapsed, [rss_mb(p.pid) for p in fleet.api if p]))
        if args.kill and not state["killed"] and elapsed >= args.duration * 0.4:
            state["killed"] = True
            state["kill_t"] = elapsed
            fleet.kill(fleet.api[0])
            fleet.kill(fleet.workers[0] if fleet.workers else None)
        if (
            args.kill
            and state["killed"]
            and not state["restarted"]
            and elapsed >= state["kill_t"] + 3
        ):
            state["restarted"] = True
            fleet.start_api(0)
            if fleet.workers:
                fleet.start_worker(0)

    try:
        asyncio.run(load.run(args.duration, tick))
    finally:
        fleet.stop()
    found, rows = count_stored(args.database_url, load.acked)
    first = [v for _, vals in rss[:3] for v in vals if v == v]
    last = [v for _, vals in rss[-3:] for v in vals if v == v]
    result = {
        "duration_s": args.duration,
        "target_rps": args.rps,
        "requests": len(load.samples),
        "achieved_rps": len(load.samples) / args.duration,
        "error_rate": sum(1 for s in load.samples if s[2] == 0 or s[2] >= 500)
        / max(1, len(load.samples)),
        "by_status": {
            str(k): v
            for k, v in sorted(
                __import__("collections").Counter(s[2] for s in load.samples).items()
            )
        },
        "windows": windows(load.samples, args.window),
        "events_acked": len(load.acked),
        "events_lost": len(load.acked) - found,
        "events_duplicated": rows - found,
        "rss_first_mb": float(np.mean(first)) if first else None,
        "rss_last_mb": float(np.mean(last)) if last else None,
        "killed": args.kill,
    }
    if result["rss_first_mb"] and result["rss_last_mb"]:
        result["rss_growth"] = result["rss_last_mb"] / result["rss_first_mb"] - 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "windows"}, indent=2))
    for w in result["windows"]:
        print(
            f"window {w['window_start_s']:>6.0f}s: {w['requests']} req,"
            f" err {w['error_rate']:.3%}, p99 {w['p99_ms']}"
        )


if __name__ == "__main__":
    main()

"""Soak and failure test: API processes and workflow workers sharing one Postgres database.

A bounded, open-loop load (search, feed, events, assistant) against N `twinengine serve`
processes on 127.0.0.1, plus content drops queued through the API for M `twinengine worker`
processes. With --kill it kills -9 one API process and one worker mid-run (while a drop runs)
and restarts them. At the end it checks that every event answered 200 is stored exactly once,
that every queued workflow completes, that p99 recovers, and that RSS stays bounded; it prints
progress every --progress seconds and writes bench/results/soak.json.

    python bench/soak.py --database-url postgresql://postgres@127.0.0.1/te_soak \\
        --home /tmp/te-soak/home --duration 1800 --rps 150            # the 30-minute soak
    python bench/soak.py ... --duration 120 --rps 60 --kill          # the kill test

The database must hold a catalog and TWINENGINE_HOME its search index (`twinengine ingest`,
`twinengine index build`). Requests go only to 127.0.0.1. The run is bounded: the load stops
at --duration, in-flight requests are capped (--max-inflight; what cannot start is counted
as shed, not silently queued), draining is bounded by the request timeout, workflows get
--flow-timeout, and an alarm ends the whole script if anything else hangs.

Like a load balancer in front of the API, a request whose connection fails (refused or reset,
e.g. by the killed process) is retried once on another process: GETs are safe to repeat and
event batches are idempotent by event_id. First attempts' transport errors are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._load import RawClient, TransportError  # noqa: E402
from twinengine.catalog.demo import DEMO_CATALOG  # noqa: E402

BIN = Path(sys.executable).parent / "twinengine"
# Fixed queries in several scripts, plus title words drawn from the catalog at start-up.
QUERIES = ["poster", "anime girl", "product shot", "watercolor", "infographic", "ポスター", "海报"]
BRIEFS = [
    "a cosy autumn poster for a bakery",
    "cinematic portrait of an old fisherman at dawn",
    "cute sticker set of cats drinking coffee",
    "minimalist logo for a bike repair shop",
    "un cartel de película de ciencia ficción retro",
    "桜の下の着物の女性、水彩画",
]
# Request mix (shares of the load); drops are queued separately (--drops).
MIX = {"search": 0.40, "feed": 0.25, "events": 0.27, "assistant": 0.08}
Sample = tuple[float, str, int, float]  # (t since load start, kind, final status, ms)


def proc_stat(pid: int) -> tuple[float, float]:
    """(RSS in MB, user+system CPU seconds) of a live process; NaN when it is gone."""
    try:
        rss = next(
            int(line.split()[1]) / 1024
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, cpu
    except (OSError, StopIteration, ValueError):
        return float("nan"), float("nan")


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


class Fleet:
    """The API processes and workers under test, with their logs under bench/results."""

    def __init__(self, env: dict[str, str], ports: list[int], n_workers: int) -> None:
        self.env = env
        self.ports = ports
        self.api: list[subprocess.Popen[bytes] | None] = [None] * len(ports)
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
        # the same executor id after a restart: DBOS then recovers that executor's pending runs
        log = (self.logs / f"worker{i}.log").open("ab")
        self.workers[i] = subprocess.Popen(
            [str(BIN), "worker", "--id", f"soak-worker-{i}", "--no-schedule"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ready(self, i: int) -> bool:
        try:
            url = f"http://127.0.0.1:{self.ports[i]}/v1/health"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        for i, proc in enumerate(self.api):
            while not self.ready(i):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"API {i} exited with {proc.returncode}: see {self.logs}")
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"API on port {self.ports[i]} did not come up")
                time.sleep(0.5)
        return time.monotonic() - started

    @staticmethod
    def kill(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def pids(self) -> dict[str, int]:
        named = [(f"api{i}", p) for i, p in enumerate(self.api)]
        named += [(f"worker{i}", p) for i, p in enumerate(self.workers)]
        return {name: p.pid for name, p in named if p is not None and p.poll() is None}

    def stop(self) -> None:
        live = [p for p in [*self.api, *self.workers] if p is not None and p.poll() is None]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + 15
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Load:
    """Open-loop load: requests start on schedule whether or not earlier ones have finished."""

    def __init__(
        self, fleet: Fleet, rps: float, items: list[dict[str, Any]], max_inflight: int
    ) -> None:
        self.fleet = fleet
        self.rps = rps
        self.item_ids = [i["id"] for i in items]
        words = [w for i in items for w in (i.get("title") or "").lower().split() if len(w) > 3]
        self.queries = QUERIES + [
            " ".join(random.Random(n).sample(words, k=1 + n % 2)) for n in range(200)
        ]
        self.max_inflight = max_inflight
        self.samples: list[Sample] = []
        self.acked: set[str] = set()
        self.sent_events = 0
        self.first_try_errors: Counter[str] = Counter()
        self.shed = 0
        self.inflight = 0
        self.down_until: dict[int, float] = {}
        self.rng = random.Random(7)

    def _request(self) -> tuple[str, str, str, dict[str, Any] | None]:
        r = self.rng.random()
        user = f"soak-u{self.rng.randrange(500)}"
        kinds = list(MIX)
        kind = kinds[-1]
        acc = 0.0
        for name in kinds:
            acc += MIX[name]
            if r < acc:
                kind = name
                break
        if kind == "search":
            q = urlencode({"q": self.rng.choice(self.queries), "k": 20})
            return kind, "GET", f"/v1/search?{q}", None
        if kind == "feed":
            return kind, "GET", f"/v1/feed?user={user}&k=20", None
        if kind == "events":
            # what a page sends: the slate it showed, then clicks on some of it
            slate = self.rng.sample(self.item_ids, k=10)
            events: list[dict[str, Any]] = [
                {
                    "event_id": f"soak-{uuid.uuid4().hex}",
                    "type": "impression",
                    "user_id": user,
                    "surface": "feed",
                    "slate": slate,
                }
            ]
            events += [
                {
                    "event_id": f"soak-{uuid.uuid4().hex}",
                    "type": "click",
                    "user_id": user,
                    "surface": "feed",
                    "item_id": slate[p],
                    "position": 1 + p,
                }
                for p in sorted(self.rng.sample(range(10), k=4))
            ]
            return kind, "POST", "/v1/events", {"events": events}
        return kind, "POST", "/v1/assistant", {"brief": self.rng.choice(BRIEFS)}

    def _port(self, avoid: int | None = None) -> int:
        now = time.monotonic()
        up = [p for p in self.fleet.ports if p != avoid and self.down_until.get(p, 0) <= now]
        return self.rng.choice(up or [p for p in self.fleet.ports if p != avoid] or [avoid])

    async def _one(self, client: RawClient, t0: float, timeout: float) -> None:
        kind, method, path, body = self._request()
        data = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        status, port = 0, None
        try:
            for attempt in range(2):
                port = self._port(avoid=port)
                try:
                    status = await client.request(port, method, path, data, timeout=timeout)
                    break
                except TimeoutError:
                    # too slow, not gone: a retry would only add load to an overloaded server
                    self.first_try_errors["ReadTimeout"] += attempt == 0
                    break
                except TransportError as exc:
                    # refused or reset: like a balancer, mark it down a moment and retry elsewhere
                    self.down_until[port] = time.monotonic() + 1.0
                    if attempt == 0:
                        self.first_try_errors[str(exc)] += 1
        finally:
            self.inflight -= 1
            ms = (time.perf_counter() - start) * 1000
            self.samples.append((time.monotonic() - t0, kind, status, ms))
            if kind == "events" and body:
                self.sent_events += len(body["events"])
                if status == 200:
                    self.acked.update(e["event_id"] for e in body["events"])

    async def run(self, duration: float, timeout: float, on_tick: Any) -> float:
        client = RawClient()
        try:
            t0 = time.monotonic()
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            while (elapsed := time.monotonic() - t0) < duration:
                due = int(elapsed * self.rps)
                while n < due:
                    n += 1
                    if self.inflight >= self.max_inflight:
                        self.shed += 1  # the servers are this far behind: count it, don't queue
                        continue
                    self.inflight += 1
                    task = asyncio.create_task(self._one(client, t0, timeout))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await on_tick(elapsed)
                await asyncio.sleep(0.005)
            # drain: every request has its own timeout, so this ends; cancel stragglers anyway
            if tasks:
                _, pending = await asyncio.wait(set(tasks), timeout=timeout + 5)
                for task in pending:
                    task.cancel()
            return time.monotonic() - t0
        finally:
            client.close()


async def warm_up(load: Load, rounds: int = 3, timeout: float = 180.0) -> float:
    """Send every kind of request to every API process a few times, unhurried and uncounted.

    A process answers /v1/health before its models, search items and recommendation state are
    loaded (that happens in the background or on first use); a soak that started at full rate
    then would measure start-up, timing out requests that merely queued behind it.
    """
    client, started = RawClient(), time.monotonic()
    try:
        for _ in range(rounds):
            for port in load.fleet.ports:
                for kind in MIX:
                    while True:
                        k, method, path, body = load._request()
                        if k == kind:
                            break
                    data = json.dumps(body).encode() if body is not None else None
                    await client.request(port, method, path, data, timeout=timeout)
    finally:
        client.close()
    return time.monotonic() - started


def summarise(samples: list[Sample], start: float, end: float) -> dict[str, Any]:
    rows = [s for s in samples if start <= s[0] < end]
    ok = [r[3] for r in rows if 200 <= r[2] < 500]
    errors = sum(1 for r in rows if r[2] == 0 or r[2] >= 500)
    return {
        "start_s": round(start, 1),
        "requests": len(rows),
        "rps": round(len(rows) / max(1e-9, end - start), 1),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "p50_ms": pct(ok, 50),
        "p99_ms": pct(ok, 99),
        "p99_ms_by_kind": {
            k: pct([r[3] for r in rows if r[1] == k and 200 <= r[2] < 500], 99) for k in MIX
        },
    }


def count_stored(database_url: str, ids: set[str]) -> tuple[int, int]:
    """(distinct acknowledged ids found, rows holding them) in the events table."""
    from sqlalchemy import bindparam, create_engine, text

    from twinengine.storage.database import normalise_url

    engine = create_engine(normalise_url(database_url))
    query = text(
        "SELECT event_id, count(*) FROM events WHERE event_id IN :ids GROUP BY event_id"
    ).bindparams(bindparam("ids", expanding=True))
    found = rows = 0
    id_list = sorted(ids)
    with engine.connect() as conn:
        for i in range(0, len(id_list), 5000):
            res = conn.execute(query, {"ids": id_list[i : i + 5000]}).all()
            found += len(res)
            rows += sum(r[1] for r in res)
    engine.dispose()
    return found, rows


def cpu_cost(fleet: Fleet, load: Load, n: int) -> dict[str, dict[str, float | None]]:
    """CPU ms per request by kind, server (api0, from /proc) and generator, sent one at a time.

    CPU time rather than wall time, so that it says where capacity goes even on a shared
    machine; ``health`` is the HTTP and framework floor (client and server).
    """
    pid = fleet.api[0].pid if fleet.api[0] else 0
    base = f"http://127.0.0.1:{fleet.ports[0]}"
    out: dict[str, dict[str, float | None]] = {}

    async def one_kind(client: httpx.AsyncClient, kind: str) -> None:
        reqs = [("health", "GET", "/v1/health", None)] * n if kind == "health" else []
        while len(reqs) < n:
            if (req := load._request())[0] == kind:
                reqs.append(req)
        ms, ok = [], 0
        server0, client0 = proc_stat(pid)[1], time.process_time()
        for _, method, path, body in reqs:
            start = time.perf_counter()
            resp = await client.request(method, base + path, json=body)
            ms.append((time.perf_counter() - start) * 1000)
            ok += resp.status_code == 200
        out[kind] = {
            "server_cpu_ms": round((proc_stat(pid)[1] - server0) * 1000 / n, 1),
            "generator_cpu_ms": round((time.process_time() - client0) * 1000 / n, 2),
            "wall_p50_ms": pct(ms, 50),
            "ok": ok / n,
        }

    async def run() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            await client.get(base + "/v1/health")
            for kind in ["health", *MIX]:
                await one_kind(client, kind)

    asyncio.run(run())
    mixed = sum(MIX[k] * (out[k]["server_cpu_ms"] or 0) for k in MIX)
    out["mix"] = {"server_cpu_ms": round(mixed, 1), "max_rps_per_core": round(1000 / mixed, 1)}
    return out


def wait_for_flows(run_ids: list[str], port_of: Any, timeout: float) -> dict[str, str]:
    """Poll each run (``port_of()`` picks the API process to ask) until it ends or
    ``timeout`` passes; statuses by run id ("NOT QUEUED" for a post that failed: "!...")."""
    flows: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as c:
        for run_id in run_ids:
            status = "NOT QUEUED" if run_id.startswith("!") else "?"
            while not run_id.startswith("!"):
                try:
                    url = f"http://127.0.0.1:{port_of()}/v1/flows/{run_id}"
                    status = c.get(url).json()["status"]
                except (httpx.HTTPError, KeyError, ValueError):
                    status = "?"
                if status in ("SUCCESS", "ERROR", "CANCELLED") or time.monotonic() > deadline:
                    break
                time.sleep(1)
            flows[run_id] = status
    return flows


def warm_up_drops(port: int, contents: list[str], timeout: float) -> dict[str, str]:
    """Queue the drops at once (each worker runs one at a time, so each takes one) and wait
    for them; their statuses by run id."""
    run_ids = []
    with httpx.Client(timeout=60) as c:
        for content in contents:
            r = c.post(
                f"http://127.0.0.1:{port}/v1/flows/drops",
                json={"content": content, "allow_llm": False},
            )
            run_ids.append(r.json()["id"] if r.status_code == 202 else f"!{r.status_code}")
    return wait_for_flows(run_ids, lambda: port, timeout)


def drop_content(n: int, rows: list[dict[str, Any]], tag: str) -> str:
    """A small JSONL drop: real catalog rows as new items (new ids, the title marked)."""
    out = []
    for i, row in enumerate(rows[n * 3 : n * 3 + 3]):
        new = {**row, "id": f"soak-{tag}-{n}-{i}", "title": f"{row['title']} (soak {tag} {n})"}
        out.append(json.dumps(new, ensure_ascii=False))
    return "\n".join(out) + "\n"


def load_avg() -> float:
    return round(os.getloadavg()[0], 1)


def main() -> None:  # noqa: C901 - one linear script: start, load, kill, check, report
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=120, help="seconds of load")
    ap.add_argument("--rps", type=float, default=150, help="requests started per second")
    ap.add_argument("--api", type=int, default=2, help="API processes")
    ap.add_argument("--workers", type=int, default=2, help="workflow worker processes")
    ap.add_argument("--port-base", type=int, default=8150, help="API i listens on base+i")
    ap.add_argument("--window", type=float, default=300, help="seconds per reported window")
    ap.add_argument("--progress", type=float, default=10, help="seconds between progress lines")
    ap.add_argument("--timeout", type=float, default=10, help="per-request timeout, seconds")
    ap.add_argument("--max-inflight", type=int, default=256)
    ap.add_argument("--drops", type=int, default=4, help="content drops queued during the run")
    ap.add_argument("--flow-timeout", type=float, default=300, help="wait for drops, seconds")
    ap.add_argument("--startup-timeout", type=float, default=300)
    ap.add_argument(
        "--cost", type=int, default=0, help="first send N of each kind one at a time: CPU ms each"
    )
    ap.add_argument("--kill", action="store_true", help="kill -9 one API and one worker")
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction of --duration")
    ap.add_argument("--restart-after", type=float, default=3, help="seconds after the kill")
    ap.add_argument("--database-url", default=os.environ.get("TWINENGINE_DATABASE_URL", ""))
    ap.add_argument("--home", default=os.environ.get("TWINENGINE_HOME", str(ROOT / ".twinengine")))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = ap.parse_args()
    if not args.database_url.startswith("postgresql"):
        sys.exit("give --database-url postgresql://... (the processes must share one database)")

    # the whole run is bounded: an alarm past every phase's own bound ends it (fleet stopped)
    bound = args.startup_timeout * 2 + args.duration + args.timeout + args.flow_timeout + 120

    def over_bound(*_: object) -> None:
        raise TimeoutError(f"soak.py ran past its bound of {bound:.0f} s")

    signal.signal(signal.SIGALRM, over_bound)
    signal.alarm(int(bound))

    env = {
        **os.environ,
        "TWINENGINE_DATABASE_URL": args.database_url,
        "TWINENGINE_HOME": args.home,
        "TWINENGINE_WORKFLOW_POLL_S": "0.5",
    }
    ports = [args.port_base + i for i in range(args.api)]
    fleet = Fleet(env, ports, args.workers)
    result: dict[str, Any] = {"load_avg_start": load_avg()}
    try:
        for i in range(args.api):
            fleet.start_api(i)
        for i in range(args.workers):
            fleet.start_worker(i)
        result["startup_s"] = round(fleet.wait_ready(args.startup_timeout), 1)
        print(
            f"fleet up in {result['startup_s']} s: API on {ports}, {args.workers} workers",
            flush=True,
        )
        base = f"http://127.0.0.1:{ports[0]}"
        items = httpx.get(f"{base}/v1/items?limit=100", timeout=30).json()["data"]
        with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as fh:
            drop_rows = [json.loads(line) for line in islice(fh, 3 * (args.drops + args.workers))]
        load = Load(fleet, args.rps, items, args.max_inflight)
        result["warmup_s"] = round(asyncio.run(warm_up(load)), 1)
        print(f"warmed up in {result['warmup_s']} s (one of each request per process)", flush=True)
        if args.drops and args.workers:
            # A worker loads its tagger and embedding model on its first drop (~200 MB): do
            # that before the measured run, so RSS growth means growth, not a first load.
            warm = [drop_content(args.drops + i, drop_rows, "warm") for i in range(args.workers)]
            result["warmup_drops"] = warm_up_drops(ports[0], warm, args.flow_timeout)
            print(f"warm-up drops: {result['warmup_drops']}", flush=True)
        if args.cost:
            result["cpu_ms_per_request"] = cpu_cost(fleet, load, args.cost)
            print("CPU ms per request:", json.dumps(result["cpu_ms_per_request"]), flush=True)
        run_tag = uuid.uuid4().hex[:6]
        state: dict[str, Any] = {
            "last_rss": -1e9,
            "last_progress": 0.0,
            "drops": [],
            "queued": 0,
            "tasks": set(),
        }
        rss: list[tuple[float, dict[str, float]]] = []
        cpu0 = {name: proc_stat(pid)[1] for name, pid in fleet.pids().items()}
        gen_cpu0 = time.process_time()
        kill_t = args.duration * args.kill_at
        drop_times = [args.duration * (k + 1) / (args.drops + 1) for k in range(args.drops)]
        if args.kill and args.drops:
            drop_times[0] = max(1.0, kill_t - 8)  # one drop is running when the worker dies

        async def queue_drop(n: int, elapsed: float) -> None:
            # a drop POST is not idempotent, but an unanswered one is retried on another
            # process anyway (at worst a run is queued twice; every queued run is checked)
            body = {"content": drop_content(n, drop_rows, run_tag), "allow_llm": False}
            run_id, port = "!not sent", None
            async with httpx.AsyncClient(timeout=60) as c:
                for _ in range(3):
                    port = load._port(avoid=port)
                    try:
                        r = await c.post(f"http://127.0.0.1:{port}/v1/flows/drops", json=body)
                        run_id = r.json()["id"] if r.status_code == 202 else f"!{r.status_code}"
                        break
                    except httpx.HTTPError as exc:
                        run_id = f"!{type(exc).__name__}"
                        await asyncio.sleep(1)
            state["drops"].append(run_id)
            print(f"  t={elapsed:.0f}s queued drop {run_id}", flush=True)

        async def tick(elapsed: float) -> None:
            if elapsed - state["last_rss"] >= 5:
                state["last_rss"] = elapsed
                rss.append((elapsed, {n: proc_stat(p)[0] for n, p in fleet.pids().items()}))
            if state["queued"] < len(drop_times) and elapsed >= drop_times[state["queued"]]:
                state["queued"] += 1
                task = asyncio.create_task(queue_drop(state["queued"] - 1, elapsed))
                state["tasks"].add(task)  # the load loop goes on while the drop is posted
                task.add_done_callback(state["tasks"].discard)
            if args.kill and "kill_t" not in state and elapsed >= kill_t:
                state["kill_t"] = elapsed
                fleet.kill(fleet.api[0])
                fleet.kill(fleet.workers[0] if fleet.workers else None)
                print(f"  t={elapsed:.0f}s kill -9 api0 and worker0", flush=True)
            if (
                "kill_t" in state
                and "restart_t" not in state
                and elapsed >= kill_t + args.restart_after
            ):
                state["restart_t"] = elapsed
                fleet.start_api(0)
                if fleet.workers:
                    fleet.start_worker(0)
                print(f"  t={elapsed:.0f}s restarted api0 and worker0", flush=True)
            if (
                "restart_t" in state
                and "ready_t" not in state
                and elapsed - state.get("probe", 0) >= 1
            ):
                state["probe"] = elapsed
                if await asyncio.to_thread(fleet.ready, 0):
                    state["ready_t"] = elapsed
                    print(f"  t={elapsed:.0f}s api0 answers again", flush=True)
            if elapsed - state["last_progress"] >= args.progress:
                w = summarise(load.samples, state["last_progress"], elapsed)
                state["last_progress"] = elapsed
                mem = " ".join(f"{n}={v:.0f}MB" for n, v in rss[-1][1].items()) if rss else ""
                print(
                    f"t={elapsed:5.0f}s {w['rps']:6.1f} rps done, err {w['errors']}, p50"
                    f" {w['p50_ms']} p99 {w['p99_ms']} ms, inflight {load.inflight}, shed"
                    f" {load.shed}, load {load_avg()} | {mem}",
                    flush=True,
                )

        async def run_load() -> float:
            seconds = await load.run(args.duration, args.timeout, tick)
            if state["tasks"]:  # a drop still being posted
                await asyncio.wait(set(state["tasks"]), timeout=35)
            return seconds

        load_s = asyncio.run(run_load())
        gen_cpu = time.process_time() - gen_cpu0
        cpu1 = {name: proc_stat(pid)[1] for name, pid in fleet.pids().items()}
        result["load_avg_end"] = load_avg()

        # every queued workflow must complete (the restarted worker recovers its own)
        flows = wait_for_flows(state["drops"], load._port, args.flow_timeout)
    finally:
        fleet.stop()
        signal.alarm(0)

    found, rows = count_stored(args.database_url, load.acked)
    samples = load.samples
    width = args.window
    windows = [summarise(samples, s, min(s + width, load_s)) for s in np.arange(0, load_s, width)]
    names = sorted({n for _, d in rss for n in d})
    warm = [d for t, d in rss if t >= min(60.0, args.duration / 4)]

    def growth(name: str, series: list[dict[str, float]]) -> float | None:
        vals = [d[name] for d in series if name in d and d[name] == d[name]]  # NaN: gone
        return round(vals[-1] / vals[0] - 1, 4) if len(vals) >= 2 else None

    killed = {"api0", "worker0"} if args.kill else set()
    result.update(
        {
            "duration_s": args.duration,
            "target_rps": args.rps,
            "mix": MIX,
            "api_processes": args.api,
            "workers": args.workers,
            "requests": len(samples),
            "achieved_rps": round(len(samples) / load_s, 1),
            "shed_by_generator": load.shed,
            "errors": sum(1 for s in samples if s[2] == 0 or s[2] >= 500),
            "error_rate": sum(1 for s in samples if s[2] == 0 or s[2] >= 500)
            / max(1, len(samples)),
            "by_status": {str(k): v for k, v in sorted(Counter(s[2] for s in samples).items())},
            "first_try_transport_errors_retried": dict(load.first_try_errors),
            "overall": summarise(samples, 0, load_s),
            "windows": windows,
            "events_sent": load.sent_events,
            "events_acked": len(load.acked),
            "events_lost": len(load.acked) - found,
            "events_duplicated": rows - found,
            "workflows": flows,
            "workflows_completed": sum(1 for s in flows.values() if s == "SUCCESS"),
            "rss_mb": {
                n: [
                    round(d[n], 1) if d.get(n) == d.get(n) and n in d else None
                    for _, d in rss[:: max(1, len(rss) // 60)]
                ]
                for n in names
            },
            "rss_growth_from_start": {
                n: growth(n, [d for _, d in rss]) for n in names if n not in killed
            },
            "rss_growth_after_warmup": {n: growth(n, warm) for n in names if n not in killed},
            "server_cpu_s": {
                n: round(cpu1[n] - cpu0[n], 1) for n in cpu1 if n in cpu0 and n not in killed
            },
            "generator_cpu_s": round(gen_cpu, 1),
            "generator_cpu_ms_per_request": round(1000 * gen_cpu / max(1, len(samples)), 2),
            "cpu_cores": os.cpu_count(),
            "killed": args.kill,
        }
    )
    if args.kill and "kill_t" in state:
        k = state["kill_t"]
        before = summarise(samples, max(0, k - 30), k)
        after_start = state.get("ready_t", k) + 10
        after = summarise(samples, after_start, min(load_s, after_start + 30))
        result["kill"] = {
            "kill_at_s": round(k, 1),
            "restart_at_s": round(state["restart_t"], 1) if "restart_t" in state else None,
            "api0_ready_at_s": round(state["ready_t"], 1) if "ready_t" in state else None,
            "p99_30s_before_ms": before["p99_ms"],
            "p99_during_ms": summarise(samples, k, after_start)["p99_ms"],
            "p99_30s_after_ready_ms": after["p99_ms"],
            # recovered: api0 answers again and p99 is back within 1.5x of before the kill
            "p99_recovered": bool(
                "ready_t" in state
                and before["p99_ms"]
                and after["p99_ms"]
                and after["p99_ms"] <= 1.5 * before["p99_ms"]
            ),
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    short = {k: v for k, v in result.items() if k not in ("windows", "rss_mb", "overall")}
    print(json.dumps(short, indent=2))
    for w in windows:
        print(
            f"window {w['start_s']:>6.0f}s: {w['requests']} req ({w['rps']} rps),"
            f" err {w['errors']}, p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

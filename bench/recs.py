"""Recommendations benchmark: event ingest, simulator A/B, offline metrics, HTTP latency, ML-100k.

    python bench/recs.py [--ml100k PATH/ml-100k] [--quick]

Writes bench/results/recs.json. Parts:

1. ingest: simulator-like event batches POSTed to a real ``twinengine serve`` (SQLite, fsync
   on), wall-clock events/s and the server's CPU time per event;
2. simulator: the bundled catalog, users with latent topic tastes; a warm-up under a fixed
   logging policy (popular, half the slots random), then two arms replayed from the same
   state: the personalised feed and the popular baseline (true NDCG@10 and CTR), plus the
   cold-start feed of users who joined during the arms;
3. offline: time split of the simulator's log; Recall/NDCG@10, coverage, novelty per generator;
   EASE against ALS;
4. HTTP: feed, related, trending at a paced 100 requests/s against the server over the
   simulator's database: p50/p99;
5. ML-100k (when given): MS Recommenders protocol (per-user random 75/25 split, seed 42, k=10,
   seen items removed): popularity, EASE (lambda 500), ALS, and the tuned blend.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import git_commit  # noqa: E402
from bench.sim import InProcess, SimConfig, Simulator, source_candidates  # noqa: E402
from bench.sim.server import running_server  # noqa: E402
from twinengine.config import Settings  # noqa: E402
from twinengine.context import AppContext, open_context  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "recs.json"
START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
MSR = {"BiVAE": 0.475, "BPR": 0.442, "SAR": 0.383}
# Measured under the same protocol on this 2-core machine by an earlier session (issue #4).
REFERENCE = {"EASE(500)": 0.489, "popularity": 0.256}


def _load_demo(ctx: AppContext) -> None:
    from twinengine.catalog import service as catalog
    from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY

    catalog.load_taxonomy(ctx.db, path=DEMO_TAXONOMY)
    catalog.ingest(ctx.db, path=DEMO_CATALOG)
    catalog.load_topic_labels(ctx.db, path=DEMO_LABELS, source="human")


# --- 1. ingest -----------------------------------------------------------------------------------
def _ingest_bodies(n_batches: int, size: int) -> list[bytes]:
    bodies = []
    for b in range(n_batches):
        out = []
        for j in range(size):
            k = b * size + j
            base = {"event_id": f"e{k}", "user_id": f"u{k % 997}", "request_id": f"r{k // 5}",
                    "surface": "feed", "ts": "2026-11-20T10:00:00Z"}  # fmt: skip
            r = k % 5  # one impression (10 items), two clicks, a copy, a dwell: a session's mix
            if r == 0:
                out.append({**base, "type": "impression",
                            "slate": [f"i{(k + p) % 5000}" for p in range(10)]})  # fmt: skip
            elif r in (1, 2):
                out.append({**base, "type": "click", "item_id": f"i{k % 5000}", "position": 2})
            elif r == 3:
                out.append({**base, "type": "conversion", "item_id": f"i{k % 5000}",
                            "kind": "copy", "value": 1.0})  # fmt: skip
            else:
                out.append({**base, "type": "dwell", "item_id": f"i{k % 5000}", "value": 3000.0})
        bodies.append(json.dumps({"events": out}).encode())
    return bodies


def bench_ingest(
    n_batches: int, size: int, clients: int = 3, workers: int = 1, fsync: bool = True
) -> dict[str, Any]:
    """Events/s through POST /v1/events on a fresh SQLite server.

    The load generator is cheap: bodies encoded before the clock starts, one keep-alive
    connection per client thread, and a few of them so the server parses one batch while
    SQLite writes another.
    """
    import httpx

    bodies = _ingest_bodies(n_batches, size)
    home = Path(tempfile.mkdtemp(prefix="te-ingest-"))
    # running_server hands the server a copy of this process's environment.
    saved = os.environ.get("TWINENGINE_EVENTS_FSYNC")
    os.environ["TWINENGINE_EVENTS_FSYNC"] = "true" if fsync else "false"
    try:
        with running_server(home, workers=workers) as srv:
            _restore_env("TWINENGINE_EVENTS_FSYNC", saved)
            cpu0 = srv.cpu_seconds()
            own0 = time.process_time()
            queue = list(bodies)
            lock = threading.Lock()
            errors: list[str] = []

            def worker() -> None:
                client = httpx.Client(base_url=srv.url, timeout=120)
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    r = client.post(
                        "/v1/events", content=body, headers={"content-type": "application/json"}
                    )
                    if r.status_code != 200:
                        errors.append(r.text[:200])

            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            cpu = srv.cpu_seconds() - cpu0
            own = time.process_time() - own0
    finally:
        _restore_env("TWINENGINE_EVENTS_FSYNC", saved)
        shutil.rmtree(home, ignore_errors=True)
    n = n_batches * size
    return {
        "events": n,
        "batch_size": size,
        "clients": clients,
        "server_workers": workers,
        "fsync": fsync,
        "wall_s": round(wall, 3),
        "events_per_s": round(n / wall),
        "server_cpu_us_per_event": round(cpu / n * 1e6, 2),
        "events_per_cpu_s": round(n / cpu) if cpu else None,
        "client_cpu_us_per_event": round(own / n * 1e6, 2),
        "errors": errors[:3],
    }


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# --- 2. simulator ---------------------------------------------------------------------------------
def _explore(sim: Simulator, rate: float, seed: int):  # type: ignore[no-untyped-def]
    """The logging policy: the product's order with ``rate`` of slots given to random items."""
    rng = np.random.default_rng(seed)
    ids = sim.world.item_ids

    def policy(user, cands):  # type: ignore[no-untyped-def]
        ordered = [c.item_id for c in sorted(cands, key=lambda c: -c.score)][:10]
        for pos in range(len(ordered)):
            if rng.random() < rate:
                ordered[pos] = ids[int(rng.integers(len(ids)))]
        return ordered

    return policy


def bench_sim(home: Path, *, users: int, warm_days: int, eval_days: int) -> dict[str, Any]:
    """Warm up under the feed with exploration, then replay feed and popular from one state."""
    base = home / "warm"
    ctx = open_context(Settings(home=base))
    _load_demo(ctx)
    cfg = SimConfig(seed=7, n_users=users, new_users_per_day=max(2, users // 50), days=warm_days,
                    start=START, run_id="warm")  # fmt: skip
    sim = Simulator(ctx, cfg)
    t0 = time.perf_counter()
    # A fixed logging policy (popular, half the slots random) so the data the arms start from
    # does not depend on the feed under test.
    warm = sim.run(
        InProcess(ctx, candidates=source_candidates("popular"), policy=_explore(sim, 0.5, 1))
    )
    warm_s = time.perf_counter() - t0
    ctx.close()
    arms: dict[str, Any] = {}
    for arm, make in (
        ("feed", lambda c: InProcess(c)),
        ("popular", lambda c: InProcess(c, candidates=source_candidates("popular"))),
    ):
        arm_home = home / arm
        arm_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(base / "twinengine.db", arm_home / "twinengine.db")
        actx = open_context(Settings(home=arm_home))
        fork = sim.fork(actx)
        fork.run_id = f"arm-{arm}"
        t0 = time.perf_counter()
        res = fork.run(make(actx), days=eval_days, first_day=warm_days)
        m = res.metrics("feed")
        cold_keys = {u.key for u in fork.users if u.joined_day >= warm_days}
        cold = [s for ses in res.sessions if ses.user_key in cold_keys for s in ses.slates[:1]]
        m["cold_start_ndcg10"] = float(np.mean([s.ndcg10 for s in cold])) if cold else None
        m["cold_start_ctr"] = sum(len(s.clicked) for s in cold) / max(
            1, sum(len(s.items) for s in cold)
        )
        m["seconds"] = round(time.perf_counter() - t0, 1)
        arms[arm] = m
        actx.close()
    warm_m = {**warm.metrics("feed"), "events": warm.events, "seconds": round(warm_s, 1)}
    return {"warm": warm_m, "arms": arms, "users": users, "warm_days": warm_days,
            "eval_days": eval_days}  # fmt: skip


# --- 3. offline evaluation on the simulator's log ------------------------------------------------
def bench_offline(db_home: Path, *, split_day: int) -> dict[str, Any]:
    """Train on the log before ``split_day``, test on clicks after it: every generator."""
    from twinengine.discovery.candidates import service
    from twinengine.discovery.evaluation.metrics import coverage, ndcg_at_k, novelty, recall_at_k
    from twinengine.discovery.events import service as events

    ctx = open_context(Settings(home=db_home))
    at = START + dt.timedelta(days=split_day)
    rows = events.load_events(ctx, types=["click", "conversion"])
    train_users = {r["user_key"] for r in rows if r["ts"] < at}
    relevant: dict[str, set[str]] = {}
    for r in rows:
        if r["ts"] >= at and r["user_key"] in train_users:
            relevant.setdefault(r["user_key"], set()).add(r["item_id"])
    pop: dict[str, float] = {}
    for r in rows:
        if r["ts"] < at:
            pop[r["item_id"]] = pop.get(r["item_id"], 0.0) + 1
    out: dict[str, Any] = {"test_users": len(relevant)}
    for cf in ("ease", "als"):
        ctx.settings.recs_cf = cf
        t0 = time.perf_counter()
        st = service.refresh(ctx, now=at)
        fit_s = time.perf_counter() - t0
        for name in ("feed", "popular", "trending", "fresh", "affinity", "cooc", "cf", "embed"):
            if cf == "als" and name != "cf":
                continue
            ranked = {}
            for u in relevant:
                # Seen items are left out, as the served feed leaves converted ones out.
                seen = set(st.ids[r] for r in st.histories[u].rows) if u in st.histories else set()
                cands = service.generate(ctx, surface=name, user_key=u, k=10 + len(seen),
                                         include_converted=True)  # fmt: skip
                ranked[u] = [c.item_id for c in cands if c.item_id not in seen][:10]
            key = name if name != "cf" else f"cf_{cf}"
            out[key] = {
                "recall10": round(recall_at_k(ranked, relevant, 10), 4),
                "ndcg10": round(ndcg_at_k(ranked, relevant, 10), 4),
                "coverage10": round(coverage(ranked, st.n, 10), 4),
                "novelty10": round(novelty(ranked, pop, len(train_users), 10), 3),
            }
        out[f"fit_s_{cf}"] = round(fit_s, 2)
    ctx.settings.recs_cf = "ease"
    ctx.close()
    return out


# --- 4. HTTP latency ----------------------------------------------------------------------------
def bench_http(db_home: Path, *, rps: float, seconds: float) -> dict[str, Any]:
    """Paced requests (open loop) to feed, related and trending; latency percentiles."""
    from urllib.parse import quote

    ctx = open_context(Settings(home=db_home))
    from twinengine.discovery.events import service as events

    users = sorted({r["user_key"] for r in events.load_events(ctx, types=["click"], limit=20000)})
    items = sorted({r["item_id"] for r in events.load_events(ctx, types=["click"], limit=20000)})
    ctx.close()
    rng = np.random.default_rng(3)
    n = int(rps * seconds)
    paths = {
        "feed": [f"/v1/feed?user={quote(users[i % len(users)])}" for i in rng.permutation(n)],
        "related": [
            f"/v1/items/{quote(items[i % len(items)])}/related" for i in rng.permutation(n)
        ],
        "trending": ["/v1/trending"] * n,
    }
    out: dict[str, Any] = {"rps": rps, "seconds_per_surface": seconds, "workers": 2,
                           "latency_from": "scheduled send time (open loop)"}  # fmt: skip
    # Two worker processes, as `twinengine serve --workers 2` runs on this 2-core machine (one
    # process would leave a core idle: Python runs one request's code at a time).
    with running_server(db_home, workers=2) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        asyncio.run(_paced(port, paths["feed"][:20], rps=50))  # warm the state and connections
        for surface in ("feed", "related", "trending"):
            cpu0, own0 = srv.cpu_seconds(), time.process_time()
            out[surface] = asyncio.run(_paced(port, paths[surface], rps=rps))
            # Server CPU per request: the capacity figure contention on a shared box cannot hide.
            cpu_ms = (srv.cpu_seconds() - cpu0) * 1000
            out[surface]["server_cpu_ms_per_request"] = round(cpu_ms / n, 2)
            out[surface]["client_cpu_ms_per_request"] = round(
                (time.process_time() - own0) * 1000 / n, 2
            )
    out["p99_ms"] = max(out[s]["p99_ms"] for s in ("feed", "related", "trending"))
    return out


async def _paced(port: int, paths: list[str], *, rps: float) -> dict[str, Any]:
    """Send GETs for ``paths`` at ``rps`` on a schedule (open loop: a slow answer never delays
    the next request) over a pool of keep-alive connections, and summarise the latencies.

    A request's latency counts from the time it was due, so queueing on the client side is
    charged to the server rather than hidden (no coordinated omission). The generator is raw
    asyncio streams with pre-encoded requests: on a 2-core box a per-request thread and an
    HTTP client library cost as much CPU as the server being measured.
    """
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    lat: list[float] = []
    errors = 0
    statuses: dict[str, int] = {}

    async def one(path: str, due: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        reader, writer = conn
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            status = head[9:12].decode()
            ok = status == "200"
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            ok, status = False, type(exc).__name__
            writer.close()
        if not ok:
            statuses[status] = statuses.get(status, 0) + 1
        lat.append((time.perf_counter() - due) * 1000)
        errors += 0 if ok else 1

    tasks = []
    t0 = time.perf_counter()
    for k, path in enumerate(paths):
        due = t0 + k / rps
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(path, due)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    a = np.array(lat)
    return {
        "requests": len(paths),
        "errors": errors,
        "error_kinds": statuses,
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


# --- 5. ML-100k ---------------------------------------------------------------------------------
def bench_ml100k(path: Path) -> dict[str, Any]:
    """MS Recommenders protocol on GroupLens ML-100k."""
    from twinengine.discovery.evaluation.datasets import load_movielens_100k
    from twinengine.discovery.evaluation.protocol import run_protocol

    rows = load_movielens_100k(path)
    t0 = time.perf_counter()
    out = run_protocol([(u, i, ts) for u, i, ts, _ in rows])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["ms_recommenders"] = MSR
    out["reference"] = REFERENCE
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every part and write bench/results/recs.json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ml100k", type=Path, help="GroupLens ml-100k folder (reads u.data)")
    ap.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: ingest sim http")
    args = ap.parse_args(argv)
    q = args.quick
    result: dict[str, Any] = {
        "commit": git_commit(),
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={_cpus()}".strip(),
        "load_avg_at_start": list(_load()),
        "dataset": "bundled demo catalog (11,212 prompts) + simulator; ML-100k when given",
    }
    if "ingest" not in args.skip:
        print("ingest ...", flush=True)
        # fsync on (the default: a 200 survives power loss) and off (WAL + synchronous=NORMAL:
        # a 200 survives kill -9 of the server, the acceptance, but not power loss).
        runs = [bench_ingest(8 if q else 20, 5000, fsync=f) for f in (True, False)]
        for ing in runs:
            mode = "on " if ing["fsync"] else "off"
            print(f"  fsync {mode}: {ing['events_per_s']:,} events/s wall, "
                  f"{ing['events_per_cpu_s']:,} events per server CPU second, load generator "
                  f"{ing['client_cpu_us_per_event']} us CPU/event", flush=True)  # fmt: skip
        print(f"  fsync off / on: {runs[1]['events_per_s'] / runs[0]['events_per_s']:.2f}x wall")
        best = runs[0]  # the headline figure is the default, fsync on
        result["ingest"] = {"runs": runs}
        result["ingest_events_per_s"] = best["events_per_s"]
    home = Path(tempfile.mkdtemp(prefix="te-recs-"))
    try:
        if "sim" not in args.skip:
            warm_days = 6 if q else 10
            print("simulator ...", flush=True)
            sim = bench_sim(home, users=150 if q else 400, warm_days=warm_days,
                            eval_days=2 if q else 3)  # fmt: skip
            result["sim"] = sim
            result["sim_ndcg10_feed"] = round(sim["arms"]["feed"]["ndcg10"], 4)
            result["sim_ndcg10_popular"] = round(sim["arms"]["popular"]["ndcg10"], 4)
            result["sim_ctr_feed"] = round(sim["arms"]["feed"]["ctr"], 4)
            result["sim_ctr_popular"] = round(sim["arms"]["popular"]["ctr"], 4)
            for arm, m in sim["arms"].items():
                print(f"  {arm:8s} ndcg10 {m['ndcg10']:.4f} ctr {m['ctr']:.4f} cvr {m['cvr']:.3f} "
                      f"cold-start ndcg10 {m['cold_start_ndcg10']}", flush=True)  # fmt: skip
            ratio = result["sim_ndcg10_feed"] / max(result["sim_ndcg10_popular"], 1e-9)
            print(f"  feed / popular NDCG@10: {ratio:.2f}x", flush=True)
            print("offline evaluation ...", flush=True)
            result["offline"] = bench_offline(home / "feed", split_day=warm_days)
            for k, v in result["offline"].items():
                if isinstance(v, dict):
                    print(f"  {k:10s} {v}", flush=True)
            if "http" not in args.skip:
                print("HTTP latency ...", flush=True)
                http = bench_http(home / "feed", rps=100, seconds=5 if q else 10)
                result["http"] = http
                result["http_p99_ms"] = http["p99_ms"]
                for s in ("feed", "related", "trending"):
                    print(f"  {s:8s} {http[s]}", flush=True)
        if args.ml100k:
            print("ML-100k ...", flush=True)
            ml = bench_ml100k(args.ml100k)
            result["ml100k"] = ml
            result["ml100k_ndcg10"] = ml["best_ndcg10"]
            for name, v in ml["models"].items():
                print(f"  {name:14s} ndcg@10 {v['ndcg10']:.4f}", flush=True)
            best = ml["best_ndcg10"]
            print(f"  chosen by validation: {ml['best']} {best:.4f} "
                  f"(lambda {ml['models'][ml['best']]['lambda']}, "
                  f"weights {ml['validation']['weights']})")  # fmt: skip
            for name, ref in {**MSR, **REFERENCE}.items():
                print(f"  {name:14s} {ref:.3f}  (ours / it: {best / ref:.2f}x)")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _load() -> tuple[float, ...]:
    import os

    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


if __name__ == "__main__":
    raise SystemExit(main())

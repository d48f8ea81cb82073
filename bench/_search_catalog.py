"""Catalog half of the search benchmark: build time, restart time, in-process and HTTP latency."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from twinengine.catalog import service as catalog
from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY
from twinengine.config import Settings
from twinengine.context import open_context
from twinengine.discovery.index import service
from twinengine.discovery.index.docs import docs_of

ROOT = Path(__file__).resolve().parent.parent
FIXED = [
    "cyberpunk city at night",
    "watercolor cat",
    "product infographic bento grid",
    "portrait of an old man",
    "anime girl in school uniform",
    "logo design minimal",
    "vintage travel poster",
    "3d chibi character",
    "cinematic drone shot over mountains",
    "portriat",  # typo
    "猫",
    "水彩画",
    "黒猫",
    "赛博朋克",
    "ポスター",
    "孙悟空",
]


def _queries(ctx, n: int, seed: int = 7) -> list[str]:  # type: ignore[no-untyped-def]
    """Realistic one-to-four word queries drawn from catalog titles, plus fixed ones (EN/CJK)."""
    rng = random.Random(seed)
    page = catalog.list_items(ctx.db, flt=catalog.make_filter(), limit=2000, with_count=False)
    titles = [i.title for i in page.data]
    out = list(FIXED)
    while len(out) < n:
        words = re.findall(r"[A-Za-z]{3,}", rng.choice(titles))
        if words:
            start = rng.randrange(len(words))
            out.append(" ".join(words[start : start + rng.randint(1, 4)]).lower())
    return out[:n]


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "n": len(values),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def catalog_latency(*, http: bool = True, seconds: float = 30.0, rps: float = 200.0) -> dict:
    """Build (timed), reload (timed, fresh process), query in-process and over HTTP."""
    home = Settings().home / "bench-search"
    settings = Settings(home=home, database_url="")
    ctx = open_context(settings)
    out: dict = {"load_avg_at_start": os.getloadavg()[0]}
    if catalog.count_items(ctx.db) == 0:
        catalog.load_taxonomy(ctx.db, path=DEMO_TAXONOMY)
        catalog.ingest(ctx.db, path=DEMO_CATALOG)
        catalog.load_topic_labels(ctx.db, path=DEMO_LABELS, source="human")
    n_items = catalog.count_items(ctx.db)
    status = service.index_status(ctx)
    if os.environ.get("BENCH_REUSE_INDEX") and status.built and status.items == n_items:
        print(f"catalog: reusing the index of {status.items} items (build time not re-measured)")
    else:
        service.state_of(ctx).embedder()  # model load is part of restart, not of the build
        t0 = time.perf_counter()
        status = service.build_index(ctx)
        out["build_s"] = time.perf_counter() - t0
        out["build_load_avg"] = os.getloadavg()[0]
        print(f"catalog: built {status.items} items in {out['build_s']:.1f}s", flush=True)
    out["catalog_items"] = status.items

    # Restart: a fresh process loads the saved index (and, separately, the embedding model).
    probe = (
        "import time,sys;t=time.perf_counter();"
        "from twinengine.config import Settings;from twinengine.context import open_context;"
        "from twinengine.discovery.index.state import state_of;"
        f"c=open_context(Settings(home={str(home)!r},database_url=''));t1=time.perf_counter();"
        "s=state_of(c);t2=time.perf_counter();s.embedder().encode_query('warm',cache=False);"
        "t3=time.perf_counter();print(len(s.snapshot),t2-t1,t3-t2,t3-t)"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    n, load_s, model_s, total_s = res.stdout.split()[-4:]
    out["restart_index_load_s"] = float(load_s)
    out["restart_model_load_s"] = float(model_s)
    out["restart_total_s"] = float(total_s)
    print(f"restart: index {float(load_s):.2f}s, model {float(model_s):.2f}s", flush=True)

    queries = _queries(ctx, 600)
    state = service.state_of(ctx)
    state.embedder().encode_query("warm", cache=False)
    # A loaded snapshot reads its items into memory in the background (discovery/index/docs.py);
    # time that too, then measure queries in the steady state a server is in after start-up.
    t0 = time.perf_counter()
    while len(docs_of(state.snapshot)) < len(state.snapshot) and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    out["docs_warm_s"] = time.perf_counter() - t0
    for q in queries[:20]:
        service.search(ctx, q=q, k=10)
    lat: dict[str, list[float]] = {"hybrid": [], "lexical": [], "dense": []}
    for q in queries[20:420]:  # unique queries: the query-vector cache never helps here
        for mode in ("hybrid", "lexical", "dense"):
            if mode != "hybrid":
                state.embedder()._cache.clear()
            t0 = time.perf_counter()
            service.search(ctx, q=q, k=10, mode=mode)  # type: ignore[arg-type]
            lat[mode].append(time.perf_counter() - t0)
            state.embedder()._cache.clear()
    for mode, values in lat.items():
        out[f"inproc_{mode}"] = _pct(values)
    out["inproc_p99_ms"] = out["inproc_hybrid"]["p99_ms"]
    out["inproc_p50_ms"] = out["inproc_hybrid"]["p50_ms"]
    out["inproc_load_avg"] = os.getloadavg()[0]
    print(f"in-process hybrid {out['inproc_hybrid']}", flush=True)
    ctx.close()
    if http:
        out.update(_http(home, queries, seconds=seconds, rps=rps))
    return out


def _http(
    home: Path,
    queries: list[str],
    *,
    seconds: float,
    rps: float,
    database_url: str = "",
    workers: int = 2,
) -> dict:
    """`twinengine serve --workers N` as a user runs it, then the open-loop generator of
    bench/_load.py against GET /v1/search (hybrid, k=10, facets and snippets included)."""
    import httpx

    from bench._load import process_tree_cpu_s, request_bytes, run_load

    port = _free_port()
    env = {**os.environ, "TWINENGINE_HOME": str(home), "TWINENGINE_DATABASE_URL": database_url}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "twinengine"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/v1/search", params={"q": "warm"}, timeout=30).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        host = f"127.0.0.1:{port}"
        reqs = [request_bytes(host, "/v1/search", {"q": q, "k": 10}) for q in queries]
        # Warm every worker (model load, first-query costs) before the timed run.
        asyncio.run(run_load("127.0.0.1", port, reqs[:40], seconds=8, rps=10, connections=8))
        cpu0 = process_tree_cpu_s(server.pid)
        res = asyncio.run(run_load("127.0.0.1", port, reqs, seconds=seconds, rps=rps))
        cpu = process_tree_cpu_s(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"http: {res['requests']} requests in {res['seconds']:.1f}s "
        f"({res['achieved_rps']:.0f}/s), errors {res['errors']}, p50 {res['p50_ms']:.1f} ms, "
        f"p99 {res['p99_ms']:.1f} ms, server CPU {cpu / max(res['requests'], 1) * 1000:.2f} ms"
        f"/request, load avg {res['load_avg']:.1f}",
        flush=True,
    )
    return {
        "http_p99_ms": res["p99_ms"],
        "http_p50_ms": res["p50_ms"],
        "http_rps": res["achieved_rps"],
        "http_target_rps": rps,
        "http_seconds": res["seconds"],
        "http_errors": res["errors"],
        "http_workers": workers,
        "http_server_cpu_ms_per_request": cpu / max(res["requests"], 1) * 1000,
        "http_distinct_queries": len(set(queries)),
        "http_load_avg": res["load_avg"],
        "http": res,
    }

"""Ranking benchmark on simulator logs: NDCG@10, CTR, conversions, position bias, latency.

    python bench/rank.py [--users 300] [--days 10] [--eval-days 3] [--swap-rate 0.3]

1. Logging: the simulator (``bench/sim``) browses the product's feed and related candidates
   ordered by generator score, with randomised swap exploration on ``--swap-rate`` of the
   slates; events go through the events service into a fresh SQLite file. The driver logs the
   generator score of each shown item in the impression's ``attributes["scores"]``, as serving
   code should.
2. ``ranking.service.train`` on those logs (last 20% of slates held out): held-out NDCG@10 of
   popularity, the best untrained generator blend, LambdaMART and the blends.
3. The estimated position-bias curve against the simulator's true examination curve.
4. Online: fresh simulated days (same users, same history, events not written) served by each
   policy; CTR, conversions per impression and true NDCG@10 from the simulator's ground truth.
5. ``rerank`` latency for 200 candidates, in-process.

Writes bench/results/rank.json. Named baseline: the untrained generator blend (by_score).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.sim import InProcess, SimConfig, Simulator, SlateRequest, build_world  # noqa: E402
from bench.sim.drivers import Served, service_candidates  # noqa: E402
from twinengine.catalog import service as catalog  # noqa: E402
from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY  # noqa: E402
from twinengine.config import Settings  # noqa: E402
from twinengine.context import AppContext, open_context  # noqa: E402
from twinengine.discovery.candidates import service as candidates  # noqa: E402
from twinengine.discovery.ranking import service as ranking  # noqa: E402
from twinengine.discovery.ranking.models import BlendWeights  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rank.json"


class ScoreLoggingDriver(InProcess):
    """The product's candidates in generator order; impressions carry the generator scores."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx, log_experiments=False)
        self._scores: dict[str, dict[str, float]] = {}

    def slate(self, req: SlateRequest) -> Served:
        """Candidates in score order; remember their scores for the impression."""
        cands = self.candidates(self.ctx, req)
        self._scores[req.request_id] = {c.item_id: c.score for c in cands[: req.k]}
        return Served(items=[c.item_id for c in cands[: req.k]], request_id=req.request_id)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Add ``scores`` (aligned with the shown slate, swaps included) to impressions."""
        for ev in events:
            if ev["type"] == "impression":
                scores = self._scores.pop(ev["request_id"], {})
                ev["attributes"] = {**(ev.get("attributes") or {}),
                                    "scores": [scores.get(i) for i in ev["slate"]]}
        super().send(events)


class PolicyDriver:
    """Serves slates with a ranking policy and counts events without writing them."""

    def __init__(self, ctx: AppContext, policy: str, version: str | None) -> None:
        self.ctx = ctx
        self.policy = policy
        self.version = version
        self.written = 0

    def slate(self, req: SlateRequest) -> Served:
        """Candidates from the product, ordered by this driver's policy."""
        cands = service_candidates(self.ctx, req)
        if self.policy == "generator":
            ordered = cands
        elif self.policy == "popularity":
            ordered = sorted(cands, key=lambda c: -c.features.get("popular", 0.0))
        else:
            blend = BlendWeights.preset(self.policy) if self.policy != "multiobjective" else None
            ordered = ranking.rerank(self.ctx, surface=req.surface, user_key=req.user.key,
                                     candidates=cands, k=req.k, model=self.version, blend=blend)
        return Served(items=[c.item_id for c in ordered[: req.k]], request_id=req.request_id)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Count, do not store: every policy sees the same logged history."""
        self.written += len(events)

    def flush(self) -> None:
        """Nothing is buffered."""

    def on_day(self, now: dt.datetime) -> None:
        """The history does not change between policies."""


def load_catalog(ctx: AppContext, n_items: int, folder: Path) -> int:
    """The bundled taxonomy, and every (or an evenly spaced subset of) prompt with its labels."""
    catalog.load_taxonomy(ctx.db, path=DEMO_TAXONOMY)
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    if n_items and n_items < len(lines):
        step = len(lines) / n_items
        lines = [lines[int(i * step)] for i in range(n_items)]
    ids = {json.loads(line)["id"] for line in lines}
    (folder / "items.jsonl").write_text("".join(lines), encoding="utf-8")
    labels = [line for line in DEMO_LABELS.read_text(encoding="utf-8").splitlines()
              if json.loads(line)["id"] in ids]
    (folder / "labels.jsonl").write_text("\n".join(labels) + "\n", encoding="utf-8")
    report = catalog.ingest(ctx.db, path=folder / "items.jsonl")
    catalog.load_topic_labels(ctx.db, path=folder / "labels.jsonl", source="human")
    return report.rows


def latency(ctx: AppContext, version: str, users: list[str], n: int = 500) -> dict[str, float]:
    """Percentiles of ``rerank`` over 200 product candidates, in-process, after warm-up."""
    pools = []
    for u in users[:25]:
        cands = candidates.generate(ctx, surface="feed", user_key=u, k=200)
        if len(cands) == 200:
            pools.append((u, cands))
    for u, c in pools:
        ranking.rerank(ctx, surface="feed", user_key=u, candidates=c, k=20, model=version)
    took, cpu = [], []
    for i in range(n):
        u, c = pools[i % len(pools)]
        t, t_cpu = time.perf_counter(), time.thread_time()
        ranking.rerank(ctx, surface="feed", user_key=u, candidates=c, k=20, model=version)
        took.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - t_cpu) * 1000)
    a, b = np.asarray(took), np.asarray(cpu)
    # Wall time includes waiting for a CPU on a loaded machine; thread CPU time does not.
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "n": n,
            "cpu_p50": float(np.percentile(b, 50)), "cpu_p99": float(np.percentile(b, 99)),
            "load_avg_1m": os.getloadavg()[0]}


def main() -> None:
    """Run the benchmark and write bench/results/rank.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--eval-days", type=int, default=3)
    ap.add_argument("--swap-rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--items", type=int, default=3000, help="catalog subset (0: all 11,212)")
    ap.add_argument("--home", type=Path, default=None, help="keep the run's files here")
    args = ap.parse_args()
    t_start = time.time()
    home = args.home or Path(tempfile.mkdtemp(prefix="rank-bench-"))
    ctx = open_context(Settings(home=home, database_url=""))
    n_items = load_catalog(ctx, args.items, home)
    print(f"catalog: {n_items} items ({time.time() - t_start:.0f}s)")

    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    cfg = SimConfig(seed=args.seed, n_users=args.users, days=args.days, swap_rate=args.swap_rate,
                    start=start)
    world = build_world(ctx, seed=args.seed)
    sim = Simulator(ctx, cfg, world=world)
    t = time.time()
    logged = sim.run(ScoreLoggingDriver(ctx))
    log_metrics = logged.metrics(surface=None)
    print(f"logging: {logged.events} events, {log_metrics} ({time.time() - t:.0f}s)")

    t = time.time()
    info = ranking.train(ctx, holdout=0.2)
    m = info["metrics"]
    print(f"trained {info['version']} on {m['rows']} rows ({time.time() - t:.0f}s)")
    est = np.asarray(info["propensity"]["values"][:10])
    true = np.asarray(sim.true_examination(np.arange(1, 11)), dtype=float)
    rel_err = np.abs(est - true) / true

    candidates.refresh(ctx, now=start + dt.timedelta(days=args.days))
    online: dict[str, dict[str, float]] = {}
    for policy in ("generator", "popularity", "lambdamart", "click", "multiobjective"):
        t = time.time()
        eval_cfg = SimConfig(seed=args.seed, n_users=args.users, days=args.eval_days,
                             swap_rate=0.0, start=start + dt.timedelta(days=args.days),
                             new_users_per_day=0, run_id=f"eval-{policy}")
        res = Simulator(ctx, eval_cfg, world=world).run(
            PolicyDriver(ctx, policy, info["version"]))
        om = res.metrics(surface=None)
        om["conversions_per_impression"] = om["ctr"] * om["cvr"]
        online[policy] = om
        print(f"online {policy}: {om} ({time.time() - t:.0f}s)")

    lat = latency(ctx, info["version"], [u.key for u in sim.users])
    print(f"rerank 200 candidates: {lat}")
    click, multi = online["click"], online["multiobjective"]
    result = {
        "dataset": {"catalog": "bundled demo prompts", "catalog_items": n_items,
                    "sim_users": args.users, "log_days": args.days,
                    "eval_days": args.eval_days, "swap_rate": args.swap_rate, "seed": args.seed,
                    "impression_rows": m["rows"], "clicks": m["clicks"],
                    "conversions": m["conversions"]},
        "baseline": "generator (untrained candidate blend, by_score)",
        "ndcg10_popularity": m["ndcg10_popularity"],
        "ndcg10_blend": m["ndcg10_blend"],
        "ndcg10_blend_name": m["best_untrained_blend"],
        "ndcg10_untrained": m["ndcg10_untrained"],
        "ndcg10_lambdamart": m["ndcg10_lambdamart"],
        "ndcg10_click_only": m["ndcg10_click"],
        "ndcg10_multiobjective": m["ndcg10_multiobjective"],
        "online": online,
        "cvr_click_only": click["conversions_per_impression"],
        "cvr_multiobjective": multi["conversions_per_impression"],
        "ctr_click_only": click["ctr"],
        "ctr_multiobjective": multi["ctr"],
        "ctr_cost_rel": (multi["ctr"] - click["ctr"]) / click["ctr"],
        "conversion_gain_rel": (multi["conversions_per_impression"]
                                - click["conversions_per_impression"])
        / click["conversions_per_impression"],
        "propensity_estimated": est.tolist(),
        "propensity_true": true.tolist(),
        "propensity_method": info["propensity"]["method"],
        "propensity_rel_error": float(rel_err.max()),
        "propensity_rel_error_by_position": rel_err.tolist(),
        "rerank200_ms": lat,
        "rerank200_p99_ms": lat["p99"],
        "model_version": info["version"],
        "commit": _commit(),
        "hardware": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                     "python": platform.python_version(),
                     "note": "shared 2-core machine under contention from other jobs"},
        "seconds": round(time.time() - t_start, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict | list)},
                     indent=2))
    base = online["generator"]
    for policy, om in online.items():
        print(f"{policy:>15}: ctr x{om['ctr'] / base['ctr']:.3f}  conv/impr "
              f"x{om['conversions_per_impression'] / base['conversions_per_impression']:.3f}  "
              f"true ndcg10 x{om['ndcg10'] / base['ndcg10']:.3f}  (vs generator)")
    ctx.close()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


if __name__ == "__main__":
    main()

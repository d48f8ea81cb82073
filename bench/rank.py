"""Ranking benchmark on simulator logs: NDCG@10, CTR, conversions, position bias, latency.

    python bench/rank.py [--users 300] [--days 10] [--eval-days 3] [--swap-rate 0.3]
        [--explore swap|shuffle] [--copy-usefulness 0] [--eval-users N] [--home DIR]

1. Logging: the simulator (``bench/sim``) browses the product's feed and related candidates
   ordered by generator score, with randomised exploration (``--explore``) on ``--swap-rate``
   of the slates; events go through the events service into a fresh SQLite file. The driver
   logs the generator score of each shown item in the impression's ``attributes["scores"]``,
   as serving code should. ``--copy-usefulness`` gives items a conversion rate that is not a
   function of their click appeal (clickbait vs useful prompts); at 0 ordering by clicks is
   already ordering by conversions and no blend can lift conversions.
2. ``ranking.service.train`` on those logs (last 20% of slates held out): held-out NDCG@10 of
   popularity, the best untrained generator blend, LambdaMART and the blends.
3. The position-bias curve estimated on the whole log against the simulator's true curve
   (both 1 at position 1), with a bootstrap over slates for its noise.
4. Online, paired: fresh simulated days (same users and history, events not written); on every
   request each policy orders the same 200 product candidates and the simulator's ground
   truth gives that slate's expected clicks, expected conversions and NDCG@10.
5. Re-rank latency for 200 candidates, in-process, the rankers taking turns call by call.

Writes bench/results/rank.json. Named baseline: the untrained generator blend (by_score);
for latency, the untrained CTR blend over the same in-memory features.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._common import git_commit  # noqa: E402
from bench.sim import InProcess, SimConfig, Simulator, SlateRequest, build_world  # noqa: E402
from bench.sim.drivers import Served  # noqa: E402
from twinengine.catalog import service as catalog  # noqa: E402
from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY  # noqa: E402
from twinengine.config import Settings  # noqa: E402
from twinengine.context import AppContext, open_context  # noqa: E402
from twinengine.discovery.candidates import service as candidates  # noqa: E402
from twinengine.discovery.ranking import evaluate  # noqa: E402
from twinengine.discovery.ranking import service as ranking  # noqa: E402
from twinengine.discovery.ranking.bias import harvest_propensities  # noqa: E402
from twinengine.discovery.ranking.features import COL  # noqa: E402
from twinengine.discovery.ranking.models import (  # noqa: E402
    BlendWeights,
    LgbmRanker,
    group_sizes,
)

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
                ev["attributes"] = {
                    **(ev.get("attributes") or {}),
                    "scores": [scores.get(i) for i in ev["slate"]],
                }
        super().send(events)


class NullDriver:
    """Serves nothing (used when the log already exists)."""

    written = 0

    def slate(self, req: SlateRequest) -> Served:
        """An empty slate."""
        return Served(items=[], request_id=req.request_id)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Drop events."""

    def flush(self) -> None:
        """Nothing buffered."""

    def on_day(self, now: dt.datetime) -> None:
        """Nothing to refresh."""


POLICIES = ("generator", "popularity", "untrained_ctr", "lambdamart", "click", "multiobjective")


class PairedEvalDriver:
    """Every policy orders the same candidates of the same request; truth scores each slate.

    Users follow the generator's slates (so their path is the same for every policy), and each
    policy's slate is scored by the simulator's ground truth: expected clicks
    ``sum P(click)``, expected conversions ``sum P(click) * P(copy | click)`` and NDCG@10.
    Paired, noise-free comparisons need far less traffic than separate online runs.
    """

    def __init__(self, ctx: AppContext, sim: Simulator, version: str, pool: int = 200) -> None:
        self.ctx, self.sim, self.version, self.pool = ctx, sim, version, pool
        self.rows: dict[str, list[tuple[float, float, float, int]]] = {p: [] for p in POLICIES}
        self.written = 0

    def order(self, policy: str, req: SlateRequest, cands: list) -> list[str]:
        """The ids ``policy`` would show."""
        if policy == "generator":
            ordered = cands
        elif policy == "popularity":
            ordered = sorted(cands, key=lambda c: -c.features.get("popular", 0.0))
        elif policy == "untrained_ctr":
            ordered = _untrained_rerank(self.ctx, req.user.key, cands, req.k, req.surface)
        else:
            blend = None if policy == "multiobjective" else BlendWeights.preset(policy)
            ordered = ranking.rerank(
                self.ctx,
                surface=req.surface,
                user_key=req.user.key,
                candidates=cands,
                k=req.k,
                model=self.version,
                blend=blend,
            )
        return [c.item_id for c in ordered[: req.k]]

    def slate(self, req: SlateRequest) -> Served:
        """Score every policy's slate; serve the generator's."""
        cands = candidates.generate(
            self.ctx,
            surface=req.surface,
            user_key=req.user.key,
            item_id=req.item_id,
            k=self.pool,
            now=req.now,
        )
        served: list[str] = []
        for policy in POLICIES:
            ids = self.order(policy, req, cands)
            p_click = self.sim.true_click_prob(req.user, ids)
            p_copy = self.sim.true_copy_prob(req.user, ids)
            ndcg = self.sim.ndcg(req.user, ids) if ids else 0.0
            self.rows[policy].append(
                (float(p_click.sum()), float((p_click * p_copy).sum()), ndcg, len(ids))
            )
            if policy == "generator":
                served = ids
        return Served(items=served, request_id=req.request_id)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Count, do not store: every policy sees the same logged history."""
        self.written += len(events)

    def flush(self) -> None:
        """Nothing is buffered."""

    def on_day(self, now: dt.datetime) -> None:
        """The history does not change during evaluation."""

    def summary(self) -> dict[str, dict[str, float]]:
        """Expected CTR, conversions per impression and NDCG@10 per policy, with paired SEs."""
        out: dict[str, dict[str, float]] = {}
        base = np.asarray(self.rows["click"], dtype=float)
        for policy, rows in self.rows.items():
            a = np.asarray(rows, dtype=float)
            shown = a[:, 3].sum()
            # Paired per-request differences against click-only, scaled to per impression.
            diff = (a[:, 1] - base[:, 1]) / np.maximum(a[:, 3], 1)
            out[policy] = {
                "slates": float(len(a)),
                "ctr": float(a[:, 0].sum() / shown),
                "conversions_per_impression": float(a[:, 1].sum() / shown),
                "ndcg10": float(a[:, 2].mean()),
                "conv_per_impr_minus_click_only_se": float(diff.std(ddof=1) / np.sqrt(len(a))),
            }
        return out


def truth_ndcg(
    ctx: AppContext, sim: Simulator, frame: Any, version: str
) -> tuple[dict[str, float], dict[str, float]]:
    """NDCG@10 of each policy re-ordering the held-out logged slates, with true gains.

    Logged clicks are position-biased (the logging policy put its favourites on top, where
    people look most), so NDCG on them flatters the logging policy. Two unbiased gains from
    the simulator: the true attractiveness ``a`` of each (user, item) (click relevance), and
    the expected graded gain LambdaMART is trained for (labels 0 shown, 1 click, 2 copy; gain
    ``2^label - 1``): ``a * (1 - c) + 3 * a * c = a * (1 + 2c)`` with ``c = P(copy | click)``.
    """
    _, test = evaluate.split_by_time(frame, 0.2)
    ranker = LgbmRanker.load(ranking.registry_root(ctx) / version)
    users = {u.key: u for u in sim.users}
    scores = {
        "logged_order": -test.position.astype(float),
        "popularity": test.X[:, COL["item_pop"]].astype(float),
        **{
            f"untrained_{n}": evaluate.untrained_scores(test.X, w)
            for n, w in evaluate.UNTRAINED_BLENDS.items()
        },
        "lambdamart": ranker.score(test.X, BlendWeights.preset("lambdamart")),
        "click_only": ranker.score(test.X, BlendWeights.preset("click")),
        "multiobjective": ranker.score(test.X),
    }
    sums = dict.fromkeys(scores, 0.0)
    graded = dict.fromkeys(scores, 0.0)
    disc = 1.0 / np.log2(np.arange(2, 12))
    n = 0
    sizes = group_sizes(test.group)
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        start += size
        user = users.get(test.user_keys[sl.start])
        if user is None:
            continue
        gains = sim.true_attractiveness(user, test.item_ids[sl])
        ideal = (np.sort(gains)[::-1][:10] * disc[: min(10, size)]).sum()
        if ideal <= 0:
            continue
        g2 = gains * (1.0 + 2.0 * sim.true_copy_prob(user, test.item_ids[sl]))
        ideal2 = (np.sort(g2)[::-1][:10] * disc[: min(10, size)]).sum()
        n += 1
        for name, s in scores.items():
            top = np.argsort(-s[sl], kind="stable")[:10]
            sums[name] += (gains[top] * disc[: len(top)]).sum() / ideal
            graded[name] += (g2[top] * disc[: len(top)]).sum() / ideal2
    slates = {"slates": float(n)}
    return (
        {name: total / max(n, 1) for name, total in sums.items()} | slates,
        {name: total / max(n, 1) for name, total in graded.items()} | slates,
    )


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
    labels = [
        line
        for line in DEMO_LABELS.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["id"] in ids
    ]
    (folder / "labels.jsonl").write_text("\n".join(labels) + "\n", encoding="utf-8")
    report = catalog.ingest(ctx.db, path=folder / "items.jsonl")
    catalog.load_topic_labels(ctx.db, path=folder / "labels.jsonl", source="human")
    return report.rows


def _untrained_rerank(
    ctx: AppContext, user_key: str, cands: list, k: int, surface: str = "feed"
) -> list:
    """The named latency baseline: the same in-memory feature rows, a fixed CTR blend, no trees."""
    state = ranking.runtime(ctx).features()
    assert state is not None
    gen = np.fromiter((c.score for c in cands), dtype=float, count=len(cands))
    X = state.rows(
        state.indices([c.item_id for c in cands]),
        user_key=user_key,
        surface=surface,
        t=time.time(),
        gen_scores=gen,
    )
    s = evaluate.untrained_scores(X, evaluate.UNTRAINED_BLENDS["ctr"])
    return [cands[i] for i in np.argsort(-s, kind="stable")[:k]]


def latency(ctx: AppContext, version: str, users: list[str], n: int = 1000) -> dict[str, Any]:
    """Percentiles of re-ranking 200 feed candidates in-process, ``n`` calls per ranker.

    The rankers take turns call by call (the order rotates), so machine load hits each alike:
    ``generator`` (no model: generator order), ``untrained_ctr`` (baseline above),
    ``multiobjective`` (``rerank`` with the trained model's default CTR x CVR blend) and
    ``lambdamart_blend`` (``rerank`` weighing all three heads: LambdaMART + CTR + CVR).
    """
    pools = []
    for u in users[:25]:
        cands = candidates.generate(ctx, surface="feed", user_key=u, k=200)
        if len(cands) == 200:
            pools.append((u, cands))
    every = BlendWeights(rank=1.0, ctr=1.0, cvr=1.0)
    runs = {
        "generator": lambda u, c: ranking.rerank(
            ctx, surface="feed", user_key=u, candidates=c, k=20
        ),
        "untrained_ctr": lambda u, c: _untrained_rerank(ctx, u, c, 20),
        "multiobjective": lambda u, c: ranking.rerank(
            ctx, surface="feed", user_key=u, candidates=c, k=20, model=version
        ),
        "lambdamart_blend": lambda u, c: ranking.rerank(
            ctx, surface="feed", user_key=u, candidates=c, k=20, model=version, blend=every
        ),
    }
    for u, c in pools:  # warm-up: features built, model loaded
        for fn in runs.values():
            fn(u, c)
    names = list(runs)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    load_before = os.getloadavg()[0]
    for i in range(n):
        u, c = pools[i % len(pools)]
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t, t_cpu = time.perf_counter(), time.thread_time()
            runs[name](u, c)
            wall[name].append((time.perf_counter() - t) * 1000)
            cpu[name].append((time.thread_time() - t_cpu) * 1000)
    out: dict[str, Any] = {
        "n": n,
        "candidates": 200,
        "k": 20,
        "load_avg_1m": [load_before, os.getloadavg()[0]],
    }
    for name in names:
        a, b = np.asarray(wall[name]), np.asarray(cpu[name])
        # Wall time includes waiting for a CPU on a loaded machine; thread CPU time does not.
        out[name] = {
            "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)),
            "max": float(a.max()),
            "cpu_p50": float(np.percentile(b, 50)),
            "cpu_p99": float(np.percentile(b, 99)),
        }
    return out


def propensity_report(
    frame: Any, model_curve: list[float], true: np.ndarray, *, resamples: int = 200, seed: int = 0
) -> dict[str, Any]:
    """The examination curve estimated on the whole log, its bootstrap spread, and the truth.

    The model's own curve rests on the training part only (80%); the reported estimate uses
    every logged slate. Both are normalised to 1 at position 1, as the true curve is. The
    bootstrap resamples whole slates (Poisson(1) weights) and re-runs the estimator.
    """
    curve = ranking.estimate_propensity(frame)
    est = np.asarray(curve.values[:10])
    out: dict[str, Any] = {
        "propensity_estimated": est.tolist(),
        "propensity_true": true.tolist(),
        "propensity_method": curve.method,
        "propensity_support_rows": curve.support,
        "propensity_rel_error": float((np.abs(est - true) / true).max()),
        "propensity_rel_error_by_position": (np.abs(est - true) / true).tolist(),
        "propensity_model": list(model_curve[:10]),
        "propensity_model_rel_error": float(
            (np.abs(np.asarray(model_curve[:10]) - true) / true).max()
        ),
    }
    if curve.method == "intervention_harvesting":
        original = ranking.original_positions(frame)
        rng = np.random.default_rng(seed)
        n_groups = int(frame.group.max()) + 1
        boots = np.array(
            [
                harvest_propensities(
                    frame.position,
                    original,
                    frame.click,
                    weight=rng.poisson(1.0, n_groups)[frame.group],
                ).values[:10]
                for _ in range(resamples)
            ]
        )
        out["propensity_bootstrap"] = {
            "resamples": resamples,
            "rel_se_by_position": (boots.std(axis=0, ddof=1) / est).tolist(),
            "q05": np.quantile(boots, 0.05, axis=0).tolist(),
            "q95": np.quantile(boots, 0.95, axis=0).tolist(),
            "true_inside_90pct": (
                (np.quantile(boots, 0.05, axis=0) <= true)
                & (true <= np.quantile(boots, 0.95, axis=0))
            ).tolist(),
        }
        moved = (original != frame.position) & (frame.click > 0)
        out["propensity_moved_clicks"] = int(moved.sum())
    return out


def main() -> None:
    """Run the benchmark and write bench/results/rank.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--eval-days", type=int, default=3)
    ap.add_argument("--swap-rate", type=float, default=0.3)
    ap.add_argument(
        "--explore",
        choices=("swap", "shuffle"),
        default="swap",
        help="exploration slates swap position 1 with k, or are shuffled",
    )
    ap.add_argument(
        "--eval-users",
        type=int,
        default=0,
        help="paired online evaluation on the first N users only (0: all)",
    )
    ap.add_argument(
        "--copy-usefulness",
        type=float,
        default=0.0,
        help="simulator weight of item usefulness in P(copy | click); 0: conversion "
        "rate follows click appeal",
    )
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--items", type=int, default=3000, help="catalog subset (0: all 11,212)")
    ap.add_argument("--home", type=Path, default=None, help="keep the run's files here")
    args = ap.parse_args()
    t_start = time.time()
    home = args.home or Path(tempfile.mkdtemp(prefix="rank-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    reuse = (home / "logged.json").exists()
    # The simulator replays March 2026: a background rebuild of the candidate state would use
    # the wall clock's now (its windows and decay empty out) mid-evaluation, so only the
    # simulated days' refresh(now=...) calls rebuild it.
    ctx = open_context(Settings(home=home, database_url="", recs_cache_seconds=1e9))
    n_items = catalog.count_items(ctx.db) if reuse else load_catalog(ctx, args.items, home)
    print(f"catalog: {n_items} items ({time.time() - t_start:.0f}s)")

    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    cfg = SimConfig(
        seed=args.seed,
        n_users=args.users,
        days=args.days,
        swap_rate=args.swap_rate,
        explore=args.explore,
        copy_w_usefulness=args.copy_usefulness,
        start=start,
    )
    world = build_world(ctx, seed=args.seed)
    sim = Simulator(ctx, cfg, world=world)
    t = time.time()
    if reuse:  # a previous run with the same --home already logged: replay its users only
        log_metrics = json.loads((home / "logged.json").read_text())
        sim.run(NullDriver(), days=0)
    else:
        logged = sim.run(ScoreLoggingDriver(ctx))
        log_metrics = {**logged.metrics(surface=None), "events": logged.events}
        (home / "logged.json").write_text(json.dumps(log_metrics))
    print(f"logging: {log_metrics} ({time.time() - t:.0f}s)")

    t = time.time()
    frame = ranking.load_frame(ctx)
    print(f"features: {len(frame)} rows ({time.time() - t:.0f}s)")
    t = time.time()
    info = ranking.train(ctx, holdout=0.2, frame=frame)
    m = info["metrics"]
    print(f"trained {info['version']} on {m['rows']} rows ({time.time() - t:.0f}s)")
    truth, truth_graded = truth_ndcg(ctx, sim, frame, info["version"])
    print(f"held-out NDCG@10 against true relevance: {truth}")
    print(f"held-out NDCG@10 against the true graded gain: {truth_graded}")
    true = np.asarray(sim.true_examination(np.arange(1, 11)), dtype=float)
    prop = propensity_report(frame, info["propensity"]["values"], true)
    print(
        f"propensity: estimated {np.round(prop['propensity_estimated'], 4).tolist()} "
        f"max rel error {prop['propensity_rel_error']:.3f}"
    )

    candidates.refresh(ctx, now=start + dt.timedelta(days=args.days))
    t = time.time()
    eval_cfg = SimConfig(
        seed=args.seed,
        n_users=args.eval_users or args.users,
        days=args.eval_days,
        swap_rate=0.0,
        start=start + dt.timedelta(days=args.days),
        new_users_per_day=0,
        copy_w_usefulness=args.copy_usefulness,
        run_id="eval",
    )
    evaluator = PairedEvalDriver(ctx, Simulator(ctx, eval_cfg, world=world), info["version"])
    evaluator.sim.run(evaluator)
    online = evaluator.summary()
    for policy, om in online.items():
        print(f"paired {policy}: {om}")
    print(f"paired evaluation ({time.time() - t:.0f}s)")

    lat = latency(ctx, info["version"], [u.key for u in sim.users])
    print(f"rerank 200 candidates: {lat}")
    click, multi = online["click"], online["multiobjective"]
    best_blend = max((k for k in truth if k.startswith("untrained_")), key=lambda k: truth[k])
    result = {
        "dataset": {
            "catalog": "bundled demo prompts",
            "catalog_items": n_items,
            "sim_users": args.users,
            "log_days": args.days,
            "eval_days": args.eval_days,
            "eval_users": args.eval_users or args.users,
            "swap_rate": args.swap_rate,
            "explore": args.explore,
            "seed": args.seed,
            "copy_w_usefulness": args.copy_usefulness,
            "impression_rows": m["rows"],
            "clicks": m["clicks"],
            "conversions": m["conversions"],
        },
        "baseline": "generator (untrained candidate blend, by_score)",
        "ndcg_gain": "true attractiveness of each held-out (user, item) from the simulator",
        "ndcg10_popularity": truth["popularity"],
        "ndcg10_blend": truth[best_blend],
        "ndcg10_blend_name": best_blend,
        "ndcg10_logged_order": truth["logged_order"],
        "ndcg10_lambdamart": truth["lambdamart"],
        "ndcg10_click_only": truth["click_only"],
        "ndcg10_multiobjective": truth["multiobjective"],
        "ndcg10_truth_all": truth,
        "ndcg10_graded_gain": "a * (1 + 2 * P(copy | click)): the expected 2^label - 1 of labels "
        "0 shown, 1 click, 2 copy, given the item is examined",
        "ndcg10_graded_blend": max(
            v for k, v in truth_graded.items() if k.startswith("untrained_")
        ),
        "ndcg10_graded_blend_name": max(
            (k for k in truth_graded if k.startswith("untrained_")), key=lambda k: truth_graded[k]
        ),
        "ndcg10_graded_lambdamart": truth_graded["lambdamart"],
        "ndcg10_graded_all": truth_graded,
        "ndcg10_logged_clicks": {k: v for k, v in m.items() if k.startswith("ndcg10")},
        "online": online,
        "cvr_click_only": click["conversions_per_impression"],
        "cvr_multiobjective": multi["conversions_per_impression"],
        "ctr_click_only": click["ctr"],
        "ctr_multiobjective": multi["ctr"],
        "ctr_cost_rel": (multi["ctr"] - click["ctr"]) / click["ctr"],
        "conversion_gain_rel": (
            multi["conversions_per_impression"] - click["conversions_per_impression"]
        )
        / click["conversions_per_impression"],
        **prop,
        "rerank200_ms": lat,
        "rerank200_p99_ms": lat["lambdamart_blend"]["p99"],
        "rerank200_baseline": "untrained_ctr",
        "rerank200_baseline_p99_ms": lat["untrained_ctr"]["p99"],
        "model_version": info["version"],
        "commit": git_commit(),
        "hardware": {
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "note": "shared 2-core machine under contention from other jobs",
        },
        "seconds": round(time.time() - t_start, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict | list)}, indent=2))
    base = online["generator"]
    for policy, om in online.items():
        print(
            f"{policy:>15}: ctr x{om['ctr'] / base['ctr']:.3f}  conv/impr "
            f"x{om['conversions_per_impression'] / base['conversions_per_impression']:.3f}  "
            f"true ndcg10 x{om['ndcg10'] / base['ndcg10']:.3f}  (vs generator)"
        )
    ctx.close()


if __name__ == "__main__":
    main()

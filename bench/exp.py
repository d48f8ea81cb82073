"""Experiments benchmark: A/A false positives, A/B power, interleaving vs A/B sample sizes.

    python bench/exp.py [--users 16000] [--ranker-users 3000] [--days 7] [--pre-days 0]

Everything runs on the behaviour simulator (``bench/sim``) over the real bundled catalog, in
process and without writing events (the fast mode): a driver serves each slate from 50
candidates drawn from the user's 500 best topical matches (a stand-in for retrieval), ordered
by a ranker, and the per-user outcomes come from the simulator's own sessions. The
statistics are the product's: ``experiments.assignment.assign`` splits users,
``experiments.analysis`` (gbstats) tests CTR by the delta method, and
``experiments.interleaving`` drafts and credits interleaved slates.

Potential outcomes: the same simulated users (same seeds) are run once per arm, so each
replicate experiment re-randomises the users with a fresh salt and reveals, per user, the
outcome of the arm the hash gives them. Runs:

- ``a``: ranker A (a noisy oracle, noise ``--noise-a``); the control of everything;
- ``lift``: ranker A with every click probability multiplied by 1.03 (the injected +3%);
- ``b``: ranker B (less noisy, so better);
- ``il``: team-draft interleaving of A and B in every slate.

Measured: the A/A false-positive rate over ``--tests`` salts (fixed-horizon test, alpha 0.05);
power to detect the +3% CTR lift at several sample sizes (``ab_n``: the smallest with power
>= 80%); and the users an A/B test of A vs B needs for 80% power against the users
interleaving needs (``interleaving_n_ratio``). Writes bench/results/exp.json; the named
baseline is the A/B test in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.sim import Served, SimConfig, Simulator, SlateRequest, World, build_world  # noqa: E402
from twinengine.discovery.experiments.analysis import (  # noqa: E402
    METRICS,
    AnalysisSettings,
    compare,
)
from twinengine.discovery.experiments.assignment import assign  # noqa: E402
from twinengine.discovery.experiments.interleaving import (  # noqa: E402
    preference_test,
    team_draft,
    teams_label,
)

RESULTS = ROOT / "bench" / "results" / "exp.json"
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
POOL = 50  # candidates per slate
RETRIEVED = 500  # the user's retrieved items the candidates are drawn from
IL = "il-a-vs-b"


class Ranker:
    """A noisy oracle: true attractiveness times log-normal noise (more noise, worse ranker)."""

    def __init__(self, sim: Simulator, noise: float) -> None:
        self.sim, self.noise = sim, noise

    def rank(self, user: Any, cands: list[str], rng: np.random.Generator) -> list[str]:
        """The candidates in this ranker's order."""
        score = np.log(self.sim.true_attractiveness(user, cands) + 1e-9)
        score = score + self.noise * rng.standard_normal(len(cands))
        return [cands[i] for i in np.argsort(-score)]


class BenchDriver:
    """Serves slates from random catalog candidates by one ranker, or interleaves two."""

    def __init__(self, sim: Simulator, mode: str, rankers: dict[str, Ranker], seed: int) -> None:
        self.sim, self.mode, self.rankers = sim, mode, rankers
        self.rng = np.random.default_rng([seed, 99])
        self._top: dict[str, np.ndarray] = {}
        self.written = 0

    def candidates(self, user: Any) -> list[str]:
        """``POOL`` items drawn from the user's ``RETRIEVED`` best topical matches.

        A stand-in for a personalised retrieval stage (by the user's true topic affinity), so
        the rankers order items the user might want, as in the product.
        """
        top = self._top.get(user.key)
        if top is None:
            aff = self.sim.affinity(user)
            top = self._top[user.key] = np.argpartition(-aff, RETRIEVED)[:RETRIEVED]
        ids = self.sim.world.item_ids
        return [ids[i] for i in self.rng.choice(top, POOL, replace=False)]

    def slate(self, req: SlateRequest) -> Served:
        """The slate for ``req``: ``POOL`` retrieved candidates, ranked."""
        cands = self.candidates(req.user)
        if self.mode == "il":
            la = self.rankers["a"].rank(req.user, cands, self.rng)
            lb = self.rankers["b"].rank(req.user, cands, self.rng)
            merged, teams = team_draft(la, lb, key=req.request_id, k=req.k)
            return Served(merged, req.request_id, {IL: teams_label(teams)})
        ranked = self.rankers[self.mode].rank(req.user, cands, self.rng)[: req.k]
        return Served(ranked, req.request_id, {})

    def send(self, events: list[dict[str, Any]]) -> None:
        """Events are not stored in fast mode; the sessions carry what analysis needs."""
        self.written += len(events)

    def flush(self) -> None:
        """Nothing buffered."""

    def on_day(self, now: dt.datetime) -> None:
        """Nothing to refresh."""


class LiftSimulator(Simulator):
    """The simulator with click probabilities multiplied by ``lift`` from day ``lift_from``."""

    lift = 1.0
    lift_from = 0
    day = 0

    def session(self, driver: Any, user: Any, day: int, start: dt.datetime) -> Any:
        """One visit (remembering the day, which decides whether the lift applies)."""
        self.day = day
        return super().session(driver, user, day, start)

    def affinity(self, user: Any) -> np.ndarray:
        """The simulator's affinity, computed for every pending user in one matrix product."""
        aff = self._affinity.get(user.key)
        if aff is None:
            todo = [u for u in self.users if u.key not in self._affinity]
            raw = self.world.topic_matrix @ np.stack([u.prefs for u in todo]).T
            raw = np.ascontiguousarray((raw / raw.max(axis=0)).T)
            self._affinity.update({u.key: row for u, row in zip(todo, raw, strict=True)})
            aff = self._affinity[user.key]
        return aff

    def ndcg(self, user: Any, slate: Any, k: int = 10) -> float:
        """Not computed: this benchmark never reads NDCG, and it costs a catalog sort a user."""
        return 0.0

    def true_click_prob(self, user: Any, item_ids: Any) -> np.ndarray:
        """The simulator's click probability, scaled by the injected lift once it is on."""
        p = super().true_click_prob(user, item_ids)
        return np.minimum(1.0, p * self.lift) if self.day >= self.lift_from else p


_WORLD: World | None = None


def _run_chunk(job: dict[str, Any]) -> pd.DataFrame:
    """Simulate one chunk of users under one arm; one row per user."""
    assert _WORLD is not None
    cfg = SimConfig(seed=job["seed"], n_users=job["users"], new_users_per_day=0,
                    days=job["days"], start=START, user_prefix=f"c{job['seed']}-u",
                    run_id=f"r{job['seed']}")  # fmt: skip
    sim = LiftSimulator(None, cfg, world=_WORLD)  # type: ignore[arg-type]
    sim.lift, sim.lift_from = job["lift"], job["pre_days"]
    rankers = {"a": Ranker(sim, job["noise_a"]), "b": Ranker(sim, job["noise_b"])}
    result = sim.run(BenchDriver(sim, job["mode"], rankers, job["seed"]))
    rows: dict[str, dict[str, float]] = {}
    days: dict[str, set[int]] = {}
    cols = ("impressions", "clicks", "conversions", "clicks_a", "clicks_b", "pre_impressions",
            "pre_clicks", "pre_conversions")  # fmt: skip
    for ses in result.sessions:
        r = rows.setdefault(ses.user_key, dict.fromkeys(cols, 0.0))
        # Days before ``pre_days`` are the pre-period CUPED learns from; both arms alike.
        pre = "pre_" if ses.day < job["pre_days"] else ""
        if not pre:
            days.setdefault(ses.user_key, set()).add(ses.day)
        for s in ses.slates:
            r[pre + "impressions"] += len(s.items)
            r[pre + "clicks"] += len(s.clicked)
            r[pre + "conversions"] += len(s.copied)
            label = s.experiments.get(IL, "")[3:]
            for p in s.clicked:
                if label:
                    r["clicks_" + label[p - 1]] += 1
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "user_key"
    first = {k: min(v) for k, v in days.items()}
    df = df[df["impressions"] > 0].copy()  # exposed during the experiment
    df["retained_d1"] = [float(first[k] + 1 in days[k]) for k in df.index]
    df["revenue"] = df["conversions"]
    return df.reset_index()


def _init(world: World) -> None:
    global _WORLD
    _WORLD = world


def simulate(
    world: World, args: argparse.Namespace, mode: str, lift: float, users: int
) -> pd.DataFrame:
    """Run every chunk of users under one arm (chunks keep the simulator's caches small).

    Chunk i always holds the same users (seed 1000 + i), whichever arm it runs.
    """
    chunk = 1000
    jobs = [
        {"seed": 1000 + i, "users": min(chunk, users - i * chunk),
         "days": args.pre_days + args.days,
         "mode": mode, "lift": lift, "noise_a": args.noise_a, "noise_b": args.noise_b,
         "pre_days": args.pre_days}
        for i in range(math.ceil(users / chunk))
    ]  # fmt: skip
    if args.workers <= 1:
        _init(world)
        parts = [_run_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(world,)) as pool:
            parts = list(pool.map(_run_chunk, jobs))
    return pd.concat(parts, ignore_index=True)


def _arms(keys: pd.Series, salt: str) -> np.ndarray:
    """The product's assignment: variant index per user for a 50/50 split with ``salt``."""
    return np.array([assign(k, salt=salt, weights=(1, 1)) for k in keys])


def _replicate(
    control: pd.DataFrame, treated: pd.DataFrame, metric: str, *, seed: int, n: int, cuped: bool
) -> Any:
    """One A/B test on ``n`` random users split 50/50; each shows its own arm's outcome.

    Replicates use NumPy's generator rather than re-hashing every user (thousands of
    replicates x tens of thousands of users); the hashing itself is what the A/A part uses.
    """
    rng = np.random.default_rng([seed, 5])
    pick = rng.permutation(len(control))[:n]
    arm = rng.random(n) < 0.5
    a, b = control.iloc[pick[~arm]], treated.iloc[pick[arm]]
    settings = AnalysisSettings(sequential=False, cuped=cuped)
    return compare(a, b, METRICS[metric], settings)[1]


def _z(r: Any) -> float:
    se = (r.ci[1] - r.ci[0]) / (2 * 1.959964)
    return r.lift / se if se > 0 else 0.0


def _n80(n: int, zs: list[float]) -> int:
    """Users for 80% power at alpha 0.05, from the mean z seen at ``n`` (z grows as sqrt n)."""
    z = float(np.mean(zs))
    return int(math.ceil(n * ((1.959964 + 0.841621) / z) ** 2)) if z > 0 else -1


def _power(results: list[Any], alpha: float = 0.05) -> float:
    return sum(r.p_value < alpha and r.lift > 0 for r in results) / len(results)


def main() -> None:
    """Run the simulations and the replicate tests; write bench/results/exp.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=16000, help="users of the A/A and +3%% runs")
    ap.add_argument("--ranker-users", type=int, default=3000, help="users of the A vs B runs")
    ap.add_argument("--days", type=int, default=7, help="experiment days")
    ap.add_argument("--pre-days", type=int, default=0, help="simulated days before (CUPED)")
    ap.add_argument("--tests", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--noise-a", type=float, default=1.0)
    ap.add_argument("--noise-b", type=float, default=0.6)
    ap.add_argument("--runs", type=Path, help="pickle of the simulated runs: reused if present")
    args = ap.parse_args()
    t0 = time.time()
    if args.runs and args.runs.exists():
        runs = pd.read_pickle(args.runs)
        print(f"reusing the simulated runs in {args.runs}", flush=True)
    else:
        runs = _simulate_all(args, t0)
        if args.runs:
            pd.to_pickle(runs, args.runs)
    analyse(args, runs, t0)


def _simulate_all(args: argparse.Namespace, t0: float) -> dict[str, pd.DataFrame]:
    from twinengine.catalog import service as catalog
    from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY
    from twinengine.config import Settings
    from twinengine.context import open_context

    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_context(Settings(home=Path(tmp)))
        catalog.load_taxonomy(ctx.db, path=DEMO_TAXONOMY)
        catalog.ingest(ctx.db, path=DEMO_CATALOG)
        catalog.load_topic_labels(ctx.db, path=DEMO_LABELS, source="human")
        world = build_world(ctx, seed=0)
        ctx.close()
    print(f"catalog and world: {world.n_items} items ({time.time() - t0:.0f}s)", flush=True)
    runs: dict[str, pd.DataFrame] = {}
    for name, mode, lift, users in (
        ("a", "a", 1.0, args.users), ("lift", "a", 1.03, args.users),
        ("b", "b", 1.0, args.ranker_users), ("il", "il", 1.0, args.ranker_users),
    ):  # fmt: skip
        t = time.time()
        d = simulate(world, args, mode, lift, users).set_index("user_key").sort_index()
        runs[name] = d
        print(f"run {name}: {len(d)} users, CTR {d.clicks.sum() / d.impressions.sum():.4%} "
              f"({time.time() - t:.0f}s)", flush=True)
    return runs


def analyse(args: argparse.Namespace, runs: dict[str, pd.DataFrame], t0: float) -> None:
    """The replicate tests over the simulated runs; writes the results file."""
    # Users exposed in both arms' runs (a user with no visit in the experiment days drops out).
    both = runs["a"].index.intersection(runs["lift"].index)
    a, lifted = runs["a"].loc[both].reset_index(), runs["lift"].loc[both].reset_index()
    n_all = len(both)

    # 1. A/A: 200 salts of the product's hashing split the same users; one arm, fixed horizon.
    aa = []
    for s in range(args.tests):
        arm = _arms(a["user_key"], f"aa-{s}")
        aa.append(compare(a[arm == 0], a[arm == 1], METRICS["ctr"],
                          AnalysisSettings(sequential=False, cuped=False))[1])
    aa_fp = sum(t.p_value < 0.05 for t in aa) / len(aa)
    print(f"A/A: {sum(t.p_value < 0.05 for t in aa)} of {len(aa)} significant "
          f"(false-positive rate {aa_fp:.1%})", flush=True)

    # 2. Power for the injected +3% CTR lift: CTR by the delta method, and clicks per user
    #    with CUPED on the pre-period (the product's default analysis), at growing n.
    ns = [int(n_all * f) for f in (0.25, 0.5, 0.75, 1.0)]
    curves: dict[str, list[float]] = {"ctr": [], "clicks_per_user_cuped": []}
    zs_ctr: list[float] = []
    for n in ns:
        ctr = [_replicate(a, lifted, "ctr", seed=s, n=n, cuped=False) for s in range(args.tests)]
        curves["ctr"].append(_power(ctr))
        if args.pre_days:  # CUPED needs a pre-period
            cup = [_replicate(a, lifted, "clicks_per_user", seed=s, n=n, cuped=True)
                   for s in range(args.tests)]  # fmt: skip
            curves["clicks_per_user_cuped"].append(_power(cup))
        zs_ctr = [_z(r) for r in ctr]
        print(f"+3% CTR at {n} users: power {curves['ctr'][-1]:.1%} (CTR, delta method)"
              + (f", {curves['clicks_per_user_cuped'][-1]:.1%} (clicks/user, CUPED)"
                 if args.pre_days else ""), flush=True)
    curves = {k: v for k, v in curves.items() if v}
    best = "ctr" if max(curves["ctr"]) >= 0.8 or len(curves) == 1 else "clicks_per_user_cuped"
    ab_n = next((n for n, p in zip(ns, curves[best], strict=True) if p >= 0.8), None)

    # 3. Ranker B vs ranker A on the same users: A/B (CTR) against team-draft interleaving.
    both = runs["a"].index.intersection(runs["b"].index)
    ra, rb = runs["a"].loc[both].reset_index(), runs["b"].loc[both].reset_index()
    il = runs["il"].reset_index()
    m = min(len(ra), len(il))
    reps = args.tests // 2
    grid = [int(m * f) for f in (0.03, 0.1, 0.25, 0.5, 1.0)]
    ab_curve, il_curve, ab_z, il_z, disagree = [], [], [], [], 0
    for n in grid:
        res = [_replicate(ra, rb, "ctr", seed=s, n=n, cuped=False) for s in range(reps)]
        ils = []
        for s in range(reps):
            rows = il.iloc[np.random.default_rng([s, 6]).permutation(len(il))[:n]]
            ils.append(preference_test(rows["clicks_a"].tolist(), rows["clicks_b"].tolist(),
                                       signal="clicks"))
        ab_curve.append(_power(res))
        il_curve.append(sum(r.preferred == "b" for r in ils) / reps)
        disagree += sum(r.preferred == "a" for r in ils)
        ab_z.append([_z(r) for r in res])
        # z of the paired t-test (the product's interleaving test), signed by the winner.
        il_z.append([math.copysign(float(norm.isf(r.p_value / 2)), r.mean_diff) for r in ils])
        print(f"B vs A at {n} users: A/B power {ab_curve[-1]:.1%}, "
              f"interleaving power {il_curve[-1]:.1%}", flush=True)
    # Both n80 by the same rule (z grows as sqrt n), each from its first grid point with power
    # >= 50% (informative, not saturated), then checked by simulating that many users.
    pick_ab = next((i for i, p in enumerate(ab_curve) if p >= 0.5), len(grid) - 1)
    pick_il = next((i for i, p in enumerate(il_curve) if p >= 0.5), len(grid) - 1)
    n_ab = _n80(grid[pick_ab], ab_z[pick_ab])
    n_il = _n80(grid[pick_il], il_z[pick_il])
    check = []
    if 0 < n_il <= len(il):
        for s in range(reps):
            rows = il.iloc[np.random.default_rng([s, 7]).permutation(len(il))[:n_il]]
            check.append(preference_test(rows["clicks_a"].tolist(), rows["clicks_b"].tolist(),
                                         signal="clicks").preferred == "b")
    check_ab = []
    if 0 < n_ab <= len(ra):
        check_ab = [_replicate(ra, rb, "ctr", seed=1000 + s, n=n_ab, cuped=False)
                    for s in range(reps)]  # fmt: skip

    def ctr(d: pd.DataFrame) -> float:
        return float(d.clicks.sum() / d.impressions.sum())

    out = {
        "aa_false_positive_rate": aa_fp,
        "aa_tests": len(aa),
        "ab_power_at_n": curves[best][ns.index(ab_n)] if ab_n else max(curves[best]),
        "ab_n": ab_n,
        "ab_metric": {"ctr": "CTR (delta method, fixed horizon)",
                      "clicks_per_user_cuped": "clicks per user with CUPED "
                      f"({args.pre_days}-day pre-period), fixed horizon"}[best],
        "ab_power_curves": {k: dict(zip(map(str, ns), v, strict=True))
                            for k, v in curves.items()},
        "ab_ctr_n80_estimate": _n80(ns[-1], zs_ctr),
        "injected_ctr_lift": 0.03,
        "measured_ctr_lift": ctr(lifted) / ctr(a) - 1,
        "ranker_b_vs_a_ctr_lift": ctr(rb) / ctr(ra) - 1,
        "ranker_ab_n80": n_ab,
        "ranker_ab_power_at_n80": _power(check_ab) if check_ab else None,
        "ranker_ab_power_curve": dict(zip(map(str, grid), ab_curve, strict=True)),
        "interleaving_n80": n_il,
        "interleaving_power_at_n80": sum(check) / len(check) if check else None,
        "interleaving_power_curve": dict(zip(map(str, grid), il_curve, strict=True)),
        "interleaving_n_ratio": n_ab / n_il if n_il > 0 and n_ab > 0 else None,
        "interleaving_wrong_winner": disagree,
        "users_simulated": {"a": len(runs["a"]), "lift": len(runs["lift"]),
                            "b": len(runs["b"]), "il": len(runs["il"])},
        "days": {"pre": args.pre_days, "experiment": args.days},
        "ctr_control": ctr(a),
        "tests": args.tests,
        "noise": {"a": args.noise_a, "b": args.noise_b},
        "seconds": round(time.time() - t0, 1),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=ROOT).stdout.strip(),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "baseline": "the A/B test of the same two rankers on the same simulated users",
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

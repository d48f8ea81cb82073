"""Experiments benchmark: A/A false positives, A/B power, interleaving vs A/B sample sizes.

    python bench/exp.py [--users 20000] [--ranker-users 20000] [--days 7] [--pre-days 0]

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
- ``il``: team-draft interleaving of A and B in every slate;
- ``ilaa``: team-draft interleaving of A against A (independent noise): the null.

Measured: the A/A false-positive rate over ``--tests`` salts (fixed-horizon test, alpha 0.05);
power to detect the +3% CTR lift at several sample sizes (``ab_n``: the smallest with power
>= 80%); and the users an A/B test of A vs B needs for 80% power against the users
interleaving needs (``interleaving_n_ratio``). For the latter both methods are run on one
log-spaced grid of users (10 to all) with the same replicates, over the same users and days;
the A/B side is its most sensitive metric of CTR, CVR, clicks, conversions and clicks +
3 x conversions per user (and CUPED clicks with ``--pre-days``); interleaving is the
product's credit (``IL_HEADLINE``: clicks + conversions, each weighted by log(1 + the gap
between the two rankers' ranks of the item), neutral picks earn nothing, the test on users'
winsorized differences adjusted for the coin's position luck), the other credit schemes,
the unweighted credit and plain team-draft clicks among them, are reported beside it, and
interleaving's own false-positive rate comes from the A-against-A runs. Both crossings are
then re-measured on a fine grid (9 points, twice the replicates, the same seeds for both
sides) with a probit fit (``n80_fit``): the headline n80s and ``interleaving_n_ratio`` are
the fit's, so the ratio is not the coarse grid's spacing or one point's noise (the grid's
are kept as ``*_grid``). Writes bench/results/exp.json; the named baseline is the A/B test
in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._common import git_commit  # noqa: E402
from bench.sim import Served, SimConfig, Simulator, SlateRequest, World, build_world  # noqa: E402
from twinengine.discovery.experiments.analysis import (  # noqa: E402
    METRICS,
    AnalysisSettings,
    Metric,
    compare,
)
from twinengine.discovery.experiments.assignment import assign  # noqa: E402
from twinengine.discovery.experiments.interleaving import (  # noqa: E402
    CONVERSION_WEIGHT,
    CREDIT_COLUMNS,
    WINSOR_QUANTILE,
    coin_covariate,
    interleave,
    parse_label,
    preference_test,
    slate_credit,
    user_credit,
)

RESULTS = ROOT / "bench" / "results" / "exp.json"
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
POOL = 50  # candidates per slate
RETRIEVED = 500  # the user's retrieved items the candidates are drawn from
IL = "il-a-vs-b"
# Clicks plus 3 x conversions: interleaving's credit, and the A/B metric that matches it.
ENGAGEMENT_CONVERSION_WEIGHT = 3.0
ENGAGEMENT = Metric("engagement_per_user", "Clicks + 3 x conversions per user", "mean",
                    "engagement")  # fmt: skip


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
    """Serves slates from random catalog candidates by one ranker, or interleaves two.

    Modes: ``a`` / ``b`` (one ranker), ``il`` (team draft of A and B) and ``ilaa`` (team draft
    of A and A with independent noise: the null, for interleaving's false-positive rate).
    Before ``pre_days`` every mode serves ranker A: the pre-period precedes the treatment.
    """

    def __init__(
        self, sim: Simulator, mode: str, rankers: dict[str, Ranker], seed: int, *,
        pre_days: int = 0,
    ) -> None:  # fmt: skip
        self.sim, self.mode, self.rankers = sim, mode, rankers
        self.pre_days, self.day = pre_days, 0
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
        mode = self.mode if self.day >= self.pre_days else "a"
        if mode in ("il", "ilaa"):
            la = self.rankers["a"].rank(req.user, cands, self.rng)
            lb = self.rankers["a" if mode == "ilaa" else "b"].rank(req.user, cands, self.rng)
            merged, label = interleave(la, lb, key=req.request_id, k=req.k)
            return Served(merged, req.request_id, {IL: label})
        ranked = self.rankers[mode].rank(req.user, cands, self.rng)[: req.k]
        return Served(ranked, req.request_id, {})

    def send(self, events: list[dict[str, Any]]) -> None:
        """Events are not stored in fast mode; the sessions carry what analysis needs."""
        self.written += len(events)

    def flush(self) -> None:
        """Nothing buffered."""

    def on_day(self, now: dt.datetime) -> None:
        """Remember the day (the pre-period serves ranker A)."""
        self.day = (now - START).days


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


def _run_chunk(job: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate one chunk of users under one arm: one row per user, and for interleaved runs
    one row per slate of the experiment days with its clicks and conversions by team."""
    assert _WORLD is not None
    cfg = SimConfig(seed=job["seed"], n_users=job["users"], new_users_per_day=0,
                    days=job["days"], start=START, user_prefix=f"c{job['seed']}-u",
                    run_id=f"r{job['seed']}")  # fmt: skip
    sim = LiftSimulator(None, cfg, world=_WORLD)  # type: ignore[arg-type]
    sim.lift, sim.lift_from = job["lift"], job["pre_days"]
    rankers = {"a": Ranker(sim, job["noise_a"]), "b": Ranker(sim, job["noise_b"])}
    driver = BenchDriver(sim, job["mode"], rankers, job["seed"], pre_days=job["pre_days"])
    result = sim.run(driver)
    rows: dict[str, dict[str, float]] = {}
    days: dict[str, set[int]] = {}
    slates: list[tuple[Any, ...]] = []
    cols = ("impressions", "clicks", "conversions", "pre_impressions", "pre_clicks",
            "pre_conversions")  # fmt: skip
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
            label = s.experiments.get(IL)
            if label and not pre:
                # The product's credit (rank-gap weights, neutral picks earn none); for
                # comparison the same without the weights ("flat": the letters alone) and
                # plain team-draft credit (lower-cased letters: a neutral pick credits its
                # drafter, every click 1).
                letters = parse_label(label) or ""
                slates.append((ses.user_key, *slate_credit(label, s.clicked, s.copied),
                               coin_covariate(label),
                               *slate_credit(letters, s.clicked, s.copied),
                               *slate_credit(letters.lower(), s.clicked, s.copied)))  # fmt: skip
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "user_key"
    first = {k: min(v) for k, v in days.items()}
    df = df[df["impressions"] > 0].copy()  # exposed during the experiment
    df["retained_d1"] = [float(first[k] + 1 in days[k]) for k in df.index]
    df["revenue"] = df["conversions"]
    df["engagement"] = df["clicks"] + ENGAGEMENT_CONVERSION_WEIGHT * df["conversions"]
    cols = ["user_key", *CREDIT_COLUMNS, "coin", *(f"flat_{c}" for c in CREDIT_COLUMNS),
            *(f"plain_{c}" for c in CREDIT_COLUMNS)]  # fmt: skip
    return df.reset_index(), pd.DataFrame(slates, columns=cols)


def _init(world: World) -> None:
    global _WORLD
    _WORLD = world


def simulate(
    world: World, args: argparse.Namespace, mode: str, lift: float, users: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every chunk of users under one arm (chunks keep the simulator's caches small).

    Chunk i always holds the same users (seed ``--seed-base`` + i), whichever arm it runs.
    """
    chunk = 1000
    jobs = [
        {"seed": args.seed_base + i, "users": min(chunk, users - i * chunk),
         "days": args.pre_days + args.days, "mode": mode, "lift": lift,
         "noise_a": args.noise_a, "noise_b": args.noise_b, "pre_days": args.pre_days}
        for i in range(math.ceil(users / chunk))
    ]  # fmt: skip
    if args.workers <= 1:
        _init(world)
        parts = [_run_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(world,)) as pool:
            parts = list(pool.map(_run_chunk, jobs))
    return (pd.concat([p[0] for p in parts], ignore_index=True),
            pd.concat([p[1] for p in parts], ignore_index=True))  # fmt: skip


def _arms(keys: pd.Series, salt: str) -> np.ndarray:
    """The product's assignment: variant index per user for a 50/50 split with ``salt``."""
    return np.array([assign(k, salt=salt, weights=(1, 1)) for k in keys])


def _split(size: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``n`` random users out of ``size``, split 50/50: (control rows, treated rows).

    Replicates use NumPy's generator rather than re-hashing every user (thousands of
    replicates x thousands of users); the hashing itself is what the A/A part uses.
    """
    rng = np.random.default_rng([seed, 5])
    pick = rng.permutation(size)[:n]
    arm = rng.random(n) < 0.5
    return pick[~arm], pick[arm]


def _replicate(
    control: pd.DataFrame, treated: pd.DataFrame, metric: str, *, seed: int, n: int, cuped: bool
) -> Any:
    """One A/B test on ``n`` random users split 50/50; each shows its own arm's outcome."""
    ia, ib = _split(len(control), n, seed)
    settings = AnalysisSettings(sequential=False, cuped=cuped)
    return compare(control.iloc[ia], treated.iloc[ib], METRICS[metric], settings)[1]


def _ab_tests(
    ra: pd.DataFrame, rb: pd.DataFrame, metrics: dict[str, tuple[Metric, bool]], n: int,
    seeds: range,
) -> dict[str, list[Any]]:  # fmt: skip
    """A/B tests of B against A on every metric, each replicate's users shared by all."""
    out: dict[str, list[Any]] = {k: [] for k in metrics}
    for s in seeds:
        ia, ib = _split(len(ra), n, s)
        xa, xb = ra.iloc[ia], rb.iloc[ib]
        for k, (metric, cuped) in metrics.items():
            settings = AnalysisSettings(sequential=False, cuped=cuped)
            out[k].append(compare(xa, xb, metric, settings)[1])
    return out


def _il_tests(credit: tuple[np.ndarray, ...], n: int, seeds: range) -> list[Any]:
    """Interleaving preference tests on ``n`` random users each (rows of the credit arrays:
    a, b, the coin covariate (None for the unadjusted test) and whether to winsorize)."""
    ca, cb, coin, winsor = credit
    out = []
    for s in seeds:
        pick = np.random.default_rng([s, 6]).permutation(len(ca))[:n]
        out.append(preference_test(ca[pick], cb[pick], signal="credit",
                                   coin=None if coin is None else coin[pick],
                                   winsor=WINSOR_QUANTILE if winsor else None))  # fmt: skip
    return out


def _z(r: Any) -> float:
    se = (r.ci[1] - r.ci[0]) / (2 * 1.959964)
    return r.lift / se if se > 0 else 0.0


def _n80_from_z(n: int, zs: list[float]) -> int:
    """Users for 80% power at alpha 0.05, from the mean z seen at ``n`` (z grows as sqrt n)."""
    z = float(np.mean(zs))
    return int(math.ceil(n * ((1.959964 + 0.841621) / z) ** 2)) if z > 0 else -1


def _n80(grid: list[int], power: list[float], target: float = 0.8) -> int | None:
    """The users at which power first reaches ``target``: linear in log n between the two grid
    points around the crossing (the first grid point if power is already there; None if the
    grid never gets there)."""
    for i, p in enumerate(power):
        if p >= target:
            if i == 0:
                return grid[0]
            p0, g0, g1 = power[i - 1], math.log(grid[i - 1]), math.log(grid[i])
            return int(math.ceil(math.exp(g0 + (target - p0) / (p - p0) * (g1 - g0))))
    return None


def _n80_fit(grid: list[int], power: list[float], reps: int, target: float = 0.8) -> float:
    """n80 from a probit fit of power = Phi(b0 + b1 sqrt(n)) to every point of a fine grid
    (binomial likelihood, ``reps`` replicates a point): it uses all the replicates near the
    crossing rather than the two around it, so grid spacing and one point's noise matter
    less. sqrt(n) because a test's z grows as sqrt(n); the free intercept absorbs alpha and
    the t-test's small-sample tails."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    x, k = np.sqrt(np.asarray(grid, float)), np.asarray(power) * reps

    def nll(b: np.ndarray) -> float:
        p = np.clip(norm.cdf(b[0] + b[1] * x), 1e-9, 1 - 1e-9)
        return float(-(k * np.log(p) + (reps - k) * np.log(1 - p)).sum())

    b = minimize(nll, np.array([-1.96, 2.8 / x.mean()]), method="Nelder-Mead").x
    return float(((norm.ppf(target) - b[0]) / b[1]) ** 2) if b[1] > 0 else float("nan")


def _power(results: list[Any], alpha: float = 0.05) -> float:
    return sum(r.p_value < alpha and r.lift > 0 for r in results) / len(results)


def _wrong(results: list[Any], alpha: float = 0.05) -> float:
    """A/B tests that call A the winner (B is the better ranker)."""
    return sum(r.p_value < alpha and r.lift < 0 for r in results) / len(results)


def _il_power(results: list[Any]) -> float:
    return sum(r.preferred == "b" for r in results) / len(results)


def _il_wrong(results: list[Any]) -> float:
    return sum(r.preferred == "a" for r in results) / len(results)


def main() -> None:
    """Run the simulations and the replicate tests; write bench/results/exp.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20000, help="users of the A/A and +3%% runs")
    ap.add_argument("--ranker-users", type=int, default=20000,
                    help="users of the A vs B runs (A/B and interleaving)")  # fmt: skip
    ap.add_argument("--days", type=int, default=7, help="experiment days")
    ap.add_argument("--pre-days", type=int, default=0, help="simulated days before (CUPED)")
    ap.add_argument("--tests", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--noise-a", type=float, default=1.0)
    ap.add_argument("--noise-b", type=float, default=0.6)
    ap.add_argument(
        "--seed-base",
        type=int,
        default=7000,
        help="seed of the first chunk of users (another base: other users; 5000 is the "
        "pilot the interleaving credit was chosen on)",
    )
    ap.add_argument("--runs", type=Path, help="pickle of simulated runs (same settings: reused)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    t0 = time.time()
    cached = pd.read_pickle(args.runs) if args.runs and args.runs.exists() else {}
    runs = _simulate_all(args, t0, cached)
    if args.runs and runs is not cached:
        pd.to_pickle(runs, args.runs)
    analyse(args, runs, t0)


# (run name and driver mode, injected lift, users option)
RUNS = (
    ("a", 1.0, "users"), ("lift", 1.03, "users"), ("b", 1.0, "ranker_users"),
    ("il", 1.0, "ranker_users"), ("ilaa", 1.0, "ranker_users"),
)  # fmt: skip


def _run_key(args: argparse.Namespace, name: str, users: int) -> str:
    """What decides a run's outcome, so a cached run is reused only for the same settings."""
    return (f"{name} users={users} days={args.pre_days}+{args.days} seed={args.seed_base} "
            f"noise={args.noise_a},{args.noise_b}")  # fmt: skip


def _simulate_all(args: argparse.Namespace, t0: float, cached: dict[str, Any]) -> dict[str, Any]:
    """The runs of ``RUNS``: those ``cached`` under the same settings, the others simulated."""
    keys = {name: _run_key(args, name, getattr(args, users)) for name, _, users in RUNS}
    have = cached.get("_keys", {})
    todo = [r for r in RUNS if have.get(r[0]) != keys[r[0]]]
    if not todo:
        print("reusing every simulated run in --runs", flush=True)
        return cached
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
    runs = {k: v for k, v in cached.items() if k.split(":")[0] not in {r[0] for r in todo}}
    runs["_keys"] = {**have, **{r[0]: keys[r[0]] for r in todo}}
    for name, lift, users in todo:
        t = time.time()
        mode = "a" if name == "lift" else name
        d, slates = simulate(world, args, mode, lift, getattr(args, users))
        runs[name] = d = d.set_index("user_key").sort_index()
        if mode.startswith("il"):
            runs[name + ":slates"] = slates
        print(
            f"run {name}: {len(d)} users, CTR {d.clicks.sum() / d.impressions.sum():.4%} "
            f"({time.time() - t:.0f}s)",
            flush=True,
        )
    return runs


# Interleaving credit schemes: name -> (conversion weight, one vote per slate, credit source,
# coin-adjusted test, winsorized test). Sources: "gap" is the product's (``slate_credit`` of
# the logged label: each click or conversion weighs log(1 + rank gap), neutral picks earn
# none), "flat" the same letters with every event 1, "plain" plain team draft (neutral picks
# credit their drafter). The headline is the product's (``user_credit``'s and
# ``preference_test``'s defaults as ``service`` calls them): rank-gap-weighted clicks + 1 x
# conversions, neutral picks out, the users' difference winsorized at ``WINSOR_QUANTILE``,
# coin-adjusted. The rank-gap weight and the winsorizing were chosen on the pilot users
# (``--seed-base 5000 --ranker-users 8000``: population n80 72 for the flat credit, the
# previous headline; 56 with log(1 + gap) weights, 56 with sqrt(gap); 48 winsorized at the
# 90% quantile; per-user means, 1/examination position debiasing and a coin covariate over
# every round were no better) before the run in bench/results/exp.json, whose users
# (``--seed-base 7000``) are fresh. The others are reported beside it.
IL_CREDITS = {
    "clicks+conv/gap/neutral/coin/winsor": (CONVERSION_WEIGHT, False, "gap", True, True),
    "clicks+conv/gap/neutral/coin": (CONVERSION_WEIGHT, False, "gap", True, False),
    "clicks/gap/neutral/coin/winsor": (0.0, False, "gap", True, True),
    "clicks+conv/neutral/coin": (CONVERSION_WEIGHT, False, "flat", True, False),
    "clicks+conv/neutral": (CONVERSION_WEIGHT, False, "flat", False, False),
    "clicks/neutral/coin": (0.0, False, "flat", True, False),
    "clicks": (0.0, False, "plain", False, False),
    "clicks+conv": (CONVERSION_WEIGHT, False, "plain", False, False),
}
IL_HEADLINE = "clicks+conv/gap/neutral/coin/winsor"
IL_GAP = "clicks+conv/gap/neutral/coin"  # the rank-gap credit without winsorizing
IL_FLAT = "clicks+conv/neutral/coin"  # the previous headline: the same without rank gaps
IL_PLAIN = "clicks"  # plain team-draft click credit


def _credits(runs: dict[str, Any], run: str) -> dict[str, tuple[Any, ...]]:
    """Per scheme: credit arrays (a, b, coin or None) and the winsorize flag, over the run's
    exposed users."""
    users = runs[run].index
    slates = runs[run + ":slates"]
    source = {"gap": slates}
    for kind in ("flat", "plain"):
        source[kind] = slates[["user_key", "coin"]].assign(
            **{c: slates[f"{kind}_{c}"] for c in CREDIT_COLUMNS})  # fmt: skip
    out = {}
    for name, (w, per_slate, kind, coin, winsor) in IL_CREDITS.items():
        c = user_credit(source[kind], conversion_weight=w, per_slate=per_slate)
        c = c.reindex(users, fill_value=0.0)
        out[name] = (c["credit_a"].to_numpy(), c["credit_b"].to_numpy(),
                     c["coin"].to_numpy() if coin else None, winsor)  # fmt: skip
    return out


def analyse(args: argparse.Namespace, runs: dict[str, Any], t0: float) -> None:
    """The replicate tests over the simulated runs; writes the results file."""
    # Users exposed in both arms' runs (a user with no visit in the experiment days drops out).
    both = runs["a"].index.intersection(runs["lift"].index)
    a, lifted = runs["a"].loc[both].reset_index(), runs["lift"].loc[both].reset_index()
    n_all = len(both)

    # 1. A/A: 200 salts of the product's hashing split the same users; one arm, fixed horizon.
    aa = []
    for s in range(args.tests):
        arm = _arms(a["user_key"], f"aa-{s}")
        aa.append(
            compare(
                a[arm == 0],
                a[arm == 1],
                METRICS["ctr"],
                AnalysisSettings(sequential=False, cuped=False),
            )[1]
        )
    aa_fp = sum(t.p_value < 0.05 for t in aa) / len(aa)
    print(
        f"A/A: {sum(t.p_value < 0.05 for t in aa)} of {len(aa)} significant "
        f"(false-positive rate {aa_fp:.1%})",
        flush=True,
    )

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
        print(
            f"+3% CTR at {n} users: power {curves['ctr'][-1]:.1%} (CTR, delta method)"
            + (
                f", {curves['clicks_per_user_cuped'][-1]:.1%} (clicks/user, CUPED)"
                if args.pre_days
                else ""
            ),
            flush=True,
        )
    curves = {k: v for k, v in curves.items() if v}
    best = "ctr" if max(curves["ctr"]) >= 0.8 or len(curves) == 1 else "clicks_per_user_cuped"
    ab_n = next((n for n, p in zip(ns, curves[best], strict=True) if p >= 0.8), None)

    # 3. Ranker B vs ranker A on the same users over the same days: the A/B test on each of
    #    its metrics against team-draft interleaving under each credit scheme, on one
    #    log-spaced grid of users with the same replicates; n80 of each by the same rule.
    both = runs["a"].index.intersection(runs["b"].index)
    ra, rb = runs["a"].loc[both].reset_index(), runs["b"].loc[both].reset_index()
    il, null = _credits(runs, "il"), _credits(runs, "ilaa")
    m = min(len(ra), len(runs["il"]))
    grid = sorted({int(round(x)) for x in np.geomspace(10, m, 21)})
    ab_metrics = {k: (METRICS[k], False) for k in
                  ("ctr", "clicks_per_user", "conversions_per_user", "cvr")}  # fmt: skip
    ab_metrics["engagement_per_user"] = (ENGAGEMENT, False)
    if args.pre_days:
        ab_metrics["clicks_per_user_cuped"] = (METRICS["clicks_per_user"], True)
    ab_curves: dict[str, list[float]] = {k: [] for k in ab_metrics}
    il_curves: dict[str, list[float]] = {c: [] for c in IL_CREDITS}
    for i, n in enumerate(grid):
        # Fresh seeds at every point: with shared ones the replicates nest (the same first
        # users), so one unlucky set of seeds shifts the whole curve and the crossing with it.
        reps = range(i * args.tests, (i + 1) * args.tests)
        for k, res in _ab_tests(ra, rb, ab_metrics, n, reps).items():
            ab_curves[k].append(_power(res))
        for c, credit in il.items():
            il_curves[c].append(_il_power(_il_tests(credit, n, reps)))
        print(f"B vs A at {n} users: A/B power " + ", ".join(
            f"{k} {p[-1]:.0%}" for k, p in ab_curves.items()) + "; interleaving " + ", ".join(
            f"{k} {p[-1]:.0%}" for k, p in il_curves.items()), flush=True)  # fmt: skip
    ab_n80 = {k: _n80(grid, p) for k, p in ab_curves.items()}
    il_n80 = {k: _n80(grid, p) for k, p in il_curves.items()}
    # The A/B side is its most sensitive metric (smallest n80), so the ratio is not flattered
    # by a weak A/B; interleaving is the product's credit scheme, fixed before this run.
    ab_best = min((k for k in ab_n80 if ab_n80[k]), key=lambda k: ab_n80[k] or 0, default=None)
    n_ab = ab_n80[ab_best] if ab_best else None
    n_il = il_n80[IL_HEADLINE]
    # 4. A finer look at both crossings, so the ratio is not the coarse grid's spacing or one
    #    point's noise: 9 points from 0.7x to 1.4x each side's grid n80, 2 x --tests fresh
    #    replicates a point (point j's seeds shared by both sides); n80 from a probit fit.
    fine_reps = 2 * args.tests

    def fine_seeds(j: int) -> range:
        return range(20_000 + j * fine_reps, 20_000 + (j + 1) * fine_reps)

    fine: dict[str, dict[str, float]] = {}
    fits: dict[str, float] = {}
    sides = [("ab", n_ab, lambda n, sd: _power(
                 _ab_tests(ra, rb, {ab_best: ab_metrics[ab_best]}, n, sd)[ab_best])),
             ("il", n_il, lambda n, sd: _il_power(_il_tests(il[IL_HEADLINE], n, sd))),
             ("il_gap", il_n80[IL_GAP],
              lambda n, sd: _il_power(_il_tests(il[IL_GAP], n, sd))),
             ("il_flat", il_n80[IL_FLAT],
              lambda n, sd: _il_power(_il_tests(il[IL_FLAT], n, sd))),
             ("il_plain", il_n80[IL_PLAIN],
              lambda n, sd: _il_power(_il_tests(il[IL_PLAIN], n, sd)))]  # fmt: skip
    for side, n0, power_at in sides:
        if not n0 or not ab_best:
            continue
        pts = sorted({int(round(x)) for x in np.geomspace(0.7 * n0, 1.4 * n0, 9)})
        fine[side] = {str(n): power_at(n, fine_seeds(j)) for j, n in enumerate(pts)}
        fits[side] = _n80_fit(pts, list(fine[side].values()), fine_reps)
        print(f"fine grid {side}: {fine[side]} -> n80 {fits[side]:.1f}", flush=True)
    # 5. Without replicates: n80 from the whole population's z (normal approximation, so no
    #    replicate noise; the population's own luck remains), CTR by the delta method.
    z80 = 1.959964 + 0.841621
    pop: dict[str, float] = {}
    if ab_best == "ctr":
        lin = []
        for d in (ra, rb):
            r = d.clicks.sum() / d.impressions.sum()
            lin.append((r, ((d.clicks - r * d.impressions) / d.impressions.mean()).to_numpy()))
        (r_a, l_a), (r_b, l_b) = lin
        pop["ab"] = float(2 * (l_a.var() + l_b.var()) * (z80 / (r_b - r_a)) ** 2)
    for side, name in (("il", IL_HEADLINE), ("il_gap", IL_GAP), ("il_flat", IL_FLAT),
                       ("il_plain", IL_PLAIN)):  # fmt: skip
        ca, cb, coin, winsor = il[name]
        d = cb - ca
        if winsor:  # clipped as the test clips it
            cap = np.quantile(np.abs(d[d != 0]), WINSOR_QUANTILE)
            d = np.clip(d, -cap, cap)
        if coin is not None:  # the residual of the coin regression, as the test sees it
            d = d - np.polyfit(coin, d, 1)[0] * coin
        pop[side] = float(z80**2 * d.var() / d.mean() ** 2)
    print(f"population n80 {pop}", flush=True)
    # The headline n80 of each side is its fit (the grid's are reported beside it); the
    # checks with fresh replicates, and interleaving's A/A, run there.
    n_ab_grid, n_il_grid = n_ab, n_il
    n_ab = math.ceil(fits["ab"]) if "ab" in fits else n_ab
    n_il = math.ceil(fits["il"]) if "il" in fits else n_il
    check_seeds = range(10_000, 10_000 + 2 * args.tests)
    check_ab = _ab_tests(ra, rb, {ab_best: ab_metrics[ab_best]}, n_ab, check_seeds)[ab_best] \
        if ab_best and n_ab else []  # fmt: skip
    check_il = _il_tests(il[IL_HEADLINE], n_il, check_seeds) if n_il else []
    # Interleaving's false-positive rate: A against A interleaved, at interleaving's n80.
    # Replicates resample one simulated population, so its own chance imbalance (the z of
    # all its users, reported too) shifts every replicate's z by about z * sqrt(n / users).
    il_fp = {c: sum(r.preferred is not None for r in _il_tests(credit, n_il, check_seeds))
             / len(check_seeds) for c, credit in null.items()} if n_il else {}  # fmt: skip
    il_null_z = {}
    for c, (ca, cb, _, _) in null.items():
        d = cb - ca
        il_null_z[c] = float(d.mean() / d.std() * math.sqrt(len(d))) if d.std() > 0 else 0.0
    print(
        f"A/B n80 {n_ab} ({ab_best}), interleaving n80 {n_il} ({IL_HEADLINE}); "
        f"interleaving A/A false positives at n80 {il_fp}, population z {il_null_z}",
        flush=True,
    )

    def ctr(d: pd.DataFrame) -> float:
        return float(d.clicks.sum() / d.impressions.sum())

    def keyed(curve: list[float]) -> dict[str, float]:
        return dict(zip(map(str, grid), curve, strict=True))

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
        "ab_ctr_n80_estimate": _n80_from_z(ns[-1], zs_ctr),
        "injected_ctr_lift": 0.03,
        "measured_ctr_lift": ctr(lifted) / ctr(a) - 1,
        "ranker_b_vs_a_ctr_lift": ctr(rb) / ctr(ra) - 1,
        "ranker_ab_metric": ab_best,
        "ranker_ab_n80": n_ab,
        "ranker_ab_n80_grid": n_ab_grid,
        "ranker_ab_power_at_n80": _power(check_ab) if check_ab else None,
        "ranker_ab_wrong_winner_at_n80": _wrong(check_ab) if check_ab else None,
        "ranker_ab_n80_by_metric": ab_n80,
        "ranker_ab_power_curve": keyed(ab_curves[ab_best]) if ab_best else None,
        "ranker_ab_power_curves": {k: keyed(v) for k, v in ab_curves.items()},
        "interleaving_credit": IL_HEADLINE,
        "interleaving_n80": n_il,
        "interleaving_n80_grid": n_il_grid,
        "interleaving_power_at_n80": _il_power(check_il) if check_il else None,
        "interleaving_wrong_winner_at_n80": _il_wrong(check_il) if check_il else None,
        "interleaving_n80_by_credit": il_n80,
        "interleaving_power_curve": keyed(il_curves[IL_HEADLINE]),
        "interleaving_power_curves": {k: keyed(v) for k, v in il_curves.items()},
        "interleaving_aa_false_positive_rate_at_n80": il_fp,
        "interleaving_aa_population_z": il_null_z,
        "interleaving_n_ratio": round(fits["ab"] / fits["il"], 2) if "il" in fits else None,
        "gap_credit_unwinsorized_n_ratio": round(fits["ab"] / fits["il_gap"], 2)
        if "il_gap" in fits else None,
        "flat_credit_n_ratio": round(fits["ab"] / fits["il_flat"], 2)
        if "il_flat" in fits else None,
        "plain_team_draft_n_ratio": round(fits["ab"] / fits["il_plain"], 2)
        if "il_plain" in fits else None,
        "interleaving_n_ratio_grid": n_ab_grid / n_il_grid if n_il_grid and n_ab_grid else None,
        "plain_team_draft_n_ratio_grid": n_ab_grid / il_n80[IL_PLAIN]
        if n_ab_grid and il_n80[IL_PLAIN] else None,
        "fine_grid_power": fine,
        "n80_fit": {k: round(v, 1) for k, v in fits.items()},
        "n80_fit_rule": "9 points from 0.7x to 1.4x the grid n80 of each side (A/B: its best "
                        "metric; interleaving: the headline, unwinsorized, flat and plain "
                        f"clicks), {fine_reps} fresh replicates a point, shared by both "
                        "sides; probit fit power = Phi(b0 + b1 sqrt(n)), n80 where it reaches 80%",
        "n80_population": {k: round(v, 1) for k, v in pop.items()},
        "interleaving_n_ratio_population": round(pop["ab"] / pop["il"], 2)
        if "ab" in pop else None,
        "n80_population_rule": "normal approximation from all simulated users: n80 = "
                               "(1.96 + 0.84)^2 x variance / effect^2 per user (A/B: CTR "
                               "linearised, both arms; interleaving: b - a credit, residual "
                               "of the coin regression); no replicate noise, ignores the "
                               "t-test's small-sample tails (about +4% at 70 users)",
        "n80_rule": "power (share of replicates that pick B at alpha 0.05) on a log-spaced grid "
                    f"of users, {args.tests} fresh replicates a point; the grid n80 (*_grid, "
                    "by_metric, by_credit) is interpolated linearly in log n between the two "
                    "points around 80%; the headline n80 and ratio are the fine-grid fits "
                    "(n80_fit_rule), checked with "
                    f"{len(check_seeds)} fresh replicates at n80 (power and wrong-winner "
                    "rates at n80 are those)",
        "users_simulated": {k: len(v) for k, v in runs.items() if k[0] != "_" and ":" not in k},
        "days": {"pre": args.pre_days, "experiment": args.days},
        "ctr_control": ctr(a),
        "tests": args.tests,
        "noise": {"a": args.noise_a, "b": args.noise_b},
        "seed_base": args.seed_base,
        "seconds": round(time.time() - t0, 1),
        "commit": git_commit(),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "baseline": "the A/B test of the same two rankers on the same simulated users and "
                    "days, on its most sensitive metric",
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

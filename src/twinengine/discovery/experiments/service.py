"""Experiments service: define, start and stop experiments; assign users; report and decide.

Serving calls ``serving_plan`` (``assignments_for`` and ``variant_config`` at once) on every
request and logs the
result with the impression; they read a per-process cache of the running experiments, so
they cost a few hashes, not a query. Interleaving experiments: serving
(``candidates.serving.recommend``) builds ranker a's and ranker b's slates from
``variant_config(...)["interleaving"]``, merges them with
``interleaving.interleave(list_a, list_b, key=request_id)`` and logs the label it returns
(team letters and each position's rank gap) as the experiment's value in the impression.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from twinengine.context import AppContext
from twinengine.discovery.experiments import store
from twinengine.discovery.experiments.analysis import METRICS, AnalysisSettings, analyze, compare
from twinengine.discovery.experiments.assignment import assign
from twinengine.discovery.experiments.interleaving import (
    CONVERSION_WEIGHT,
    TEAM_A,
    TEAM_B,
    PreferenceResult,
    preference_test,
    user_credit,
)
from twinengine.discovery.experiments.schemas import (
    Decision,
    ExperimentCreate,
    ExperimentPage,
    ExperimentPublic,
    Report,
)
from twinengine.discovery.experiments.units import build_units, interleaving_credit
from twinengine.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

INTERLEAVED = "interleaved"  # assignment value until serving replaces it with the team label


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _public(row: dict[str, Any]) -> ExperimentPublic:
    return ExperimentPublic(
        **{k: v for k, v in row.items() if k not in ("layer_start", "layer_end")},
        layer_range=(row["layer_start"], row["layer_end"]),
    )


# --- definitions -------------------------------------------------------------------------------
def create(ctx: AppContext, *, spec: ExperimentCreate) -> ExperimentPublic:
    """Store a new draft experiment; a layered one takes the first free slice of its layer."""
    if store.get_experiment(ctx.db, spec.id) is not None:
        raise Conflict(f"experiment {spec.id!r} already exists")
    start, end = 0.0, 1.0
    if spec.layer:
        start, end = _free_slot(store.layer_slots(ctx.db, spec.layer), spec.traffic, spec.layer)
    row = {
        **spec.model_dump(
            mode="json", exclude={"variants", "targeting", "metrics", "analysis", "salt"}
        ),
        "variants": [v.model_dump(mode="json") for v in spec.variants],
        "targeting": spec.targeting.model_dump(mode="json"),
        "metrics": spec.metrics.model_dump(mode="json"),
        "analysis": spec.analysis.model_dump(mode="json"),
        "status": "draft",
        # Fixed now, so every process hashes with the same salt.
        "salt": spec.salt or secrets.token_hex(8),
        "layer_start": start,
        "layer_end": end,
        "decision": None,
        "created_at": _now(),
    }
    store.insert_experiment(ctx.db, row)
    return get(ctx, exp_id=spec.id)


def _free_slot(taken: list[tuple[float, float]], width: float, layer: str) -> tuple[float, float]:
    # Layer hashes have 1000 buckets (GrowthBook's v1 namespace hash): round to them.
    width = round(width, 3)
    cursor = 0.0
    for a, b in [*taken, (1.0, 1.0)]:
        if a - cursor >= width - 1e-9:
            return round(cursor, 3), round(cursor + width, 3)
        cursor = max(cursor, b)
    free = 1.0 - sum(b - a for a, b in taken)
    raise Conflict(f"layer {layer!r} has no free slice of {width:.0%} (free in total: {free:.0%})")


def get(ctx: AppContext, *, exp_id: str) -> ExperimentPublic:
    """One experiment; NotFound if there is none."""
    row = store.get_experiment(ctx.db, exp_id)
    if row is None:
        raise NotFound(f"no experiment {exp_id!r}")
    return _public(row)


def list_experiments(ctx: AppContext, *, status: str | None = None) -> ExperimentPage:
    """Experiments, newest first, optionally of one status."""
    if status is not None and status not in ("draft", "running", "stopped"):
        raise InvalidInput("status must be draft, running or stopped")
    data = [_public(r) for r in store.list_experiments(ctx.db, status=status)]
    return ExperimentPage(data=data, count=len(data))


def start(ctx: AppContext, *, exp_id: str) -> ExperimentPublic:
    """Make a draft experiment live."""
    exp = get(ctx, exp_id=exp_id)
    if not store.set_status(ctx.db, exp_id, expect="draft", status="running", started_at=_now()):
        raise Conflict(f"experiment {exp_id!r} is {exp.status}; only a draft can start")
    invalidate(ctx)
    return get(ctx, exp_id=exp_id)


def stop(ctx: AppContext, *, exp_id: str) -> ExperimentPublic:
    """Stop a running experiment and record the decision the data supported at that moment."""
    exp = get(ctx, exp_id=exp_id)
    if not store.set_status(ctx.db, exp_id, expect="running", status="stopped", stopped_at=_now()):
        raise Conflict(f"experiment {exp_id!r} is {exp.status}; only a running one can stop")
    invalidate(ctx)
    store.set_decision(ctx.db, exp_id, report(ctx, exp_id=exp_id).decision.model_dump())
    return get(ctx, exp_id=exp_id)


# --- assignment (the serving hot path) ---------------------------------------------------------
@dataclass(frozen=True)
class _Live:
    id: str
    kind: str
    salt: str
    layer: str | None
    layer_range: tuple[float, float]
    traffic: float
    keys: tuple[str, ...]
    weights: tuple[float, ...]
    configs: tuple[dict[str, Any], ...]
    surfaces: frozenset[str]
    languages: frozenset[str]


class _Cache:
    """The running experiments, re-read at most every ``experiments_cache_ttl_s`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.loaded = -1e18
        self.live: tuple[_Live, ...] = ()
        self.lock = threading.Lock()

    def get(self, ctx: AppContext) -> tuple[_Live, ...]:
        if time.monotonic() - self.loaded < self.ttl:
            return self.live
        with self.lock:
            if time.monotonic() - self.loaded >= self.ttl:
                rows = store.list_experiments(ctx.db, status="running")
                self.live = tuple(_live(r) for r in sorted(rows, key=lambda r: r["id"]))
                self.loaded = time.monotonic()
        return self.live


def _live(r: dict[str, Any]) -> _Live:
    # A layered experiment's traffic is its slice of the layer; otherwise it is coverage.
    return _Live(
        id=r["id"],
        kind=r["kind"],
        salt=r["salt"],
        layer=r["layer"],
        layer_range=(r["layer_start"], r["layer_end"]),
        traffic=1.0 if r["layer"] else r["traffic"],
        keys=tuple(v["key"] for v in r["variants"]),
        weights=tuple(float(v["weight"]) for v in r["variants"]),
        configs=tuple(v.get("config") or {} for v in r["variants"]),
        surfaces=frozenset(r["targeting"].get("surfaces") or ()),
        languages=frozenset(r["targeting"].get("languages") or ()),
    )


def _cache(ctx: AppContext) -> _Cache:
    cache = ctx.extras.get("experiments")
    if cache is None:
        cache = ctx.extras["experiments"] = _Cache(ctx.settings.experiments_cache_ttl_s)
    return cache


def invalidate(ctx: AppContext) -> None:
    """Forget this process's cached running experiments (others refresh within the TTL)."""
    ctx.extras.pop("experiments", None)


def _matches(exp: _Live, surface: str, language: str | None) -> bool:
    if exp.surfaces and surface not in exp.surfaces:
        return False
    # A language-targeted experiment needs the language: unknown means not eligible.
    return not exp.languages or language in exp.languages


def _assigned(
    ctx: AppContext, user_key: str, surface: str, language: str | None
) -> list[tuple[_Live, int]]:
    out = []
    for exp in _cache(ctx).get(ctx):
        if not _matches(exp, surface, language):
            continue
        idx = assign(
            user_key, salt=exp.salt, weights=exp.weights, coverage=exp.traffic,
            layer=exp.layer, layer_range=exp.layer_range,
        )  # fmt: skip
        if idx >= 0:
            out.append((exp, idx))
    return out


def serving_plan(
    ctx: AppContext, *, user_key: str, surface: str, language: str | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """``assignments_for`` and ``variant_config`` from one pass over the user's experiments
    (what serving needs on every request: each assignment is a hash per experiment)."""
    assigned = _assigned(ctx, user_key, surface, language)
    return _assignments(assigned), _merged_config(assigned)


def assignments_for(
    ctx: AppContext, *, user_key: str, surface: str, language: str | None = None
) -> dict[str, str]:
    """Experiment id -> variant for this user on this surface (running, targeted ones only).

    Interleaving experiments answer ``"interleaved"``: serving logs the team label instead.
    """
    return _assignments(_assigned(ctx, user_key, surface, language))


def variant_config(
    ctx: AppContext, *, user_key: str, surface: str, language: str | None = None
) -> dict[str, Any]:
    """The configs of the user's variants merged (experiments in id order; later keys win).

    An interleaving experiment adds ``{"interleaving": {"experiment", "a", "b"}}`` with both
    rankers' configs. Experiments that set the same key belong in one layer.
    """
    return _merged_config(_assigned(ctx, user_key, surface, language))


def _assignments(assigned: list[tuple[_Live, int]]) -> dict[str, str]:
    return {
        exp.id: INTERLEAVED if exp.kind == "interleaving" else exp.keys[idx]
        for exp, idx in assigned
    }


def _merged_config(assigned: list[tuple[_Live, int]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for exp, idx in assigned:
        if exp.kind == "interleaving":
            merged.setdefault(
                "interleaving", {"experiment": exp.id, "a": exp.configs[0], "b": exp.configs[1]}
            )
        else:
            _deep_merge(merged, exp.configs[idx])
    return merged


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


# --- analysis ----------------------------------------------------------------------------------
def _settings(exp: ExperimentPublic) -> AnalysisSettings:
    a = exp.analysis
    return AnalysisSettings(
        engine=a.engine, alpha=a.alpha, sequential=a.sequential, correction=a.correction,
        cuped=a.cuped, min_users=a.min_users, target_users=a.target_users,
        sequential_tuning=float(a.target_users or 5000),
    )  # fmt: skip


def report(ctx: AppContext, *, exp_id: str, until: dt.datetime | None = None) -> Report:
    """Analyse the experiment on the event log up to ``until`` (default: now or its stop)."""
    exp = get(ctx, exp_id=exp_id)
    if exp.started_at is None:
        raise Conflict(f"experiment {exp_id!r} has not started: nothing to report")
    end = store.utc(until) or exp.stopped_at or _now()
    requests = store.load_requests(ctx.db, exp_id, since=exp.started_at, until=end)
    outcomes = store.load_outcomes(ctx.db, exp_id, since=exp.started_at, until=end)
    pre = store.load_pre_period(
        ctx.db, exp_id, start=exp.started_at, days=exp.analysis.pre_period_days
    )
    cutoff = pd.Timestamp(end)
    keys = [v.key for v in exp.variants]
    settings = _settings(exp)
    if exp.kind == "interleaving":
        return _interleaving_report(exp, requests, outcomes, cutoff, settings)
    units, multiple = build_units(requests, outcomes, pre, until=cutoff)
    result = analyze(
        units, variants=keys, weights=[v.weight for v in exp.variants],
        primary=exp.metrics.primary, guardrails=exp.metrics.guardrails,
        secondary=exp.metrics.secondary, settings=settings,
    )  # fmt: skip
    timeline = _timeline(exp, requests, outcomes, pre, cutoff, settings)
    return Report(
        experiment=exp, computed_at=_now(), users=result["users"], multiple_exposures=multiple,
        srm=result["srm"], metrics=result["metrics"], timeline=timeline,
        decision=Decision(**result["decision"]),
    )  # fmt: skip


def _cutoffs(start: pd.Timestamp, end: pd.Timestamp, points: int = 30) -> list[pd.Timestamp]:
    # Daily points; longer experiments get evenly spaced ones so the plot stays cheap.
    span = max(end - start, pd.Timedelta(hours=1))
    step = max(pd.Timedelta(days=1), span / points)
    cuts, t = [], start + step
    while t < end:
        cuts.append(t)
        t += step
    return [*cuts, end]


def _timeline(
    exp: ExperimentPublic,
    requests: pd.DataFrame,
    outcomes: pd.DataFrame,
    pre: pd.DataFrame,
    end: pd.Timestamp,
    settings: AnalysisSettings,
) -> list[dict[str, Any]]:
    metric = METRICS[exp.metrics.primary[0]]
    keys = [v.key for v in exp.variants]
    points = []
    for cut in _cutoffs(pd.Timestamp(exp.started_at), end):
        units, _ = build_units(requests, outcomes, pre, until=cut)
        if units.empty:
            continue
        ctrl = units[units["variant"] == keys[0]]
        for v in keys[1:]:
            treat = units[units["variant"] == v]
            if len(ctrl) < 2 or len(treat) < 2:
                continue
            _, t = compare(ctrl, treat, metric, settings)
            points.append({"t": cut.isoformat(), "variant": v, "users": int(len(ctrl) + len(treat)),
                           "lift": t.lift, "ci": list(t.ci), "error": t.error})
    return points


# Interleaving signals (name, click weight, conversion weight); the first decides: clicks +
# conversions, the credit fixed before bench/exp.py's fresh-seed run; each alone beside it.
SIGNALS = (("clicks+conversions", 1.0, CONVERSION_WEIGHT), ("clicks", 1.0, 0.0),
           ("conversions", 0.0, 1.0))  # fmt: skip


def _preference(
    credit: pd.DataFrame, signal: str, w_click: float, w_conv: float, alpha: float
) -> PreferenceResult:
    """The coin-adjusted preference test of one signal over users' credit."""
    c = user_credit(credit, click_weight=w_click, conversion_weight=w_conv)
    return preference_test(c["credit_a"].to_numpy(), c["credit_b"].to_numpy(), signal=signal,
                           alpha=alpha, coin=c["coin"].to_numpy())  # fmt: skip


def _interleaving_report(
    exp: ExperimentPublic,
    requests: pd.DataFrame,
    outcomes: pd.DataFrame,
    end: pd.Timestamp,
    settings: AnalysisSettings,
) -> Report:
    credit = interleaving_credit(requests, outcomes, until=end)
    tests = [_preference(credit, *sig, settings.alpha).to_dict() for sig in SIGNALS]
    a, b = exp.variants[0].key, exp.variants[1].key
    main = tests[0]  # the decision's signal: clicks + conversions
    users = int(main["users"])
    if users < settings.min_users:
        decision = Decision(action="keep running", reason=f"waiting for data: {users} users "
                            f"saw interleaved slates, {settings.min_users} needed")
    elif main["preferred"] == TEAM_B:
        decision = Decision(action="ship", variant=b, reason=f"users prefer {b}'s ranking: "
                            f"{main['wins_b']} vs {main['wins_a']} users by {main['signal']} "
                            f"(paired t-test p={main['p_value']:.3g}, sign test "
                            f"p={main['p_sign']:.3g})")
    elif main["preferred"] == TEAM_A:
        decision = Decision(action="roll back", variant=a, reason=f"users prefer {a}'s ranking: "
                            f"{main['wins_a']} vs {main['wins_b']} users by {main['signal']} "
                            f"(paired t-test p={main['p_value']:.3g}, sign test "
                            f"p={main['p_sign']:.3g})")
    else:
        decision = Decision(action="keep running", reason=f"no significant preference yet "
                            f"({main['wins_b']} for {b}, {main['wins_a']} for {a}, "
                            f"p={main['p_value']:.3g})")
    timeline = []
    for cut in _cutoffs(pd.Timestamp(exp.started_at), end):
        c = interleaving_credit(requests, outcomes, until=cut)
        if len(c):
            r = _preference(c, *SIGNALS[0], settings.alpha)
            timeline.append({"t": cut.isoformat(), "variant": b, "users": r.users,
                             "lift": r.delta, "ci": None, "p_value": r.p_value})
    for t in tests:
        t["a"], t["b"] = a, b
    return Report(
        experiment=exp, computed_at=_now(), users={"interleaved": users}, multiple_exposures=0,
        srm={"p_value": None, "ok": True, "threshold": None}, metrics=[], timeline=timeline,
        interleaving=tests, decision=decision,
    )  # fmt: skip

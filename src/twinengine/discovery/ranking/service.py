"""Learned ranking: train, version, activate, and re-rank candidates with the active model.

``rerank`` is on the serving path of search, feed, related and topic: it never touches the
database. Item and user features live in memory (``FeatureState``) and are brought up to date
in a background thread every ``ranking_feature_refresh_s``; a newly activated model is noticed
within ``ranking_reload_check_s`` and swapped in with one reference assignment, so requests in
flight finish on the old model and none is dropped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from twinengine.context import AppContext
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.ranking import evaluate
from twinengine.discovery.ranking.bias import (
    PropensityCurve,
    contextual_pbm_propensities,
    em_propensities,
    harvest_propensities,
)
from twinengine.discovery.ranking.diversity import Rules, apply_rules, rules_from
from twinengine.discovery.ranking.features import (
    COL,
    FEATURES,
    CatalogView,
    FeatureConfig,
    FeatureState,
    TrainingFrame,
    build_training_frame,
    read_events,
)
from twinengine.discovery.ranking.models import BlendWeights, LgbmRanker, TrainParams, fit
from twinengine.discovery.ranking.registry import ModelRegistry, check_surface
from twinengine.errors import InvalidInput, ModelFitError

log = logging.getLogger(__name__)
_KEY = "ranking"


# --- runtime state ------------------------------------------------------------------------------
class RankingRuntime:
    """Per-context serving state: loaded models, active map, rules and in-memory features."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.registry = ModelRegistry(registry_root(ctx))
        self._stamp: tuple[int, ...] | None = None
        self._checked = 0.0
        self.active: dict[str, str] = {}
        self.rules: dict[str, Rules] = {}
        self._models: dict[str, LgbmRanker] = {}
        self._state: FeatureState | None = None
        self._state_lock = threading.Lock()
        self._refreshing = threading.Event()
        self._refreshed_at = 0.0
        self._closed = False

    # --- models ------------------------------------------------------------------------------
    def maybe_reload(self, *, force: bool = False) -> None:
        """Re-read the active map and rules if their files changed (at most every few seconds)."""
        now = time.monotonic()
        if not force and now - self._checked < self.ctx.settings.ranking_reload_check_s:
            return
        self._checked = now
        stamp = self.registry.stamp()
        if stamp == self._stamp and not force:
            return
        active = self.registry.active()
        rules = {s: rules_from(r) for s, r in self.registry.rules().items()}
        for version in set(active.values()):
            self._load(version)  # load before publishing the map: no request waits on disk
        self.active, self.rules, self._stamp = active, rules, stamp

    def model(self, version: str) -> LgbmRanker | None:
        """The model ``version`` (loaded once), or None if it cannot be loaded."""
        return self._models.get(version) or self._load(version)

    def _load(self, version: str) -> LgbmRanker | None:
        try:
            model = LgbmRanker.load(self.registry.folder(version))
        except Exception:  # a broken artifact must not take serving down: fall back instead
            log.exception("cannot load ranking model %s; serving falls back", version)
            return None
        self._models[version] = model
        return model

    # --- features ----------------------------------------------------------------------------
    def features(self, *, wait: bool = True) -> FeatureState | None:
        """The in-memory feature state; built on first use, then refreshed in the background.

        With ``wait=False`` a caller that finds another thread building the first state gets
        None at once (and serves generator scores) instead of queueing behind the build.
        """
        state = self._state
        if state is None:
            if not self._state_lock.acquire(blocking=wait):
                return None
            try:
                if self._state is None:
                    self._state = self._build()
                    self._refreshed_at = time.monotonic()
                state = self._state
            finally:
                self._state_lock.release()
        elif (time.monotonic() - self._refreshed_at > self.ctx.settings.ranking_feature_refresh_s
              and not self._refreshing.is_set()):
            self._refreshing.set()
            threading.Thread(target=self._refresh_bg, name="ranking-refresh", daemon=True).start()
        return state

    def _build(self) -> FeatureState:
        config = FeatureConfig(half_life_days=self.ctx.settings.ranking_half_life_days)
        state = FeatureState(CatalogView.load(self.ctx.db), config)
        for ev in read_events(self.ctx.db):
            state.apply(ev)
        return state

    def refresh(self) -> int:
        """Fold events newer than the last one seen into the features; returns how many."""
        with self._state_lock:
            if self._state is None:
                self._state = self._build()
                self._refreshed_at = time.monotonic()
                return self._state.seen_events
            state = self._state
            after = (dt.datetime.fromtimestamp(state.last_ts, dt.UTC)
                     if np.isfinite(state.last_ts) else None)
            n = 0
            for ev in read_events(self.ctx.db, after=after):
                state.apply(ev)
                n += 1
            self._refreshed_at = time.monotonic()
            return n

    def _refresh_bg(self) -> None:
        try:
            if not self._closed:
                self.refresh()
        except Exception:  # a failed refresh keeps serving the previous features
            log.exception("ranking feature refresh failed")
        finally:
            self._refreshing.clear()

    def close(self) -> None:
        """Stop background refreshes."""
        self._closed = True


def registry_root(ctx: AppContext) -> Any:
    """Folder of the ranking model versions."""
    return ctx.settings.home / "models" / "ranking"


def runtime(ctx: AppContext) -> RankingRuntime:
    """The context's ranking runtime (created on first use)."""
    rt = ctx.extras.get(_KEY)
    if rt is None:
        rt = ctx.extras[_KEY] = RankingRuntime(ctx)
    return rt


# --- serving ------------------------------------------------------------------------------------
def rerank(
    ctx: AppContext,
    *,
    surface: str,
    user_key: str | None,
    candidates: list[Candidate],
    k: int,
    model: str | None = None,
    blend: BlendWeights | None = None,
    rules: Rules | None = None,
) -> list[Candidate]:
    """Order ``candidates`` for ``surface`` with its active model and rules; keep the top ``k``.

    Without an active model (or with one that cannot be loaded) the generator scores order the
    slate. ``model`` names a version to use instead of the active one (experiments).
    """
    if k < 1:
        raise InvalidInput("k must be at least 1")
    if not candidates:
        return []
    rt = runtime(ctx)
    rt.maybe_reload()
    rules = rules if rules is not None else rt.rules.get(surface, Rules())
    version = model or rt.active.get(surface)
    ranker = rt.model(version) if version else None
    if model and ranker is None:
        raise InvalidInput(f"ranking model {model!r} cannot be loaded")
    ids = [c.item_id for c in candidates]
    gen = np.fromiter((c.score for c in candidates), dtype=float, count=len(candidates))
    need_features = ranker is not None or not rules.is_noop
    state = rt.features(wait=False) if need_features else None
    if state is None:  # features still being built at start-up: generator order meanwhile
        ranker, rules = None, Rules(hidden=rules.hidden, pins=rules.pins)
    idx = state.indices(ids) if state is not None else None
    if ranker is None:
        scores = gen
        age = None
    else:
        assert state is not None and idx is not None
        X = state.rows(idx, user_key=user_key, surface=surface, t=time.time(), gen_scores=gen,
                       retrieval_scores=_retrieval(candidates))
        scores = ranker.score(X, blend)
        age = X[:, COL["item_age_days"]]
    if rules.is_noop:
        order = np.argsort(-scores, kind="stable")[:k].tolist()
    elif state is None:  # only pins and hidden items apply without features
        order = apply_rules(ids, scores, k, rules)
    else:
        assert idx is not None
        if age is None:
            age = (time.time() - state.catalog.born[idx]) / 86400.0
        order = apply_rules(ids, scores, k, rules, topics=state.catalog.topics[idx], age_days=age)
    if ranker is None:
        return [candidates[i] for i in order]
    return [_rescored(candidates[i], float(scores[i]), version) for i in order]


def _retrieval(candidates: Sequence[Candidate]) -> np.ndarray | None:
    vals = [c.features.get("retrieval_score") if c.features else None for c in candidates]
    if all(v is None for v in vals):
        return None
    return np.asarray([np.nan if v is None else float(v) for v in vals], dtype=np.float32)


def _rescored(c: Candidate, score: float, version: str | None) -> Candidate:
    features = dict(c.features or {})
    features["gen_score"] = c.score
    if version:
        features["ranker"] = version
    return dataclasses.replace(c, score=score, features=features)


# --- training -----------------------------------------------------------------------------------
def load_frame(
    ctx: AppContext,
    *,
    surfaces: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    config: FeatureConfig | None = None,
) -> TrainingFrame:
    """Point-in-time feature rows of every logged impression (optionally of some surfaces)."""
    state = FeatureState(CatalogView.load(ctx.db), config)
    log_rows = read_events(ctx.db, until=until)
    frame = build_training_frame(state, log_rows, surfaces=surfaces)
    if since is not None and len(frame):
        frame = frame.take(frame.ts >= since.timestamp())
    return frame


# Clicks of moved items at (shown at, or moved from) each position before harvesting alone is
# trusted; below that the contextual click model pools every click (biased, but steadier).
MIN_SWAPPED_CLICKS = 100
PROPENSITY_METHODS = ("auto", "harvest", "contextual_pbm", "em")


def estimate_propensity(
    frame: TrainingFrame, *, max_position: int = 10, method: str = "auto"
) -> PropensityCurve:
    """Examination curve from the log.

    ``auto``: intervention harvesting when every position 2..max has at least
    ``MIN_SWAPPED_CLICKS`` clicks on explored rows; otherwise the contextual click model over
    all rows (explored ones included), and the per-item EM as the last resort.
    """
    if method not in PROPENSITY_METHODS:
        raise InvalidInput(f"unknown propensity method {method!r}: {', '.join(PROPENSITY_METHODS)}")
    original = original_positions(frame)
    if method in ("auto", "harvest"):
        # A position's estimate rests on moved items' clicks shown there *or* moved from there:
        # with swaps of position 1 and k, most of them are rank-k items clicked at position 1.
        moved = (original != frame.position) & (frame.click > 0)
        per_pos = np.zeros(max_position + 1)
        for pos in (frame.position[moved], original[moved]):
            p = pos.astype(np.int64)
            per_pos += np.bincount(p[p <= max_position], minlength=max_position + 1)
        if method == "harvest" or per_pos[2:].min() >= MIN_SWAPPED_CLICKS:
            return harvest_propensities(frame.position, original, frame.click,
                                        max_position=max_position)
    if method in ("auto", "contextual_pbm"):
        try:
            X = frame.X[:, [COL[f] for f in FEATURES if f != "position"]]
            share = min(1.0, 200_000 / max(len(frame), 1))
            return contextual_pbm_propensities(X, frame.position, frame.click,
                                              max_position=max_position, negative_share=share)
        except ModelFitError:
            if method == "contextual_pbm":
                raise
    codes = np.unique(np.asarray(frame.item_ids), return_inverse=True)[1]
    return em_propensities(frame.position, codes, frame.click, max_position=max_position)


def original_positions(frame: TrainingFrame) -> np.ndarray:
    """Per row, the position the policy chose, else the shown one.

    Exploration slates say what they changed in ``attributes``: ``swap: [i, j]`` (positions i
    and j were exchanged) or ``orig_positions: [...]`` (the policy's position per slot).
    """
    out = frame.position.copy()
    groups = frame.group
    if not len(out):
        return out
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, len(out)])
    for s, size in zip(starts, sizes, strict=True):
        attrs = frame.attributes[int(groups[s])]
        swap = attrs.get("swap")
        if (isinstance(swap, list) and len(swap) == 2
                and all(isinstance(v, int) and 1 <= v <= size for v in swap)):
            i, j = swap
            out[s + i - 1], out[s + j - 1] = j, i
            continue
        orig = attrs.get("orig_positions")
        if isinstance(orig, list):
            n = min(len(orig), len(out) - s)
            seg = out[s : s + n]
            out[s : s + n] = [
                float(v) if isinstance(v, int | float) else seg[j] for j, v in enumerate(orig[:n])
            ]
    return out


def train(
    ctx: AppContext,
    *,
    surfaces: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    blend: BlendWeights | None = None,
    params: TrainParams | None = None,
    holdout: float = 0.2,
    activate: bool = False,
    frame: TrainingFrame | None = None,
) -> dict[str, Any]:
    """Train a ranker on the event log, save it as a new version, optionally activate it.

    The last ``holdout`` share of slates (by time) is held out for the metrics stored with the
    model; the heads are trained on the rest. Raises ``ModelFitError`` without usable logs.
    ``frame`` passes feature rows already built by ``load_frame`` (benchmarks).
    """
    for s in surfaces or ():
        check_surface(s)
    if not 0.0 < holdout < 0.9:
        raise InvalidInput("holdout must be between 0 and 0.9")
    config = FeatureConfig(half_life_days=ctx.settings.ranking_half_life_days)
    if frame is None:
        frame = load_frame(ctx, surfaces=surfaces, since=since, until=until, config=config)
    if len(frame) == 0:
        raise ModelFitError("no impressions in the event log to train a ranker on")
    if frame.click.sum() == 0:
        raise ModelFitError("the event log has impressions but no attributed clicks")
    train_part, test_part = evaluate.split_by_time(frame, holdout)
    curve = estimate_propensity(train_part)
    ranker = fit(train_part, propensity=curve, blend=blend, params=params, feature_config=config)
    metrics = evaluate.offline_metrics(ranker, test_part)
    metrics.update(rows=len(frame), train_rows=len(train_part), test_rows=len(test_part),
                   clicks=int(frame.click.sum()), conversions=int(frame.conversion.sum()))
    registry = ModelRegistry(registry_root(ctx))
    version = registry.new_version()
    ranker.meta = {
        "version": version,
        "surfaces": sorted(surfaces) if surfaces else "all",
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    staging = registry.staging(version)
    try:
        ranker.save(staging, metrics=metrics)
        registry.publish(version, staging)
    except Exception:
        registry.discard(staging)
        raise
    if activate:
        registry.activate(version, list(surfaces) if surfaces else list(_SERVED))
    return registry.describe(version)


_SERVED = ("search", "feed", "related", "topic", "trending")


# --- lifecycle ----------------------------------------------------------------------------------
def list_models(ctx: AppContext) -> list[dict[str, Any]]:
    """Every version with its metrics and the surfaces it serves, newest first."""
    registry = ModelRegistry(registry_root(ctx))
    return [registry.describe(v) for v in registry.versions()]


def get_model(ctx: AppContext, *, version: str) -> dict[str, Any]:
    """One version's schema, metrics and surfaces."""
    return ModelRegistry(registry_root(ctx)).describe(version)


def activate(ctx: AppContext, *, version: str, surfaces: Sequence[str]) -> dict[str, str]:
    """Serve ``version`` on ``surfaces``; running servers pick it up within seconds."""
    if not surfaces:
        raise InvalidInput("name at least one surface")
    active = ModelRegistry(registry_root(ctx)).activate(version, list(surfaces))
    runtime(ctx).maybe_reload(force=True)
    return active


def deactivate(ctx: AppContext, *, surfaces: Sequence[str]) -> dict[str, str]:
    """Serve generator scores again on ``surfaces``."""
    for s in surfaces:
        check_surface(s)
    active = ModelRegistry(registry_root(ctx)).deactivate(list(surfaces))
    runtime(ctx).maybe_reload(force=True)
    return active


def get_active(ctx: AppContext) -> dict[str, str]:
    """Surface -> active version."""
    return ModelRegistry(registry_root(ctx)).active()


def set_rules(ctx: AppContext, *, surface: str, rules: Rules) -> Rules:
    """Store a surface's diversity and merchandising rules; servers apply them within seconds."""
    ModelRegistry(registry_root(ctx)).set_rules(surface, rules.model_dump())
    runtime(ctx).maybe_reload(force=True)
    return rules


def get_rules(ctx: AppContext, *, surface: str) -> Rules:
    """A surface's rules (defaults when none are stored)."""
    check_surface(surface)
    return rules_from(ModelRegistry(registry_root(ctx)).rules().get(surface))

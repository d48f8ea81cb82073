"""Ranking models: LightGBM LambdaMART plus CTR and CVR heads, and their blend.

Multi-objective blend (weights ``w`` are configurable per model and per request)::

    score = w_rank * s_rank + w_ctr * log p(click) + w_cvr * log p(conversion | click)

``s_rank`` is the LambdaMART margin, boosted from ``log(item_ctr)`` (the smoothed CTR, the best
untrained ranking signal on simulator logs): the trees learn corrections to that prior, so with
few clicked slates the ranker starts where the baseline is instead of re-learning it from sparse
labels (from scratch it lost to that one feature: held-out true-appeal NDCG@10 0.80 vs 0.82).
``p(click)`` the CTR head read at position 1 (position is a
training-only input, so the head learns relevance net of position), ``p(conversion | click)``
the CVR head trained on clicked rows. With ``w_ctr = w_cvr = 1`` and ``w_rank = 0`` the blend
orders by expected conversions per impression; ``w_cvr = 0`` is click-only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.discovery.ranking.bias import PropensityCurve, ipw_weights
from twinengine.discovery.ranking.features import COL, FEATURES, FeatureConfig, TrainingFrame
from twinengine.errors import MissingDependency, ModelFitError

try:
    import lightgbm as lgb

    HAS_LIGHTGBM = True
except ImportError:  # pragma: no cover - exercised only without the extra
    lgb = None
    HAS_LIGHTGBM = False

SERVING_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f != "position")
HEAD_FEATURES: dict[str, tuple[str, ...]] = {
    "rank": SERVING_FEATURES,
    "ctr": FEATURES,  # position included: set to 1 at serving
    "cvr": SERVING_FEATURES,
}
SCHEMA_FORMAT = 1
_EPS = 1e-6
RANK_BASE = "log_item_ctr"  # base margin of the LambdaMART head (see the module docstring)


def rank_base_margin(X: np.ndarray) -> np.ndarray:
    """The LambdaMART head's starting score: log of the smoothed item CTR."""
    return np.log(np.maximum(X[:, COL["item_ctr"]].astype(np.float64), _EPS))


@dataclass(frozen=True)
class BlendWeights:
    """Weights of the multi-objective blend (see the module docstring for the formula)."""

    rank: float = 0.0
    ctr: float = 1.0
    cvr: float = 1.0

    @classmethod
    def preset(cls, name: str) -> BlendWeights:
        """Named weightings: ``click``, ``conversion`` (multi-objective), ``lambdamart``."""
        presets = {
            "click": cls(0.0, 1.0, 0.0),
            "conversion": cls(0.0, 1.0, 1.0),
            "lambdamart": cls(1.0, 0.0, 0.0),
        }
        if name not in presets:
            from twinengine.errors import InvalidInput

            raise InvalidInput(f"unknown blend {name!r}: choose one of {', '.join(presets)}")
        return presets[name]


@dataclass(frozen=True)
class TrainParams:
    """LightGBM knobs shared by the three heads."""

    # Small, heavily regularised trees: clicks are sparse (about 1% CTR in the simulator) and
    # larger trees fit noise (held-out true-relevance NDCG@10 0.817 -> 0.861 on bench logs).
    learning_rate: float = 0.05  # LambdaMART: at 0.15 its corrections to log(item_ctr) overfit
    # CTR and CVR heads: fewer, larger steps. Serving cost is rows x trees (about 17 ns each):
    # at 0.05 both heads ran all 300 rounds and 100 LambdaMART rounds (3.1 ms of CPU to score
    # 200 candidates with all heads); at 0.15, 100 and 40 rounds 1.1 ms, held-out true NDCG@10
    # within 0.003 of it (12k-user simulator log).
    head_learning_rate: float = 0.15
    num_leaves: int = 7
    min_data_in_leaf: int = 200
    rounds: int = 100
    early_stopping: int = 30
    # LambdaMART runs a fixed number of rounds: early stopping on logged clicks would stop it
    # where it agrees most with the logging policy (the labels are position-biased). 40 rounds
    # beat 100 on held-out true NDCG@10 (0.8485 vs 0.8472).
    rank_rounds: int = 40
    ipw_clip: float = 10.0
    num_threads: int = 2
    seed: int = 7


def _require_lgb() -> Any:
    if not HAS_LIGHTGBM:
        raise MissingDependency("lightgbm", "recs")
    return lgb


def _cols(names: tuple[str, ...]) -> list[int]:
    return [COL[n] for n in names]


def group_sizes(group: np.ndarray) -> np.ndarray:
    """Sizes of the contiguous runs of equal group ids."""
    if len(group) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.diff(np.r_[starts, len(group)])


def ndcg_at(scores: np.ndarray, labels: np.ndarray, group: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over groups with at least one positive label (gain ``2^label - 1``)."""
    total, count, start = 0.0, 0, 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for size in group_sizes(group):
        lab = labels[start : start + size].astype(float)
        sc = scores[start : start + size]
        start += size
        if lab.max() <= 0:
            continue
        top = np.argsort(-sc, kind="stable")[:k]
        dcg = ((2.0 ** lab[top] - 1.0) * disc[: len(top)]).sum()
        ideal = np.sort(lab)[::-1][:k]
        idcg = ((2.0**ideal - 1.0) * disc[: len(ideal)]).sum()
        total += dcg / idcg
        count += 1
    return total / count if count else float("nan")


class LgbmRanker:
    """The three trained heads plus the metadata needed to score candidates."""

    def __init__(
        self,
        heads: dict[str, Any],
        *,
        blend: BlendWeights,
        feature_config: FeatureConfig,
        propensity: PropensityCurve | None,
        meta: dict[str, Any] | None = None,
        rank_base: str | None = RANK_BASE,
    ) -> None:
        self.heads = heads
        self.rank_base = rank_base
        self.blend = blend
        self.feature_config = feature_config
        self.propensity = propensity
        self.meta = meta or {}
        self._cols = {h: _cols(HEAD_FEATURES[h]) for h in heads}

    def predict(self, X: np.ndarray, heads: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Per-head outputs for feature rows ``X`` (all FEATURES; position is forced to 1)."""
        X = X.copy()
        X[:, COL["position"]] = 1.0
        out: dict[str, np.ndarray] = {}
        for name, booster in self.heads.items():
            if heads is not None and name not in heads:
                continue
            raw = name == "rank"
            # One thread: for a few hundred rows, thread start-up costs more than it saves.
            out[name] = booster.predict(X[:, self._cols[name]], raw_score=raw, num_threads=1)
            if raw and self.rank_base == RANK_BASE:
                out[name] = out[name] + rank_base_margin(X)
        return out

    def score(self, X: np.ndarray, blend: BlendWeights | None = None) -> np.ndarray:
        """Blended score of each row."""
        w = blend or self.blend
        # Only the heads the blend weighs: a skipped head saves its whole tree walk.
        needed = tuple(h for h, wt in (("rank", w.rank), ("ctr", w.ctr), ("cvr", w.cvr)) if wt)
        heads = self.predict(X, needed)
        s = np.zeros(len(X))
        if w.rank and "rank" in heads:
            s += w.rank * heads["rank"]
        if w.ctr and "ctr" in heads:
            s += w.ctr * np.log(np.clip(heads["ctr"], _EPS, 1.0))
        if w.cvr and "cvr" in heads:
            s += w.cvr * np.log(np.clip(heads["cvr"], _EPS, 1.0))
        return s

    # --- artifacts ---------------------------------------------------------------------------
    def save(self, folder: Path, *, metrics: dict[str, Any]) -> None:
        """Write LightGBM text models, the JSON feature schema and metrics (never pickle)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, booster in self.heads.items():
            booster.save_model(str(folder / f"{name}.txt"))
        schema = {
            "format": SCHEMA_FORMAT,
            "features": list(FEATURES),
            "heads": {h: list(HEAD_FEATURES[h]) for h in self.heads},
            "feature_config": self.feature_config.to_dict(),
            "blend": asdict(self.blend),
            "propensity": self.propensity.to_dict() if self.propensity else None,
            "rank_base": self.rank_base,
            **self.meta,
        }
        (folder / "schema.json").write_text(json.dumps(schema, indent=2))
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))

    @classmethod
    def load(cls, folder: Path) -> LgbmRanker:
        """Read a model folder written by ``save``; refuse a schema this code cannot serve."""
        lib = _require_lgb()
        schema = json.loads((folder / "schema.json").read_text())
        if schema.get("format") != SCHEMA_FORMAT or tuple(schema["features"]) != FEATURES:
            raise ModelFitError(f"{folder.name}: feature schema differs from this version's")
        heads = {
            h: lib.Booster(model_file=str(folder / f"{h}.txt"))
            for h in schema["heads"]
            if (folder / f"{h}.txt").exists()
        }
        prop = schema.get("propensity")
        meta = {k: v for k, v in schema.items() if k in ("version", "surfaces", "trained_at")}
        return cls(
            heads,
            blend=BlendWeights(**schema["blend"]),
            feature_config=FeatureConfig(**schema["feature_config"]),
            propensity=PropensityCurve(tuple(prop["values"]), prop["method"], prop["support"])
            if prop
            else None,
            meta=meta,
            rank_base=schema.get("rank_base"),  # absent in older artifacts: no base margin
        )


def _split_valid(frame: TrainingFrame, share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation masks: the last ``share`` of slates by time go to validation."""
    n_groups = int(frame.group.max()) + 1 if len(frame) else 0
    cut = int(n_groups * (1.0 - share))
    valid = frame.group >= frame.group.min() + cut if len(frame) else np.zeros(0, bool)
    return ~valid, valid


def fit(
    frame: TrainingFrame,
    *,
    propensity: PropensityCurve | None,
    blend: BlendWeights | None = None,
    params: TrainParams | None = None,
    feature_config: FeatureConfig | None = None,
) -> LgbmRanker:
    """Train LambdaMART (inverse-propensity weighted), the CTR head and the CVR head."""
    lib = _require_lgb()
    params = params or TrainParams()
    if len(frame) == 0 or frame.click.sum() == 0:
        raise ModelFitError("no clicked impressions to train a ranker on")
    tr, va = _split_valid(frame)
    base = {
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_data_in_leaf,
        "num_threads": params.num_threads,
        "seed": params.seed,
        "deterministic": True,
        "verbose": -1,
    }
    heads: dict[str, Any] = {}

    # LambdaMART on slates with a click; clicked rows weighted by 1/p(position).
    has_pos = np.zeros(int(frame.group.max()) + 1, bool)
    has_pos[frame.group[frame.click > 0]] = True
    rows = has_pos[frame.group]
    w = np.ones(len(frame))
    if propensity is not None:
        inv = ipw_weights(frame.position, propensity, clip=params.ipw_clip)
        w = np.where(frame.click > 0, inv, 1.0)
    names = list(HEAD_FEATURES["rank"])
    cols = _cols(HEAD_FEATURES["rank"])
    sets: list[Any] = []
    for mask in (rows & tr, rows & va):
        idx = np.flatnonzero(mask)
        sets.append(
            None
            if len(idx) == 0
            else lib.Dataset(
                frame.X[np.ix_(idx, cols)],
                label=frame.label[idx],
                weight=w[idx],
                group=group_sizes(frame.group[idx]),
                feature_name=names,
                init_score=rank_base_margin(frame.X[idx]),
                reference=sets[0] if sets else None,
            )
        )
    heads["rank"] = _train(
        lib,
        {
            **base,
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "lambdarank_truncation_level": 20,
        },
        sets[0],
        None,
        params,
        rounds=params.rank_rounds,
    )

    # CTR head: every impression, position as an input.
    heads["ctr"] = _binary(
        lib, base, frame, frame.click, np.ones(len(frame), bool), tr, va, "ctr", params
    )
    # CVR head: clicked rows only; conversions given a click.
    clicked = frame.click > 0
    if frame.conversion[clicked].sum() > 0:
        heads["cvr"] = _binary(lib, base, frame, frame.conversion, clicked, tr, va, "cvr", params)
    return LgbmRanker(
        heads,
        blend=blend or BlendWeights(),
        feature_config=feature_config or FeatureConfig(),
        propensity=propensity,
    )


def _binary(
    lib: Any,
    base: dict[str, Any],
    frame: TrainingFrame,
    y: np.ndarray,
    rows: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    head: str,
    params: TrainParams,
) -> Any:
    cols = _cols(HEAD_FEATURES[head])
    names = list(HEAD_FEATURES[head])
    sets: list[Any] = []
    for mask in (rows & tr, rows & va):
        idx = np.flatnonzero(mask)
        sets.append(
            None
            if len(idx) == 0
            else lib.Dataset(
                frame.X[np.ix_(idx, cols)],
                label=y[idx],
                feature_name=names,
                reference=sets[0] if sets else None,
            )
        )
    cfg = {
        **base,
        "learning_rate": params.head_learning_rate,
        "objective": "binary",
        "metric": "binary_logloss",
    }
    return _train(lib, cfg, sets[0], sets[1], params)


def _train(
    lib: Any,
    cfg: dict[str, Any],
    train: Any,
    valid: Any,
    params: TrainParams,
    rounds: int | None = None,
) -> Any:
    if train is None:
        raise ModelFitError("no training rows left after the validation split")
    callbacks = []
    valid_sets = []
    if valid is not None:
        valid_sets = [valid]
        callbacks.append(lib.early_stopping(params.early_stopping, verbose=False))
    try:
        return lib.train(
            cfg,
            train,
            num_boost_round=rounds or params.rounds,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
    except lib.basic.LightGBMError as exc:
        raise ModelFitError(f"LightGBM could not train: {exc}") from exc

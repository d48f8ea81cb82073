"""Offline evaluation of rankers on held-out logged slates (NDCG@10 with graded labels).

Baselines need no training: ``popularity`` orders by decayed clicks; the untrained blends are
fixed-weight sums of standardised generator score, smoothed item CTR, topic match and
popularity. ``best_untrained`` reports the best of those weightings *on the test set itself*,
which flatters the baseline: a learned ranker has to beat its best case.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinengine.discovery.ranking.features import COL, TrainingFrame
from twinengine.discovery.ranking.models import BlendWeights, LgbmRanker, ndcg_at

# (generator score, log item CTR, topic match, popularity, embedding similarity) weights
UNTRAINED_BLENDS: dict[str, tuple[float, float, float, float, float]] = {
    "generator": (1.0, 0.0, 0.0, 0.0, 0.0),
    "ctr": (0.0, 1.0, 0.0, 0.0, 0.0),
    "equal": (1.0, 1.0, 1.0, 1.0, 1.0),
    "ctr_topic": (0.0, 1.0, 1.0, 0.0, 0.0),
    "gen_ctr_topic": (1.0, 1.0, 1.0, 0.0, 0.0),
    "topic_pop": (0.0, 0.0, 1.0, 1.0, 0.5),
}


def split_by_time(frame: TrainingFrame, holdout: float) -> tuple[TrainingFrame, TrainingFrame]:
    """Earlier slates for training, the last ``holdout`` share for testing."""
    n_groups = int(frame.group.max()) + 1
    cut = frame.group.min() + int((n_groups - frame.group.min()) * (1.0 - holdout))
    return frame.take(frame.group < cut), frame.take(frame.group >= cut)


def _z(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(x.astype(float), nan=0.0)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def untrained_scores(X: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """A fixed-weight blend of standardised signals (no learning)."""
    signals = (
        X[:, COL["gen_score"]],
        np.log(np.maximum(X[:, COL["item_ctr"]], 1e-6)),
        X[:, COL["topic_match"]],
        X[:, COL["item_pop"]],
        X[:, COL["emb_sim"]],
    )
    return sum((w * _z(s) for w, s in zip(weights, signals, strict=True) if w), np.zeros(len(X)))


def offline_metrics(ranker: LgbmRanker, test: TrainingFrame, *, k: int = 10) -> dict[str, Any]:
    """NDCG@k of baselines, the LambdaMART head, click-only and multi-objective blends."""
    if len(test) == 0:
        return {"test_rows": 0}
    labels, group = test.label, test.group
    out: dict[str, Any] = {}
    out[f"ndcg{k}_popularity"] = ndcg_at(test.X[:, COL["item_pop"]], labels, group, k)
    blends = {name: ndcg_at(untrained_scores(test.X, w), labels, group, k)
              for name, w in UNTRAINED_BLENDS.items()}
    best = max(blends, key=lambda n: -np.inf if np.isnan(blends[n]) else blends[n])
    out[f"ndcg{k}_untrained"] = blends
    out[f"ndcg{k}_blend"] = blends[best]
    out["best_untrained_blend"] = best
    for name in ("lambdamart", "click", "conversion"):
        scores = ranker.score(test.X, BlendWeights.preset(name))
        out[f"ndcg{k}_{name}"] = ndcg_at(scores, labels, group, k)
    out[f"ndcg{k}_multiobjective"] = ndcg_at(ranker.score(test.X), labels, group, k)
    out["propensity"] = ranker.propensity.to_dict() if ranker.propensity else None
    return out

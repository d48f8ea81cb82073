"""Position bias: how likely a user is to examine each slate position.

Two estimators of the examination propensity ``p_k`` (normalised so that ``p_1 = 1``):

- ``harvest_propensities``: intervention harvesting (Agarwal et al., WSDM 2019). Slates from a
  randomised exploration slice record, per shown item, the position the policy had chosen
  (``attributes["orig_positions"]``). Clicks of items the policy put at ``o`` but showed at
  ``k`` follow ``c_ok ~ Poisson(n_ok * p_k * r_o)``, where ``r_o`` is the mean relevance of what
  the policy ranks at ``o``; the maximum-likelihood ``p`` and ``r`` come from alternating
  closed-form updates. With swaps or shuffles, the ``(o, k)`` cells connect and ``p`` is
  identified without assuming anything about relevance.
- ``contextual_pbm_propensities``: the position-based click model over all logs with a
  learned relevance, ``P(click) = p_k * sigmoid(f(x))`` (as in regression EM, Wang et al.,
  WSDM 2018), where ``f`` is a gradient-boosted model of the row's features (user-item topic
  match, item CTR, generator score, ...), fitted by alternating exact maximisation. Relevance
  conditioned on the features the policy ranked by removes most of the confounding between
  position and relevance, and every click counts, not only the explored ones.
- ``em_propensities``: the same model with one relevance per item (no features); biased when
  the policy personalises, kept as the last resort.

The curve is used as inverse-propensity weights when training the ranker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinengine.errors import ModelFitError


@dataclass(frozen=True)
class PropensityCurve:
    """Examination propensity per position (index 0 is position 1) and how it was estimated."""

    values: tuple[float, ...]
    method: str
    support: int  # rows the estimate rests on

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Propensity of each 1-based position (positions past the curve get its last value)."""
        curve = np.asarray(self.values)
        k = np.clip(np.asarray(positions, dtype=np.int64) - 1, 0, len(curve) - 1)
        return curve[k]

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"values": list(self.values), "method": self.method, "support": self.support}


def harvest_propensities(
    shown: np.ndarray,
    original: np.ndarray,
    click: np.ndarray,
    *,
    max_position: int = 10,
    iterations: int = 500,
    weight: np.ndarray | None = None,
) -> PropensityCurve:
    """Fit ``p_k`` from rows with shown and policy-chosen positions (intervention harvesting).

    Parameters
    ----------
    shown, original : 1-based positions of each row as shown and as the policy ranked it.
    click : 0/1 per row.
    max_position : positions beyond it are ignored.
    iterations : alternating-update rounds of the Poisson maximum likelihood.
    weight : optional weight per row (bootstrap resampling).
    """
    keep = (shown <= max_position) & (original <= max_position) & (shown >= 1) & (original >= 1)
    if not (keep & (shown != original)).any():
        raise ModelFitError("no randomised (swapped or shuffled) impressions to estimate from")
    k = shown[keep].astype(np.int64) - 1
    o = original[keep].astype(np.int64) - 1
    w = np.ones(len(k)) if weight is None else np.asarray(weight, dtype=float)[keep]
    cell = o * max_position + k  # n[o, k], c[o, k] as flat bincounts
    size = max_position * max_position
    n = np.bincount(cell, weights=w, minlength=size).reshape(max_position, max_position)
    c = np.bincount(cell, weights=w * click[keep], minlength=size).reshape(
        max_position, max_position
    )
    p = np.ones(max_position)
    r = np.full(max_position, max(c.sum() / max(n.sum(), 1.0), 1e-6))
    for _ in range(iterations):
        p = c.sum(axis=0) / np.maximum((n * r[:, None]).sum(axis=0), 1e-12)
        r = c.sum(axis=1) / np.maximum((n * p[None, :]).sum(axis=1), 1e-12)
    if p[0] <= 0:
        raise ModelFitError("no clicks at position 1: cannot normalise the propensity curve")
    p = _non_increasing(p / p[0], c.sum(axis=0))
    return PropensityCurve(tuple(float(x) for x in p), "intervention_harvesting", int(keep.sum()))


def _non_increasing(p: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Project ``p`` onto non-increasing curves (examination falls with position).

    Weighted isotonic regression of ``log p`` (scipy's pool-adjacent-violators), weights = clicks
    at each position (the inverse variance of ``log p_k``); only neighbours that cross are
    pooled, so a well-determined curve is left as it is.
    """
    from scipy.optimize import isotonic_regression

    logp = np.log(np.maximum(p, 1e-9))
    fit = isotonic_regression(logp, weights=np.maximum(clicks, 1.0), increasing=False).x
    return np.exp(fit - fit[0])


def em_propensities(
    position: np.ndarray,
    item: np.ndarray,
    click: np.ndarray,
    *,
    max_position: int = 10,
    iterations: int = 100,
) -> PropensityCurve:
    """Fit the position-based click model ``P(click) = p_k * gamma_item`` by EM.

    Parameters
    ----------
    position : 1-based position per row.
    item : integer item code per row.
    click : 0/1 per row.
    """
    keep = (position >= 1) & (position <= max_position)
    if not keep.any() or click[keep].sum() == 0:
        raise ModelFitError("no clicked impressions to estimate position bias from")
    k = position[keep].astype(np.int64) - 1
    _, it = np.unique(item[keep], return_inverse=True)
    c = click[keep].astype(float)
    p = np.linspace(1.0, 0.3, max_position)
    gamma = np.full(it.max() + 1, 0.3)
    n_k = np.bincount(k, minlength=max_position).astype(float)
    n_i = np.bincount(it).astype(float)
    for _ in range(iterations):
        pk, gi = p[k], gamma[it]
        denom = np.maximum(1.0 - pk * gi, 1e-12)
        exam = np.where(c > 0, 1.0, pk * (1.0 - gi) / denom)  # P(examined | observed)
        rel = np.where(c > 0, 1.0, (1.0 - pk) * gi / denom)  # P(relevant | observed)
        p = np.bincount(k, weights=exam, minlength=max_position) / np.maximum(n_k, 1.0)
        gamma = np.bincount(it, weights=rel) / np.maximum(n_i, 1.0)
        p = np.clip(p, 1e-6, 1.0)
        gamma = np.clip(gamma, 1e-6, 1.0 - 1e-6)
    p = p / p[0]
    return PropensityCurve(tuple(float(x) for x in p), "em_pbm", int(keep.sum()))


def contextual_pbm_propensities(
    X: np.ndarray,
    position: np.ndarray,
    click: np.ndarray,
    *,
    max_position: int = 10,
    iterations: int = 8,
    rounds: int = 40,
    negative_share: float = 1.0,
    num_threads: int = 2,
    seed: int = 7,
) -> PropensityCurve:
    """Fit ``P(click) = p_k * sigmoid(f(x))`` by maximum likelihood, block by block.

    Each round fits ``f`` (LightGBM with the exact likelihood as a custom objective, ``p``
    fixed), then each ``p_k`` by Newton's method (``f`` fixed). Starting from a flat curve,
    the estimate falls towards the truth; unlike EM from the naive curve, it does not stall
    at the confounded answer. Explored (swapped) slates, where position is independent of the
    features, are what pins the curve down.

    Parameters
    ----------
    X : feature rows (no position column).
    position : 1-based position per row.
    click : 0/1 per row.
    iterations : alternating rounds.
    rounds : boosting rounds of each relevance fit.
    negative_share : share of unclicked rows kept (each weighted by its inverse), for speed.
    """
    import lightgbm as lgb

    keep = (position >= 1) & (position <= max_position)
    if not keep.any() or click[keep].sum() == 0:
        raise ModelFitError("no clicked impressions to estimate position bias from")
    w = np.ones(len(click))
    if negative_share < 1.0:
        sampled = np.random.default_rng(seed).random(len(click)) < negative_share
        keep &= (click > 0) | sampled
        w = np.where(click > 0, 1.0, 1.0 / negative_share)
    X, k, c, w = X[keep], position[keep].astype(np.int64) - 1, click[keep] > 0, w[keep]
    p = np.full(max_position, 0.5)
    params = {
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 100,
        "num_threads": num_threads,
        "seed": seed,
        "deterministic": True,
        "verbose": -1,
    }
    data = lgb.Dataset(X, label=c.astype(float), weight=w, free_raw_data=False)
    for _ in range(iterations):
        pk = p[k]

        def objective(preds: np.ndarray, _: object, pk: np.ndarray = pk) -> tuple:
            g = 1.0 / (1.0 + np.exp(-preds))
            q = np.clip(pk * g, 1e-9, 1.0 - 1e-9)
            grad = np.where(c, -(1.0 - g), pk * g * (1.0 - g) / (1.0 - q))
            hess = np.where(
                c,
                g * (1.0 - g),
                pk
                * g
                * (1.0 - g)
                * ((1.0 - 2.0 * g) * (1.0 - q) + pk * g * (1.0 - g))
                / (1.0 - q) ** 2,
            )
            return w * grad, w * np.maximum(hess, 1e-6)

        booster = lgb.train({**params, "objective": objective}, data, num_boost_round=rounds)
        g = 1.0 / (1.0 + np.exp(-booster.predict(X, raw_score=True, num_threads=num_threads)))
        for _ in range(20):  # Newton steps on each p_k: concave in p_k
            q = np.clip(p[k] * g, 1e-9, 1.0 - 1e-9)
            d1 = np.bincount(
                k, weights=w * np.where(c, 1.0 / p[k], -g / (1.0 - q)), minlength=max_position
            )
            d2 = np.bincount(
                k,
                weights=w * np.where(c, -1.0 / p[k] ** 2, -((g / (1.0 - q)) ** 2)),
                minlength=max_position,
            )
            p = np.clip(p - d1 / np.minimum(d2, -1e-12), 1e-4, 1.0)
    p = p / p[0]
    return PropensityCurve(tuple(float(x) for x in p), "contextual_pbm", int(keep.sum()))


def ipw_weights(positions: np.ndarray, curve: PropensityCurve, *, clip: float = 10.0) -> np.ndarray:
    """Inverse-propensity weights ``min(1 / p_k, clip)`` for the rows at ``positions``."""
    return np.minimum(1.0 / np.maximum(curve.at(positions), 1e-6), clip)

"""Position bias: how likely a user is to examine each slate position.

Two estimators of the examination propensity ``p_k`` (normalised so that ``p_1 = 1``):

- ``harvest_propensities``: intervention harvesting (Agarwal et al., WSDM 2019). Slates from a
  randomised exploration slice record, per shown item, the position the policy had chosen
  (``attributes["orig_positions"]``). Clicks of items the policy put at ``o`` but showed at
  ``k`` follow ``c_ok ~ Poisson(n_ok * p_k * r_o)``, where ``r_o`` is the mean relevance of what
  the policy ranks at ``o``; the maximum-likelihood ``p`` and ``r`` come from alternating
  closed-form updates. With swaps or shuffles, the ``(o, k)`` cells connect and ``p`` is
  identified without assuming anything about relevance.
- ``em_propensities``: the position-based click model fitted by EM over all logs,
  ``P(click) = p_k * gamma_item``. It needs no exploration but is biased when the policy
  personalises (gamma is per item, not per user), so it is the fallback.

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
) -> PropensityCurve:
    """Fit ``p_k`` from rows with shown and policy-chosen positions (intervention harvesting).

    Parameters
    ----------
    shown, original : 1-based positions of each row as shown and as the policy ranked it.
    click : 0/1 per row.
    max_position : positions beyond it are ignored.
    iterations : alternating-update rounds of the Poisson maximum likelihood.
    """
    keep = (shown <= max_position) & (original <= max_position) & (shown >= 1) & (original >= 1)
    if not (keep & (shown != original)).any():
        raise ModelFitError("no randomised (swapped or shuffled) impressions to estimate from")
    k = shown[keep].astype(np.int64) - 1
    o = original[keep].astype(np.int64) - 1
    n = np.zeros((max_position, max_position))  # n[o, k]
    c = np.zeros((max_position, max_position))
    np.add.at(n, (o, k), 1.0)
    np.add.at(c, (o, k), click[keep].astype(float))
    p = np.ones(max_position)
    r = np.full(max_position, max(c.sum() / max(n.sum(), 1.0), 1e-6))
    for _ in range(iterations):
        p = c.sum(axis=0) / np.maximum((n * r[:, None]).sum(axis=0), 1e-12)
        r = c.sum(axis=1) / np.maximum((n * p[None, :]).sum(axis=1), 1e-12)
    if p[0] <= 0:
        raise ModelFitError("no clicks at position 1: cannot normalise the propensity curve")
    p = p / p[0]
    return PropensityCurve(tuple(float(x) for x in p), "intervention_harvesting", int(keep.sum()))


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


def ipw_weights(
    positions: np.ndarray, curve: PropensityCurve, *, clip: float = 10.0
) -> np.ndarray:
    """Inverse-propensity weights ``min(1 / p_k, clip)`` for the rows at ``positions``."""
    return np.minimum(1.0 / np.maximum(curve.at(positions), 1e-6), clip)

"""Ranking internals without a database: position-bias estimators, rules, NDCG."""

from __future__ import annotations

import numpy as np
import pytest

from twinengine.discovery.ranking.bias import (
    PropensityCurve,
    em_propensities,
    harvest_propensities,
    ipw_weights,
)
from twinengine.discovery.ranking.diversity import Rules, apply_rules
from twinengine.discovery.ranking.models import BlendWeights, group_sizes, ndcg_at
from twinengine.errors import InvalidInput, ModelFitError

TRUE = 1.0 / np.arange(1, 11)  # examination at positions 1..10


def _swap_log(rng: np.random.Generator, n_slates: int, swap_rate: float) -> tuple[np.ndarray, ...]:
    """Slates of 10 ranked by a policy whose relevance falls with rank; some swap 1 and k."""
    rel_by_rank = np.linspace(0.6, 0.1, 10)
    shown, orig, click = [], [], []
    for _ in range(n_slates):
        o = np.arange(1, 11)
        s = o.copy()
        if rng.random() < swap_rate:
            k = int(rng.integers(2, 11))
            s[0], s[k - 1] = k, 1
        rel = rel_by_rank[o - 1] * rng.uniform(0.5, 1.5, 10)
        c = rng.random(10) < TRUE[s - 1] * np.minimum(rel, 1.0)
        shown.append(s)
        orig.append(o)
        click.append(c)
    return np.concatenate(shown), np.concatenate(orig), np.concatenate(click).astype(int)


def test_intervention_harvesting_recovers_the_true_curve() -> None:
    rng = np.random.default_rng(1)
    shown, orig, click = _swap_log(rng, 40_000, swap_rate=0.3)
    curve = harvest_propensities(shown, orig, click)
    rel_err = np.abs(np.array(curve.values) - TRUE) / TRUE
    assert rel_err.max() < 0.10, curve.values
    # The naive per-position CTR confounds position with relevance and is far off.
    naive = np.bincount(shown - 1, weights=click) / np.bincount(shown - 1)
    assert (np.abs(naive / naive[0] - TRUE) / TRUE).max() > 0.3


def test_harvesting_without_randomisation_refuses() -> None:
    pos = np.tile(np.arange(1, 11), 100)
    with pytest.raises(ModelFitError):
        harvest_propensities(pos, pos, np.ones_like(pos))


def test_em_recovers_the_curve_when_positions_are_random() -> None:
    rng = np.random.default_rng(2)
    n_items, n = 200, 120_000
    gamma = rng.uniform(0.05, 0.9, n_items)
    item = rng.integers(0, n_items, n)
    pos = rng.integers(1, 11, n)
    click = (rng.random(n) < TRUE[pos - 1] * gamma[item]).astype(int)
    curve = em_propensities(pos, item, click, iterations=200)
    assert (np.abs(np.array(curve.values) - TRUE) / TRUE).max() < 0.10, curve.values


def test_ipw_weights_are_clipped_inverse_propensities() -> None:
    curve = PropensityCurve((1.0, 0.5, 0.05), "test", 1)
    w = ipw_weights(np.array([1, 2, 3, 9]), curve, clip=10.0)
    assert w.tolist() == [1.0, 2.0, 10.0, 10.0]


def test_ndcg_perfect_and_reversed() -> None:
    labels = np.array([2, 1, 0, 0, 0, 0, 0])
    group = np.zeros(7, dtype=int)
    assert ndcg_at(np.arange(7)[::-1].astype(float), labels, group) == pytest.approx(1.0)
    assert ndcg_at(np.arange(7).astype(float), labels, group) < 0.5
    assert group_sizes(np.array([0, 0, 1, 1, 1, 5])).tolist() == [2, 3, 1]


def test_unknown_blend_preset_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="click, conversion, lambdamart"):
        BlendWeights.preset("revenue")


def _topics(n: int, n_topics: int) -> np.ndarray:
    t = np.zeros((n, n_topics))
    t[np.arange(n), np.arange(n) % n_topics] = 1.0
    return t


def test_rules_hidden_and_pins() -> None:
    ids = [f"i{n}" for n in range(10)]
    scores = np.arange(10, 0, -1, dtype=float)  # i0 best
    order = apply_rules(ids, scores, 5, Rules(hidden=["i0", "i2"], pins={"i9": 1, "i8": 3}))
    picked = [ids[i] for i in order]
    assert picked == ["i9", "i1", "i8", "i3", "i4"]


def test_topic_cap_and_mmr_diversify() -> None:
    ids = [f"i{n}" for n in range(12)]
    topics = np.zeros((12, 3))
    topics[:8, 0] = 1.0  # the 8 best items share topic 0
    topics[8:10, 1] = 1.0
    topics[10:, 2] = 1.0
    scores = np.linspace(1.0, 0.5, 12)
    plain = apply_rules(ids, scores, 6, Rules(), topics=topics)
    assert len({int(topics[i].argmax()) for i in plain}) == 1
    capped = apply_rules(ids, scores, 6, Rules(topic_cap=2), topics=topics)
    assert sum(topics[i, 0] for i in capped) == 2 and len(capped) == 6
    mmr = apply_rules(ids, scores, 6, Rules(mmr_lambda=0.5), topics=topics)
    assert len({int(topics[i].argmax()) for i in mmr}) == 3
    assert mmr[0] == 0  # the best item still leads


def test_freshness_boost_lifts_new_items() -> None:
    ids = ["old", "new", "filler"]
    scores = np.array([1.0, 0.9, 0.0])
    age = np.array([400.0, 1.0, 400.0])
    assert apply_rules(ids, scores, 2, Rules(), age_days=age) == [0, 1]
    assert apply_rules(ids, scores, 2, Rules(freshness_boost=0.5), age_days=age) == [1, 0]
    assert apply_rules(ids, scores, 2, Rules(freshness_boost=0.5), age_days=None) == [0, 1]


def test_contextual_pbm_removes_personalisation_confounding() -> None:
    """The policy ranks by a user-item signal x that drives relevance; per-item EM is fooled.

    With 50k rows the deep positions hold a few dozen clicks each, so only positions 1-6 are
    held to 10%; the rest must still beat the confounded estimate by far.
    """
    from twinengine.discovery.ranking.bias import contextual_pbm_propensities

    rng = np.random.default_rng(3)
    n_slates = 5000
    x = rng.random((n_slates, 10))
    order = np.argsort(-(x + 0.3 * rng.random((n_slates, 10))), axis=1)
    x = np.take_along_axis(x, order, axis=1)  # row j of a slate is shown at j + 1
    # A third of the slates swap position 1 with a random k (the exploration slice).
    for s in np.flatnonzero(rng.random(n_slates) < 0.3):
        k = int(rng.integers(1, 10))
        x[s, 0], x[s, k] = x[s, k], x[s, 0]
    x = x.ravel()
    pos = np.tile(np.arange(1, 11), n_slates)
    gamma = 0.05 + 0.6 * x**2
    click = (rng.random(len(x)) < TRUE[pos - 1] * gamma).astype(int)
    item = rng.integers(0, 300, len(x))
    naive = np.abs(np.array(em_propensities(pos, item, click).values) - TRUE) / TRUE
    assert naive.max() > 0.3
    curve = contextual_pbm_propensities(x[:, None], pos, click, rounds=30, num_threads=1)
    err = np.abs(np.array(curve.values) - TRUE) / TRUE
    assert err[:6].max() < 0.10, curve.values
    assert err.mean() < naive.mean() / 2, (err, naive)

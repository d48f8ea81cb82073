"""The simulator's conversion truth the ranking bench relies on; weighted harvesting."""

from __future__ import annotations

import numpy as np
import pytest
from bench.sim import SimConfig, Simulator, build_world

from twinengine.discovery.ranking.bias import harvest_propensities


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_usefulness_gives_items_a_conversion_rate_of_their_own(sample_catalog) -> None:
    world = build_world(sample_catalog, seed=4)
    assert world.usefulness is not None and world.usefulness.shape == world.quality.shape
    plain = Simulator(sample_catalog, SimConfig(seed=4, n_users=5), world=world)
    useful = Simulator(
        sample_catalog, SimConfig(seed=4, n_users=5, copy_w_usefulness=2.0), world=world
    )
    ids = world.item_ids
    corr_plain, corr_useful = [], []
    for user_plain, user_useful in zip(plain.users, useful.users, strict=True):
        appeal = plain.true_attractiveness(user_plain, ids)
        assert np.allclose(appeal, useful.true_attractiveness(user_useful, ids))
        corr_plain.append(_spearman(appeal, plain.true_copy_prob(user_plain, ids)))
        corr_useful.append(_spearman(appeal, useful.true_copy_prob(user_useful, ids)))
    # By default conversion follows appeal almost exactly, so no ranker can trade one for the
    # other; with usefulness it does not.
    assert min(corr_plain) > 0.95
    assert max(corr_useful) < 0.8
    c = plain.config
    expected = 1 / (
        1
        + np.exp(
            -(
                c.copy_w_affinity * plain.affinity(plain.users[0])
                + c.copy_w_quality * world.quality
                + c.copy_bias
            )
        )
    )
    assert np.allclose(plain.true_copy_prob(plain.users[0], ids), expected)


def test_harvesting_weights_act_as_repeated_rows() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    orig = np.tile(np.arange(1, 11), n // 10)
    shown = np.concatenate([rng.permutation(10) + 1 for _ in range(n // 10)])
    click = (rng.random(n) < 0.3 / shown).astype(int)
    w = rng.integers(0, 3, n)
    weighted = harvest_propensities(shown, orig, click, weight=w)
    repeated = harvest_propensities(np.repeat(shown, w), np.repeat(orig, w), np.repeat(click, w))
    assert weighted.values == pytest.approx(repeated.values, rel=1e-9)
    assert weighted.values != harvest_propensities(shown, orig, click).values

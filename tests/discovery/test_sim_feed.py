"""On simulated behaviour the personalised feed beats popular; new users get a sane feed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from bench.sim import InProcess, SimConfig, Simulator, source_candidates

from twinengine.discovery.candidates import service

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _explore(sim: Simulator, rate: float):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    ids = sim.world.item_ids

    def policy(user, cands):  # type: ignore[no-untyped-def]
        out = [c.item_id for c in sorted(cands, key=lambda c: -c.score)][:10]
        return [ids[int(rng.integers(len(ids)))] if rng.random() < rate else i for i in out]

    return policy


@pytest.mark.slow
def test_feed_beats_popular_and_cold_start_is_sane(sample_catalog) -> None:
    ctx = sample_catalog
    cfg = SimConfig(seed=11, n_users=80, new_users_per_day=2, days=6, start=START, run_id="w")
    sim = Simulator(ctx, cfg)
    # A fixed logging policy (popular, half the slots random), so the data does not depend on
    # the feed being tested.
    sim.run(InProcess(ctx, candidates=source_candidates("popular"), policy=_explore(sim, 0.5)))
    service.refresh(ctx, now=START + dt.timedelta(days=cfg.days))
    warm = [u for u in sim.users if u.key in service.state(ctx).histories]
    assert len(warm) > 30

    def ndcg(surface: str, users) -> float:  # type: ignore[no-untyped-def]
        vals = []
        for u in users:
            cands = service.generate(ctx, surface=surface, user_key=u.key, k=10)
            vals.append(sim.ndcg(u, [c.item_id for c in cands]))
        return float(np.mean(vals))

    feed, popular = ndcg("feed", warm), ndcg("popular", warm)
    print(f"true NDCG@10 of {len(warm)} users with history: feed {feed:.4f} popular {popular:.4f}")
    assert feed > popular * 1.15, (feed, popular)
    # Brand-new users: the cold-start feed (no history) beats a random slate by a margin.
    new = [sim.add_user(joined_day=cfg.days) for _ in range(30)]
    assert all(service.blend_for(ctx, "feed", u.key)[0] == "cold_start" for u in new)
    cold = ndcg("feed", new)
    rng = np.random.default_rng(1)
    rand = float(np.mean([sim.ndcg(u, list(rng.choice(sim.world.item_ids, 10, replace=False)))
                          for u in new]))  # fmt: skip
    print(f"new users: cold-start feed {cold:.4f}, random {rand:.4f}")
    assert cold > rand * 1.2, (cold, rand)

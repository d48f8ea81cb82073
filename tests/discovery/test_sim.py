"""The behaviour simulator: known truth, determinism, events written through the service."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from bench.sim import InProcess, SimConfig, Simulator, build_world

from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.events import service as events

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


class _NoRefresh(InProcess):
    def on_day(self, now: dt.datetime) -> None:
        self.flush()


def _all_items(sim: Simulator):  # type: ignore[no-untyped-def]
    ids = sim.world.item_ids

    def source(ctx, req):  # type: ignore[no-untyped-def]
        return [Candidate(i, 0.0, "all") for i in ids]

    return source


def _run(ctx, policy, *, seed=3, days=2, swap=0.0, run_id="t"):  # type: ignore[no-untyped-def]
    cfg = SimConfig(seed=seed, n_users=20, new_users_per_day=2, days=days, start=START,
                    swap_rate=swap, run_id=run_id)  # fmt: skip
    sim = Simulator(ctx, cfg)
    drv = _NoRefresh(ctx, candidates=_all_items(sim), policy=lambda u, c: policy(sim, u, c))
    return sim, sim.run(drv)


def _random(sim, user, cands):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(abs(hash(user.key)) % 2**32)
    return [cands[i] for i in rng.permutation(len(cands))[:10]]


def _oracle(sim, user, cands):  # type: ignore[no-untyped-def]
    a = sim.true_attractiveness(user, [c.item_id for c in cands])
    return [cands[i] for i in np.argsort(-a)[:10]]


def test_world_covers_catalog(sample_catalog) -> None:
    world = build_world(sample_catalog, seed=0)
    assert world.n_items == 300
    assert world.topic_matrix.shape == (300, 151)
    assert (world.topic_matrix.sum(axis=1) > 0).all()
    assert world.topic_matrix.max() <= 1.0


def test_truth_is_exposed(sample_catalog) -> None:
    sim = Simulator(sample_catalog, SimConfig(seed=1, n_users=3, eta=1.0))
    assert sim.true_examination(1) == 1.0
    assert sim.true_examination(4) == pytest.approx(0.25)
    user = sim.users[0]
    slate = sim.world.item_ids[:10]
    p = sim.true_click_prob(user, slate)
    a = sim.true_attractiveness(user, slate)
    assert np.allclose(p, a / np.arange(1, 11))
    assert 0.0 < sim.ndcg(user, slate) <= 1.0
    best = [
        sim.world.item_ids[i]
        for i in np.argsort(-sim.true_attractiveness(user, sim.world.item_ids))[:10]
    ]
    assert sim.ndcg(user, best) == pytest.approx(1.0)


def test_events_are_written_and_runs_are_deterministic(sample_catalog) -> None:
    sim, res = _run(sample_catalog, _random, run_id="a")
    stored = events.load_events(sample_catalog, types=["impression"])
    shown = [s for ses in res.sessions for s in ses.slates]
    assert len(stored) == len(shown) > 20
    assert res.events == events.count_events(sample_catalog)
    clicks = events.load_events(sample_catalog, types=["click"])
    assert len(clicks) == sum(len(s.clicked) for s in shown)
    assert {e["ts"].date() for e in stored} <= {START.date(), (START + dt.timedelta(days=1)).date()}
    # Same seed, same behaviour (event ids differ by run id only).
    _, again = _run(sample_catalog, _random, run_id="b")
    assert [(s.items, s.clicked, s.copied) for ses in again.sessions for s in ses.slates] == [
        (s.items, s.clicked, s.copied) for s in shown
    ]


def test_oracle_beats_random(sample_catalog) -> None:
    _, rnd = _run(sample_catalog, _random, run_id="r", days=3)
    _, orc = _run(sample_catalog, _oracle, run_id="o", days=3)
    assert orc.metrics()["ndcg10"] > 0.95 > rnd.metrics()["ndcg10"]
    assert orc.metrics()["ctr"] > 2 * rnd.metrics()["ctr"]


def test_swap_exploration_is_logged(sample_catalog) -> None:
    _, res = _run(sample_catalog, _oracle, swap=0.5, run_id="s")
    swapped = [s for ses in res.sessions for s in ses.slates if s.swapped]
    assert swapped
    imps = {e["request_id"]: e for e in events.load_events(sample_catalog, types=["impression"])}
    for s in swapped:
        assert imps[s.request_id]["attributes"]["swap"] == [1, s.swapped]
        assert imps[s.request_id]["slate"] == s.items


def test_http_driver_drives_the_real_api(sample_catalog) -> None:
    """Slates from GET /v1/feed and related, events through POST /v1/events, over HTTP."""
    from bench.sim import Http

    from tests.browser import live_server
    from twinengine.api.app import create_app

    cfg = SimConfig(seed=5, n_users=6, new_users_per_day=0, days=1, start=START, run_id="h")
    sim = Simulator(sample_catalog, cfg)
    with live_server(create_app(context=sample_catalog)) as base:
        driver = Http(base, batch_size=50)
        try:
            res = sim.run(driver)
        finally:
            driver.close()
    shown = [s for ses in res.sessions for s in ses.slates]
    assert shown and all(len(s.request_id) == 32 for s in shown)  # the server's request ids
    stored = {e["request_id"] for e in events.load_events(sample_catalog, types=["impression"])}
    assert stored == {s.request_id for s in shown if s.items}
    assert res.events == events.count_events(sample_catalog)

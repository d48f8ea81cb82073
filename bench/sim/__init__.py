"""Behaviour simulator over the real catalog: the test bed for recommendations, ranking, A/B.

Quick start (in-process, fast, writes real events through the events service)::

    from bench.sim import InProcess, SimConfig, Simulator, by_score, source_candidates

    sim = Simulator(ctx, SimConfig(seed=1, n_users=200, days=14, swap_rate=0.1))
    result = sim.run(InProcess(ctx))                        # the product's feed candidates
    print(result.metrics())                                 # ctr, cvr, ndcg10, d1_return ...

    # Compare ranking policies: a policy is (user, candidates) -> ordered candidates or ids.
    def my_policy(user, candidates):
        return sorted(candidates, key=lambda c: -c.features.get("popular", 0.0))

    sim.run(InProcess(ctx, policy=my_policy), days=3, first_day=14)
    sim.run(InProcess(ctx, candidates=source_candidates("popular")), days=3, first_day=17)

    # The real HTTP path: slates from /v1/feed and /v1/items/{id}/related, events to /v1/events.
    sim.run(Http("http://127.0.0.1:8000"))

Ground truth for estimators: ``sim.true_examination(position)`` (the position bias curve,
``(1/position) ** eta``), ``sim.true_attractiveness(user, ids)``, ``sim.true_copy_prob(user,
ids)``, ``sim.true_click_prob(user, slate)``, ``sim.ndcg(user, slate)``. With
``SimConfig(swap_rate=r)`` a fraction r of slates swap position 1 with a random position k
(RandPair exploration); the impression's ``attributes["swap"]`` records ``[1, k]``. With
``explore="shuffle"`` those slates are shuffled instead (``attributes["orig_positions"]``).

Runs are deterministic for a seed and catalog (``SimConfig.start`` pins the dates too).
Users are ``sim-u00000``...; ``new_users_per_day`` adds cold-start users each day.
"""

from bench.sim.drivers import (
    CandidateSource,
    Driver,
    Http,
    InProcess,
    Policy,
    Served,
    SlateRequest,
    by_score,
    service_candidates,
    source_candidates,
)
from bench.sim.simulator import SessionLog, SimConfig, SimResult, Simulator, SlateLog
from bench.sim.world import SimUser, World, build_world

__all__ = [
    "CandidateSource",
    "Driver",
    "Http",
    "InProcess",
    "Policy",
    "Served",
    "SessionLog",
    "SimConfig",
    "SimResult",
    "SimUser",
    "Simulator",
    "SlateLog",
    "SlateRequest",
    "World",
    "build_world",
    "by_score",
    "service_candidates",
    "source_candidates",
]
